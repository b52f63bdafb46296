package approval_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

func TestCanonicalID(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ in, want string }{
		{"bob", "bob"},
		{"Bob", "bob"},
		{"BOB@Example.COM", "bob@example.com"},
		{"\uff42\uff4f\uff42", "bob"},                // fullwidth
		{"Jose\u0301", "jos\u00e9"},                  // NFD to NFC
		{"JOS\u00c9", "jos\u00e9"},                   // upper-case composed
		{"Stra\u00dfe", "strasse"},                   // full case folding
		{"\u212bngstr\u00f6m", "\u00e5ngstr\u00f6m"}, // the Angstrom sign is Å
		{"user-1", "user-1"},
	} {
		got, err := approval.CanonicalID(tt.in)
		require.NoError(t, err, "%q", tt.in)
		require.Equal(t, tt.want, got, "%q", tt.in)
	}
	for _, in := range []string{
		"", "bob ", " bob", "b ob", "bob\t", "bob\n", "bob\x00", "bob\x7f",
		"bob\u200b", "bob\u00a0", "\u2028bob", "bo\xffb", "bob\u0085", "\ufeffbob",
		strings.Repeat("b", approval.MaxIDBytes+1),
	} {
		_, err := approval.CanonicalID(in)
		require.ErrorIs(t, err, approval.ErrInvalidIdentity, "%q", in)
		require.Less(t, len(err.Error()), 200, "the error echoes a bounded part")
	}
	_, err := approval.CanonicalID(strings.Repeat("b", approval.MaxIDBytes))
	require.NoError(t, err)
}

// TestCurrencySpellings: a cost policy cannot be slipped past by spelling
// the currency another way; what is not a currency code is refused.
func TestCurrencySpellings(t *testing.T) {
	t.Parallel()
	f := newFixture(t) // high_spend: CostAtLeast(1000, "USD")
	for _, cur := range []string{"USD", "usd", "Usd"} {
		a := transfer(5000)
		a.Cost.Currency = cur
		res, err := f.gate.Guard(f.ctx, a)
		require.NoError(t, err, cur)
		require.Equal(t, approval.OutcomePending, res.Status, "%q is USD", cur)
		require.Equal(t, []string{"high_spend"}, f.Get(res.RequestID).PolicyNames())
		require.Equal(t, "USD", f.Get(res.RequestID).Action.Cost.Currency, "stored canonical")
		require.Equal(t, cur, a.Cost.Currency, "the caller's action is not modified")
	}
	ids := map[string]bool{}
	for _, cur := range []string{"USD", "usd"} {
		a := transfer(5000)
		a.Cost.Currency = cur
		res, err := f.gate.Guard(f.ctx, a)
		require.NoError(t, err)
		ids[res.RequestID] = true
	}
	require.Len(t, ids, 1, "two spellings of one action are one request")

	for _, cur := range []string{"", " USD", "USD ", "dollars", "US", "U$D", "ＵＳＤ", "\x00SD"} {
		a := transfer(5000)
		a.Cost.Currency = cur
		_, err := f.gate.Guard(f.ctx, a)
		require.ErrorIs(t, err, approval.ErrInvalidAction, "%q", cur)
	}

	// A policy's currency is folded the same way, and a bad one refused.
	require.NoError(t, f.gate.SetPolicy("eur", approval.Policy{
		Match: approval.CostAtLeast(10, "eur"), Approvers: []approval.Approver{approval.User("erin")}, RequiredApprovals: 1,
	}))
	a := transfer(50)
	a.Cost.Currency = "EUR"
	res, err := f.gate.Guard(f.ctx, a)
	require.NoError(t, err)
	require.Equal(t, approval.OutcomePending, res.Status)
	for _, m := range []approval.Matcher{approval.CostAtLeast(1, "euro"), approval.CostBelow(1, "e"), approval.CostAtLeast(1, " EUR")} {
		err := f.gate.SetPolicy("bad", approval.Policy{Match: m, Approvers: []approval.Approver{approval.User("erin")}, RequiredApprovals: 1})
		require.ErrorIs(t, err, approval.ErrInvalidPolicy)
	}
}

