package sqlstore

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/groupcommit"
)

// gateConfigs are the database configurations the gate benchmarks run on.
var gateConfigs = []struct {
	name   string
	newDSN func(testing.TB) string
	opts   []Option
}{
	{"sqlite-normal", sqliteDSN, nil},
	{"sqlite-full", sqliteDSN, []Option{Synchronous(SyncFull)}},
	{"postgres", postgresDSN, nil},
}

// BenchmarkGate measures the gate's two writes end to end over each
// database configuration, beside the raw driver's single-row
// read-modify-write transaction measured in the same run with the same
// pool and durability settings:
//
//   - guard-create: Guard an action a policy matches (3 eligible approvers,
//     2 required), creating a pending request;
//   - decide: one approval of a pending request (which stays pending),
//     token verification included: subtract BenchmarkEd25519Verify for the
//     database's share;
//   - raw-rmw: BEGIN (IMMEDIATE on SQLite); SELECT a row (FOR UPDATE on
//     PostgreSQL); UPDATE it; COMMIT, on a plain table of 64 rows with a
//     200-byte payload, each caller on rows of its own. It is written as a
//     user of database/sql would: statements unprepared (pgx caches its
//     own), one round trip each on PostgreSQL, where the store pipelines;
//   - raw-create and raw-decide: the rows guard-create and decide must
//     write, written by the raw driver the same way in the store's own
//     schema and nothing else (no gate, no encoding, no hashing, no
//     signature, no group commit): what the schema costs at the least, so
//     the part of the gap to raw-rmw that is the schema's is visible (see
//     benchRawCreate).
//
// Each runs with 1 caller and with 8 concurrent callers; ns/op is wall time
// divided by operations, so at 8 callers it is the inverse of throughput.
// The postgres configurations need APPROVAL_POSTGRES_DSN.
//
//	go test -run '^$' -bench 'Gate|Ed25519' -count 3 ./sqlstore
func BenchmarkGate(b *testing.B) {
	ops := []struct {
		name string
		run  func(b *testing.B, s *Store, callers int)
	}{
		{"guard-create", benchGuardCreate},
		{"decide", benchDecide},
		{"raw-rmw", benchRawRMW},
		{"raw-create", benchRawCreate},
		{"raw-decide", benchRawDecide},
	}
	for _, c := range gateConfigs {
		b.Run(c.name, func(b *testing.B) {
			for _, op := range ops {
				b.Run(op.name, func(b *testing.B) {
					for _, callers := range []int{1, 8} {
						b.Run(fmt.Sprintf("callers=%d", callers), func(b *testing.B) {
							op.run(b, open(b, c.newDSN(b), c.opts...), callers)
						})
					}
				})
			}
		})
	}
}

// groupsOf returns the counts of s's group commit (see groupcommit):
// zero with GroupCommit(false).
func groupsOf(s *Store) groupcommit.Stats {
	if s.group == nil {
		return groupcommit.Stats{}
	}
	return s.group.Stats()
}

// reportGroups reports the mean number of writes each of s's transactions
// carried since before, and any transaction of several writes that failed
// as a whole.
func reportGroups(b *testing.B, s *Store, before groupcommit.Stats) {
	now := groupsOf(s)
	if n := now.Transactions - before.Transactions; n > 0 {
		b.ReportMetric(float64(now.Writes-before.Writes)/float64(n), "writes/txn")
	}
	if n := now.Failed - before.Failed; n > 0 {
		b.ReportMetric(float64(n), "failed-groups")
	}
}

// BenchmarkEd25519Verify is the CPU cost inside every Decide that is not
// database work: one signature check of a message the size of a token's.
func BenchmarkEd25519Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := []byte(`{"act":"approve","exp":1772359200,"iat":1772355600,"kid":"AAAAAAAAAAA","rid":"req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b","sub":"approver-1","tid":"AAAAAAAAAAAAAAAAAAAAAA","v":1}`)
	sig := ed25519.Sign(priv, msg)
	b.ReportAllocs()
	for b.Loop() {
		if !ed25519.Verify(pub, msg, sig) {
			b.Fatal("bad signature")
		}
	}
}

// benchGate returns a gate over s with the policy every benchmark action
// matches: three eligible approvers, two approvals required, so one
// approval leaves the request pending.
func benchGate(b *testing.B, s *Store) *approval.Gate {
	b.Helper()
	_, priv, err := approval.GenerateKeys()
	if err != nil {
		b.Fatal(err)
	}
	g, err := approval.New(approval.Config{
		Store:      s,
		SigningKey: priv,
		Directory: approval.StaticDirectory{Groups: map[string][]string{
			"finance": {"approver-1", "approver-2", "approver-3"},
		}},
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = g.Close(context.Background()) })
	err = g.SetPolicy("high_spend", approval.Policy{
		Match:             approval.CostAtLeast(1000, "USD"),
		Approvers:         []approval.Approver{approval.Group("finance")},
		RequiredApprovals: 2,
	})
	if err != nil {
		b.Fatal(err)
	}
	return g
}

