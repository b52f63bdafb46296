-- Delegations (approval.Delegations): one person's authority to approve
-- lent to another for a window, [not_before, not_after), until revoked.
-- Times are Unix microseconds (UTC); revoked_at is NULL until the
-- delegation is revoked, and a revoke sets it only where it is NULL, so
-- that one revoke of any number wins. policies is the JSON array of the
-- policy names in scope, NULL for every policy. Rows are kept once
-- revoked or over: the audit trail names them.
CREATE TABLE delegations (
    id         TEXT    NOT NULL PRIMARY KEY,
    from_id    TEXT    NOT NULL,
    to_id      TEXT    NOT NULL,
    not_before INTEGER NOT NULL,
    not_after  INTEGER NOT NULL,
    policies   TEXT,
    reason     TEXT    NOT NULL,
    created_by TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_by TEXT    NOT NULL,
    revoked_at INTEGER
) STRICT;

-- The gate looks up the delegations to a person (may they decide for
-- someone?) and from one, active now: those whose window has not ended.
CREATE INDEX delegations_to ON delegations (to_id, not_after);
CREATE INDEX delegations_from ON delegations (from_id, not_after);
