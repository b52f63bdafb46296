-- Initial schema of the approval SQL store (SQLite).
--
-- Times are Unix microseconds (UTC) in INTEGER columns: the precision the
-- gate keeps, and what the audit hashes are computed over. The body columns
-- hold the JSON of the whole approval.Request / approval.AuditEvent and are
-- the record of truth; the other columns exist to filter, sort and enforce.

CREATE TABLE requests (
    id           TEXT    NOT NULL PRIMARY KEY,
    status       TEXT    NOT NULL,
    action_hash  TEXT    NOT NULL,
    requested_by TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    due_at       INTEGER,            -- NULL: never due
    version      INTEGER NOT NULL,
    body         TEXT    NOT NULL
) STRICT;

-- At most one live (not terminal) request per action: the database, not
-- the application, makes concurrent Creates of one action create one.
CREATE UNIQUE INDEX requests_live_action ON requests (action_hash)
    WHERE status IN ('pending', 'escalated', 'approved');

-- ListDue scans live requests by due time.
CREATE INDEX requests_due ON requests (due_at, id)
    WHERE due_at IS NOT NULL AND status IN ('pending', 'escalated', 'approved');

-- List filters, each walked in id order for keyset pagination.
CREATE INDEX requests_status ON requests (status, id);
CREATE INDEX requests_requested_by ON requests (requested_by, id);
CREATE INDEX requests_created_at ON requests (created_at);

-- The policies a request matched (List's Policy filter). The primary key
-- serves List's lookups and Update's deletes; requests are never deleted,
-- so the foreign key needs no index of its own.
CREATE TABLE request_policies (
    request_id TEXT NOT NULL REFERENCES requests (id),
    policy     TEXT NOT NULL,
    PRIMARY KEY (policy, request_id)
) STRICT, WITHOUT ROWID;

-- The people who voted on a request (List's Approver filter).
CREATE TABLE request_approvers (
    request_id TEXT NOT NULL REFERENCES requests (id),
    approver   TEXT NOT NULL,
    PRIMARY KEY (approver, request_id)
) STRICT, WITHOUT ROWID;

-- Every decision token ever consumed: the primary key makes replays fail.
-- WITHOUT ROWID keeps it one b-tree, so recording a token writes one page.
CREATE TABLE used_tokens (
    token_id   TEXT    NOT NULL PRIMARY KEY,
    request_id TEXT    NOT NULL REFERENCES requests (id),
    used_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- The audit trail, a SHA-256 hash chain (see approval.VerifyAuditChain).
-- request_id has no foreign key: rejected decisions may name requests that
-- do not exist. seq is the rowid, so the end of the chain, which every
-- append reads inside its immediate transaction (writers are serialised by
-- the database's write lock), is the last row of the table's own b-tree.
-- Each index ends in the rowid, so the per-request and per-actor indexes
-- are already in seq order.
CREATE TABLE audit_events (
    seq        INTEGER NOT NULL PRIMARY KEY,
    request_id TEXT,
    type       TEXT    NOT NULL,
    actor      TEXT,
    at         INTEGER NOT NULL,
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL,
    body       TEXT    NOT NULL
) STRICT;
CREATE INDEX audit_events_request ON audit_events (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX audit_events_actor ON audit_events (actor) WHERE actor IS NOT NULL;
CREATE INDEX audit_events_at ON audit_events (at);

-- The trail is append-only.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: UPDATE is not allowed');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only: DELETE is not allowed');
END;
