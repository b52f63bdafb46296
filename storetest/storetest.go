// Package storetest checks an approval.Store against the contract written
// on the Store interface. A store author proves an implementation in one
// line:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) approval.Store { return mystore.New(t) })
//	}
//
// Each behaviour is one subtest, named by a short phrase, with a comment
// saying what a store should do; run one with go test -run
// 'TestConformance/create_then_get'.
package storetest

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/fixture"
)

// Run runs the conformance suite against the stores newStore returns.
//
// Every subtest calls newStore for its own store, which must be empty (no
// requests, no audit events, no used tokens) and not shared with any other
// call; newStore registers its own cleanup with t.Cleanup. Subtests run in
// parallel, so newStore must be safe to call concurrently.
func Run(t *testing.T, newStore func(t *testing.T) approval.Store) {
	t.Helper()
	runRequestTests(t, newStore)
	runUpdateTests(t, newStore)
	runListTests(t, newStore)
	runAuditTests(t, newStore)
	runContextTests(t, newStore)
	runOutboxTests(t, newStore)
	runDelegationTests(t, newStore)
	runIdempotencyTests(t, newStore)
	runInboxTests(t, newStore)
	runAuditStreamTests(t, newStore)
	runStatsTests(t, newStore)
	runPasskeyTests(t, newStore)
	runAskLimitTests(t, newStore)
	pair := func(t *testing.T) (approval.Store, approval.Store) {
		s := newStore(t)
		return s, s
	}
	runGateTests(t, pair)
	runInboxGateTests(t, pair)
	runAskLimitGateTests(t, pair)
}

// oddText are strings no caller should rely on a store holding: one not
// valid UTF-8 and one with a NUL byte. Looking up or filtering by them must
// find nothing rather than fail.
var oddText = []string{"req_\xff\xfe", "req_\x00"}

// farPast and farFuture are time bounds beyond any store's time columns:
// as open ends of a range they must select everything, not overflow.
var (
	farPast   = time.Unix(-1<<62, 0)
	farFuture = time.Unix(1<<62, 0)
)

// newID returns a request ID shaped like the gate's: "req_" and 32 random hex
// digits. Random IDs do not sort in creation order, which catches stores
// that list in insertion order instead of ID order.
func newID() string { return "req_" + randomHex() }

// The fixtures the suite shares with sqlstore's own tests.
var (
	// randomHex returns 32 random hex digits.
	randomHex = fixture.RandomHex
	// now returns the current time as stores keep it: UTC, microseconds.
	now = fixture.Now
	// newRequest returns a valid pending request with a fresh ID and
	// ActionHash.
	newRequest = fixture.NewRequest
)

