package sqlstore

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// commitDropper is a TCP proxy in front of a PostgreSQL server that, when
// armed, cuts the connection that is about to receive the server's answer
// to a COMMIT, after the server has committed: the client cannot know the
// outcome.
type commitDropper struct {
	dsn   string // a DSN that connects through the proxy
	armed atomic.Bool
	drops atomic.Int64
}

// startCommitDropper starts a proxy to the server and schema of dsn.
func startCommitDropper(t *testing.T, dsn string) *commitDropper {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	network, addr := "tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port)))
	if strings.HasPrefix(cfg.Host, "/") {
		network, addr = "unix", filepath.Join(cfg.Host, fmt.Sprintf(".s.PGSQL.%d", cfg.Port))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns sync.WaitGroup
	t.Cleanup(func() {
		_ = ln.Close()
		conns.Wait()
	})
	d := &commitDropper{}
	port := ln.Addr().(*net.TCPAddr).Port
	d.dsn = fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable search_path=%s",
		port, cfg.User, cfg.Database, cfg.RuntimeParams["search_path"])
	if cfg.Password != "" {
		d.dsn += " password=" + cfg.Password
	}
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			server, err := net.Dial(network, addr)
			if err != nil {
				_ = client.Close()
				continue
			}
			conns.Add(2)
			go func() {
				defer conns.Done()
				_, _ = io.Copy(server, client)
				_ = server.Close()
			}()
			go func() {
				defer conns.Done()
				d.forward(client, server)
				_ = client.Close()
			}()
		}
	}()
	return d
}

// forward copies the server's messages to the client, one by one (with
// sslmode=disable the server's side of the protocol is all typed
// messages), and stops before the answer to a COMMIT if armed.
func (d *commitDropper) forward(client, server net.Conn) {
	r := bufio.NewReader(server)
	header := make([]byte, 5)
	for {
		if _, err := io.ReadFull(r, header); err != nil {
			return
		}
		body := make([]byte, binary.BigEndian.Uint32(header[1:])-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if header[0] == 'C' && string(body) == "COMMIT\x00" && d.armed.CompareAndSwap(true, false) {
			d.drops.Add(1)
			_ = server.Close()
			return
		}
		if _, err := client.Write(append(header, body...)); err != nil {
			return
		}
	}
}

// TestGroupCommitOutcomeUnknown loses the answer to the COMMIT of a group
// of three appends, which the server did commit. Each caller must get an
// error saying the outcome is unknown, and the group must not run its
// writes again alone: that would append every event twice.
func TestGroupCommitOutcomeUnknown(t *testing.T) {
	t.Parallel()
	proxy := startCommitDropper(t, postgresDSN(t))
	s := open(t, proxy.dsn)
	ctx := t.Context()

	release := holdLead(t, s) // commits nothing: it sends no COMMIT
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		enqueue(t, &s.group, &wg, func() {
			errs[i] = s.AppendAudit(ctx, []approval.AuditEvent{event("", approval.EventRequestCreated, fmt.Sprintf("actor-%d", i))})
		})
	}
	proxy.armed.Store(true)
	release()
	wg.Wait()
	require.EqualValues(t, 1, proxy.drops.Load(), "the group's COMMIT answer was dropped")
	for i, err := range errs {
		require.ErrorIs(t, err, ErrOutcomeUnknown, "append %d", i)
	}

	trail := fullTrail(t, s)
	require.Len(t, trail, 3, "the group committed once and ran nothing again")
	require.NoError(t, approval.VerifyAuditChain(trail))
}

// TestCommitOutcomeUnknownAlone loses the answer to a lone write's
// COMMIT: its caller must learn that the outcome is unknown (here, the
// write did commit), not get a plain failure.
func TestCommitOutcomeUnknownAlone(t *testing.T) {
	t.Parallel()
	proxy := startCommitDropper(t, postgresDSN(t))
	s := open(t, proxy.dsn)
	proxy.armed.Store(true)
	err := s.AppendAudit(t.Context(), []approval.AuditEvent{event("", approval.EventRequestCreated, "alice")})
	require.ErrorIs(t, err, ErrOutcomeUnknown)
	require.EqualValues(t, 1, proxy.drops.Load())
	require.Len(t, fullTrail(t, s), 1)
}
