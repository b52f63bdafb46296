package approvalhttp

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/signoff/approval"
)

// ErrUnverified: the server answered that an action is approved, but the
// Client could not verify the approval artifact that proves it (missing,
// altered, signed by another key, of another action or request, expired).
// Guard then returns StatusDenied. The error wraps the artifact's own
// sentinel too (approval.ErrArtifactSignature...), when there is one.
var ErrUnverified = errors.New("approval not verified")

// ClientOptions configures a Client.
type ClientOptions struct {
	// Keys are the gate's public keys (of its Config.SigningKey and any
	// VerifyKeys still in use), to verify approval artifacts with. At
	// least one is required.
	Keys []ed25519.PublicKey
	// Authorize sets the caller's credentials on each request (an
	// Authorization header, say), for the server's Options.Authenticate
	// to read: the identity it returns is the requester of every action
	// this Client guards, and the only one whose requests it may wait on.
	// An error fails the call. Defaults to nil: no credentials.
	Authorize func(*http.Request) error
	// RequireArtifact makes Guard refuse (StatusDenied, ErrUnverified)
	// an approval that comes without an artifact, including the one for
	// an action no policy matched, which the gate approves without
	// anyone's signature. Set it where the server is not trusted to say
	// that nothing needs approval, and give the gate a Config.Default
	// policy so that every action has a request. Defaults to false.
	RequireArtifact bool
	// HTTPClient sends the requests. Its Timeout, if set, must exceed
	// WaitTimeout. Defaults to http.DefaultClient.
	HTTPClient *http.Client
	// Timeout bounds each exchange with the server; a Wait poll gets
	// WaitTimeout more. Defaults to 30s.
	Timeout time.Duration
	// WaitTimeout is how long each poll of Wait asks the server to hold
	// the request (the server cuts it to its Options.MaxWait). Polls are
	// at least a second apart, or WaitTimeout if that is shorter.
	// Defaults to DefaultWaitTimeout.
	WaitTimeout time.Duration
	// Now is the clock against which artifacts' expiry is checked.
	// Defaults to time.Now.
	Now func() time.Time
}

// DefaultClientTimeout is the default of ClientOptions.Timeout.
const DefaultClientTimeout = 30 * time.Second

// maxResponseBytes bounds what the Client reads of an answer: a request
// with its payload, or an artifact.
const maxResponseBytes = 16 << 20

// Client gates actions through a remote server that serves New's handler:
// for a process that runs actions (an agent runtime, a worker) without
// the gate's store. It calls POST /api/approvals, GET
// /api/approvals/{id}/wait and GET /api/approvals/{id}/artifact, and
// verifies every approval artifact against the action and
// ClientOptions.Keys before it reports an approval. A Client is safe for
// concurrent use. The zero value is not usable: create it with NewClient.
type Client struct {
	base        *url.URL
	hc          *http.Client
	authorize   func(*http.Request) error
	keys        []ed25519.PublicKey
	requireArt  bool
	timeout     time.Duration
	waitTimeout time.Duration
	now         func() time.Time
}

