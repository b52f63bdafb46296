package sqlstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/signoff/approval"
)

// liveStatuses is the SQL list of the statuses that are not terminal (see
// approval.Status.Terminal); the partial indexes use the same list.
const liveStatuses = `('pending', 'escalated', 'approved')`

// maxCreateAttempts bounds how often Create retries when the live request
// its insert collided with has become terminal before it could be read.
const maxCreateAttempts = 16

// Create implements approval.Store. The live-request check is the
// database's: a partial unique index over the live statuses, on
// action_hash for requests without an idempotency key and on
// idempotency_key for those with one. Create inserts with ON CONFLICT DO
// NOTHING and, when nothing was inserted, returns the live request of the
// action (its ActionHash, or its IdempotencyKey), or approval.ErrConflict
// if it was req.ID that was taken. When a live request and req.ID both
// collide, the live request wins (created == false). A terminal req is
// outside the index, so it is stored whatever else exists. The returned
// request is a copy of req with its times in UTC at microsecond precision,
// which is how it is stored.
func (s *Store) Create(ctx context.Context, req *approval.Request, events []approval.AuditEvent) (*approval.Request, bool, error) {
	return s.create(ctx, req, events, nil, nil)
}

func (s *Store) create(ctx context.Context, req *approval.Request, events []approval.AuditEvent, msgs []approval.OutboxMessage, limits []approval.AskCheck) (*approval.Request, bool, error) {
	if req == nil {
		return nil, false, errors.New("sqlstore: create: nil request")
	}
	op := "create " + req.ID
	if err := ctx.Err(); err != nil {
		return nil, false, fail(ctx, op, err)
	}
	row, err := encodeRequest(req)
	if err != nil {
		return nil, false, fail(ctx, op, err)
	}
	var (
		existing *approval.Request
		sealed   []approval.AuditEvent
	)
	err = s.write(ctx, func(ctx context.Context, q querier) error {
		existing, sealed = nil, nil
		for range maxCreateAttempts {
			inserted, err := s.insertRequest(ctx, q, row)
			if err != nil {
				return err
			}
			if inserted {
				if err := s.admit(ctx, q, row.req, limits); err != nil {
					return err
				}
				if sealed, err = s.appendEvents(ctx, q, events); err != nil {
					return err
				}
				return s.insertOutbox(ctx, q, msgs)
			}
			if row.req.Status.Terminal() {
				// A terminal request is outside the live index, so only its
				// ID can have collided.
				return fmt.Errorf("a request with this ID exists: %w", approval.ErrConflict)
			}
			var body []byte
			live, held, action := selectLiveByHash, selectHeldByHash, req.ActionHash
			if k := req.Action.IdempotencyKey; k != "" {
				live, held, action = selectLiveByKey, selectHeldByKey, k
			}
			err = q.queryRow(ctx, live, action).Scan(&body)
			if err == nil {
				existing, err = decodeRequest(body)
				return err
			}
			if !errNoRows(err) {
				return err
			}
			err = q.queryRow(ctx, held, action, s.dialect.timeValue(req.CreatedAt)).Scan(&body)
			if err == nil {
				existing, err = decodeRequest(body)
				return err
			}
			if !errNoRows(err) {
				return err
			}
			var one int
			err = q.queryRow(ctx, `SELECT 1 FROM requests WHERE id = $1`, req.ID).Scan(&one)
			if err == nil {
				return fmt.Errorf("a request with this ID exists: %w", approval.ErrConflict)
			}
			if !errNoRows(err) {
				return err
			}
			// The live request the insert collided with became terminal
			// (PostgreSQL, another process) before it could be read: the
			// action is free again, so insert again.
		}
		return fmt.Errorf("the action's live request kept changing after %d attempts: %w", maxCreateAttempts, approval.ErrConflict)
	})
	if err != nil {
		if isUniqueViolation(err) {
			err = fmt.Errorf("%w: %w", approval.ErrConflict, err)
		}
		return nil, false, fail(ctx, op, err)
	}
	if existing != nil {
		return existing, false, nil
	}
	writeBack(events, sealed)
	s.names.put(row.req)
	return row.req, true, nil
}

