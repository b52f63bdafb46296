// Command approval is the operator's tool for an approval gate: it makes
// signing keys, verifies approval artifacts and audit trails offline,
// signs checkpoints of a trail, and lists the queue and the notification
// outbox of a SQL store.
//
// Usage:
//
//	approval keygen -out key.pem [-pub key.pub.pem]
//	approval verify-artifact -artifact art.json -action action.json -key key.pub.pem [-key ...] [-at RFC3339]
//	approval verify-audit -db DSN [-key key.pub.pem ...] [-expect-head SEQ:HASH ...] [-from SEQ:HASH]
//	approval checkpoint -db DSN -key key.pem
//	approval list -db DSN [-status pending,escalated] [-limit 50]
//	approval show -db DSN ID
//	approval outbox -db DSN [-dead] [-limit 100]
//	approval redrive -db DSN -actor NAME [ID ...]
//	approval cancel (-url URL [-header 'Name: value'] | -db DSN -actor NAME) -reason TEXT ID
//	approval decide [-approve|-deny] [-reason TEXT] [-yes] LINK
//
// Run "approval help COMMAND" for a command's flags.
//
// DSN is a SQLite database file path (or a file: or sqlite: URI) or a
// PostgreSQL URL (postgres://..., postgres:///dbname?host=/socket/dir, or a
// libpq key=value string), as sqlstore.Open takes it. The command never
// creates a database nor migrates its schema: it opens the store with
// sqlstore.OpenDB, which leaves the schema alone, and the commands other
// than checkpoint, redrive and cancel open it read-only.
//
// An audit trail is checked in two steps: checkpoint, run now and then
// with the gate's private key, signs the head of the trail and prints it;
// keep that head outside the database. verify-audit, with the public key
// and the kept heads, then fails for a trail edited, re-sealed (its hashes
// recomputed after an edit), truncated or rewritten since, and for a
// stored request the trail does not account for. On a terminal it shows
// its progress on stderr. A nightly run can start from the head the last
// run printed (-from), checking the events since and the requests made
// since; a run from the start checks the rest.
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
		{"verify-audit", "-db DSN [-key key.pub.pem ...] [-expect-head SEQ:HASH ...] [-from SEQ:HASH]", "verify a store's audit trail: hash chain, checkpoints, saved heads, requests", runVerifyAudit},
		{"checkpoint", "-db DSN -key key.pem", "sign the head of a store's audit trail, and print it to keep elsewhere", runCheckpoint},
		{"list", "-db DSN [-status pending,...] [-limit 50]", "list requests, oldest first", runList},
		{"show", "-db DSN ID", "print one request and its audit events as JSON", runShow},
		{"outbox", "-db DSN [-dead] [-limit 100]", "list the notification outbox", runOutbox},
		{"redrive", "-db DSN -actor NAME [ID ...]", "send dead-lettered notifications again (all of them without IDs)", runRedrive},
		{"cancel", "(-url URL [-header 'Name: value'] | -db DSN -actor NAME) -reason TEXT ID", "end an open or approved request as an operator, audited with the operator", runCancel},
		{"decide", "[-approve|-deny] [-reason TEXT] [-yes] LINK", "decide a request from a terminal, with the link a notification gave you", runDecide},
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
	"cancel": `Ends a request that is open or approved and not yet used: it becomes
cancelled, audited as request.cancelled with the operator and -reason.

With -url, through the review pages' API (POST /api/approvals/ID/cancel): the
server names the operator from the credentials the -header flags carry (its
Options.Identity, and Options.Operator must name them an operator); the command
cannot name anyone. With -db, on the store itself, as -actor: for whoever
holds the database's credentials. Either way its approvers and requester are
told through the outbox (a gate that delivers sends the notices) and its Wait
callers wake. Exits 1 if the server refused, no request has the ID or it has
already ended.`,
	"decide": `LINK is the approve or deny link a notification gave you
(https://.../approvals/ID?verdict=approve&token=...). decide reads the request
through the server's API with the link's token, shows it (the action, who
asks and why, the payload the vote binds, its action hash), asks "approve ...
as shown above? [y/N]" unless -yes, and posts the decision with the action
hash it showed: if the request changed since (an approver edited its
payload), the server refuses the vote and nothing is counted. The token is
yours alone and works once: decide never makes a token, so it can decide only
as the person the link was sent to. Exits 0 once the server recorded the
vote, 1 if it refused or you did not confirm, 2 for a malformed link.`,
	"verify-artifact": `Exits 0 and prints the approval when the artifact verifies; exits 1 with the
reason when it does not (malformed, unknown key, bad signature, expired,
another action or payload). A -key may be a public key (PKIX PEM) or a
private key (PKCS#8 PEM), whose public half is used.`,
	"verify-audit": `Reads the whole trail and checks, from the first event: its hash chain;
every checkpoint (a signature of the trail's head, see checkpoint): that the
event it signed still has the hash it signed, and the signature, with the
-key public keys; each -expect-head; and every stored request against the
events that explain its state, which a request row written around the gate
lacks.

Whoever can write the database can edit an event and recompute every hash
after it: the chain still verifies, but a later checkpoint does not. Deleting
the checkpoints too, or the newest events, leaves a valid chain: keep a head
outside the database (checkpoint's, or one printed here) and pass it later
with -expect-head, which fails if the trail now ends before SEQ (truncated)
or its event SEQ has another hash (rewritten).

Without -key, the checkpoints' signatures are not checked (each must still
sign an event of the chain) and a warning on stderr says how many; with
-key, a checkpoint by any other key fails.

Prints "verified N events; head SEQ HASH", then the checkpoints, requests
and saved heads checked. Exits 1 with the first failure. The database is
opened read-only and its schema is not migrated.`,
	"checkpoint": `Signs the head of the trail with -key, a private key (the gate's own, or one
kept for checkpoints: verify-audit needs its public half), appends the
signature as an audit.checkpoint event, and prints "checkpoint SEQ:HASH",
the head of that event. Keep the head outside the database (write-once
storage, a ticket, another system) and pass it to verify-audit -expect-head
later. The trail is not verified first: run verify-audit before, to sign
only a trail that verifies. Opens the database writable.`,
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
