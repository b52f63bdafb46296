-- A request may carry an idempotency key (approval.Action.IdempotencyKey),
-- kept here from its body; NULL: none. Existing rows have none. A request
-- with a key is deduplicated by its key, not by its action hash, and one
-- without a key never by a request with one (approval.Store.Create).

ALTER TABLE requests ADD COLUMN idempotency_key TEXT;

-- At most one live request per action hash among the requests without a
-- key, and per key among those with one.
DROP INDEX requests_live_action;
CREATE UNIQUE INDEX requests_live_action ON requests (action_hash)
    WHERE status IN ('pending', 'escalated', 'approved') AND idempotency_key IS NULL;
CREATE UNIQUE INDEX requests_live_key ON requests (idempotency_key)
    WHERE status IN ('pending', 'escalated', 'approved') AND idempotency_key IS NOT NULL;

-- Create's hold check of a request without a key; the holds of a key (a
-- denial, or the approval it ran under) are found through requests_key,
-- as is the request holding a key (approval.IdempotencyKeys).
DROP INDEX requests_held;
CREATE INDEX requests_held ON requests (action_hash, hold_until)
    WHERE hold_until IS NOT NULL AND idempotency_key IS NULL;
CREATE INDEX requests_key ON requests (idempotency_key, hold_until)
    WHERE idempotency_key IS NOT NULL;

-- The latest run of an action (approval.PriorRuns): its consumed requests
-- by the time they were consumed.
CREATE INDEX requests_ran ON requests (action_hash, updated_at)
    WHERE status = 'consumed';