// NewClient returns a Client of the handler served at baseURL (its root,
// with any mount prefix: "https://ops.example.com/review"). It reports an
// error if baseURL is not an absolute http or https URL, if opts.Keys has
// no valid key, or if a duration is negative or leaves no room for a
// Wait poll.
func NewClient(baseURL string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("approvalhttp: NewClient: base URL %q is not an absolute http or https URL without query", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	if len(opts.Keys) == 0 {
		return nil, errors.New("approvalhttp: NewClient: ClientOptions.Keys is empty (give the gate's public keys, to verify approval artifacts)")
	}
	for _, k := range opts.Keys {
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("approvalhttp: NewClient: ClientOptions.Keys: a key of %d bytes is not an Ed25519 public key", len(k))
		}
	}
	if opts.Timeout < 0 || opts.WaitTimeout < 0 {
		return nil, errors.New("approvalhttp: NewClient: Timeout and WaitTimeout must not be negative")
	}
	c := &Client{
		base: u, hc: opts.HTTPClient, authorize: opts.Authorize,
		keys: append([]ed25519.PublicKey(nil), opts.Keys...), requireArt: opts.RequireArtifact,
		timeout: opts.Timeout, waitTimeout: opts.WaitTimeout, now: opts.Now,
	}
	if c.hc == nil {
		c.hc = http.DefaultClient
	}
	if c.timeout == 0 {
		c.timeout = DefaultClientTimeout
	}
	if c.waitTimeout == 0 {
		c.waitTimeout = DefaultWaitTimeout
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.hc.Timeout != 0 && c.hc.Timeout <= c.waitTimeout {
		return nil, fmt.Errorf("approvalhttp: NewClient: HTTPClient.Timeout (%s) must exceed WaitTimeout (%s), or every Wait poll fails", c.hc.Timeout, c.waitTimeout)
	}
	return c, nil
}

// Guard asks the server whether a may run now, as approval.Gate.Guard
// does in process, for the caller ClientOptions.Authorize identifies:
// a.RequestedBy must name that caller (in any spelling). The payload
// reaches the server byte for byte. Calling Guard again with the same
// action, from this Client or any other with the same credentials,
// returns the same pending request; once it is approved, the next Guard
// consumes the approval and returns StatusApproved, once.
//
// An approval of a request is returned only after its artifact verified
// (approval.VerifyArtifact) against a, ClientOptions.Keys and the clock,
// and names the request approved. Otherwise Guard returns StatusDenied
// and an error wrapping ErrUnverified: the approval is used up, and the
// failure means the server or the path to it is not to be trusted. An
// approval without a request, for an action no policy matched, carries
// no artifact; it is returned as it is unless ClientOptions.RequireArtifact.
//
// An action with an IdempotencyKey whose operation already ran comes back
// as approval.OutcomeAlreadyRan, with the earlier request's ID: do not run it
// again.
//
// A request approved with an edited payload (approval.OutcomeModified) is
// returned only after its artifact verified against a with
// Result.Payload in place of a's payload: run the action with that. The
// Result's Conditions are always the artifact's (signed) ones.
//
// Guard fails closed: on any error the Result is StatusDenied. An error
// from the server is a *Problem, which errors.Is matches against the
// approval package's sentinels (approval.ErrInvalidAction...). An Action
// with an Initiator or a Recommendation cannot be sent
// (approval.ErrInvalidAction). A payload that is neither JSON nor UTF-8
// text travels in payload_base64, which servers of versions before it
// refuse (400 malformed_request).
func (c *Client) Guard(ctx context.Context, a approval.Action) (approval.Result, error) {
	denied := approval.Result{Status: approval.OutcomeDenied}
	fail := func(err error) (approval.Result, error) {
		return denied, fmt.Errorf("approvalhttp: guard %q: %w", clipDetail(a.Name), err)
	}
	if a.RequestedBy == "" {
		return fail(fmt.Errorf("%w: requested_by is empty (name the caller the server authenticates)", approval.ErrInvalidAction))
	}
	body, err := bodyOf(a)
	if err != nil {
		return fail(err)
	}
	enc, err := json.Marshal(body)
	if err != nil {
		return fail(fmt.Errorf("%w: %w", approval.ErrInvalidAction, err))
	}
	var gr guardJSON
	if err := c.do(ctx, c.timeout, http.MethodPost, c.url("api", "approvals"), enc, &gr); err != nil {
		var p *Problem
		if errors.As(err, &p) && (p.Code == "requested_by_mismatch" || p.Code == "invalid_identity") {
			err = fmt.Errorf("%w: %w", approval.ErrInvalidAction, err)
		}
		return fail(err)
	}
	res, err := gr.result()
	denied.RequestID = res.RequestID
	if err != nil {
		return fail(fmt.Errorf("%w: the server's answer: %w", ErrUnverified, err))
	}
	switch res.Status {
	case approval.OutcomePending:
		if res.RequestID == "" {
			return fail(errors.New("the server answered pending without a request ID"))
		}
		res.Artifact = nil
		return res, nil
	case approval.OutcomeDenied, approval.OutcomeTimedOut:
		res.Artifact = nil
		return res, nil
	case approval.OutcomeAlreadyRan:
		// The operation named by a.IdempotencyKey already ran under
		// request res.RequestID: nothing to run. The artifact, if any, is
		// the earlier run's, kept as evidence.
		if a.IdempotencyKey == "" || res.RequestID == "" {
			return fail(errors.New("the server answered consumed for an action without an idempotency key"))
		}
		return res, nil
	case approval.OutcomeApproved:
	case approval.OutcomeModified:
		// Approved with an edited payload: the artifact must bind
		// exactly that payload, and the caller runs with it.
		if res.Payload == nil {
			return fail(fmt.Errorf("%w: the server answered modified with no payload", ErrUnverified))
		}
		run := a
		run.Payload = res.Payload
		content, err := c.verify(res.Artifact, res.RequestID, run)
		if err != nil {
			return fail(err)
		}
		res.Conditions = content.Conditions
		return res, nil
	default:
		return fail(fmt.Errorf("the server answered status %q", clipDetail(string(res.Status))))
	}
	if res.RequestID == "" && len(res.Artifact) == 0 {
		if res.Reason == approval.ReasonNoPolicyMatched && !c.requireArt {
			return res, nil
		}
		return fail(fmt.Errorf("%w: the server answered approved (%q) with no artifact", ErrUnverified, clipDetail(res.Reason)))
	}
	content, err := c.verify(res.Artifact, res.RequestID, a)
	if err != nil {
		return fail(err)
	}
	// The conditions the host enforces are the signed ones.
	res.Conditions, res.Payload = content.Conditions, nil
	return res, nil
}

// verify checks that art is an approval of a by the gate's keys,
// unexpired, for request id.
func (c *Client) verify(art []byte, id string, a approval.Action) (*approval.Artifact, error) {
	if len(art) == 0 {
		return nil, fmt.Errorf("%w: the server answered approved with no artifact (%w)", ErrUnverified, approval.ErrArtifactMalformed)
	}
	content, err := approval.VerifyArtifactAt(art, a, c.keys, c.now())
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnverified, err)
	}
	if content.RequestID != id {
		return nil, fmt.Errorf("%w: the artifact approves request %s, not %s", ErrUnverified, clipDetail(content.RequestID), clipDetail(id))
	}
	return content, nil
}

