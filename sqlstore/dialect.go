package sqlstore

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Dialect names the SQL database behind a Store.
type Dialect string

// Supported dialects.
const (
	// SQLite is an embedded database file, through modernc.org/sqlite (pure
	// Go, no cgo). The driver registers itself as "sqlite".
	SQLite Dialect = "sqlite"
	// Postgres is a PostgreSQL server (11 or later; tested with 15), through pgx's
	// database/sql driver, registered as "pgx".
	Postgres Dialect = "postgres"
)

// driverName returns the database/sql driver name of d.
func (d Dialect) driverName() string {
	if d == Postgres {
		return "pgx"
	}
	return "sqlite"
}

func (d Dialect) valid() bool { return d == SQLite || d == Postgres }

// DialectOf returns the dialect Open picks for dsn: Postgres for a URL with
// the postgres:// or postgresql:// scheme, or for a libpq key=value string
// with a host= or dbname= key; SQLite for anything else, which is then a
// file path or a file: URI.
func DialectOf(dsn string) Dialect {
	s := strings.TrimSpace(dsn)
	lower := strings.ToLower(s)
	if strings.HasPrefix(lower, "postgres://") || strings.HasPrefix(lower, "postgresql://") {
		return Postgres
	}
	if strings.HasPrefix(lower, "file:") {
		return SQLite
	}
	for _, f := range strings.Fields(s) {
		if strings.HasPrefix(f, "host=") || strings.HasPrefix(f, "dbname=") {
			return Postgres
		}
	}
	return SQLite
}

// timeArg converts a time to the column representation of d: SQLite keeps
// Unix microseconds in an INTEGER, PostgreSQL a timestamptz (which also
// has microsecond precision). The zero time is NULL.
func (d Dialect) timeArg(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	t = utcMicro(t)
	if d == Postgres {
		return t
	}
	return t.UnixMicro()
}

// timeValue is timeArg for a NOT NULL column: the zero time is stored as
// itself (0001-01-01), not as NULL.
func (d Dialect) timeValue(t time.Time) any {
	t = utcMicro(t)
	if d == Postgres {
		return t
	}
	return t.UnixMicro()
}

// boundArg converts a query bound to a column value, rounding up to the
// next microsecond: stored times are whole microseconds, so "at >= t" and
// "at < t" then select exactly the times that compare so with t itself.
func (d Dialect) boundArg(t time.Time) any {
	if u := utcMicro(t); u.Before(t) {
		t = u.Add(time.Microsecond)
	}
	return d.timeValue(d.clamp(t))
}

// The range of times each dialect's columns hold: SQLite's Unix
// microseconds in an int64, PostgreSQL's timestamptz.
var (
	sqliteMinTime   = time.UnixMicro(math.MinInt64).UTC()
	sqliteMaxTime   = time.UnixMicro(math.MaxInt64).UTC()
	postgresMinTime = time.Date(-4713, time.November, 24, 0, 0, 0, 0, time.UTC)
	postgresMaxTime = time.Date(294276, time.December, 31, 23, 59, 59, 999999000, time.UTC)
)

// clamp brings a query bound into the range of d's columns, so that a
// bound beyond it (time.Unix(1<<62, 0) as an open end, say) compares as
// it should with every stored time rather than overflowing.
func (d Dialect) clamp(t time.Time) time.Time {
	lo, hi := sqliteMinTime, sqliteMaxTime
	if d == Postgres {
		lo, hi = postgresMinTime, postgresMaxTime
	}
	switch {
	case t.Before(lo):
		return lo
	case t.After(hi):
		return hi
	}
	return t
}

// canHold reports whether a text column of d can hold s, so that a lookup
// or filter by s can match at all. No store holds a string that is not
// valid UTF-8 (see ErrInvalidText), and PostgreSQL holds no NUL bytes;
// PostgreSQL also refuses such a string as a query parameter.
func (d Dialect) canHold(s string) bool {
	return utf8.ValidString(s) && (d != Postgres || strings.IndexByte(s, 0) < 0)
}

// utcMicro returns t in UTC truncated to microseconds, the precision the
// store keeps (see approval.AuditEvent.At).
func utcMicro(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// forUpdate is the row-lock suffix of a SELECT: PostgreSQL locks the rows
// it reads; SQLite has no row locks and needs none, because its write
// transactions are immediate and so already exclusive.
func (d Dialect) forUpdate() string {
	if d == Postgres {
		return " FOR UPDATE"
	}
	return ""
}

// placeholders appends "$from, $from+1, ..., $from+n-1" to b. Both drivers
// accept $N: pgx natively, modernc.org/sqlite by ordinal.
func placeholders(b *strings.Builder, from, n int) {
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(from + i))
	}
}

// SQLite result codes the store tells apart (https://sqlite.org/rescode.html).
const (
	sqliteBusy             = 5
	sqliteLocked           = 6
	sqliteConstraintPK     = 1555
	sqliteConstraintUnique = 2067
)

// PostgreSQL SQLSTATEs the store tells apart.
const (
	pgUniqueViolation      = "23505"
	pgSerializationFailure = "40001"
	pgDeadlockDetected     = "40P01"
	// pgBadText is character_not_in_repertoire: text PostgreSQL cannot
	// hold, such as a NUL byte.
	pgBadText = "22021"
)

// isBadText reports whether err is PostgreSQL refusing a text value.
func isBadText(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == pgBadText
}

// isUniqueViolation reports whether err is a unique or primary key
// constraint violation in either dialect.
func isUniqueViolation(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() == sqliteConstraintUnique || se.Code() == sqliteConstraintPK
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == pgUniqueViolation
}

// isBusy reports whether err is SQLite's SQLITE_BUSY or SQLITE_LOCKED, in
// any of their extended forms: another connection held the lock for longer
// than the busy timeout.
func isBusy(err error) bool {
	var se *sqlite.Error
	if !errors.As(err, &se) {
		return false
	}
	c := se.Code() & 0xff
	return c == sqliteBusy || c == sqliteLocked
}

// isRetryable reports whether err aborted a PostgreSQL transaction that can
// safely be run again from the start.
func isRetryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == pgSerializationFailure || pe.Code == pgDeadlockDetected)
}

// wrapBusy adds ErrBusy and advice to a SQLITE_BUSY error.
func (s *Store) wrapBusy(err error) error {
	if !isBusy(err) {
		return err
	}
	if !s.own {
		return fmt.Errorf("%w: another connection held the write lock for longer than the busy timeout (raise _pragma=busy_timeout in the pool's DSN): %w",
			ErrBusy, err)
	}
	return fmt.Errorf("%w: another connection held the write lock for over %s (raise it with sqlstore.BusyTimeout): %w",
		ErrBusy, s.cfg.busyTimeout, err)
}
