-- Initial schema of the approval SQL store (PostgreSQL).
--
-- Times are timestamptz, which keeps microseconds: the precision the gate
-- keeps, and what the audit hashes are computed over. The body columns hold
-- the JSON of the whole approval.Request / approval.AuditEvent as text (not
-- jsonb, which rejects \u0000 and reorders keys) and are the record of
-- truth; the other columns exist to filter, sort and enforce.

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
);

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

-- The end of the chain. Every append locks it (SELECT ... FOR UPDATE) and
-- moves it in the same transaction, which serialises appends across all
-- processes and keeps seq gapless.
CREATE TABLE audit_head (
    id   integer NOT NULL PRIMARY KEY CHECK (id = 1),
    seq  bigint  NOT NULL,
    hash text    NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '');

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

CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.seq >= OLD.seq THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_head may only move forward: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_forward_only();
