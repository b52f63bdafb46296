package sqlstore

import (
	"errors"

	"github.com/signoff/approval/internal/groupcommit"
)

// Sentinel errors of the SQL store, beside the approval package's own
// (approval.ErrNotFound, approval.ErrConflict, approval.ErrTokenUsed,
// approval.ErrInvalidCursor), which the store's errors wrap where the Store
// contract names them.
var (
	// ErrBusy is wrapped by the errors of SQLite writes that gave up because
	// another connection or process held the database's write lock for longer
	// than the busy timeout (see BusyTimeout). Nothing was written; the call
	// may be retried.
	ErrBusy = errors.New("database is busy")

	// ErrOutcomeUnknown is wrapped by the error of a write whose COMMIT was
	// sent but whose answer never came back: the connection failed, or the
	// context ended while it was in flight, so the write may have been
	// committed. Read the state back before acting on it: a decision retried
	// with the same token is refused with approval.ErrTokenUsed if the first
	// attempt did commit. The writes that shared its transaction (see Group
	// commit in the package documentation) fail with it too, and are not run
	// again, since that could apply them twice.
	ErrOutcomeUnknown = groupcommit.ErrOutcomeUnknown

	// ErrInvalidText is wrapped by the error of a write holding a string that
	// is not valid UTF-8, or, on PostgreSQL, a NUL byte in a column of its own
	// (an ID, a requester, an event's type or actor, a policy or approver
	// name). The store could not give it back exactly: the JSON of a body
	// column replaces such bytes with U+FFFD, so the request read back would
	// differ from the one written, and an audit event would no longer match
	// the hash sealed over its original text, breaking the chain for good;
	// PostgreSQL text holds no NUL. Nothing is written.
	ErrInvalidText = errors.New("text that cannot be stored exactly (not valid UTF-8, or a NUL byte on PostgreSQL)")
)