// The reads of the request Create returns in place of a new one: the live
// request of the action, or its latest hold after $2. An action is an
// ActionHash among the requests without an idempotency key, and an
// IdempotencyKey among those with one.
const (
	selectLiveByHash = `SELECT body FROM requests
WHERE action_hash = $1 AND idempotency_key IS NULL AND status IN ` + liveStatuses + `
ORDER BY id LIMIT 1`
	selectHeldByHash = `SELECT body FROM requests
WHERE action_hash = $1 AND idempotency_key IS NULL AND hold_until > $2
ORDER BY hold_until DESC LIMIT 1`
	selectLiveByKey = `SELECT body FROM requests
WHERE idempotency_key = $1 AND status IN ` + liveStatuses + `
ORDER BY id LIMIT 1`
	selectHeldByKey = `SELECT body FROM requests
WHERE idempotency_key = $1 AND hold_until > $2
ORDER BY hold_until DESC LIMIT 1`
)

// pgInsertRequest inserts a request and its side-table rows in one
// statement (one round trip) and returns the number of requests inserted.
// The side-table rows belong to the new request, so they wait for no one.
// It inserts nothing if $13 (a live request) and the action is held:
// pgInsertRequest checks the holds of the action hash, for a request
// without an idempotency key, pgInsertKeyedRequest those of the key $11.
var (
	pgInsertRequest      = pgInsert(`action_hash = $3::text AND idempotency_key IS NULL`)
	pgInsertKeyedRequest = pgInsert(`idempotency_key = $11::text`)
)

func pgInsert(action string) string {
	return `WITH ins AS (
    INSERT INTO requests (id, status, action_hash, requested_by, created_at, updated_at, due_at, version, body, hold_until, idempotency_key)
    SELECT $1::text, $2::text, $3::text, $4::text, $5::timestamptz, $6::timestamptz, $7::timestamptz, $8::bigint, $9::text, $10::timestamptz, $11::text
    WHERE NOT ($13::boolean AND EXISTS (SELECT 1 FROM requests WHERE ` + action + ` AND hold_until > $5::timestamptz))
    ON CONFLICT DO NOTHING
    RETURNING id
), policies AS (
    INSERT INTO request_policies (request_id, policy) SELECT id, unnest($12::text[]) FROM ins
), approvers AS (
    INSERT INTO request_approvers (request_id, approver) SELECT id, unnest($14::text[]) FROM ins
), deciders AS (
    INSERT INTO request_deciders (request_id, person) SELECT id, unnest($15::text[]) FROM ins
)
SELECT count(*) FROM ins`
}

// sqliteInsertRequest is the insert of a request on SQLite; with
// sqliteUnlessHeld (sqliteUnlessKeyHeld for a request with an idempotency
// key), it inserts nothing if the action is held. (The WHERE also keeps
// SQLite from reading ON CONFLICT as a join constraint.)
const (
	sqliteInsertRequest = `INSERT INTO requests
    (id, status, action_hash, requested_by, created_at, updated_at, due_at, version, body, hold_until, idempotency_key)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 WHERE true`
	sqliteUnlessHeld    = ` AND NOT EXISTS (SELECT 1 FROM requests WHERE action_hash = $3 AND idempotency_key IS NULL AND hold_until > $5)`
	sqliteUnlessKeyHeld = ` AND NOT EXISTS (SELECT 1 FROM requests WHERE idempotency_key = $11 AND hold_until > $5)`
)

