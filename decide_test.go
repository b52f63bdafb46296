package approval_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func TestDecideQuorumApproves(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))

	r, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, r.Status)
	require.Len(t, r.Votes, 1)
	require.Equal(t, []string{"high_spend"}, r.Votes[0].Policies)

	r, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, f.clock.Now().Add(approval.DefaultApprovalTTL), r.ExpiresAt)

	// The next Guard of the exact action consumes the approval, once.
	res, err := f.gate.Guard(f.ctx, transfer(5000))
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status)
	require.Equal(t, id, res.RequestID)
	require.Equal(t, approval.StatusConsumed, f.Get(id).Status)

	again := f.Pending(transfer(5000))
	require.NotEqual(t, id, again, "a consumed approval must not be reused")

	require.Equal(t, []approval.EventType{
		approval.EventRequestCreated, approval.EventDecisionApprove, approval.EventDecisionApprove,
		approval.EventRequestApproved, approval.EventApprovalConsumed, approval.EventRequestCreated,
	}, eventTypes(f.events()))
}

func TestDecideOneDenyDenies(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	r, err := f.gate.Decide(f.ctx, id, approval.Decision{
		Token: f.Token(id, "bob", approval.VerdictBoth), Verdict: approval.VerdictDeny, Reason: "wrong IBAN",
	})
	require.NoError(t, err)
	require.Equal(t, approval.StatusDenied, r.Status)
	require.Equal(t, "denied by bob: wrong IBAN", r.Reason)
	ev := f.lastEvent()
	require.Equal(t, approval.EventRequestDenied, ev.Type)
	require.Equal(t, "bob", ev.Actor)
}

func TestDecideDenyThreshold(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.DenyThreshold = 2 })
	id := f.Pending(transfer(5000))
	r, err := f.Decide(id, "alice", approval.VerdictDeny)
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, r.Status)
	r, err = f.Decide(id, "bob", approval.VerdictDeny)
	require.NoError(t, err)
	require.Equal(t, approval.StatusDenied, r.Status)
}

