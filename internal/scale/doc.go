// Package scale builds stores that hold many requests, for the benchmarks
// that measure how the gate's costs grow with what it has stored
// (BenchmarkScale in this package, run with APPROVAL_SCALE=1) and for any
// other benchmark that needs a large store (an inbox page over 100,000 open
// requests, the audit verification's events per second): Build makes one,
// on memstore, SQLite or PostgreSQL, from a Spec.
//
// # How the requests are made
//
// Going through the gate would take minutes per million requests, so the
// requests are synthetic, but every byte of them was shaped by the gate.
// Each Kind of request (consumed, denied, timed out, pending...) is first
// lived once through a real Gate over memstore, with the Policy and
// Directory of this package and a test clock: the Guard, the decisions,
// the Tick or Cancel that end it. Its writes (every version of the request,
// its audit events and the token IDs its decisions used) are recorded.
// Each synthetic request copies the writes of its kind with a request ID of
// its own creation time (time-ordered, as the gate's are), an action of its
// own (its run ID, requester, payload and, for the keyed kind, idempotency
// key; the hashes computed as the gate computes them), fresh token IDs, and
// every time moved by the same amount.
//
// The requests that ended were created 30 seconds apart, up to four days
// before the store was built; the live ones (pending, and approved but not
// yet used) during its last twelve hours, so that none is due within
// twelve hours of the build: an idle Tick stays idle. The writes of every request are then
// merged in time order and their audit events sealed into one chain, as
// the gate would have appended them, so the trail verifies
// (approval.VerifyAuditTrail) and its times only grow.
//
// memstore replays the writes through Create and Update. The SQL stores get
// them in bulk, bypassing sqlstore: each request's last version, its policy
// and approver rows and its used token IDs as it is created, and the audit
// events as they happen, in transactions of a few thousand requests, into
// the tables of the schema version the loader knows (it refuses any
// other). PostgreSQL's tables are then vacuumed and analyzed, as a
// long-lived database's are, and checkpointed (an empty store is left
// never analyzed, as a new database is); SQLite's are not analyzed, as
// sqlstore never does, and the file is synced before the store opens it,
// so that no measurement waits for the load's writes to reach the disk.
package scale