// Wait blocks until request id is no longer open (approved, denied, timed
// out, cancelled...) or ctx is done, and returns the request, as
// approval.Gate.Wait does in process. It long-polls GET
// /api/approvals/{id}/wait, WaitTimeout at a time, so it may take a
// while after ctx is done only if the server stops answering (Timeout
// bounds each poll). It returns the first error, a ctx error included
// (errors.Is(err, context.Canceled)); call it again to go on waiting.
//
// The request is as the server shows it to its requester: its Action's
// masked fields read "[redacted]" and a JSON payload is compacted, while
// ActionHash and PayloadHash are those of the real action. To run an
// approved action, call Guard with it again: that consumes the approval.
func (c *Client) Wait(ctx context.Context, id string) (*approval.Request, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("approvalhttp: wait: %w", err)
	}
	u := c.url("api", "approvals", id, "wait")
	u.RawQuery = url.Values{"timeout": {c.waitTimeout.String()}}.Encode()
	minGap := min(time.Second, c.waitTimeout)
	for {
		start := time.Now()
		var v requestJSON
		if err := c.do(ctx, c.waitTimeout+c.timeout, http.MethodGet, u, nil, &v); err != nil {
			return nil, fmt.Errorf("approvalhttp: wait %s: %w", clipDetail(id), err)
		}
		if v.Request.Request == nil || v.ID != id || !v.Status.Valid() {
			return nil, fmt.Errorf("approvalhttp: wait %s: the server answered another request or none", clipDetail(id))
		}
		if !v.Status.Open() {
			return v.request(), nil
		}
		// Open: the server held the poll its timeout. A server that
		// answers at once is not asked more than once a second.
		if gap := minGap - time.Since(start); gap > 0 {
			t := time.NewTimer(gap)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("approvalhttp: wait %s: %w", clipDetail(id), ctx.Err())
			case <-t.C:
			}
		}
	}
}

