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
// (as the gate's are); a Store normalises the copies it writes. Two things
// JSON does not keep: an empty slice or map comes back nil, and a string
// that is not valid UTF-8 cannot be stored at all, so a write holding one
// fails with ErrInvalidText rather than store it altered (an audit event
// altered so would no longer match its hash). On PostgreSQL a NUL byte in a
// column of its own (an ID, a requester, an event's actor) fails the write
// with ErrInvalidText too: PostgreSQL text holds no NUL.
//
// # Concurrency
//
// Every write (Create, Update, AppendAudit) is atomic: the request, the
// consumed token and the audit events commit together or not at all. The
// database enforces the invariants, so stores in different processes on
// one database behave as one:
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
// transaction and with its COMMIT, so at no extra round trip; PostgreSQL
// delivers it on commit only. Each Store listens on that channel on one
// connection of its own, outside the pool and made with the settings of the
// pool's connections, opened at the first subscription and kept until
// Close, and wakes the subscribed Waits by request ID: two replicas' Waits
// see each other's decisions within milliseconds. A lost listening
// connection is reopened with exponential backoff (50ms to 10s), a silent
// one is pinged every 30s, and every reconnection wakes all Waits, which
// read their request again in case they missed a notification; meanwhile
// Wait's poll (approval.Config.PollInterval) is the fallback. Listen(false)
// turns listening off (the Store still notifies). PostgreSQL serialises the
// commits of transactions that notify, server-wide: a Store's writes to one
// schema are serialised by the audit chain's lock anyway, but resolving
// writes of stores in other schemas or databases of the server (or other
// programs that NOTIFY) queue behind each other at commit (see
// docs/PERFORMANCE.md). PostgreSQL's notification queue is shared by the
// whole server and kept until every listening session has read it: one that
// stops reading (a process paused, another program's session left in a long
// transaction) holds it back, and should it fill (8 GB by default),
// resolving writes fail until it drains. On SQLite, only the Store's own
// writes wake its Waits: another process's decision is seen at the next
// poll.
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
// # Group commit
//
// A Store runs one write transaction at a time. Writes that arrive while
// one runs queue, and the next transaction carries all of them (up to 32),
// each inside a savepoint of its own: a write that fails (a stale version,
// a replayed token, a live duplicate) is rolled back to its savepoint and
// reported to its caller alone, and the others commit. A transaction of
// several writes pays for one BEGIN and one COMMIT, one WAL flush (an
// fsync with SyncFull; a round trip and a flush on PostgreSQL) and one
// copy of each page the writes share, such as the end of the audit chain
// and of each index. Should the transaction fail as a whole before its
// COMMIT (a database error rather than one write's), each of its writes
// runs again alone, so that one bad write cannot fail the others; should
// its COMMIT go unanswered, each write fails with ErrOutcomeUnknown and
// none runs again. No caller hears of its write before the transaction
// carrying it has committed. A write alone runs on its caller's goroutine
// in a transaction of its own, as without grouping; a transaction of
// several runs on a goroutine of its own (or its leader's, if the
// leader's context can never end), under a context that ends when every
// caller's has. A caller whose context ends returns at once: if its
// write was still queued, with the context's error, and the write is not
// run; if it was in a transaction, with an error wrapping both the
// context's error and ErrOutcomeUnknown, since that transaction may still
// commit it.
//
// # Performance
//
// A write costs what its transaction touches. In SQLite each b-tree a
// write changes costs a page written to the WAL and, later, to the
// database file: a Create writes about 12 (the request's table, its ID
// and 5 indexes, a policy row, the event's table and 3 indexes), a
// decision about 8, against 1 for a bare single-row update; grouped
// writes share the pages at the end of each b-tree. A Store made by Open
// prepares each statement once per connection, updates only the indexed
// columns that change, keeps SQLite's temporary storage (the savepoints'
// sub-journal) in memory, and copies the WAL into the database file
// (checkpoints) on a connection of its own, beside the writer, so that the
// automatic checkpoint SQLite runs inside a commit has little left to
// copy. A Store
// remembers the policy and voter names of the latest versions it read or
// wrote (4,096 requests), so that Update need not read and decode the
// stored body to update the side tables. In PostgreSQL a write is bound by
// round trips and the commit's WAL flush: a Store sends BEGIN and the
// chain lock with a transaction's first statement and COMMIT with its last
// (pgx batches), writes a request and its side tables in one statement,
// and, when it knows the names of the version it replaces, a decision in
// one statement too, so a Create and a decision each take two round
// trips.
//
// # Errors
//
// Get and Update report approval.ErrNotFound for an unknown ID, Create and
// Update approval.ErrConflict when they lose a race or an ID is taken, and
// Update approval.ErrTokenUsed for a replayed token, each wrapped with the
// operation and ID ("sqlstore: get req_...: not found"). A cancelled
// context's error is returned as such. A write whose commit was sent but
// not answered (the connection failed or the context ended meanwhile)
// fails with an error wrapping ErrOutcomeUnknown: it may have committed.
package sqlstore
