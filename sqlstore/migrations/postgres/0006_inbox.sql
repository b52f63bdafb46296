-- The inbox (approval.Inbox): who may decide each open request and has
-- not (approval.Request.Deciders), by person, so that a reviewer's inbox is
-- a range of the primary key. Rows follow the body on every Create and
-- Update; a request that ends has none. Requests open before this
-- migration have none until the gate next writes them. request_id has the
-- collation of requests.id, so that the two compare through its index and
-- pages follow List's order.
CREATE TABLE request_deciders (
    person     text NOT NULL,
    request_id text NOT NULL REFERENCES requests (id),
    PRIMARY KEY (person, request_id)
);
