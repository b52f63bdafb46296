-- The outbox (approval.Outbox): notifications stored with the change that
-- causes them, until delivered. A row is a notice (channel '') or a
-- delivery; state 'pending' or 'dead'. A claim sets lease_owner and
-- lease_until, taking rows with FOR UPDATE SKIP LOCKED so that claims of
-- several processes never wait on, or take, each other's rows; a
-- delivered row is deleted, its record being the audit trail.
CREATE TABLE outbox (
    id          text        NOT NULL PRIMARY KEY,
    request_id  text        NOT NULL,
    type        text        NOT NULL,
    level       integer     NOT NULL,
    channel     text        NOT NULL,
    recipient   text        NOT NULL,
    body        text,
    state       text        NOT NULL,
    attempts    integer     NOT NULL,
    next_at     timestamptz NOT NULL,
    lease_owner text,
    lease_until timestamptz,
    last_error  text,
    created_at  timestamptz NOT NULL
);

-- Claims: the due pending rows of a channel, oldest first.
CREATE INDEX outbox_due ON outbox (channel, next_at, id) WHERE state = 'pending';