// insertRequest inserts row and its side-table rows unless a live request
// of its action, a hold on its action (for a live row) or a request with
// its ID exists, and reports whether it did.
func (s *Store) insertRequest(ctx context.Context, q querier, row requestRow) (bool, error) {
	keyed := row.req.Action.IdempotencyKey != ""
	if s.dialect == Postgres {
		var n int64
		args := append(s.requestArgs(row), policyNames(row.req), !row.req.Status.Terminal(), voterNames(row.req), row.req.Deciders)
		insert := pgInsertRequest
		if keyed {
			insert = pgInsertKeyedRequest
		}
		err := q.queryRow(ctx, insert, args...).Scan(&n)
		return n > 0, err
	}
	insert := sqliteInsertRequest
	switch {
	case row.req.Status.Terminal():
	case keyed:
		insert += sqliteUnlessKeyHeld
	default:
		insert += sqliteUnlessHeld
	}
	n, err := q.exec(ctx, insert+"\nON CONFLICT DO NOTHING", s.requestArgs(row)...)
	if err != nil || n == 0 {
		return false, err
	}
	if err := s.syncNames(ctx, q, policiesTable, row.req.ID, nil, policyNames(row.req)); err != nil {
		return false, err
	}
	if err := s.syncNames(ctx, q, decidersTable, row.req.ID, nil, row.req.Deciders); err != nil {
		return false, err
	}
	return true, s.syncNames(ctx, q, approversTable, row.req.ID, nil, voterNames(row.req))
}

// requestArgs returns the column values of a request row, in the order of
// the INSERT statements.
func (s *Store) requestArgs(row requestRow) []any {
	r := row.req
	return []any{
		r.ID, string(r.Status), r.ActionHash, r.Action.RequestedBy,
		s.dialect.timeValue(r.CreatedAt), s.dialect.timeValue(r.UpdatedAt), s.dialect.timeArg(r.DueAt),
		r.Version, string(row.body), s.dialect.timeArg(r.HoldUntil), keyArg(r),
	}
}

// keyArg is the idempotency_key column of r: NULL when it has none.
func keyArg(r *approval.Request) any {
	if k := r.Action.IdempotencyKey; k != "" {
		return k
	}
	return nil
}

// Get implements approval.Store.
func (s *Store) Get(ctx context.Context, id string) (*approval.Request, error) {
	op := "get " + id
	if !s.dialect.canHold(id) {
		return nil, fmt.Errorf("sqlstore: get %q: %w", id, approval.ErrNotFound)
	}
	var body []byte
	err := s.readRow(ctx, `SELECT body FROM requests WHERE id = $1`, id).Scan(&body)
	if errNoRows(err) {
		return nil, fmt.Errorf("sqlstore: get %s: %w", id, approval.ErrNotFound)
	}
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	r, err := decodeRequest(body)
	if err != nil {
		return nil, fail(ctx, op, err)
	}
	s.names.put(r)
	return r, nil
}