// benchActions returns n distinct actions (their RunIDs differ) that the
// policy of benchGate matches.
func benchActions(n int) []approval.Action {
	as := make([]approval.Action, n)
	for i := range as {
		as[i] = approval.Action{
			Name: "wire-transfer", RequestedBy: "user-1",
			Cost:    &approval.Cost{Amount: 5000, Currency: "USD"},
			Tags:    []string{"payments", "eu"},
			Payload: []byte(`{"to":"DE89370400440532013000","amount":5000}`),
			RunID:   fmt.Sprintf("run-%d", i),
		}
	}
	return as
}

// BenchmarkGateCancellable is BenchmarkGate's guard-create and decide
// with 8 callers whose contexts can be cancelled, as a server's request
// contexts can: a group's transaction then runs on a goroutine of its own
// (see groupcommit), where BenchmarkGate's callers, with context.Background(),
// run it on the leader's.
func BenchmarkGateCancellable(b *testing.B) {
	for _, c := range gateConfigs {
		for _, op := range []struct {
			name string
			run  func(ctx context.Context, b *testing.B, s *Store, callers int)
		}{{"guard-create", benchGuardCreateCtx}, {"decide", benchDecideCtx}} {
			b.Run(c.name+"/"+op.name+"/callers=8", func(b *testing.B) {
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				op.run(ctx, b, open(b, c.newDSN(b), c.opts...), 8)
			})
		}
	}
}

// BenchmarkGateWithoutGroupCommit is BenchmarkGate's guard-create and
// decide on Stores made with GroupCommit(false), where every write runs in
// a transaction of its own: what group commit is worth, measured in the
// same run.
func BenchmarkGateWithoutGroupCommit(b *testing.B) {
	for _, c := range gateConfigs {
		for _, op := range []struct {
			name string
			run  func(b *testing.B, s *Store, callers int)
		}{{"guard-create", benchGuardCreate}, {"decide", benchDecide}} {
			for _, callers := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/%s/callers=%d", c.name, op.name, callers), func(b *testing.B) {
					op.run(b, open(b, c.newDSN(b), slices.Concat(c.opts, []Option{GroupCommit(false)})...), callers)
				})
			}
		}
	}
}

func benchGuardCreate(b *testing.B, s *Store, callers int) {
	benchGuardCreateCtx(context.Background(), b, s, callers)
}

func benchGuardCreateCtx(ctx context.Context, b *testing.B, s *Store, callers int) {
	g := benchGate(b, s)
	actions := benchActions(b.N)
	defer reportGroups(b, s, groupsOf(s))
	runBench(b, callers, func(_, i int) error {
		res, err := g.Guard(ctx, actions[i])
		if err == nil && res.Status != approval.OutcomePending {
			err = fmt.Errorf("guard: %s, want pending", res.Status)
		}
		return err
	})
}

func benchDecide(b *testing.B, s *Store, callers int) {
	benchDecideCtx(context.Background(), b, s, callers)
}

func benchDecideCtx(ctx context.Context, b *testing.B, s *Store, callers int) {
	g := benchGate(b, s)
	ids := make([]string, b.N)
	tokens := make([]string, b.N)
	for i, a := range benchActions(b.N) {
		res, err := g.Guard(ctx, a)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = res.RequestID
		if tokens[i], err = g.IssueToken(res.RequestID, "approver-1", approval.VerdictApprove, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	defer reportGroups(b, s, groupsOf(s))
	runBench(b, callers, func(_, i int) error {
		r, err := g.Decide(ctx, ids[i], approval.Decision{Token: tokens[i], Verdict: approval.VerdictApprove})
		if err == nil && (r.Status != approval.StatusPending || len(r.Votes) != 1) {
			err = fmt.Errorf("decide: %s with %d votes, want pending with 1", r.Status, len(r.Votes))
		}
		return err
	})
}

// runBench runs op b.N times in all, from callers goroutines that take the
// next index (0 to b.N-1) in turn, and fails the benchmark on the first
// error.
func runBench(b *testing.B, callers int, op func(caller, i int) error) {
	b.ReportAllocs()
	var (
		next   atomic.Int64
		wg     sync.WaitGroup
		failed atomic.Pointer[error]
	)
	b.ResetTimer()
	for c := range callers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= b.N || failed.Load() != nil {
					return
				}
				if err := op(c, i); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	if err := failed.Load(); err != nil {
		b.Fatal(*err)
	}
}
