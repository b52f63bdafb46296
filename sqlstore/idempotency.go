package sqlstore

import (
	"context"
	"fmt"
	"time"

	"github.com/signoff/approval"
)

var (
	_ approval.IdempotencyKeys = (*Store)(nil)
	_ approval.PriorRuns       = (*Store)(nil)
)

// RequestByIdempotencyKey implements approval.IdempotencyKeys with the
// reads Create makes when it finds the key taken (index requests_live_key,
// then requests_key), on the read pool.
func (s *Store) RequestByIdempotencyKey(ctx context.Context, key string, at time.Time) (*approval.Request, error) {
	const op = "request by idempotency key"
	if key == "" || !s.dialect.canHold(key) {
		return nil, fmt.Errorf("sqlstore: idempotency key %.64q: %w", key, approval.ErrNotFound)
	}
	var body []byte
	err := s.readRow(ctx, selectLiveByKey, key).Scan(&body)
	if errNoRows(err) {
		err = s.readRow(ctx, selectHeldByKey, key, s.dialect.timeValue(at)).Scan(&body)
	}
	if errNoRows(err) {
		return nil, fmt.Errorf("sqlstore: idempotency key %.64q: %w", key, approval.ErrNotFound)
	}
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	r, err := decodeRequest(body)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	return r, nil
}

// selectLastRun reads the latest consumed request of an action hash
// consumed at or after $2 (index requests_ran).
const selectLastRun = `SELECT id, updated_at FROM requests
WHERE action_hash = $1 AND status = 'consumed' AND updated_at >= $2
ORDER BY updated_at DESC LIMIT 1`

// LastRun implements approval.PriorRuns, on the read pool.
func (s *Store) LastRun(ctx context.Context, actionHash string, since time.Time) (approval.PriorRun, bool, error) {
	if !s.dialect.canHold(actionHash) {
		return approval.PriorRun{}, false, nil
	}
	var run approval.PriorRun
	err := s.readRow(ctx, selectLastRun, actionHash, s.dialect.boundArg(since)).Scan(&run.RequestID, timeColumn{&run.At})
	if errNoRows(err) {
		return approval.PriorRun{}, false, nil
	}
	if err != nil {
		return approval.PriorRun{}, false, fail(ctx, "last run", err)
	}
	return run, true, nil
}
