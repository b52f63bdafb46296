-- Passkeys (approval.Passkeys): the WebAuthn credentials people
-- registered, by credential ID, kept once revoked: votes and the audit
-- trail name them. body is the JSON of the approval.Passkey, the record of
-- truth; owner and created_at list a person's passkeys in the order they
-- were registered; revoked_at is NULL until revoked, and a revoke sets it
-- only where it is NULL, so that one revoke of any number wins.
CREATE TABLE passkeys (
    id         TEXT    NOT NULL PRIMARY KEY,
    owner      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    body       TEXT    NOT NULL
) STRICT;

CREATE INDEX passkeys_owner ON passkeys (owner, created_at);
