package sqlstore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/pgpipe"
	"github.com/signoff/approval/internal/testsignal"
)

var _ approval.ResolutionNotifier = (*Store)(nil)

// SubscribeResolved implements approval.ResolutionNotifier, so that
// Gate.Wait wakes as soon as the request it waits for is decided. An
// Update through this Store that moves the request out of the open states
// wakes the subscription once it has committed. On PostgreSQL, so does
// such an Update through any Store on the same database and schema, in any
// process: the Update sends a notification (pg_notify) in its
// transaction, which PostgreSQL delivers when, and only if, it commits,
// and the Store listens for them on a connection of its own (see Listen).
// That connection is opened at the first subscription and kept until
// Close; after it is lost, the Store reconnects with exponential backoff
// (50ms to 10s), and each time it begins to listen it wakes every
// subscription, since a notification may have been missed meanwhile. On
// SQLite, only this Store's own Updates wake it: Wait sees those of other
// processes at its next poll.
//
// A subscription costs a map entry until stopped; notifications for
// requests nobody waits for cost the listener a map lookup.
func (s *Store) SubscribeResolved(id string) (<-chan struct{}, func()) {
	ch, stop := s.watch.Add(id)
	if s.listen != nil {
		s.listen.start()
	}
	return ch, stop
}

// resolvedChannel begins the name of the PostgreSQL notification channel
// on which Updates that resolve a request notify; the name of the schema
// the Store's tables are in follows, so that stores in different schemas
// of one database do not hear each other.
const resolvedChannel = "approval_resolved"

// maxChannelBytes is PostgreSQL's longest identifier: pg_notify refuses a
// longer channel name.
const maxChannelBytes = 63

// maxPayloadBytes is the longest payload PostgreSQL's NOTIFY takes.
const maxPayloadBytes = 7999

// channelName returns the notification channel of the stores whose tables
// are in schema ("" if none of the search_path exists).
func channelName(schema string) string {
	if schema == "" {
		return resolvedChannel
	}
	name := resolvedChannel + ":" + schema
	if len(name) > maxChannelBytes {
		sum := sha256.Sum256([]byte(schema))
		name = resolvedChannel + ":" + hex.EncodeToString(sum[:20])
	}
	return name
}

// setChannel names the notification channel of a PostgreSQL Store after
// the schema its pool's connections use.
func (s *Store) setChannel(ctx context.Context) error {
	var schema sql.NullString
	if err := s.r.QueryRowContext(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
		return err
	}
	s.channel = channelName(schema.String)
	return nil
}

// notifyResolved sends, in Update's transaction, the notification that
// request id left the open states: PostgreSQL delivers it to every
// listening Store when the transaction commits, and drops it if it does
// not (a write of a group rolled back to its savepoint sends nothing: its
// deferred statements are dropped). It travels with COMMIT, so it costs no
// round trip. An ID too long for a payload is sent as an empty payload,
// which wakes every subscription. SQLite sends nothing: Update wakes this
// Store's own subscriptions after the commit.
func (s *Store) notifyResolved(ctx context.Context, q querier, id string) error {
	if s.dialect != Postgres {
		return nil
	}
	payload := id
	if len(payload) > maxPayloadBytes {
		payload = ""
	}
	return q.execLast(ctx, "notify waiters", `SELECT pg_notify($1, $2)`, s.channel, payload)
}

// Timings of a listener.
const (
	// listenPing is how long the listening connection may be silent before
	// the listener checks it with a ping, so that a connection that died
	// without a word (a network partition) is noticed and replaced.
	listenPing = 30 * time.Second
	// listenPingTimeout bounds that ping.
	listenPingTimeout = 10 * time.Second
)

// listener listens for a PostgreSQL Store's notification channel on a
// connection of its own and wakes the Store's subscriptions (see
// SubscribeResolved). It starts at the first subscription and runs until
// close.
type listener struct {
	s *Store
	// ping is how long the connection may be silent before a ping
	// (listenPing; tests shorten it).
	ping time.Duration

	started atomic.Bool
	mu      sync.Mutex
	closed  bool
	cancel  context.CancelFunc
	done    chan struct{}

	// pid is the server process of the listening connection, 0 while
	// there is none; listens counts the connections that began to
	// listen. For tests.
	pid     atomic.Uint32
	listens atomic.Int64
	// pinged is sent, for tests, the outcome of each ping; delivered
	// the payload of each notification, once its subscriptions are woken.
	pinged    testsignal.Signal[error]
	delivered testsignal.Signal[string]
}

func newListener(s *Store) *listener { return &listener{s: s, ping: listenPing} }

// start starts the listener unless it has started or is closed.
func (l *listener) start() {
	if l.started.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.started.Load() {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	l.started.Store(true)
	go l.run(ctx)
}

// close stops the listener, if it runs, and waits for it to end; the
// listener closes its connection on its way out.
func (l *listener) close() {
	l.mu.Lock()
	l.closed = true
	cancel, done := l.cancel, l.done
	l.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
}

// run listens, and again after each lost connection, until ctx ends.
func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	bo := &backoff.ExponentialBackOff{
		InitialInterval:     50 * time.Millisecond,
		RandomizationFactor: 0.5,
		Multiplier:          2,
		MaxInterval:         10 * time.Second,
	}
	for {
		if l.listen(ctx) {
			bo.Reset()
		}
		t := time.NewTimer(bo.NextBackOff())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// listen opens a connection, listens on it and wakes the subscriptions
// for each notification until the connection fails or ctx ends. It
// reports whether it began to listen.
func (l *listener) listen(ctx context.Context) bool {
	conn, err := l.connect(ctx)
	if err != nil {
		return false
	}
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_ = conn.Close(cctx)
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.s.channel}.Sanitize()); err != nil {
		return false
	}
	// Notifications sent while nothing listened are lost: every waiter
	// reads its request again.
	l.s.watch.WakeAll()
	l.pid.Store(conn.PgConn().PID())
	defer l.pid.Store(0)
	l.listens.Add(1)
	for {
		wctx, cancel := context.WithTimeout(ctx, l.ping)
		_, err := conn.WaitForNotification(wctx) // see connect's OnNotification
		cancel()
		switch {
		case err == nil:
		case ctx.Err() != nil || conn.IsClosed() || wctx.Err() == nil:
			return true
		default:
			// Silent for l.ping: make sure the connection still works.
			pctx, cancel := context.WithTimeout(ctx, listenPingTimeout)
			err := conn.Ping(pctx)
			cancel()
			l.pinged.Signal(err)
			if err != nil {
				return true
			}
		}
	}
}

// connect opens a connection with the settings of the Store's pool's (the
// server, credentials, TLS and search_path), taken afresh from one of them
// each time, outside the pool, so that it holds none of the pool's
// connections.
func (l *listener) connect(ctx context.Context) (*pgx.Conn, error) {
	var cfg *pgx.ConnConfig
	err := pgpipe.Raw(ctx, l.s.r, func(c *pgx.Conn) error {
		cfg = c.Config()
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The pool's connection's handler would buffer the notifications on
	// that connection: deliver them here instead, as they arrive (during
	// a ping too).
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) { l.deliver(n.Payload) }
	return pgx.ConnectConfig(ctx, cfg)
}

// deliver wakes the subscriptions of the request a notification names,
// or every subscription for an empty payload (see notifyResolved).
func (l *listener) deliver(payload string) {
	if payload == "" {
		l.s.watch.WakeAll()
	} else {
		l.s.watch.Wake(payload)
	}
	l.delivered.Signal(payload)
}