// fullRequest returns a request with every field set, for round trips.
func fullRequest() *approval.Request {
	r := newRequest()
	at := r.CreatedAt
	r.Status = approval.StatusEscalated
	r.Action = approval.Action{
		Name:        "deploy:production",
		RequestedBy: "agent-7",
		Initiator:   "dana",
		Cost:        &approval.Cost{Amount: 1234.5, Currency: "USD"},
		Risk:        approval.RiskHigh,
		Tags:        []string{"production", "customer-data"},
		Metadata:    map[string]string{"ticket": "OPS-42", "region": "eu-west-1"},
		Message:     "Roll out v2.3.1 — ünïcode and \"quotes\"",
		RunID:       "run-1",
		StepID:      "step-3",
		Constraints: []string{"max 3 retries", "read-only replica"},
		Payload:     []byte(`{"tool":"deploy","args":{"version":"2.3.1"}}`),
		Provenance: &approval.Provenance{
			Source: "sdk", CreatedBy: "agent-7", SourceID: "call-9", CreatedFrom: "conv-12",
		},
		IdempotencyKey: "deploy-" + randomHex(),
		Diff: []approval.FileDiff{{
			Path:    "deploy/prod.yaml",
			OldPath: "deploy/prod.yml",
			Hunks: []approval.Hunk{{
				OldStart: 1, OldLines: 2, NewStart: 1, NewLines: 3,
				Body: "-image: v2.3.0\n+image: v2.3.1\n+replicas: 3\n",
			}},
		}},
	}
	r.PayloadHash = randomHex() + randomHex()
	r.Policies = append(r.Policies, approval.MatchedPolicy{
		Name:              "prod_deploys",
		Hash:              randomHex() + randomHex(),
		Approvers:         []approval.Approver{approval.User("carol"), approval.Role("sre")},
		RequiredApprovals: 1,
		Escalation: []approval.EscalationStep{
			{After: 4 * time.Hour, Action: approval.StepEscalate, To: []approval.Approver{approval.Group("sre-leads")}, Channels: []string{"slack"}, Reason: "SLA"},
			{Before: time.Hour, Action: approval.StepAutoDeny},
		},
		ReminderInterval: time.Hour,
		Redact:           []string{"iban", "api_key"},
		MatchError:       "custom matcher: boom",
		RequirePasskey:   true,
		Limit:            &approval.AskLimit{MaxOpen: 3, Rate: 10, Per: 90 * time.Minute, Burst: 4},
		Urgent:           true,

		RecommendationApprovesBelow: approval.RiskHigh,
		RecommendationMinConfidence: 0.8,
		Progress:                    approval.LevelProgress{Since: at, Steps: 1, Added: []approval.Approver{approval.Group("sre-leads")}, Widened: true},
	}, approval.MatchedPolicy{
		Name: "release_train",
		Hash: randomHex() + randomHex(),
		Chain: []approval.Level{
			{Name: "Team Lead Review", Approvers: []approval.Approver{approval.Role("team_lead")}, Timeout: 24 * time.Hour,
				Escalation: []approval.EscalationStep{{After: 4 * time.Hour, Action: approval.StepReminder},
					{Before: 2 * time.Hour, Action: approval.StepNotify, To: []approval.Approver{approval.Role("director")},
						Channels: []string{"email", "slack"}, Reason: "SLA breach"}}},
			{Name: "Stakeholders", Logic: approval.LogicOr, Groups: []approval.ParallelGroup{
				{Name: "engineering", Approvers: []approval.Approver{approval.Role("tech_lead")}, Require: approval.Threshold(2)},
				{Name: "product", Approvers: []approval.Approver{approval.Group("pm")}, Require: approval.RequireAll},
			}},
			{Name: "Security Review", Approvers: []approval.Approver{approval.User("sec")}, Require: approval.RequireAll},
		},
		Skipped: []int{2},
		Progress: approval.LevelProgress{Level: 1, Since: at.Add(time.Minute), Steps: 0,
			Members: [][]string{nil, {"pat", "quinn"}}, Assigned: []approval.Approver{approval.User("dana")}, Reassigned: true,
			People: []string{"dana", "pat", "quinn"}},
	})
	r.Votes = []approval.Vote{{
		Approver:   "bob",
		OnBehalfOf: "dave",
		Verdict:    approval.VerdictApprove,
		Reason:     "looks fine",
		Conditions: []string{"max_lines_changed <= 200", "window <= 30m"},
		BreakGlass: true,
		Denial:     &approval.Denial{Code: "too-broad", Retry: approval.RetryLater, Hint: "only staging", RetryAt: at.Add(3 * time.Hour)},
		Reuse:      &approval.Reuse{For: 30 * time.Minute, Uses: 5},
		TokenID:    "tok_" + randomHex(),
		Policies:   []string{"high_spend", "prod_deploys", "release_train"},
		Counts: []approval.VoteCount{{Policy: "high_spend"}, {Policy: "prod_deploys"},
			{Policy: "release_train", Level: 1, Groups: []int{0, 1}}},
		At: at.Add(time.Minute),
		Passkey: &approval.PasskeyProof{
			PasskeyAssertion: approval.PasskeyAssertion{CredentialID: "Y3JlZGVudGlhbA", AuthenticatorData: []byte("authenticator data"),
				ClientDataJSON: []byte(`{"type":"webauthn.get"}`), Signature: []byte("signature")},
			Algorithm: approval.PasskeyES256, PublicKey: []byte("public key"), RPID: "ops.example.com",
		},
	}}
	r.Recommendations = []approval.Recommendation{{By: "risk-reviewer", Verdict: approval.VerdictApprove, Summary: "low blast radius",
		Confidence: 0.87, Context: map[string]string{"ci": "https://ci.example.com/7"}, At: at.Add(30 * time.Second)}}
	r.Action.Recommendation = &approval.Recommendation{By: "agent-7", Verdict: approval.VerdictDeny, Summary: "touches billing", Confidence: 0.25,
		Context: map[string]string{"diff": "3 files"}, At: at}
	r.Edit = &approval.PayloadEdit{Payload: []byte(`{"amount":1}`), PayloadHash: strings.Repeat("c", 64),
		ActionHash: strings.Repeat("d", 64), By: "bob", At: at.Add(time.Minute)}
	r.DistinctApprovers = true
	r.DenyThreshold = 2
	r.OnTimeout = approval.TimeoutApprove
	r.ApprovalTTL = 90 * time.Minute
	r.MaxReuse = approval.Reuse{For: time.Hour, Uses: 10}
	r.Reuse = approval.Reuse{For: 30 * time.Minute, Uses: 5}
	r.Uses = 2
	r.Reason = "escalated after 4h"
	r.UpdatedAt = at.Add(2 * time.Minute)
	r.Deadline = at.Add(24 * time.Hour)
	r.ExpiresAt = at.Add(25 * time.Hour)
	r.ResolvedAt = at.Add(3 * time.Minute)
	r.DueAt = at.Add(4 * time.Hour)
	r.EscalationLevel = 1
	r.Reminders = 2
	r.HoldUntil = at.Add(3 * time.Hour) // round trip only: the gate sets it as a request ends
	r.Prior = &approval.PriorRun{RequestID: newID(), At: at.Add(-time.Hour)}
	r.Deciders = []string{"dana", "pat", "quinn"}
	r.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	return r
}

