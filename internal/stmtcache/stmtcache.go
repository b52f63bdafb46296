// Package stmtcache keeps the statements a database/sql pool runs
// prepared, by query text, for a store that runs a few dozen distinct
// statements over and over.
//
// It guarantees that a statement runs the same prepared or not: a
// statement not in the cache (the cache is full, or the statement is new)
// is run as plain text by the caller, and is prepared later, only once no
// connection of the pool is held, so that a transaction holding a pool's
// only connection never waits for itself. The cache holds at most Max
// statements, so a query built from unbounded input cannot grow it for
// ever.
//
// It exists because database/sql prepares a *sql.Stmt once on each
// connection that runs it and finalises it when the connection closes, so
// a cached statement is parsed and planned once per connection rather
// than on every call, which for SQLite is a large share of a short
// write's CPU time (see docs/PERFORMANCE.md). PostgreSQL needs no such
// cache: pgx keeps one per connection itself.
package stmtcache

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// Max bounds the statements a Cache keeps.
const Max = 128

// A Cache holds statements prepared on a pool. Create one with New; the
// zero value is not usable, but PrepareMissed and Close of a nil *Cache do
// nothing. A Cache is safe for concurrent use.
type Cache struct {
	db *sql.DB

	mu    sync.Mutex
	stmts map[string]*sql.Stmt
	// missed holds the queries Lookup did not find, to be prepared by
	// PrepareMissed.
	missed map[string]struct{}
}

// New returns an empty cache of statements prepared on db.
func New(db *sql.DB) *Cache {
	return &Cache{db: db, stmts: make(map[string]*sql.Stmt), missed: make(map[string]struct{})}
}

// Lookup returns the prepared statement for query, or nil, remembering
// query for PrepareMissed if the cache has room. It never touches the
// pool, so a caller that holds the pool's only connection may call it.
func (c *Cache) Lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[query]; ok {
		return st
	}
	if len(c.stmts)+len(c.missed) < Max {
		c.missed[query] = struct{}{}
	}
	return nil
}

// PrepareMissed prepares the statements Lookup missed, if any. Preparing
// takes a connection from the pool, so the caller must hold none. A
// statement that fails to prepare (ctx ended, say) is simply missed again
// next time.
func (c *Cache) PrepareMissed(ctx context.Context) {
	if c == nil {
		return
	}
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

// Prepared returns the statement for query, preparing it if needed, or
// nil if the cache is full or it fails to prepare. Only a caller that
// holds no connection of the pool may use it.
func (c *Cache) Prepared(ctx context.Context, query string) *sql.Stmt {
	if st := c.Lookup(query); st != nil {
		return st
	}
	c.PrepareMissed(ctx)
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stmts[query]
}

// Len returns the number of statements prepared and of statements missed.
func (c *Cache) Len() (prepared, missed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.stmts), len(c.missed)
}

// Close closes every cached statement, releasing them on every connection.
func (c *Cache) Close() error {
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
