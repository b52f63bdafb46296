-- Delegations (approval.Delegations): one person's authority to approve
-- lent to another for a window, [not_before, not_after), until revoked.
-- revoked_at is NULL until the delegation is revoked, and a revoke sets it
-- only where it is NULL, so that one revoke of any number, from any number
-- of processes, wins. policies is the JSON array of the policy names in
-- scope (text, like the body columns), NULL for every policy. Rows are
-- kept once revoked or over: the audit trail names them. The id sorts
-- byte by byte (COLLATE "C"), as Go compares strings, whatever the
-- database's collation: listings are in ascending ID order and page by
-- ID.
CREATE TABLE delegations (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    from_id    text        NOT NULL,
    to_id      text        NOT NULL,
    not_before timestamptz NOT NULL,
    not_after  timestamptz NOT NULL,
    policies   text,
    reason     text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_by text        NOT NULL,
    revoked_at timestamptz
);

-- The gate looks up the delegations to a person (may they decide for
-- someone?) and from one, active now: those whose window has not ended.
CREATE INDEX delegations_to ON delegations (to_id, not_after);
CREATE INDEX delegations_from ON delegations (from_id, not_after);