// event returns an unsealed audit event for request id.
func event(id string, typ approval.EventType, actor string) approval.AuditEvent {
	return approval.AuditEvent{
		RequestID: id,
		Type:      typ,
		Actor:     actor,
		Policies:  []approval.PolicyRef{{Name: "high_spend", Hash: "h1"}},
		At:        time.Now(), // not normalised: Seal must do it
	}
}

// create stores req, requires a new request, and returns req.
func create(t *testing.T, s approval.Store, req *approval.Request, events ...approval.AuditEvent) *approval.Request {
	t.Helper()
	_, created, err := s.Create(t.Context(), req, events)
	require.NoError(t, err)
	require.True(t, created, "Create of %s found a live request for its ActionHash", req.ID)
	return req
}

// get returns the stored request id.
func get(t *testing.T, s approval.Store, id string) *approval.Request {
	t.Helper()
	r, err := s.Get(t.Context(), id)
	require.NoError(t, err)
	return r
}

// update moves the stored request to the state change makes on a copy of
// it, as the next version, and returns the new state.
func update(t *testing.T, s approval.Store, id string, change func(r *approval.Request), events ...approval.AuditEvent) *approval.Request {
	t.Helper()
	r := get(t, s, id)
	change(r)
	r.Version++
	require.NoError(t, s.Update(t.Context(), approval.Update{Request: r, Events: events}))
	return r
}

// listAll follows cursors through every page of q and returns the requests.
func listAll(t *testing.T, s approval.Store, q approval.RequestQuery) []*approval.Request {
	t.Helper()
	var all []*approval.Request
	for range 10_000 {
		page, err := s.List(t.Context(), q)
		require.NoError(t, err)
		all = append(all, page.Requests...)
		if page.Next == "" {
			return all
		}
		require.NotEmpty(t, page.Requests, "List returned an empty page with a next cursor")
		q.Cursor = page.Next
	}
	t.Fatal("List cursors did not end")
	return nil
}

// ids returns the IDs of rs, in order.
func ids(rs []*approval.Request) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// sorted returns the IDs of rs in ascending order.
func sorted(rs ...*approval.Request) []string {
	out := ids(rs)
	slices.Sort(out)
	return out
}

// trail returns every audit event matching q, following cursors.
func trail(t *testing.T, s approval.Store, q approval.AuditQuery) []approval.AuditEvent {
	t.Helper()
	var all []approval.AuditEvent
	for range 10_000 {
		page, err := s.ListAudit(t.Context(), q)
		require.NoError(t, err)
		all = append(all, page.Events...)
		if page.Next == "" {
			return all
		}
		require.NotEmpty(t, page.Events, "ListAudit returned an empty page with a next cursor")
		q.Cursor = page.Next
	}
	t.Fatal("ListAudit cursors did not end")
	return nil
}

// fullTrail returns the whole audit trail and requires it to verify from
// sequence number 1.
func fullTrail(t *testing.T, s approval.Store) []approval.AuditEvent {
	t.Helper()
	all := trail(t, s, approval.AuditQuery{})
	if len(all) > 0 {
		require.Equal(t, int64(1), all[0].Seq, "the trail must start at seq 1")
	}
	require.NoError(t, approval.VerifyAuditChain(all))
	return all
}
