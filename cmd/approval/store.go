package main

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"strings"

	"github.com/signoff/approval"
	"github.com/signoff/approval/sqlstore"
)

// dbFlag adds the -db flag every store command takes.
func dbFlag(fs *flag.FlagSet) *string {
	return fs.String("db", "", "the store's `DSN`: a SQLite file path, file: or sqlite: URI, or a PostgreSQL URL or key=value string")
}

// openStore opens the store at dsn (a read-only pool unless writable)
// and returns it with a function that closes it.
func openStore(ctx context.Context, dsn string, writable bool) (*sqlstore.Store, func(), error) {
	dsn = strings.TrimSpace(dsn)
	var (
		db      *sql.DB
		dialect = sqlstore.DialectOf(dsn)
		err     error
	)
	if dialect == sqlstore.Postgres {
		db, err = openPostgres(dsn, writable)
	} else {
		db, err = openSQLite(dsn, writable)
	}
	if err != nil {
		return nil, nil, err
	}
	s, err := sqlstore.OpenDB(ctx, db, dialect)
	if err != nil {
		_ = db.Close()
		return nil, nil, err
	}
	if err := checkSchema(ctx, db); err != nil {
		_ = s.Close()
		_ = db.Close()
		return nil, nil, err
	}
	return s, func() { _ = s.Close(); _ = db.Close() }, nil
}

// openGate opens a gate over the store at dsn, for the commands that act
// through one. Without signingKey it verifies with a throwaway key: such
// a gate only reads.
func openGate(ctx context.Context, dsn string, writable bool, signingKey ed25519.PrivateKey) (*approval.Gate, func(), error) {
	s, closeStore, err := openStore(ctx, dsn, writable)
	if err != nil {
		return nil, nil, err
	}
	cfg := approval.Config{
		Store:      s,
		SigningKey: signingKey,
		// No Channels and StoreOnly: the notices of a change (a cancel)
		// go to the store's outbox, for the gates that deliver.
		Delivery: approval.DeliveryConfig{StoreOnly: true},
		Logger:   slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	if signingKey == nil {
		pub, _, err := approval.GenerateKeys()
		if err != nil {
			closeStore()
			return nil, nil, err
		}
		cfg.VerifyKeys = []ed25519.PublicKey{pub}
	}
	g, err := approval.New(cfg)
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	return g, func() { _ = g.Close(context.Background()); closeStore() }, nil
}

// openSQLite opens a pool on an existing SQLite database file.
func openSQLite(dsn string, writable bool) (*sql.DB, error) {
	if rest, ok := strings.CutPrefix(dsn, "sqlite://"); ok {
		dsn = rest
	} else if rest, ok := strings.CutPrefix(dsn, "sqlite:"); ok {
		dsn = rest
	}
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	if path == "" || path == ":memory:" || strings.Contains(dsn, "mode=memory") {
		return nil, fmt.Errorf("-db %q is not a database file: an in-memory database holds nothing to read", dsn)
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("SQLite database %s does not exist", path)
		}
		return nil, fmt.Errorf("SQLite database: %w", err)
	}
	full := sqlstore.SQLiteDSN(dsn)
	if !writable {
		full += "&_pragma=query_only(1)"
	}
	return sql.Open("sqlite", full)
}

// openPostgres opens a pool on a PostgreSQL database, whose transactions
// are read-only unless writable.
func openPostgres(dsn string, writable bool) (*sql.DB, error) {
	if !writable {
		const param = "default_transaction_read_only"
		if strings.Contains(dsn, "://") {
			u, err := url.Parse(dsn)
			if err != nil {
				return nil, fmt.Errorf("invalid PostgreSQL URL: %w", err)
			}
			q := u.Query()
			q.Set(param, "on")
			u.RawQuery = q.Encode()
			dsn = u.String()
		} else {
			dsn += " " + param + "=on"
		}
	}
	return sql.Open("pgx", dsn)
}

// checkSchema fails unless the database holds a migrated approval schema:
// the commands read it as it is.
func checkSchema(ctx context.Context, db *sql.DB) error {
	var version int
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&version)
	if err == nil && version > 0 {
		return nil
	}
	return fmt.Errorf("the database holds no approval schema (schema_version: %v); this command does not create one: a gate's sqlstore.Open does", errOr(err, "empty"))
}

func errOr(err error, s string) any {
	if err != nil {
		return err
	}
	return s
}
