-- Limits on asking (approval.AskLimits, Policy.Limit). ask_limits holds,
-- by check key (approval.AskCheck.Key), the rate's theoretical arrival
-- time and the end of the refusal audit window, both in microseconds
-- since the Unix epoch (0: none); a Create with limits locks each row it
-- checks, so that concurrent Creates of one person, from any number of
-- processes, take turns. ask_open holds the open requests counted under
-- each key with a cap; the Update that makes a request not open deletes
-- its rows.
CREATE TABLE ask_limits (
    key     text COLLATE "C" NOT NULL PRIMARY KEY,
    tat     bigint NOT NULL,
    audited bigint NOT NULL
);

CREATE TABLE ask_open (
    key        text COLLATE "C" NOT NULL,
    request_id text COLLATE "C" NOT NULL,
    PRIMARY KEY (key, request_id)
);

CREATE INDEX ask_open_request ON ask_open (request_id);
