// Package sqlstore is an approval.Store over database/sql, on SQLite (the
// embedded default: a file path is all it needs) or PostgreSQL (for several
// service replicas sharing one gate).
//
//	store, err := sqlstore.Open(ctx, "approval.db")                          // SQLite
//	store, err := sqlstore.Open(ctx, "postgres://app@db.internal/approval") // PostgreSQL
//	defer store.Close()
//	gate, err := approval.New(approval.Config{Store: store, ...})
//
// # Schema
//
// Open (or Migrate, after OpenDB) creates and upgrades the schema from
// versioned SQL files embedded in the package, one set per dialect,
// recording the version in the schema_version table. Several processes may
// start at once: migrations are serialised by the database.
//
// A request is one row of the requests table whose body column holds the
// JSON of the whole approval.Request; the other columns, and the
// request_policies and request_approvers tables, exist to filter, sort and
// enforce. Times are kept in UTC at microsecond precision (INTEGER Unix
// microseconds in SQLite, timestamptz in PostgreSQL), so a request or event
// read back equals the one written when its times were already normalised
// (as the gate's are); a Store normalises the copies it writes.
//
// # Concurrency
//
// Every write (Create, Update, AppendAudit) is one transaction: the
// request, the consumed token and the audit events commit together or not
// at all. The database enforces the invariants, so stores in different
// processes on one database behave as one:
//
//   - at most one live request per ActionHash (a partial unique index), so
//     concurrent Creates of one action create one request;
//   - Update is compare-and-set on the version, read under a row lock;
//   - each token ID is recorded once (a primary key), so a replay fails
//     with approval.ErrTokenUsed however it races;
//   - the audit trail is one gapless hash chain: each append reads the last
//     event while holding the chain's lock until it commits (SQLite's
//     write lock; in PostgreSQL a transaction-level advisory lock taken by
//     the audit_tail function), the primary key on seq refuses a second
//     event with the same number, and triggers reject UPDATE and DELETE on
//     audit_events.
//
// SQLite serialises writers with immediate transactions; a Store sends its
// own process's writes through one connection and serves reads from a
// separate pool, which WAL lets read during a write. A write that waits for
// another process longer than BusyTimeout fails with an error wrapping
// ErrBusy. PostgreSQL runs at READ COMMITTED with row locks; transactions
// that fail with a deadlock or serialization failure are retried.
//
// # Performance
//
// A write costs what its transaction touches. In SQLite each b-tree a
// write changes costs a page written to the WAL and, later, to the
// database file: a Create writes about 12 (the request's table, its ID
// and 5 indexes, a policy row, the event's table and 3 indexes), a
// decision about 8, against 1 for a bare single-row update. A Store made
// by Open prepares each statement once per connection, updates only the
// indexed columns that change, and copies the WAL into the database file
// (checkpoints) on a connection of its own rather than inside a commit,
// where SQLite's automatic checkpoint would stall every writer. In
// PostgreSQL a
// write is bound by round trips and the commit's WAL flush: a Store sends
// BEGIN with a transaction's first statement and COMMIT with its last
// (pgx batches), and writes a request and its side tables in one
// statement, so a Create takes two round trips and a decision three.
// Appends to the chain are serialised across all writers until each
// commits, so concurrent writers of one database do not share a WAL flush
// as independent transactions would.
//
// # Errors
//
// Get and Update report approval.ErrNotFound for an unknown ID, Create and
// Update approval.ErrConflict when they lose a race or an ID is taken, and
// Update approval.ErrTokenUsed for a replayed token, each wrapped with the
// operation and ID ("sqlstore: get req_...: not found"). A cancelled
// context's error is returned as such.
package sqlstore
