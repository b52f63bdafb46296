-- The inbox (approval.Inbox): who may decide each open request and has
-- not (approval.Request.Deciders), by person, so that a reviewer's inbox is
-- a range of the primary key. Rows follow the body on every Create and
-- Update; a request that ends has none. Requests open before this
-- migration have none until the gate next writes them.
CREATE TABLE request_deciders (
    person     TEXT NOT NULL,
    request_id TEXT NOT NULL REFERENCES requests (id),
    PRIMARY KEY (person, request_id)
) STRICT, WITHOUT ROWID;
