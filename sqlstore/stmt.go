package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// maxCachedStmts bounds the statements a stmtCache keeps. The store runs a
// few dozen distinct statements; the bound only stops a query built from
// unbounded input from growing the cache for ever.
const maxCachedStmts = 128

// stmtCache holds statements prepared on a SQLite pool, by query text.
// database/sql prepares a *sql.Stmt once on each connection that runs it
// and finalises it when the connection closes, so a cached statement is
// parsed and planned once per connection rather than on every call, which
// for SQLite is a large share of a short write's CPU time. (PostgreSQL
// needs no such cache: pgx keeps one per connection itself.)
//
// A cache is safe for concurrent use.
type stmtCache struct {
	db *sql.DB

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// missed holds queries a transaction ran unprepared, to be prepared
	// once no connection of the pool is held (see prepareMissed).
	missed map[string]struct{}
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, stmts: make(map[string]*sql.Stmt), missed: make(map[string]struct{})}
}

// lookup returns the prepared statement for query, or nil, remembering
// query for prepareMissed. It never touches the pool, so a transaction
// that holds the pool's only connection may call it.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st
	}
	if len(c.stmts)+len(c.missed) < maxCachedStmts {
		c.missed[query] = struct{}{}
	}
	return nil
}

// prepareMissed prepares the statements lookup missed. Preparing takes a
// connection from the pool, so the caller must hold none: with SQLite's
// one writer connection it would wait for itself. A statement that fails
// to prepare (a cancelled ctx) is simply missed again next time.
func (c *stmtCache) prepareMissed(ctx context.Context) {
	c.mu.Lock()
	queries := make([]string, 0, len(c.missed))
	for q := range c.missed {
		queries = append(queries, q)
	}
	clear(c.missed)
	c.mu.Unlock()
	for _, q := range queries {
		st, err := c.db.PrepareContext(ctx, q)
		if err != nil {
			continue
		}
		c.mu.Lock()
		if _, dup := c.stmts[q]; dup {
			_ = st.Close()
		} else {
			c.stmts[q] = st
		}
		c.mu.Unlock()
	}
}

// hasMissed reports whether prepareMissed has work to do.
func (c *stmtCache) hasMissed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.missed) > 0
}

// prepared returns the statement for query, preparing it if needed, or
// nil if the cache is full. Only callers that hold no connection of the
// pool may use it (reads do).
func (c *stmtCache) prepared(ctx context.Context, query string) *sql.Stmt {
	if st := c.lookup(query); st != nil {
		return st
	}
	c.prepareMissed(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[query]
}

// close closes every cached statement, releasing them on every connection.
func (c *stmtCache) close() error {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, st := range c.stmts {
		errs = append(errs, st.Close())
		delete(c.stmts, q)
	}
	return errors.Join(errs...)
}

// readRow runs a query that returns at most one row on the read pool, as a
// cached prepared statement if the Store has a cache for it.
func (s *Store) readRow(ctx context.Context, query string, args ...any) *sql.Row {
	if s.reads != nil {
		if st := s.reads.prepared(ctx, query); st != nil {
			return st.QueryRowContext(ctx, args...)
		}
	}
	return s.r.QueryRowContext(ctx, query, args...)
}

// stmtTx is the querier of a SQLite write transaction on a pool with a
// stmtCache: it runs each statement the cache holds as that prepared
// statement, and any other as plain text.
type stmtTx struct {
	tx    *sql.Tx
	cache *stmtCache
	// ctx, if set, is the context every statement runs under, whatever
	// its caller passes (a group's: see runGroup).
	ctx context.Context
}

func (t stmtTx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if t.ctx != nil {
		ctx = t.ctx
	}
	var (
		res sql.Result
		err error
	)
	if st := t.cache.lookup(query); st != nil {
		res, err = t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	} else {
		res, err = t.tx.ExecContext(ctx, query, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (t stmtTx) queryRow(ctx context.Context, query string, args ...any) scanner {
	if t.ctx != nil {
		ctx = t.ctx
	}
	if st := t.cache.lookup(query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

func (t stmtTx) execLast(ctx context.Context, what, query string, args ...any) error {
	if _, err := t.exec(ctx, query, args...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

func (t stmtTx) savepoint(ctx context.Context) error { return sqliteSavepoint(ctx, t) }

func (t stmtTx) release(ctx context.Context, keep bool) error {
	return sqliteRelease(ctx, t, keep)
}
