package pgtest

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
)

// CommitDropper is a TCP proxy in front of a PostgreSQL server that, once
// armed, cuts the connection that is about to receive the server's answer
// to a COMMIT, after the server has committed: the client cannot know the
// outcome. It is safe for concurrent use.
type CommitDropper struct {
	// DSN connects through the proxy, to the server, database and schema
	// of the DSN the proxy was started for.
	DSN   string
	armed atomic.Bool
	drops atomic.Int64
}

// Arm makes the proxy drop the next COMMIT answer it sees.
func (d *CommitDropper) Arm() { d.armed.Store(true) }

// Drops returns how many COMMIT answers the proxy has dropped.
func (d *CommitDropper) Drops() int64 { return d.drops.Load() }

// NewCommitDropper starts a proxy to the server and schema of dsn, stopped
// when the test ends.
func NewCommitDropper(t testing.TB, dsn string) *CommitDropper {
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
	d := &CommitDropper{}
	port := ln.Addr().(*net.TCPAddr).Port
	d.DSN = fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=disable search_path=%s",
		port, cfg.User, cfg.Database, cfg.RuntimeParams["search_path"])
	if cfg.Password != "" {
		d.DSN += " password=" + cfg.Password
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
func (d *CommitDropper) forward(client, server net.Conn) {
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
