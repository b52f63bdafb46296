-- Passkeys (approval.Passkeys): the WebAuthn credentials people
-- registered, by credential ID, kept once revoked: votes and the audit
-- trail name them. body is the JSON of the approval.Passkey, the record of
-- truth; owner and created_at list a person's passkeys in the order they
-- were registered; revoked_at is NULL until revoked, and a revoke sets it
-- only where it is NULL, so that one revoke of any number, from any
-- number of processes, wins. The id compares byte by byte (COLLATE "C"),
-- as Go compares strings.
CREATE TABLE passkeys (
    id         text COLLATE "C" NOT NULL PRIMARY KEY,
    owner      text        NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    body       text        NOT NULL
);

CREATE INDEX passkeys_owner ON passkeys (owner, created_at);
