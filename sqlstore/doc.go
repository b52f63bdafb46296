// Package sqlstore is an approval.Store over database/sql, on SQLite (the
// embedded default: a file path is all it needs) or PostgreSQL (for several
// service replicas sharing one gate).
//
//	store, err := sqlstore.Open(ctx, "approval.db")                          // SQLite
//	store, err := sqlstore.Open(ctx, "postgres://app@db.internal/approval") // PostgreSQL
//	defer store.Close()
//	gate, err := approval.New(approval.Config{Store: store, ...})
//
// A Store implements approval.Store, and the optional approval.Outbox,
// approval.Delegations, approval.AuditTail, approval.AuditStream,
// approval.ResolutionNotifier, approval.IdempotencyKeys and
// approval.PriorRuns; it passes the storetest conformance suite on both
// databases.
//
// # Opening
//
// Open picks the database from the DSN (see DialectOf). A postgres:// or
// postgresql:// URL, or a libpq key=value string with host= or dbname=, is
// PostgreSQL, for example
// "postgres://user:pass@db.internal:5432/approval?sslmode=verify-full" or
// "postgres:///approval?host=/var/run/postgresql"; a search_path parameter
// selects the schema, which must exist. Anything else is a SQLite database
// file, created if needed ("approval.db", or a file: URI), opened in WAL
// mode with foreign keys on; ":memory:" is a private in-memory database.
// Open makes the Store's connection pools and runs Migrate; Close closes
// them.
//
// OpenDB takes a pool the caller opened and owns instead: PostgreSQL's
// must use pgx's stdlib driver, SQLite's modernc.org/sqlite, with a DSN
// such as SQLiteDSN builds. Call Migrate once before using it.
//
// The options are Synchronous, BusyTimeout and AutoCheckpoint (SQLite),
// MaxConns (the pools Open makes), Listen (PostgreSQL notifications: see
// Waiting) and GroupCommit (see Group commit); each option's documentation
// gives its default. An invalid option fails Open with an error saying how to fix it.
//
// # Durability
//
// A write that returns nil has committed. On SQLite it is as durable as
// the synchronous mode makes a commit: with SyncNormal, the default, a
// power loss or operating-system crash may roll back the last commits
// before it (never corrupt the file); with SyncFull every commit is on
// disk before it returns, at one fsync per commit. A process crash loses
// nothing committed in either mode. On PostgreSQL a commit is as durable
// as the server's synchronous_commit setting makes it.
//
// # Schema
//
// Open (or Migrate, after OpenDB) creates and upgrades the schema from
// versioned SQL files embedded in the package, one set per dialect,
// recording the version in the schema_version table. Several processes may
// start at once: migrations are serialised by the database. A database
// migrated by a newer version of this package is refused, unchanged.
//
// A request is one row of the requests table whose body column holds the
// JSON of the whole approval.Request; the other columns, and the
// request_policies and request_approvers tables, exist to filter, sort and
// enforce. Times are kept in UTC at microsecond precision (INTEGER Unix
// microseconds in SQLite, timestamptz in PostgreSQL), so a request or event
// read back equals the one written when its times were already normalised
// (as the gate's are); a Store normalises the copies it writes. Two things
// JSON does not keep: an empty slice or map comes back nil, and a string
// that is not valid UTF-8 cannot be stored at all, so a write holding one
// fails with ErrInvalidText rather than store it altered (an audit event
// altered so would no longer match its hash). On PostgreSQL a NUL byte in a
// column of its own (an ID, a requester, an event's actor) fails the write
// with ErrInvalidText too: PostgreSQL text holds no NUL.
//
// # Several processes
//
// Every write (Create, Update, AppendAudit and the others) is atomic: the
// request, the consumed token and the audit events commit together or not
// at all. The database enforces the invariants, so stores in different
// processes on one database behave as one:
//
//   - at most one live request per ActionHash (a partial unique index), so
//     concurrent Creates of one action create one request;
//   - Update is compare-and-set on the version, read under a row lock (or,
//     on PostgreSQL, compared by the UPDATE itself, which waits for the
//     row's lock and rechecks it);
//   - each token ID is recorded once (a primary key), so a replay fails
//     with approval.ErrTokenUsed however it races;
//   - the audit trail is one gapless hash chain: each append reads the last
//     event while holding the chain's lock until it commits (SQLite's
//     write lock; in PostgreSQL a transaction-level advisory lock taken by
//     the audit_tail function, first thing in every write transaction, so
//     that all writers lock in one order), the primary key on seq refuses
//     a second event with the same number, and triggers reject UPDATE and
//     DELETE on audit_events.
//
// SQLite serialises writers with immediate transactions; a Store sends its
// own process's writes through one connection and serves reads from a
// separate pool, which WAL lets read during a write. A write that waits for
// another process longer than BusyTimeout fails with an error wrapping
// ErrBusy. PostgreSQL runs at READ COMMITTED with row locks; transactions
// that fail with a deadlock or serialization failure are retried.
//
// # Waiting
//
// A Store implements approval.ResolutionNotifier, so Gate.Wait returns as
// soon as the request is decided rather than at its next poll. An Update
// that moves a request out of the open states (approved, denied, timed out,
// cancelled; not a vote that leaves it pending, nor the consumption or
// expiry of an approval) wakes the Waits subscribed to it through the same
// Store once it has committed. On PostgreSQL it also sends pg_notify on the
// channel approval_resolved:<schema> (the schema the tables are in), in its
// transaction and with its COMMIT; PostgreSQL delivers it on commit only.
// Each Store listens on that channel on one connection of its own, outside
// the pool and made with the settings of the pool's connections, opened at
// the first subscription and kept until Close, and wakes the subscribed
// Waits by request ID: two replicas' Waits see each other's decisions
// within milliseconds. A lost listening connection is reopened with
// exponential backoff (50ms to 10s), a silent one is pinged every 30s, and
// every reconnection wakes all Waits, which read their request again in
// case they missed a notification; meanwhile Wait's poll
// (approval.Config.PollInterval) is the fallback. Listen(false) turns
// listening off (the Store still notifies). On SQLite, only the Store's own
// writes wake its Waits: another process's decision is seen at the next
// poll.
//
// PostgreSQL serialises the commits of transactions that notify,
// server-wide: a Store's writes to one schema are serialised by the audit
// chain's lock anyway, but resolving writes of stores in other schemas or
// databases of the server (or other programs that NOTIFY) queue behind
// each other at commit. Its notification queue is shared by the whole
// server and kept until every listening session has read it: one that
// stops reading (a process paused, another program's session left in a
// long transaction) holds it back, and should it fill (8 GB by default),
// resolving writes fail until it drains.
//
// # Delegations
//
// A Store implements approval.Delegations: each delegation is a row of the
// delegations table (migration 0004), a column per field (the policies in
// scope as a JSON array, NULL for none, so an empty Policies comes back
// nil), kept once revoked or over, since the audit trail names it. Creating
// and revoking a delegation commit the row change and its audit events in
// one transaction, on the one audit chain. A revoke is an UPDATE of a row
// not yet revoked, so of any number of concurrent revokes of one
// delegation, from any number of processes, exactly one wins and appends
// its event; the others fail with approval.ErrConflict and write nothing.
// ListDelegations filters in SQL (From and To by indexes on the person and
// the window's end, ActiveAt by the window and the revocation time) and
// pages by ID in byte order on both dialects.
//
// # Idempotency keys
//
// A Store implements approval.IdempotencyKeys: a request's idempotency key
// is a column of its row (migration 0005), and the partial unique index
// that allows one live request per action hash covers the requests without
// a key, a second one the keys of those with one, so that concurrent
// Creates of one key, from any number of processes, create one request.
// A key's holds, and the request holding a key, are read by an index on
// the key. approval.PriorRuns reads the latest consumed request of an
// action hash by an index on the consumed requests' action hash and time.
//
// # Group commit
//
// A Store runs one write transaction at a time. By default, writes that
// arrive while one runs queue, and the next transaction carries all of
// them (up to 32), each inside a savepoint of its own, so that they share
// one commit's fsync or WAL flush. Each write has the outcome it would
// have in a transaction of its own: a write that fails (a stale version, a
// replayed token, a live duplicate) is rolled back to its savepoint and
// reported to its caller alone, and the others commit; should the
// transaction fail as a whole before its COMMIT, each of its writes runs
// again alone. No caller hears of its write before the transaction
// carrying it has committed. A caller whose context ends returns at once:
// if its write was still queued, with the context's error, and the write
// is not run; if it was in a transaction, with an error wrapping both the
// context's error and ErrOutcomeUnknown, since that transaction may still
// commit it.
//
// GroupCommit(false) runs every write in a transaction of its own, on its
// caller's goroutine and under its caller's context; the writes and their
// errors are the same, and concurrent writers have less throughput (see
// docs/PERFORMANCE.md, which also explains what the store does to be fast).
//
// # Errors
//
// Besides a cancelled or expired context's error, returned as such, and
// the database's own errors, wrapped with the operation:
//
//   - approval.ErrNotFound from Get and Update for an unknown ID;
//   - approval.ErrConflict from Create and Update when they lose a race or
//     an ID is taken, and from the outbox and delegation writes likewise;
//   - approval.ErrTokenUsed from Update for a replayed token;
//   - approval.ErrInvalidCursor from the listing methods for a cursor they
//     did not return;
//   - ErrBusy from a SQLite write that waited for the write lock for longer
//     than BusyTimeout: nothing was written, and it may be retried;
//   - ErrInvalidText from a write of text the database cannot give back
//     exactly: nothing was written;
//   - ErrOutcomeUnknown from a write whose COMMIT was sent but not answered
//     (the connection failed or the context ended meanwhile): it may have
//     committed, so read the state back before acting on it.
//
// Each is wrapped with the operation and ID ("sqlstore: get req_...: not
// found"); test for them with errors.Is.
package sqlstore