// Update implements approval.Store. The compare and the set are one step
// across processes: the stored version is read under a row lock
// (PostgreSQL's SELECT ... FOR UPDATE; SQLite's immediate transaction
// locks the whole database), or, on PostgreSQL when the Store knows the
// side-table names of the version being replaced, compared by the UPDATE
// itself (WHERE version = ...), which waits for the row lock and then
// rechecks the row. It checks the version before the token, so an Update
// that is both stale and replayed reports approval.ErrConflict.
func (s *Store) Update(ctx context.Context, u approval.Update) error {
	if u.Request == nil {
		return errors.New("sqlstore: update: nil request")
	}
	id := u.Request.ID
	op := "update " + id
	if err := ctx.Err(); err != nil {
		return fail(ctx, op, err)
	}
	if !s.dialect.canHold(id) {
		return fmt.Errorf("sqlstore: update %q: %w", id, approval.ErrNotFound)
	}
	row, err := encodeRequest(u.Request)
	if err != nil {
		return fail(ctx, op, err)
	}
	usedAt := row.req.UpdatedAt
	if usedAt.IsZero() {
		usedAt = utcMicro(time.Now())
	}
	var (
		sealed   []approval.AuditEvent
		resolved bool
	)
	err = s.write(ctx, func(ctx context.Context, q querier) error {
		sealed, resolved = nil, false
		w, err := s.planUpdate(ctx, q, row, u.TokenID, usedAt)
		if err != nil {
			return err
		}
		fresh, err := s.updateRequest(ctx, q, id, w)
		switch {
		case errors.Is(err, errVersionMoved):
			return s.staleVersion(ctx, q, row.req)
		case isUniqueViolation(err):
			return fmt.Errorf("another request for the action is live: %w: %w", approval.ErrConflict, err)
		case err != nil:
			return err
		case !fresh:
			return fmt.Errorf("token %s: %w", u.TokenID, approval.ErrTokenUsed)
		}
		if sealed, err = s.appendEvents(ctx, q, u.Events); err != nil {
			return err
		}
		if err := s.insertOutbox(ctx, q, u.Outbox); err != nil {
			return err
		}
		if !row.req.Status.Open() && row.req.CountsOpen() {
			if err := releaseOpen(ctx, q, id); err != nil {
				return err
			}
		}
		resolved = w.resolves
		if resolved {
			return s.notifyResolved(ctx, q, id)
		}
		return nil
	})
	if err != nil {
		return fail(ctx, op, err)
	}
	writeBack(u.Events, sealed)
	s.names.put(row.req)
	if resolved {
		s.watch.Wake(id)
	}
	return nil
}

// planUpdate works out the write that replaces the stored request with
// row, inside Update's transaction. It reads the stored row, under its
// lock, and compares the version, unless the write can compare it itself
// (PostgreSQL, the names cached); it reads the stored body only if the
// side-table names of the stored version are not cached.
func (s *Store) planUpdate(ctx context.Context, q querier, row requestRow, tokenID string, usedAt time.Time) (requestWrite, error) {
	id, prev := row.req.ID, row.req.Version-1
	known, cached := s.names.get(id, prev)
	if cached && s.dialect == Postgres {
		w := s.newRequestWrite(nil, row, tokenID, usedAt, known)
		w.resolves = resolves(known.status, row.req.Status)
		return w, nil
	}
	var (
		old  storedRow
		body []byte
	)
	cols := `version, status, action_hash, requested_by, idempotency_key, created_at, due_at`
	dests := []any{&old.version, &old.status, &old.actionHash, &old.requestedBy, &old.idempotencyKey, &old.createdAt, &old.dueAt}
	if !cached {
		cols += ", body"
		dests = append(dests, &body)
	}
	err := q.queryRow(ctx, `SELECT `+cols+` FROM requests WHERE id = $1`+s.dialect.forUpdate(), id).Scan(dests...)
	if errNoRows(err) {
		return requestWrite{}, approval.ErrNotFound
	}
	if err != nil {
		return requestWrite{}, err
	}
	if old.version != prev {
		return requestWrite{}, fmt.Errorf("stored version %d, update to %d: %w", old.version, row.req.Version, approval.ErrConflict)
	}
	if !cached {
		if known, err = indexedNames(body); err != nil {
			return requestWrite{}, err
		}
	}
	w := s.newRequestWrite(&old, row, tokenID, usedAt, known)
	w.resolves = resolves(approval.Status(old.status), row.req.Status)
	return w, nil
}

// resolves reports whether a request going from status from to status to
// leaves the open states: what wakes Gate.Wait (see
// approval.ResolutionNotifier).
func resolves(from, to approval.Status) bool { return from.Open() && !to.Open() }

// staleVersion is Update's error when its UPDATE found the row at another
// version than the one it replaces (or no row).
func (s *Store) staleVersion(ctx context.Context, q querier, r *approval.Request) error {
	var v int64
	err := q.queryRow(ctx, `SELECT version FROM requests WHERE id = $1`, r.ID).Scan(&v)
	if errNoRows(err) {
		return approval.ErrNotFound
	}
	if err != nil {
		return err
	}
	return fmt.Errorf("stored version %d, update to %d: %w", v, r.Version, approval.ErrConflict)
}