// TestTagAndNameSpellings: tags match whatever their case or width; names
// match whatever their case; white space and look-alikes are refused
// rather than let slip past a glob.
func TestTagAndNameSpellings(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("prod", approval.Policy{
		Match:     approval.Any(approval.TagAny("Prod"), approval.Name("Deploy:Prod*")),
		Approvers: []approval.Approver{approval.User("sam")}, RequiredApprovals: 1,
	}))
	guard := func(name string, tags ...string) (approval.Result, error) {
		return f.gate.Guard(f.ctx, approval.Action{Name: name, RequestedBy: "dev", Tags: tags})
	}
	for _, tags := range [][]string{{"prod"}, {"PROD"}, {"Prod"}, {"\uff50\uff52\uff4f\uff44"}} {
		res, err := guard("run", tags...)
		require.NoError(t, err, "%q", tags)
		require.Equal(t, approval.OutcomePending, res.Status, "%q", tags)
	}
	for _, name := range []string{"deploy:prod", "DEPLOY:PROD", "Deploy:Production"} {
		res, err := guard(name)
		require.NoError(t, err, name)
		require.Equal(t, approval.OutcomePending, res.Status, name)
	}
	for _, tags := range [][]string{{"prod "}, {" prod"}, {"pr od"}, {"prod\u200b"}, {""}} {
		_, err := guard("run", tags...)
		require.ErrorIs(t, err, approval.ErrInvalidAction, "%q", tags)
	}
	// A Cyrillic о, a trailing space, a zero-width space, a fullwidth
	// colon: none reaches the glob.
	for _, name := range []string{"deploy:pr\u043ed", "deploy:prod ", " deploy:prod", "deploy:\u200bprod", "deploy\uff1aprod"} {
		_, err := guard(name)
		require.ErrorIs(t, err, approval.ErrInvalidAction, "%q", name)
	}
	res, err := guard("deploy:staging", "staging")
	require.NoError(t, err)
	require.Equal(t, approval.OutcomeApproved, res.Status, "control: nothing matched")

	for _, m := range []approval.Matcher{approval.Name("deploy: prod"), approval.Name("déploy"), approval.TagAny("a b"), approval.TagAll("")} {
		err := f.gate.SetPolicy("bad", approval.Policy{Match: m, Approvers: []approval.Approver{approval.User("sam")}, RequiredApprovals: 1})
		require.ErrorIs(t, err, approval.ErrInvalidPolicy, "%v", m)
	}
}

// caseInsensitiveDirectory matches member names as LDAP does, without
// regard to case, and returns them as they were entered.
type caseInsensitiveDirectory map[string][]string

func (d caseInsensitiveDirectory) IsMember(_ context.Context, a approval.Approver, user string) (bool, error) {
	for _, m := range d[a.Name] {
		if strings.EqualFold(m, user) {
			return true, nil
		}
	}
	return false, nil
}

func (d caseInsensitiveDirectory) Members(_ context.Context, a approval.Approver) ([]string, error) {
	return d[a.Name], nil
}

// TestIdentityVariants: one person under several spellings cannot vote
// twice nor approve their own request, with a directory that matches names
// loosely and with named users.
func TestIdentityVariants(t *testing.T) {
	t.Parallel()
	dir := caseInsensitiveDirectory{"finance": {"Alice", "bob", "CAROL"}}
	rec := &recorder{}
	f := newFixture(t, func(c *approval.Config) {
		c.Directory = dir
		c.Channels = []approval.Channel{rec}
		c.BaseURL = "https://approvals.example.com"
	})
	a := transfer(5000)
	a.RequestedBy = "alice"
	id := f.Pending(a)

	for _, who := range []string{"Alice", "ALICE", "\uff41lice", "alice"} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.ErrorIs(t, err, approval.ErrSelfApproval, who)
	}
	_, err := f.Decide(id, "bob", approval.VerdictApprove)
	require.NoError(t, err)
	for _, who := range []string{"Bob", "BOB", "\uff42\uff4f\uff42", "bo\u0062"} {
		_, err := f.Decide(id, who, approval.VerdictApprove)
		require.ErrorIs(t, err, approval.ErrAlreadyDecided, who)
	}
	r := f.Get(id)
	require.Equal(t, approval.StatusPending, r.Status, "bob and Bob are one approver of two needed")
	require.Len(t, r.Votes, 1)

	// Tokens that are not identities are refused where they are made.
	for _, who := range []string{"bob ", "", "b\u200bob", strings.Repeat("b", 300)} {
		_, err := f.gate.IssueToken(id, who, approval.VerdictApprove, time.Hour)
		require.ErrorIs(t, err, approval.ErrInvalidDecision, "%q", who)
		require.ErrorIs(t, err, approval.ErrInvalidIdentity, "%q", who)
	}

	_, err = f.Decide(id, "Carol", approval.VerdictApprove)
	require.NoError(t, err)
	r = f.Get(id)
	require.Equal(t, approval.StatusApproved, r.Status)
	require.Equal(t, "carol", r.Votes[1].Approver, "votes are recorded canonically")

	// The requester, whatever the directory's spelling, was never asked.
	require.NoError(t, f.gate.Close(f.ctx))
	for _, n := range rec.sent() {
		if n.Type == approval.NotifyRequested {
			require.NotEqual(t, "alice", n.Recipient)
			require.Contains(t, []string{"bob", "carol"}, n.Recipient, "recipients are canonical")
		}
	}

	// Named users: two spellings are one user, so a policy cannot count
	// them as two.
	err = f.gate.SetPolicy("two", approval.Policy{
		Match:     approval.Name("x"),
		Approvers: []approval.Approver{approval.User("dave"), approval.User("Dave")}, RequiredApprovals: 2,
	})
	require.ErrorIs(t, err, approval.ErrInvalidPolicy)
	err = f.gate.SetPolicy("bad-user", approval.Policy{
		Match: approval.Name("x"), Approvers: []approval.Approver{approval.User("dave ")}, RequiredApprovals: 1,
	})
	require.ErrorIs(t, err, approval.ErrInvalidPolicy)
}

