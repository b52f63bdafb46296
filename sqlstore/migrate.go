package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval/internal/pgpipe"
)

// migrationFiles holds the schema of each dialect as numbered SQL files,
// migrations/<dialect>/NNNN_name.sql, applied in order. A released file is
// never edited: a schema change is a new file.
//
//go:embed migrations
var migrationFiles embed.FS

// migration is one schema step.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations returns the steps of d in version order, checking that they
// are numbered 1, 2, 3... without gaps.
func migrations(d Dialect) ([]migration, error) {
	dir := path.Join("migrations", string(d))
	entries, err := fs.ReadDir(migrationFiles, dir)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: read embedded migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, _ := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migration %s/%s is not named NNNN_name.sql", dir, name)
		}
		b, err := fs.ReadFile(migrationFiles, path.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: read migration %s: %w", name, err)
		}
		ms = append(ms, migration{version: v, name: strings.TrimSuffix(name, ".sql"), sql: string(b)})
	}
	slices.SortFunc(ms, func(a, b migration) int { return a.version - b.version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("sqlstore: migration %s: want version %d", m.name, i+1)
		}
	}
	return ms, nil
}

// migrationLockKey is the first key of the PostgreSQL advisory lock held
// while migrating; the second is the hash of the schema being migrated, so
// stores in different schemas of one database migrate independently.
const migrationLockKey = 0x617070 // "app"

// Migrate brings the database schema up to date, applying each embedded
// migration newer than the version recorded in the schema_version table,
// all in one transaction. Open runs it; call it yourself after OpenDB.
//
// It is safe to run from several processes at once: PostgreSQL serialises
// them with an advisory lock held by the migration transaction, SQLite with
// an immediate transaction, and the later ones find nothing to do. It
// fails, changing nothing, if the database was migrated by a newer version
// of this package.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations(s.dialect)
	if err != nil {
		return err
	}
	apply := func(ctx context.Context, q querier) error {
		if s.dialect == Postgres {
			var schema sql.NullString
			if err := q.queryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
				return fmt.Errorf("read current_schema(): %w", err)
			}
			if !schema.Valid {
				return errors.New("no schema of the connection's search_path exists: create it (CREATE SCHEMA name) or fix search_path in the DSN")
			}
			if _, err := q.exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, migrationLockKey, schema.String); err != nil {
				return fmt.Errorf("take the migration lock: %w", err)
			}
		}
		if _, err := q.exec(ctx, s.schemaVersionDDL()); err != nil {
			return fmt.Errorf("create schema_version: %w", err)
		}
		var current int
		if err := q.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&current); err != nil {
			return fmt.Errorf("read schema_version: %w", err)
		}
		if current > len(ms) {
			return fmt.Errorf("the database schema is at version %d but this sqlstore knows only %d: upgrade github.com/signoff/approval in this program", current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := q.exec(ctx, m.sql); err != nil {
				return fmt.Errorf("apply %s: %w", m.name, err)
			}
			if _, err := q.exec(ctx, `INSERT INTO schema_version (version, name, applied_at) VALUES ($1, $2, $3)`,
				m.version, m.name, s.dialect.timeArg(time.Now())); err != nil {
				return fmt.Errorf("record %s: %w", m.name, err)
			}
		}
		return nil
	}
	if s.dialect == Postgres {
		// Without the audit chain's lock: the schema may not exist yet.
		err = pgpipe.Run(ctx, s.w, nil, func(tx *pgpipe.Tx) error { return apply(ctx, &pgQuerier{tx: tx}) })
	} else {
		err = s.sqliteTx(ctx, "BEGIN EXCLUSIVE", apply)
	}
	if err != nil {
		return fmt.Errorf("sqlstore: migrate %s schema: %w", s.dialect, err)
	}
	return nil
}

func (s *Store) schemaVersionDDL() string {
	if s.dialect == Postgres {
		return `CREATE TABLE IF NOT EXISTS schema_version (
    version    integer     NOT NULL PRIMARY KEY,
    name       text        NOT NULL,
    applied_at timestamptz NOT NULL
)`
	}
	return `CREATE TABLE IF NOT EXISTS schema_version (
    version    INTEGER NOT NULL PRIMARY KEY,
    name       TEXT    NOT NULL,
    applied_at INTEGER NOT NULL
) STRICT`
}
