-- Initial schema of the approval SQL store (PostgreSQL).
--
-- Times are timestamptz, which keeps microseconds: the precision the gate
-- keeps, and what the audit hashes are computed over. The body columns hold
-- the JSON of the whole approval.Request / approval.AuditEvent as text (not
-- jsonb, which rejects \u0000 and reorders keys) and are the record of
-- truth; the other columns exist to filter, sort and enforce.

-- fillfactor leaves room in each page for the new versions of the rows on
-- it: a request is updated a few times (each vote, its resolution), and an
-- update that changes no indexed column and fits in its page is HOT,
-- writing no index entries.
CREATE TABLE requests (
    id           text        NOT NULL PRIMARY KEY,
    status       text        NOT NULL,
    action_hash  text        NOT NULL,
    requested_by text        NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    due_at       timestamptz,          -- NULL: never due
    version      bigint      NOT NULL,
    body         text        NOT NULL
) WITH (fillfactor = 75);

-- At most one live (not terminal) request per action: the database, not
-- the application, makes concurrent Creates of one action, from any number
-- of processes, create one.
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
    request_id text NOT NULL REFERENCES requests (id),
    policy     text NOT NULL,
    PRIMARY KEY (policy, request_id)
);

-- The people who voted on a request (List's Approver filter).
CREATE TABLE request_approvers (
    request_id text NOT NULL REFERENCES requests (id),
    approver   text NOT NULL,
    PRIMARY KEY (approver, request_id)
);

-- Every decision token ever consumed: the primary key makes replays fail.
CREATE TABLE used_tokens (
    token_id   text        NOT NULL PRIMARY KEY,
    request_id text        NOT NULL REFERENCES requests (id),
    used_at    timestamptz NOT NULL
);

-- The audit trail, a SHA-256 hash chain (see approval.VerifyAuditChain).
-- request_id has no foreign key: rejected decisions may name requests that
-- do not exist.
CREATE TABLE audit_events (
    seq        bigint      NOT NULL PRIMARY KEY,
    request_id text,
    type       text        NOT NULL,
    actor      text,
    at         timestamptz NOT NULL,
    prev_hash  text        NOT NULL,
    hash       text        NOT NULL,
    body       text        NOT NULL
);
CREATE INDEX audit_events_request ON audit_events (request_id, seq) WHERE request_id IS NOT NULL;
CREATE INDEX audit_events_actor ON audit_events (actor, seq) WHERE actor IS NOT NULL;
CREATE INDEX audit_events_at ON audit_events (at);

-- audit_tail(true) returns the end of the chain, the sequence number and
-- hash of the last event (0 and '' while there is none), after taking a
-- transaction-level advisory lock that every append holds until it
-- commits: appends from all processes are serialised, so seq stays gapless
-- and each event's prev_hash is its predecessor's hash (the primary key on
-- seq would refuse a fork in any case). The function is VOLATILE, so the
-- query after the lock sees every append committed before it was granted,
-- even when the function ends a statement that began earlier: Create's
-- insert ends with audit_tail(inserted), to write the request and lock the
-- chain in one round trip. audit_tail(false) returns nothing and locks
-- nothing. The lock's keys are 0x617071 and the OID of
-- the audit_events table, so trails in different schemas of one database
-- do not wait for each other.
CREATE FUNCTION audit_tail(take boolean) RETURNS TABLE (seq bigint, hash text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF take THEN
        PERFORM pg_advisory_xact_lock(x'617071'::integer, 'audit_events'::regclass::oid::integer);
        RETURN QUERY SELECT e.seq, e.hash FROM audit_events e ORDER BY e.seq DESC LIMIT 1;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 0::bigint, ''::text;
        END IF;
    END IF;
END
$$;

-- The trail is append-only.
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % is not allowed', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