// TestNamedUserSpellings: a User approver written in any spelling admits
// that person, once, and the requester's other spelling is segregated.
func TestNamedUserSpellings(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	require.NoError(t, f.gate.SetPolicy("ops", approval.Policy{
		Match:             approval.Name("restart"),
		Approvers:         []approval.Approver{approval.User("Olga"), approval.User("PETE"), approval.User("quinn")},
		RequiredApprovals: 2,
	}))
	id := f.Pending(approval.Action{Name: "restart", RequestedBy: "Quinn"})
	_, err := f.Decide(id, "QUINN", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrSelfApproval)
	_, err = f.Decide(id, "olga", approval.VerdictApprove)
	require.NoError(t, err)
	_, err = f.Decide(id, "OLGA", approval.VerdictApprove)
	require.ErrorIs(t, err, approval.ErrAlreadyDecided)
	_, err = f.Decide(id, "Pete", approval.VerdictApprove)
	require.NoError(t, err)
	require.Equal(t, approval.StatusApproved, f.Get(id).Status)
}

// TestEchoedInputIsBounded: an ID or actor of any size is refused with an
// error that repeats a bounded part of it, and nothing is written.
func TestEchoedInputIsBounded(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	huge := "req_" + strings.Repeat("x", 10<<20)
	calls := map[string]func() error{
		"get":    func() error { _, err := f.gate.Get(f.ctx, huge); return err },
		"wait":   func() error { _, err := f.gate.Wait(f.ctx, huge); return err },
		"cancel": func() error { _, err := f.gate.Cancel(f.ctx, huge, "ops", ""); return err },
		"decide": func() error {
			_, err := f.gate.Decide(f.ctx, huge, approval.Decision{Token: "x.y", Verdict: approval.VerdictApprove})
			return err
		},
	}
	for name, call := range calls {
		err := call()
		require.Error(t, err, name)
		require.Less(t, len(err.Error()), 300, name)
	}
	require.ErrorIs(t, calls["get"](), approval.ErrNotFound)
	require.ErrorIs(t, calls["cancel"](), approval.ErrNotFound)
	for _, ev := range f.events() {
		require.Less(t, len(ev.RequestID), 300)
	}

	id := f.Pending(transfer(5000))
	for _, actor := range []string{"", "ops\x00", strings.Repeat("o", 5<<20), "ops team"} {
		_, err := f.gate.Cancel(f.ctx, id, actor, "")
		require.ErrorIs(t, err, approval.ErrInvalidDecision, "%.20q", actor)
		require.Less(t, len(err.Error()), 300)
	}
	_, err := f.gate.Cancel(f.ctx, id, "ops", strings.Repeat("r", 5<<20))
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
	_, err = f.gate.Cancel(f.ctx, id, "ops", "bad\x00reason")
	require.ErrorIs(t, err, approval.ErrInvalidDecision)
	require.Equal(t, approval.StatusPending, f.Get(id).Status, "nothing half-written")
	r, err := f.gate.Cancel(f.ctx, id, "Ops", "done")
	require.NoError(t, err)
	require.Equal(t, "cancelled by ops: done", r.Reason)
	require.True(t, errors.Is(calls["wait"](), approval.ErrNotFound))
}
