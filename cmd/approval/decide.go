package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

// stdin is where decide reads its confirmation; tests replace it.
var stdin io.Reader = os.Stdin

// decideTimeout bounds each exchange with the server.
const decideTimeout = 30 * time.Second

// maxAnswerBytes bounds what decide reads of an answer: a request with its
// payload.
const maxAnswerBytes = 16 << 20

// runDecide is "approval decide": a reviewer's decision from a terminal,
// with the link they received. It shows the request as the API shows it
// to the link's holder, asks for confirmation, and sends the decision
// with the action hash it showed, so the vote binds what was on screen.
func runDecide(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) int {
	reason := fs.String("reason", "", "why, as the audit trail records it")
	approve := fs.Bool("approve", false, "approve (the link's verdict when neither -approve nor -deny is given)")
	deny := fs.Bool("deny", false, "deny")
	yes := fs.Bool("yes", false, "decide without asking for confirmation")
	if code := parse(fs, args); code >= 0 {
		return code
	}
	if fs.NArg() != 1 {
		return usageError(fs, "want exactly one LINK, the link the notification gave you")
	}
	if *approve && *deny {
		return usageError(fs, "-approve and -deny exclude each other")
	}
	link, err := parseLink(fs.Arg(0))
	if err != nil {
		return usageError(fs, "%v", err)
	}
	verdict := link.verdict
	switch {
	case *approve:
		verdict = "approve"
	case *deny:
		verdict = "deny"
	case verdict == "":
		return usageError(fs, "the link names no verdict: pass -approve or -deny")
	}
	if link.verdict != "" && link.verdict != verdict {
		return fail(stderr, exitUsage, fmt.Errorf("decide: the link's token is for %s, not %s: use the %s link", link.verdict, verdict, verdict))
	}

	ctx := context.Background()
	hc := &http.Client{Timeout: decideTimeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	shown, err := link.fetch(ctx, hc)
	if err != nil {
		return fail(stderr, exitFailed, fmt.Errorf("decide: %w", err))
	}
	printRequest(stdout, shown)
	if shown.Status != "pending" && shown.Status != "escalated" {
		return fail(stderr, exitFailed, fmt.Errorf("decide: request %s is %s: there is nothing to decide", shown.ID, shown.Status))
	}
	if !*yes {
		fmt.Fprintf(stderr, "%s request %s as shown above? [y/N] ", verdict, shown.ID)
		line, _ := bufio.NewReader(stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return fail(stderr, exitFailed, errors.New("decide: not confirmed; nothing was sent"))
		}
	}
	out, err := link.decide(ctx, hc, verdict, *reason, shown.boundHash())
	if err != nil {
		return fail(stderr, exitFailed, fmt.Errorf("decide: %w", err))
	}
	done := map[string]string{"approve": "approved", "deny": "denied"}[verdict]
	fmt.Fprintf(stdout, "%s: request %s is now %s\n", done, out.RequestID, out.Status)
	return exitOK
}

// reviewLink is a decision link: BASE/approvals/ID?verdict=V&token=T.
type reviewLink struct {
	base    *url.URL // the handler's root
	id      string
	verdict string
	token   string
}

// parseLink reads a decision link as a notification gives it.
func parseLink(s string) (reviewLink, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return reviewLink{}, errors.New("LINK must be the http(s) link of a notification")
	}
	i := strings.LastIndex(u.Path, "/approvals/")
	if i < 0 {
		return reviewLink{}, errors.New("LINK must be a review link (.../approvals/ID?verdict=...&token=...)")
	}
	id := u.Path[i+len("/approvals/"):]
	if id == "" || strings.Contains(id, "/") {
		return reviewLink{}, errors.New("LINK names no request")
	}
	q := u.Query()
	l := reviewLink{id: id, verdict: q.Get("verdict"), token: q.Get("token")}
	if l.token == "" {
		return reviewLink{}, errors.New("LINK carries no token: use the approve or deny link of a notification")
	}
	if l.verdict != "" && l.verdict != "approve" && l.verdict != "deny" {
		return reviewLink{}, fmt.Errorf("LINK's verdict %q is neither approve nor deny", l.verdict)
	}
	base := *u
	base.Path, base.RawPath, base.RawQuery, base.Fragment = u.Path[:i], "", "", ""
	l.base = &base
	return l, nil
}

// api returns the URL of an API path under the link's base.
func (l reviewLink) api(elem ...string) string {
	return l.base.JoinPath(append([]string{"api", "approvals", l.id}, elem...)...).String()
}

// shownRequest is what decide shows of a request: the fields of the API's
// request JSON a reviewer decides from.
type shownRequest struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	ActionHash string `json:"action_hash"`
	Action     struct {
		Name        string            `json:"name"`
		RequestedBy string            `json:"requested_by"`
		Initiator   string            `json:"initiator"`
		Message     string            `json:"message"`
		Risk        string            `json:"risk"`
		Tags        []string          `json:"tags"`
		Metadata    map[string]string `json:"metadata"`
		Cost        *struct {
			Amount   float64 `json:"amount"`
			Currency string  `json:"currency"`
		} `json:"cost"`
		shownPayload
	} `json:"action"`
	Edit *struct {
		shownPayload
		ActionHash string `json:"action_hash"`
		By         string `json:"by"`
	} `json:"edit"`
	Policies []struct {
		Name string `json:"name"`
	} `json:"policies"`
	Reason   string    `json:"reason"`
	Deadline time.Time `json:"deadline"`
	Redacted bool      `json:"redacted"`
}

