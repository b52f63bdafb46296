-- A request a person denied, or that timed out, holds its action until
-- hold_until (Unix microseconds): Create returns it instead of a new
-- request (see approval.Config.DenialHold). NULL: no hold. Existing rows
-- hold nothing.
ALTER TABLE requests ADD COLUMN hold_until INTEGER;

-- Create's hold check: the latest hold of an action.
CREATE INDEX requests_held ON requests (action_hash, hold_until)
    WHERE hold_until IS NOT NULL;
