package scale

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/signoff/approval"
	"github.com/signoff/approval/memstore"
)

// loadMemory replays the stream's writes through st's Create and Update.
func loadMemory(ctx context.Context, st *memstore.Store, g *generator) error {
	return g.run(func(it item) error {
		w := it.write
		if w.create {
			_, created, err := st.Create(ctx, w.req, w.events)
			if err == nil && !created {
				err = fmt.Errorf("the store returned another request for the action")
			}
			if err != nil {
				return fmt.Errorf("scale: create %s: %w", w.req.ID, err)
			}
			return nil
		}
		if err := st.Update(ctx, approval.Update{Request: w.req, TokenID: w.token, Events: w.events}); err != nil {
			return fmt.Errorf("scale: update %s to version %d: %w", w.req.ID, w.req.Version, err)
		}
		return nil
	})
}

// schemaVersion is the version of sqlstore's schema whose tables loadSQL
// writes. A new migration may add a column or a table that every request
// needs: check what it adds, write it in loadSQL, then raise this.
const schemaVersion = 8 // 0008 adds the limits on asking, empty for a population without limits

// batchStories is how many requests loadSQL writes per transaction.
const batchStories = 4000

// rows are the rows of one of loadSQL's transactions, table by table.
type rows struct {
	requests, policies, approvers, deciders, tokens, events [][]any
	stories                                                 int
}

func (r *rows) reset() {
	r.requests, r.policies, r.approvers, r.deciders, r.tokens, r.events = r.requests[:0], r.policies[:0], r.approvers[:0], r.deciders[:0], r.tokens[:0], r.events[:0]
	r.stories = 0
}

// tables lists the tables loadSQL writes, in the order it writes them
// (the referenced before the referencing), and their columns.
var tables = []struct {
	name    string
	columns []string
	rows    func(*rows) [][]any
}{
	{"requests", []string{"id", "status", "action_hash", "requested_by", "created_at", "updated_at", "due_at", "version", "body", "hold_until", "idempotency_key"},
		func(r *rows) [][]any { return r.requests }},
	{"request_policies", []string{"request_id", "policy"}, func(r *rows) [][]any { return r.policies }},
	{"request_approvers", []string{"request_id", "approver"}, func(r *rows) [][]any { return r.approvers }},
	{"request_deciders", []string{"request_id", "person"}, func(r *rows) [][]any { return r.deciders }},
	{"used_tokens", []string{"token_id", "request_id", "used_at"}, func(r *rows) [][]any { return r.tokens }},
	{"audit_events", []string{"seq", "request_id", "type", "actor", "at", "prev_hash", "hash", "body"}, func(r *rows) [][]any { return r.events }},
}

// loadSQL writes the stream into the tables of db, a database sqlstore
// migrated, bypassing sqlstore: each request's last version, side-table
// rows and used tokens as it is created, the audit events as they happen.
// The column values are those sqlstore writes (see sqlstore's
// requestArgs and appendEvents): times as Unix microseconds on SQLite and
// timestamptz on PostgreSQL, NULL for a zero due time, hold or key.
func loadSQL(ctx context.Context, db *sql.DB, postgres bool, g *generator) error {
	var version int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&version); err != nil {
		return fmt.Errorf("scale: read the schema version: %w", err)
	}
	if version != schemaVersion {
		return fmt.Errorf("scale: the database's schema is at version %d, the loader writes version %d's tables: teach loadSQL the new migrations", version, schemaVersion)
	}
	timeOf := func(t time.Time) any {
		if postgres {
			return t
		}
		return t.UnixMicro()
	}
	nullTime := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return timeOf(t)
	}
	nullText := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var batch rows
	flush := func() error {
		if batch.stories == 0 && len(batch.events) == 0 {
			return nil
		}
		var err error
		if postgres {
			err = copyRows(ctx, db, &batch)
		} else {
			err = insertRows(ctx, db, &batch)
		}
		batch.reset()
		return err
	}
	err := g.run(func(it item) error {
		w, s := it.write, it.story
		if w.create {
			r := s.final
			batch.requests = append(batch.requests, []any{
				r.ID, string(r.Status), r.ActionHash, r.Action.RequestedBy, timeOf(r.CreatedAt), timeOf(r.UpdatedAt),
				nullTime(r.DueAt), r.Version, string(s.body), nullTime(r.HoldUntil), nullText(r.Action.IdempotencyKey),
			})
			var names []string
			for _, p := range r.Policies {
				if !slices.Contains(names, p.Name) {
					names = append(names, p.Name)
					batch.policies = append(batch.policies, []any{r.ID, p.Name})
				}
			}
			names = names[:0]
			for _, v := range r.Votes {
				if !slices.Contains(names, v.Approver) {
					names = append(names, v.Approver)
					batch.approvers = append(batch.approvers, []any{r.ID, v.Approver})
				}
			}
			for _, p := range r.Deciders {
				batch.deciders = append(batch.deciders, []any{r.ID, p})
			}
			for _, t := range s.tokens {
				batch.tokens = append(batch.tokens, []any{t.id, r.ID, timeOf(t.at)})
			}
			batch.stories++
		}
		for i := range w.events {
			e := &w.events[i]
			body, err := json.Marshal(e)
			if err != nil {
				return fmt.Errorf("scale: encode event %d: %w", e.Seq, err)
			}
			batch.events = append(batch.events, []any{e.Seq, nullText(e.RequestID), string(e.Type), nullText(e.Actor),
				timeOf(e.At), e.PrevHash, e.Hash, string(body)})
		}
		if batch.stories >= batchStories {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	return flush()
}

// insertRows writes a batch to SQLite in one transaction, a prepared
// statement per table.
func insertRows(ctx context.Context, db *sql.DB, batch *rows) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	for _, t := range tables {
		rs := t.rows(batch)
		if len(rs) == 0 {
			continue
		}
		q := "INSERT INTO " + t.name + " (" + strings.Join(t.columns, ", ") + ") VALUES (" + params(len(t.columns)) + ")"
		st, err := tx.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("scale: %s: %w", t.name, err)
		}
		for _, r := range rs {
			if _, err := st.ExecContext(ctx, r...); err != nil {
				_ = st.Close()
				return fmt.Errorf("scale: insert into %s: %w", t.name, err)
			}
		}
		if err := st.Close(); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// copyRows writes a batch to PostgreSQL in one transaction, a COPY per
// table.
func copyRows(ctx context.Context, db *sql.DB, batch *rows) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		pc := dc.(*stdlib.Conn).Conn()
		tx, err := pc.Begin(ctx)
		if err != nil {
			return err
		}
		defer func() { _ = tx.Rollback(ctx) }()
		for _, t := range tables {
			rs := t.rows(batch)
			if len(rs) == 0 {
				continue
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{t.name}, t.columns, pgx.CopyFromRows(rs)); err != nil {
				return fmt.Errorf("scale: copy into %s: %w", t.name, err)
			}
		}
		return tx.Commit(ctx)
	})
}

// params returns "$1, $2, ..., $n".
func params(n int) string {
	ps := make([]string, n)
	for i := range ps {
		ps[i] = "$" + strconv.Itoa(i+1)
	}
	return strings.Join(ps, ", ")
}