// TestDecideRejections provokes every refusal Decide has and checks the
// three things each must do: return the sentinel, leave the request as it
// was, and write a decision.rejected security event naming who and why.
func TestDecideRejections(t *testing.T) {
	t.Parallel()
	_, otherKey, err := approval.GenerateKeys()
	require.NoError(t, err)

	type setup struct {
		f  *fixture
		id string // a pending request with one approval by alice
	}
	cases := []struct {
		name  string
		want  error
		actor string // expected actor of the rejected event
		run   func(s setup) (id string, d approval.Decision)
	}{
		{"token signed by another key", approval.ErrTokenSignature, "bob", func(s setup) (string, approval.Decision) {
			other, err := approval.New(approval.Config{Store: s.f.store, SigningKey: otherKey})
			require.NoError(t, err)
			tok, err := other.IssueToken(s.id, "bob", approval.VerdictApprove, time.Hour)
			require.NoError(t, err)
			return s.id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove}
		}},
		{"tampered payload", approval.ErrTokenSignature, "mallory", func(s setup) (string, approval.Decision) {
			tok := s.f.Token(s.id, "bob", approval.VerdictApprove)
			return s.id, approval.Decision{Token: tamper(t, tok, `"sub":"bob"`, `"sub":"mallory"`), Verdict: approval.VerdictApprove}
		}},
		{"unknown key ID", approval.ErrTokenSignature, "bob", func(s setup) (string, approval.Decision) {
			tok := s.f.Token(s.id, "bob", approval.VerdictApprove)
			kid := approval.KeyID(s.f.priv.Public().(ed25519PublicKey))
			return s.id, approval.Decision{Token: tamper(t, tok, kid, "AAAAAAAAAAA"), Verdict: approval.VerdictApprove}
		}},
		{"expired token", approval.ErrTokenExpired, "bob", func(s setup) (string, approval.Decision) {
			tok, err := s.f.gate.IssueToken(s.id, "bob", approval.VerdictApprove, time.Minute)
			require.NoError(t, err)
			s.f.clock.Advance(2 * time.Minute)
			return s.id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove}
		}},
		{"token for another request", approval.ErrTokenRequestMismatch, "bob", func(s setup) (string, approval.Decision) {
			other := s.f.Pending(transfer(7000))
			return s.id, approval.Decision{Token: s.f.Token(other, "bob", approval.VerdictApprove), Verdict: approval.VerdictApprove}
		}},
		{"approve with a deny-only token", approval.ErrTokenVerdictMismatch, "bob", func(s setup) (string, approval.Decision) {
			return s.id, approval.Decision{Token: s.f.Token(s.id, "bob", approval.VerdictDeny), Verdict: approval.VerdictApprove}
		}},
		{"reused token", approval.ErrTokenUsed, "alice", func(s setup) (string, approval.Decision) {
			return s.id, approval.Decision{Token: s.f.aliceToken, Verdict: approval.VerdictApprove}
		}},
		{"ineligible approver", approval.ErrNotEligible, "mallory", func(s setup) (string, approval.Decision) {
			return s.id, approval.Decision{Token: s.f.Token(s.id, "mallory", approval.VerdictApprove), Verdict: approval.VerdictApprove}
		}},
		{"self-approval", approval.ErrSelfApproval, "carol", func(s setup) (string, approval.Decision) {
			// carol is in finance and asks for her own transfer.
			a := transfer(9000)
			a.RequestedBy = "carol"
			id := s.f.Pending(a)
			return id, approval.Decision{Token: s.f.Token(id, "carol", approval.VerdictApprove), Verdict: approval.VerdictApprove}
		}},
		{"second decision by the same approver", approval.ErrAlreadyDecided, "alice", func(s setup) (string, approval.Decision) {
			return s.id, approval.Decision{Token: s.f.Token(s.id, "alice", approval.VerdictDeny), Verdict: approval.VerdictDeny}
		}},
		{"decision after the request resolved", approval.ErrNotPending, "carol", func(s setup) (string, approval.Decision) {
			_, err := s.f.Decide(s.id, "bob", approval.VerdictApprove)
			require.NoError(t, err)
			return s.id, approval.Decision{Token: s.f.Token(s.id, "carol", approval.VerdictApprove), Verdict: approval.VerdictApprove}
		}},
		{"unknown request ID", approval.ErrNotFound, "bob", func(s setup) (string, approval.Decision) {
			id := "req_00000000000000000000000000000000"
			return id, approval.Decision{Token: s.f.Token(id, "bob", approval.VerdictApprove), Verdict: approval.VerdictApprove}
		}},
		{"empty token", approval.ErrTokenMalformed, "", func(s setup) (string, approval.Decision) {
			return s.id, approval.Decision{Token: "", Verdict: approval.VerdictApprove}
		}},
		{"token without a dot", approval.ErrTokenMalformed, "", func(s setup) (string, approval.Decision) {
			return s.id, approval.Decision{Token: "eyJ2IjoxfQ", Verdict: approval.VerdictApprove}
		}},
		{"token with three parts", approval.ErrTokenMalformed, "", func(s setup) (string, approval.Decision) {
			return s.id, approval.Decision{Token: s.f.Token(s.id, "bob", approval.VerdictApprove) + ".x", Verdict: approval.VerdictApprove}
		}},
		{"token that is not base64", approval.ErrTokenMalformed, "", func(s setup) (string, approval.Decision) {
			return s.id, approval.Decision{Token: "!!!.???", Verdict: approval.VerdictApprove}
		}},
		{"token with a truncated signature", approval.ErrTokenMalformed, "", func(s setup) (string, approval.Decision) {
			tok := s.f.Token(s.id, "bob", approval.VerdictApprove)
			return s.id, approval.Decision{Token: tok[:len(tok)-10], Verdict: approval.VerdictApprove}
		}},
		{"token of JSON garbage", approval.ErrTokenMalformed, "", func(s setup) (string, approval.Decision) {
			return s.id, approval.Decision{Token: b64(`[1,2,3]`) + "." + b64(strings.Repeat("s", 64)), Verdict: approval.VerdictApprove}
		}},
		{"token with other unused bits in its signature", approval.ErrTokenMalformed, "", func(s setup) (string, approval.Decision) {
			// A signature's last base64 character carries 4 unused bits;
			// flipping one spells the same signature another way.
			tok := s.f.Token(s.id, "bob", approval.VerdictApprove)
			const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
			last := strings.IndexByte(alphabet, tok[len(tok)-1])
			respelled := tok[:len(tok)-1] + alphabet[last^1:last^1+1]
			_, err := s.f.gate.VerifyToken(respelled)
			require.ErrorIs(t, err, approval.ErrTokenMalformed, "VerifyToken refuses it too")
			return s.id, approval.Decision{Token: respelled, Verdict: approval.VerdictApprove}
		}},
		{"token issued in the future", approval.ErrTokenMalformed, "bob", func(s setup) (string, approval.Decision) {
			tok := s.f.Token(s.id, "bob", approval.VerdictApprove)
			s.f.clock.Advance(-5 * time.Minute)
			return s.id, approval.Decision{Token: tok, Verdict: approval.VerdictApprove}
		}},
		{"forged token with invalid UTF-8", approval.ErrTokenMalformed, "", func(s setup) (string, approval.Decision) {
			tok := s.f.Token(s.id, "bob", approval.VerdictApprove)
			return s.id, approval.Decision{Token: tamper(t, tok, `"sub":"bob"`, "\"sub\":\"b\xffb\x00\""), Verdict: approval.VerdictApprove}
		}},
		{"no verdict", approval.ErrInvalidDecision, "", func(s setup) (string, approval.Decision) {
			return s.id, approval.Decision{Token: s.f.Token(s.id, "bob", approval.VerdictApprove)}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			id := f.Pending(transfer(5000))
			f.aliceToken = f.Token(id, "alice", approval.VerdictApprove)
			_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.aliceToken, Verdict: approval.VerdictApprove})
			require.NoError(t, err)

			target, d := tc.run(setup{f: f, id: id})
			before, _ := f.gate.Get(f.ctx, target)
			trail := len(f.events())

			r, err := f.gate.Decide(f.ctx, target, d)
			require.Error(t, err)
			require.Nil(t, r)
			require.ErrorIs(t, err, tc.want)
			require.True(t, strings.HasPrefix(err.Error(), "approval: decide "+target+": "), err.Error())

			after, _ := f.gate.Get(f.ctx, target)
			require.Equal(t, before, after, "a rejected decision must not change the request")

			evs := f.events()
			require.Len(t, evs, trail+1, "exactly one security event is appended")
			ev := evs[len(evs)-1]
			require.Equal(t, approval.EventDecisionRejected, ev.Type)
			require.Equal(t, target, ev.RequestID)
			require.Equal(t, tc.actor, ev.Actor)
			require.Contains(t, ev.Reason, tc.want.Error())
		})
	}
}