// Artifact returns the signed approval artifact of request id, approved
// or consumed, as the server sent it: GET /api/approvals/{id}/artifact.
// It is not verified; see VerifiedArtifact. A request that is not
// approved has none (approval.ErrNoArtifact); an unknown one is
// approval.ErrNotFound.
func (c *Client) Artifact(ctx context.Context, id string) ([]byte, error) {
	if err := checkID(id); err != nil {
		return nil, fmt.Errorf("approvalhttp: artifact: %w", err)
	}
	var art []byte
	if err := c.do(ctx, c.timeout, http.MethodGet, c.url("api", "approvals", id, "artifact"), nil, &art); err != nil {
		return nil, fmt.Errorf("approvalhttp: artifact %s: %w", clipDetail(id), err)
	}
	return art, nil
}

// VerifiedArtifact returns the artifact of request id and its content,
// once it verified against a (the action about to run), ClientOptions.Keys
// and the clock, and names request id: the evidence to hand to whatever
// runs a. A failure wraps ErrUnverified and the artifact's sentinel
// (approval.ErrArtifactSignature, approval.ErrArtifactPayloadMismatch...).
//
// An artifact proves that a was approved, not that the approval is still
// unused: single use is the gate's, through Guard. A runner that must not
// run one approval twice records the RequestIDs it has run.
func (c *Client) VerifiedArtifact(ctx context.Context, id string, a approval.Action) ([]byte, *approval.Artifact, error) {
	art, err := c.Artifact(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	content, err := c.verify(art, id, a)
	if err != nil {
		return nil, nil, fmt.Errorf("approvalhttp: artifact %s: %w", clipDetail(id), err)
	}
	return art, content, nil
}

// url returns the handler's URL of the path made of segments (request
// IDs checked by checkID, so none needs escaping).
func (c *Client) url(segments ...string) *url.URL {
	return c.base.JoinPath(segments...)
}

// do sends one request, bounded by timeout, and reads a 2xx answer into
// out (JSON, or the bytes themselves for *[]byte). A problem answer is
// returned as a *Problem; any other answer that is not 2xx as an error
// naming its status.
func (c *Client) do(ctx context.Context, timeout time.Duration, method string, u *url.URL, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json, application/problem+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.authorize != nil {
		if err := c.authorize(req); err != nil {
			return fmt.Errorf("ClientOptions.Authorize: %w", err)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	if len(b) > maxResponseBytes {
		return fmt.Errorf("the answer exceeds %d bytes", maxResponseBytes)
	}
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if mt == "application/problem+json" {
			var p Problem
			if err := json.Unmarshal(b, &p); err == nil && p.Code != "" {
				p.Status = resp.StatusCode
				return &p
			}
		}
		return fmt.Errorf("server answered %s", strconv.Itoa(resp.StatusCode)+" "+http.StatusText(resp.StatusCode))
	}
	if mt != "application/json" {
		return fmt.Errorf("server answered %d with %q, not JSON", resp.StatusCode, clipDetail(mt))
	}
	if raw, ok := out.(*[]byte); ok {
		*raw = b
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("decoding the answer: %w", err)
	}
	return nil
}

// checkID refuses an ID the gate cannot have issued before it is put in a
// path, as the server would (404).
func checkID(id string) error {
	if !isRequestID(id) {
		return fmt.Errorf("%w: %q is not a request ID", approval.ErrNotFound, clipDetail(id))
	}
	return nil
}
