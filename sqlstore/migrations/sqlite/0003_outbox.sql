-- The outbox (approval.Outbox): notifications stored with the change that
-- causes them, until delivered. A row is a notice (channel '') or a
-- delivery; state 'pending' or 'dead'. A claim sets lease_owner and
-- lease_until (Unix microseconds); a delivered row is deleted, its record
-- being the audit trail. WITHOUT ROWID: the table is its primary key's
-- B-tree, one fewer to write per message.
CREATE TABLE outbox (
    id          TEXT    NOT NULL PRIMARY KEY,
    request_id  TEXT    NOT NULL,
    type        TEXT    NOT NULL,
    level       INTEGER NOT NULL,
    channel     TEXT    NOT NULL,
    recipient   TEXT    NOT NULL,
    body        TEXT,
    state       TEXT    NOT NULL,
    attempts    INTEGER NOT NULL,
    next_at     INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    last_error  TEXT,
    created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Claims: the due pending rows of a channel, oldest first.
CREATE INDEX outbox_due ON outbox (channel, next_at, id) WHERE state = 'pending';