// TestDecideConcurrentApprovers races 64 eligible approvers on a request
// that needs 2: exactly two votes count, the rest are told it is no longer
// pending, and every refusal is audited.
func TestDecideConcurrentApprovers(t *testing.T) {
	t.Parallel()
	members := make([]string, 64)
	for i := range members {
		members[i] = "approver-" + string(rune('A'+i/26)) + string(rune('a'+i%26))
	}
	f := newFixture(t, func(c *approval.Config) {
		c.Directory = approval.StaticDirectory{Groups: map[string][]string{"finance": members}}
	})
	id := f.Pending(transfer(5000))
	toks := make([]string, len(members))
	for i, m := range members {
		toks[i] = f.Token(id, m, approval.VerdictApprove)
	}
	var (
		wg         sync.WaitGroup
		ok, closed atomic.Int32
		start      = make(chan struct{})
	)
	for i := range members {
		wg.Go(func() {
			<-start
			_, err := f.gate.Decide(context.Background(), id, approval.Decision{Token: toks[i], Verdict: approval.VerdictApprove})
			switch {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, approval.ErrNotPending):
				closed.Add(1)
			default:
				t.Errorf("unexpected error: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	require.EqualValues(t, 2, ok.Load())
	require.EqualValues(t, 62, closed.Load())
	r := f.Get(id)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Len(t, r.Votes, 2)
	require.NotEqual(t, r.Votes[0].Approver, r.Votes[1].Approver)

	counts := map[approval.EventType]int{}
	for _, e := range f.events() {
		counts[e.Type]++
	}
	require.Equal(t, 2, counts[approval.EventDecisionApprove])
	require.Equal(t, 1, counts[approval.EventRequestApproved])
	require.Equal(t, 62, counts[approval.EventDecisionRejected])
}

func TestDecideEveryMatchedPolicyNeedsItsQuorum(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("prod", approval.Policy{
		Match:             approval.TagAny("production"),
		Approvers:         []approval.Approver{approval.Role("sre"), approval.User("alice")},
		RequiredApprovals: 1,
	}))
	a := transfer(5000)
	a.Tags = []string{"production"}
	id := f.Pending(a)
	require.Equal(t, []string{"high_spend", "prod"}, f.Get(id).PolicyNames())

	_, err := f.Decide(id, "bob", approval.VerdictApprove) // finance only
	require.NoError(t, err)
	r, err := f.Decide(id, "carol", approval.VerdictApprove) // finance quorum met, prod not
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, r.Status)
	r, err = f.Decide(id, "sam", approval.VerdictApprove) // sre: prod
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
}

func TestDecideOneApproverCountsForEachPolicy(t *testing.T) {
	t.Parallel()
	setup := func(distinct bool) (*fixture, string) {
		f := newFixture(t, func(c *approval.Config) { c.DistinctApproversAcrossPolicies = distinct })
		require.NoError(t, f.gate.SetPolicy("prod", approval.Policy{
			Match:             approval.TagAny("production"),
			Approvers:         []approval.Approver{approval.Group("finance")},
			RequiredApprovals: 1,
		}))
		a := transfer(5000)
		a.Tags = []string{"production"}
		return f, f.Pending(a)
	}

	f, id := setup(false)
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	r, err := f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status, "alice and bob count for both policies")

	f, id = setup(true)
	_, err = f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	r, err = f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusPending, r.Status, "three seats need three distinct people")
	r, err = f.Decide(id, "carol", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
}

func TestDecidePolicySnapshotIsKept(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	id := f.Pending(transfer(5000))
	hash := f.Get(id).Policies[0].Hash
	// Tighten the live policy: the open request keeps its snapshot.
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.User("erin"), approval.User("frank"), approval.User("gina")},
		RequiredApprovals: 3,
	}))
	newHash, ok := f.gate.PolicyHash("high_spend")
	require.True(t, ok)
	require.NotEqual(t, hash, newHash)

	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.NoError(t, err)
	r, err := f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, hash, r.Policies[0].Hash)
}

func TestDecideAllowSelfApproval(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 1,
		AllowSelfApproval: true,
	}))
	a := transfer(5000)
	a.RequestedBy = "carol"
	id := f.Pending(a)
	r, err := f.Decide(id, "carol", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, r.Status)
}

type failingDirectory struct{}

func (failingDirectory) IsMember(context.Context, approval.Approver, string) (bool, error) {
	return false, errors.New("ldap unreachable")
}

func (failingDirectory) Members(context.Context, approval.Approver) ([]string, error) {
	return nil, errors.New("ldap unreachable")
}

func TestDecideDirectoryFailureFailsClosed(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(c *approval.Config) { c.Directory = failingDirectory{} })
	id := f.Pending(transfer(5000))
	_, err := f.Decide(id, "alice", approval.VerdictApprove)
	require.ErrorContains(t, err, "ldap unreachable")
	require.Empty(t, f.Get(id).Votes)
	require.Equal(t, approval.StatusPending, f.Get(id).Status)
}
