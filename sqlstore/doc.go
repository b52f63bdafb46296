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
//   - the audit trail is one gapless hash chain: each append reads and
//     moves the single audit_head row under a lock, and triggers reject
//     UPDATE and DELETE on audit_events.
//
// SQLite serialises writers with immediate transactions; a Store sends its
// own process's writes through one connection and serves reads from a
// separate pool, which WAL lets read during a write. A write that waits for
// another process longer than BusyTimeout fails with an error wrapping
// ErrBusy. PostgreSQL runs at READ COMMITTED with row locks; transactions
// that fail with a deadlock or serialization failure are retried.
//
// # Errors
//
// Get and Update report approval.ErrNotFound for an unknown ID, Create and
// Update approval.ErrConflict when they lose a race or an ID is taken, and
// Update approval.ErrTokenUsed for a replayed token, each wrapped with the
// operation and ID ("sqlstore: get req_...: not found"). A cancelled
// context's error is returned as such.
package sqlstore
