// Command approval is the operator's tool for an approval gate: it makes
// signing keys, verifies approval artifacts and audit trails offline, and
// lists the queue and the notification outbox of a SQL store.
//
// Usage:
//
//	approval keygen -out key.pem [-pub key.pub.pem]
//	approval verify-artifact -artifact art.json -action action.json -key key.pub.pem [-key ...] [-at RFC3339]
//	approval verify-audit -db DSN [-expect-head SEQ:HASH]
//	approval list -db DSN [-status pending,escalated] [-limit 50]
//	approval show -db DSN ID
//	approval outbox -db DSN [-dead] [-limit 100]
//	approval redrive -db DSN -actor NAME [ID ...]
//
// Run "approval help COMMAND" for a command's flags.
//
// DSN is a SQLite database file path (or a file: or sqlite: URI) or a
// PostgreSQL URL (postgres://..., postgres:///dbname?host=/socket/dir, or a
// libpq key=value string), as sqlstore.Open takes it. The command never
// creates a database nor migrates its schema: it opens the store with
// sqlstore.OpenDB, which leaves the schema alone, and the commands other
// than redrive open it read-only.
//
// Exit status: 0 when the command succeeded; 1 when a verification failed
// or what was asked for does not exist; 2 for a usage error or an input
// that cannot be read (a file, the database).
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1 // verification failed, not found
	exitUsage  = 2 // bad flags, unreadable input
)

// command is one subcommand.
type command struct {
	name    string
	args    string // the synopsis after the name
	summary string
	// run parses args with fs (already named) and runs the command.
	run func(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int
}

var commands []command

func init() {
	// Assigned here, not in the declaration, because help refers to the
	// list.
	commands = []command{
		{"keygen", "-out key.pem [-pub key.pub.pem]", "write a new Ed25519 signing key and its public key", runKeygen},
		{"verify-artifact", "-artifact art.json -action action.json -key key.pub.pem [-key ...] [-at RFC3339]", "verify an approval artifact against the action about to run", runVerifyArtifact},
		{"verify-audit", "-db DSN [-expect-head SEQ:HASH]", "verify the hash chain of a store's audit trail", runVerifyAudit},
		{"list", "-db DSN [-status pending,...] [-limit 50]", "list requests, oldest first", runList},
		{"show", "-db DSN ID", "print one request and its audit events as JSON", runShow},
		{"outbox", "-db DSN [-dead] [-limit 100]", "list the notification outbox", runOutbox},
		{"redrive", "-db DSN -actor NAME [ID ...]", "send dead-lettered notifications again (all of them without IDs)", runRedrive},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return exitUsage
	}
	name, rest := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(rest) == 0 {
			usage(stdout)
			return exitOK
		}
		c := lookup(rest[0])
		if c == nil {
			fmt.Fprintf(stderr, "approval: unknown command %q\n", rest[0])
			usage(stderr)
			return exitUsage
		}
		fs := c.flagSet(stdout)
		c.run(fs, []string{"-h"}, stdout, stdout)
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "approval: unknown command %q\n", name)
		usage(stderr)
		return exitUsage
	}
	return c.run(c.flagSet(stderr), rest, stdout, stderr)
}

func lookup(name string) *command {
	for i := range commands {
		if commands[i].name == name {
			return &commands[i]
		}
	}
	return nil
}

// flagSet returns the command's empty FlagSet, writing its usage to w.
func (c *command) flagSet(w io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	fs.SetOutput(w)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: approval %s %s\n\n%s.\n", c.name, c.args, c.summary)
		if doc := commandDoc[c.name]; doc != "" {
			fmt.Fprintf(fs.Output(), "\n%s\n", doc)
		}
		fmt.Fprintf(fs.Output(), "\nflags:\n")
		fs.PrintDefaults()
	}
	return fs
}

// commandDoc holds the longer help of the commands that need one.
var commandDoc = map[string]string{
	"verify-artifact": `Exits 0 and prints the approval when the artifact verifies; exits 1 with the
reason when it does not (malformed, unknown key, bad signature, expired,
another action or payload). A -key may be a public key (PKIX PEM) or a
private key (PKCS#8 PEM), whose public half is used.`,
	"verify-audit": `Reads the whole trail and checks its hash chain from the first event.
Prints "verified N events; head SEQ HASH". Removing the newest events leaves
a valid shorter chain: save the head, and pass it later with -expect-head,
which fails if the trail now ends before SEQ or its event SEQ has another
hash. The database is opened read-only and its schema is not migrated.`,
	"redrive": `Makes dead letters pending and due now, with their attempts counted from
zero, and audits notification.redriven with -actor. A gate delivering from
the store's outbox sends them; this command sends nothing itself.`,
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "usage: approval COMMAND [flags]\n\ncommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-16s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun \"approval help COMMAND\" or \"approval COMMAND -h\" for a command's flags.\n")
	fmt.Fprintf(w, "Exit status: 0 ok, 1 verification failed or not found, 2 usage error or unreadable input.\n")
}

// parse parses args with fs and returns the exit code to stop with, or -1
// to go on: 0 after -h, exitUsage after a bad flag (the flag package has
// printed why).
func parse(fs *flag.FlagSet, args []string) int {
	switch err := fs.Parse(args); {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err != nil:
		return exitUsage
	}
	return -1
}

// parseStore parses a store command's flags: -db is required, and the
// command takes no arguments unless takesArgs. It returns an exit code, or
// -1 to go on.
func parseStore(fs *flag.FlagSet, args []string, dsn *string, takesArgs bool) int {
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if !takesArgs && fs.NArg() > 0 {
		return usageError(fs, "unexpected argument %q", fs.Arg(0))
	}
	if *dsn == "" {
		return usageError(fs, "-db is required")
	}
	return -1
}

// usageError prints a usage error and the command's usage, and returns
// exitUsage.
func usageError(fs *flag.FlagSet, format string, a ...any) int {
	fmt.Fprintf(fs.Output(), "approval %s: %s\n", fs.Name(), fmt.Sprintf(format, a...))
	fs.Usage()
	return exitUsage
}

// fail prints err to w, prefixed with "approval: " unless it already is,
// and returns code.
func fail(w io.Writer, code int, err error) int {
	msg := err.Error()
	if !strings.HasPrefix(msg, "approval: ") {
		msg = "approval: " + msg
	}
	fmt.Fprintln(w, msg)
	return code
}

// bare returns err's message without the "approval: " a library error
// starts with, to follow a context of the command's own.
func bare(err error) string { return strings.TrimPrefix(err.Error(), "approval: ") }

// required reports the first of the named flags left empty, or "".
func required(fs *flag.FlagSet, names ...string) string {
	for _, n := range names {
		if fs.Lookup(n).Value.String() == "" {
			return n
		}
	}
	return ""
}

// listFlag is a flag that may be repeated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	*l = append(*l, v)
	return nil
}