// shownPayload is a payload in the API's form.
type shownPayload struct {
	JSON        json.RawMessage `json:"payload"`
	Text        *string         `json:"payload_text"`
	Base64      []byte          `json:"payload_base64"`
	PayloadSize int             `json:"payload_size"`
}

// boundHash is the action hash a vote binds: the edit's, once edited.
func (r *shownRequest) boundHash() string {
	if r.Edit != nil {
		return r.Edit.ActionHash
	}
	return r.ActionHash
}

// text returns the payload as the terminal shows it: JSON indented, text
// as itself, anything else in base64.
func (p *shownPayload) text() string {
	switch {
	case len(p.JSON) > 0:
		var b bytes.Buffer
		if json.Indent(&b, p.JSON, "  ", "  ") == nil {
			return b.String()
		}
		return string(p.JSON)
	case p.Text != nil:
		return *p.Text
	case p.Base64 != nil:
		return "(binary, base64) " + base64.StdEncoding.EncodeToString(p.Base64)
	case p.PayloadSize > 0:
		return fmt.Sprintf("(%d bytes, hidden by redaction)", p.PayloadSize)
	}
	return "(none)"
}

// printRequest shows r, in the order the review page does.
func printRequest(w io.Writer, r *shownRequest) {
	a := &r.Action
	fmt.Fprintf(w, "request   %s (%s)\n", r.ID, r.Status)
	fmt.Fprintf(w, "action    %s\n", clean(a.Name))
	fmt.Fprintf(w, "requester %s\n", clean(a.RequestedBy))
	if a.Initiator != "" {
		fmt.Fprintf(w, "for       %s\n", clean(a.Initiator))
	}
	if a.Message != "" {
		fmt.Fprintf(w, "why       %s\n", clean(a.Message))
	}
	if a.Cost != nil {
		fmt.Fprintf(w, "cost      %v %s\n", a.Cost.Amount, clean(a.Cost.Currency))
	}
	if a.Risk != "" {
		fmt.Fprintf(w, "risk      %s\n", clean(a.Risk))
	}
	if len(a.Tags) > 0 {
		fmt.Fprintf(w, "tags      %s\n", clean(strings.Join(a.Tags, ", ")))
	}
	for k, v := range a.Metadata {
		fmt.Fprintf(w, "meta      %s=%s\n", clean(k), clean(v))
	}
	for _, p := range r.Policies {
		fmt.Fprintf(w, "policy    %s\n", clean(p.Name))
	}
	if !r.Deadline.IsZero() {
		fmt.Fprintf(w, "deadline  %s\n", r.Deadline.Format(time.RFC3339))
	}
	if r.Edit != nil {
		fmt.Fprintf(w, "payload   (edited by %s; the vote binds this one)\n  %s\n", clean(r.Edit.By), clean(r.Edit.text()))
	} else {
		fmt.Fprintf(w, "payload\n  %s\n", clean(a.text()))
	}
	if r.Redacted {
		fmt.Fprintln(w, "          (some values are redacted)")
	}
	fmt.Fprintf(w, "binds     action %s\n", r.boundHash())
}

// clean keeps a terminal safe from what the requester wrote: control
// characters (escape sequences that could rewrite the screen) are shown
// as \x.. escapes; newlines and tabs stay.
func clean(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c == '\n' || c == '\t':
			b.WriteRune(c)
		case c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0):
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteRune(c)
		}
	}
	return b.String()
}

// fetch reads the request the link is for, as the API shows it to the
// link's holder.
func (l reviewLink) fetch(ctx context.Context, hc *http.Client) (*shownRequest, error) {
	u := l.api() + "?token=" + url.QueryEscape(l.token)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	var r shownRequest
	if err := exchange(hc, req, &r); err != nil {
		return nil, fmt.Errorf("read request %s: %w", l.id, err)
	}
	if r.ID != l.id {
		return nil, fmt.Errorf("read request %s: the server answered request %q", l.id, r.ID)
	}
	return &r, nil
}

// decided is the server's answer to a decision.
type decided struct {
	RequestID string `json:"request_id"`
	Status    string `json:"status"`
}

// decide posts the decision.
func (l reviewLink) decide(ctx context.Context, hc *http.Client, verdict, reason, actionHash string) (*decided, error) {
	body, err := json.Marshal(map[string]string{"token": l.token, "reason": reason, "action_hash": actionHash})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.api(verdict), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	var out decided
	if err := exchange(hc, req, &out); err != nil {
		return nil, fmt.Errorf("%s request %s: %w", verdict, l.id, err)
	}
	return &out, nil
}

// exchange sends req and decodes a 200 answer into out; any other answer
// is an error with the problem's title and detail (RFC 9457).
func exchange(hc *http.Client, req *http.Request, out any) error {
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var p struct {
			Title  string `json:"title"`
			Detail string `json:"detail"`
			Code   string `json:"code"`
		}
		if json.Unmarshal(data, &p) == nil && (p.Title != "" || p.Detail != "") {
			return fmt.Errorf("the server refused (%d %s): %s", resp.StatusCode, clean(p.Title), clean(p.Detail))
		}
		return fmt.Errorf("the server answered %s", resp.Status)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("unreadable answer: %w", err)
	}
	return nil
}
