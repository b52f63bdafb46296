// Package oncall resolves approval roles to whoever is on call, so that a
// policy saying "the on-call SRE approves" (approval.Role("oncall-sre"))
// routes to a person at decision time.
//
// PagerDuty is an approval.Directory over PagerDuty's REST API v2: each
// role it knows maps to a schedule or an escalation policy, and its
// members are the users on call for it now. Other roles and every group
// fall through to a Fallback directory.
//
//	dir, err := oncall.NewPagerDuty(oncall.PagerDutyConfig{
//		Token: os.Getenv("PAGERDUTY_API_KEY"),
//		Roles: map[string]oncall.PagerDutyTarget{"oncall-sre": {Schedule: "PI7DH85"}},
//		Fallback: approval.StaticDirectory{Groups: ...},
//	})
//	gate, err := approval.New(approval.Config{..., Directory: dir})
package oncall

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/signoff/approval"
)

// Errors of the package, wrapped with context.
var (
	// ErrInvalidConfig is wrapped by NewPagerDuty's errors; the message
	// names the field.
	ErrInvalidConfig = errors.New("oncall: invalid configuration")
	// ErrPagerDuty is wrapped by the errors of a call to PagerDuty that
	// failed: a network error, an answer other than 200, or a body that
	// is not a list of on-calls. The directory fails closed on it.
	ErrPagerDuty = errors.New("oncall: pagerduty request failed")
	// ErrUserID is wrapped when PagerDutyConfig.UserID fails, panics or
	// gives no ID for a user on call.
	ErrUserID = errors.New("oncall: cannot map a PagerDuty user to an approver")
)

// Defaults of PagerDutyConfig.
const (
	// DefaultPagerDutyAPIURL is PagerDuty's REST API.
	DefaultPagerDutyAPIURL = "https://api.pagerduty.com"
	// DefaultTTL is how long a role's on-call list is kept.
	DefaultTTL = time.Minute
)

// Bounds on reading PagerDuty's answers.
const (
	pageLimit    = 100     // on-calls asked per page (PagerDuty's maximum)
	maxPages     = 20      // pages followed per role
	maxBodyBytes = 4 << 20 // read of one page
)

// PagerDutyTarget says who holds a role: the users on call now for a
// schedule, or for one level of an escalation policy. Set exactly one of
// Schedule and EscalationPolicy.
type PagerDutyTarget struct {
	// Schedule is a schedule's ID ("PI7DH85").
	Schedule string
	// EscalationPolicy is an escalation policy's ID ("PT20YPA").
	EscalationPolicy string
	// Level is the escalation policy's level whose on-calls hold the role.
	// Defaults to 1, the first to be notified.
	Level int
}

// PagerDutyUser is a user on call, as PagerDuty's on-call list includes
// it (include[]=users).
type PagerDutyUser struct {
	// ID is PagerDuty's ID of the user ("PT23IWX").
	ID string `json:"id"`
	// Name is the user's name.
	Name string `json:"name"`
	// Email is the user's login email.
	Email string `json:"email"`
}

// PagerDutyConfig configures NewPagerDuty. Token and Roles are required.
type PagerDutyConfig struct {
	// Token is a PagerDuty REST API key (a read-only account or user key
	// will do), sent as "Authorization: Token token=...". It is a
	// credential: errors never carry it. Required.
	Token string
	// Roles maps a role name (approval.Role) to whom PagerDuty says holds
	// it. Required.
	Roles map[string]PagerDutyTarget
	// UserID maps a user on call to the approver ID the gate knows them
	// by. It is host code: a panic is recovered, and an error, a panic or
	// an empty ID fails the lookup (closed). It gets the lookup's context.
	// Defaults to the user's email.
	UserID func(ctx context.Context, u PagerDutyUser) (string, error)
	// TTL is how long a role's on-call list is kept before PagerDuty is
	// asked again: a change of shift takes effect within it. A failed
	// lookup is not kept. Defaults to DefaultTTL (1 minute).
	TTL time.Duration
	// Fallback answers for every group and for roles not in Roles.
	// Defaults to none: they have no members.
	Fallback approval.Directory
	// APIURL is the REST API's base URL; https only. Defaults to
	// DefaultPagerDutyAPIURL (an EU account may use
	// https://api.eu.pagerduty.com).
	APIURL string
	// Client sends the requests. Defaults to a client on
	// http.DefaultTransport.
	Client *http.Client
	// Now is the clock of the TTL. Defaults to time.Now.
	Now func() time.Time
}

// PagerDuty is an approval.Directory whose roles are PagerDuty on-call
// rotations: a role in PagerDutyConfig.Roles has as members the users on
// call for its schedule or escalation policy level now, as PagerDuty's
// "List all of the on-calls" (GET /oncalls) reports them, each mapped to
// an approver ID by PagerDutyConfig.UserID. Lists are kept for the TTL,
// so Decide does not wait on PagerDuty each time; a change of shift is
// seen within it. A lookup that fails fails closed: IsMember reports false
// with the error (the gate refuses the decision), Members returns the
// error. Other roles and groups go to PagerDutyConfig.Fallback.
//
// Create one with NewPagerDuty; the zero value is not usable. It is safe
// for concurrent use.
type PagerDuty struct {
	token    string
	base     *url.URL
	roles    map[string]PagerDutyTarget
	userID   func(context.Context, PagerDutyUser) (string, error)
	ttl      time.Duration
	fallback approval.Directory
	client   *http.Client
	now      func() time.Time

	mu    sync.Mutex
	cache map[string]cached
}

// cached is a role's on-call list and when it was read.
type cached struct {
	members []string
	at      time.Time
}

// NewPagerDuty validates cfg, fills its defaults and returns the
// directory. Errors wrap ErrInvalidConfig and never quote the token.
func NewPagerDuty(cfg PagerDutyConfig) (*PagerDuty, error) {
	if cfg.Token == "" || strings.ContainsAny(cfg.Token, "\r\n") {
		return nil, fmt.Errorf("%w: PagerDutyConfig.Token is empty or has a line break (create a REST API key in PagerDuty: Integrations, API Access Keys)", ErrInvalidConfig)
	}
	if len(cfg.Roles) == 0 {
		return nil, fmt.Errorf("%w: PagerDutyConfig.Roles is empty", ErrInvalidConfig)
	}
	roles := make(map[string]PagerDutyTarget, len(cfg.Roles))
	for name, t := range cfg.Roles {
		if name == "" {
			return nil, fmt.Errorf("%w: PagerDutyConfig.Roles has an empty role name", ErrInvalidConfig)
		}
		if (t.Schedule == "") == (t.EscalationPolicy == "") {
			return nil, fmt.Errorf("%w: PagerDutyConfig.Roles[%q]: set one of Schedule and EscalationPolicy", ErrInvalidConfig, name)
		}
		if t.Level < 0 || (t.Level != 0 && t.Schedule != "") {
			return nil, fmt.Errorf("%w: PagerDutyConfig.Roles[%q]: Level is a positive escalation level, with EscalationPolicy only", ErrInvalidConfig, name)
		}
		if t.EscalationPolicy != "" && t.Level == 0 {
			t.Level = 1
		}
		roles[name] = t
	}
	if cfg.APIURL == "" {
		cfg.APIURL = DefaultPagerDutyAPIURL
	}
	base, err := url.Parse(strings.TrimRight(cfg.APIURL, "/"))
	if err != nil || base.Scheme != "https" || base.Host == "" || base.User != nil || base.RawQuery != "" {
		return nil, fmt.Errorf("%w: PagerDutyConfig.APIURL must be an https URL with a host, without user or query", ErrInvalidConfig)
	}
	if cfg.TTL < 0 {
		return nil, fmt.Errorf("%w: PagerDutyConfig.TTL is negative", ErrInvalidConfig)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.UserID == nil {
		cfg.UserID = func(_ context.Context, u PagerDutyUser) (string, error) { return u.Email, nil }
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &PagerDuty{token: cfg.Token, base: base, roles: roles, userID: cfg.UserID, ttl: cfg.TTL,
		fallback: cfg.Fallback, client: cfg.Client, now: cfg.Now, cache: map[string]cached{}}, nil
}

// IsMember implements approval.Directory: for a role in Roles, whether
// user (canonical) is on call for it now.
func (d *PagerDuty) IsMember(ctx context.Context, a approval.Approver, user string) (bool, error) {
	t, ok := d.target(a)
	if !ok {
		if d.fallback == nil {
			return false, nil
		}
		return d.fallback.IsMember(ctx, a, user)
	}
	members, err := d.members(ctx, a.Name, t)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(members, func(m string) bool {
		c, err := approval.CanonicalID(m)
		return err == nil && c == user
	}), nil
}

// Members implements approval.Directory: for a role in Roles, the
// approver IDs of the users on call for it now.
func (d *PagerDuty) Members(ctx context.Context, a approval.Approver) ([]string, error) {
	t, ok := d.target(a)
	if !ok {
		if d.fallback == nil {
			return nil, nil
		}
		return d.fallback.Members(ctx, a)
	}
	return d.members(ctx, a.Name, t)
}

func (d *PagerDuty) target(a approval.Approver) (PagerDutyTarget, bool) {
	if a.Kind != approval.KindRole {
		return PagerDutyTarget{}, false
	}
	t, ok := d.roles[a.Name]
	return t, ok
}

// members returns role's on-call list, from the cache while it is fresh.
func (d *PagerDuty) members(ctx context.Context, role string, t PagerDutyTarget) ([]string, error) {
	now := d.now()
	d.mu.Lock()
	c, ok := d.cache[role]
	d.mu.Unlock()
	if ok && !now.Before(c.at) && now.Sub(c.at) < d.ttl {
		return c.members, nil
	}
	members, err := d.fetch(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("oncall: role %q: %w", role, err)
	}
	d.mu.Lock()
	d.cache[role] = cached{members: members, at: now}
	d.mu.Unlock()
	return members, nil
}

// oncallsPage is the part of GET /oncalls' answer the directory reads.
type oncallsPage struct {
	OnCalls []struct {
		User            *PagerDutyUser `json:"user"`
		EscalationLevel int            `json:"escalation_level"`
	} `json:"oncalls"`
	More   bool `json:"more"`
	Offset int  `json:"offset"`
	Limit  int  `json:"limit"`
}

// fetch lists who is on call now for t, following the pages, and maps
// each user to an approver ID.
func (d *PagerDuty) fetch(ctx context.Context, t PagerDutyTarget) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	offset := 0
	for page := 0; ; page++ {
		if page == maxPages {
			return nil, fmt.Errorf("%w: more than %d on-calls", ErrPagerDuty, maxPages*pageLimit)
		}
		p, err := d.page(ctx, t, offset)
		if err != nil {
			return nil, err
		}
		for _, oc := range p.OnCalls {
			if oc.User == nil || (t.EscalationPolicy != "" && oc.EscalationLevel != t.Level) || seen[oc.User.ID] {
				continue
			}
			seen[oc.User.ID] = true
			id, err := d.mapUser(ctx, *oc.User)
			if err != nil {
				return nil, err
			}
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		if !p.More || len(p.OnCalls) == 0 {
			return out, nil
		}
		offset += len(p.OnCalls)
	}
}

// page asks for one page of on-calls.
func (d *PagerDuty) page(ctx context.Context, t PagerDutyTarget, offset int) (*oncallsPage, error) {
	q := url.Values{"time_zone": {"UTC"}, "include[]": {"users"}, "limit": {strconv.Itoa(pageLimit)}, "offset": {strconv.Itoa(offset)}}
	if t.Schedule != "" {
		q.Set("schedule_ids[]", t.Schedule)
	} else {
		q.Set("escalation_policy_ids[]", t.EscalationPolicy)
	}
	u := *d.base
	u.Path += "/oncalls"
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%w: build request: %w", ErrPagerDuty, err)
	}
	req.Header.Set("Authorization", "Token token="+d.token)
	req.Header.Set("Accept", "application/vnd.pagerduty+json;version=2")
	req.Header.Set("User-Agent", "signoff-approval-oncall")
	resp, err := d.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message quotes the URL; keep the cause
		}
		return nil, fmt.Errorf("%w: GET %s/oncalls: %w", ErrPagerDuty, d.base.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%w: GET %s/oncalls: read the answer: %w", ErrPagerDuty, d.base.Host, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s/oncalls answered %d %s", ErrPagerDuty, d.base.Host, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if len(body) > maxBodyBytes {
		return nil, fmt.Errorf("%w: GET %s/oncalls: the answer exceeds %d bytes", ErrPagerDuty, d.base.Host, maxBodyBytes)
	}
	var p oncallsPage
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("%w: GET %s/oncalls: the answer is not a list of on-calls: %w", ErrPagerDuty, d.base.Host, err)
	}
	if p.OnCalls == nil {
		return nil, fmt.Errorf("%w: GET %s/oncalls: the answer has no \"oncalls\"", ErrPagerDuty, d.base.Host)
	}
	return &p, nil
}

// mapUser calls the host's UserID, recovered.
func (d *PagerDuty) mapUser(ctx context.Context, u PagerDutyUser) (id string, err error) {
	defer func() {
		if r := recover(); r != nil {
			id, err = "", fmt.Errorf("%w: user %s: UserID panicked: %v", ErrUserID, u.ID, r)
		}
	}()
	id, err = d.userID(ctx, u)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: user %s: %w", ErrUserID, u.ID, err)
	case id == "":
		return "", fmt.Errorf("%w: user %s: no approver ID (an on-call user without an email?)", ErrUserID, u.ID)
	}
	return id, nil
}

// errNotListed is RoleNames' and GroupNames' error when the Fallback
// cannot list its names: the gate then registers policies unchecked.
var errNotListed = errors.New("oncall: the Fallback directory does not list its names")

// RoleNames implements approval.RoleLister: the roles in Roles and those
// Fallback lists. With a Fallback that is not a RoleLister it fails, and
// the gate registers policies without checking the roles they name.
func (d *PagerDuty) RoleNames(ctx context.Context) ([]string, error) {
	names := make([]string, 0, len(d.roles))
	for name := range d.roles {
		names = append(names, name)
	}
	slices.Sort(names)
	if d.fallback == nil {
		return names, nil
	}
	l, ok := d.fallback.(approval.RoleLister)
	if !ok {
		return nil, errNotListed
	}
	more, err := l.RoleNames(ctx)
	if err != nil {
		return nil, err
	}
	return append(names, more...), nil
}

// GroupNames implements approval.GroupLister: the groups Fallback lists
// (none without one). With a Fallback that is not a GroupLister it fails,
// and the gate registers policies without checking the groups they name.
func (d *PagerDuty) GroupNames(ctx context.Context) ([]string, error) {
	if d.fallback == nil {
		return []string{}, nil
	}
	l, ok := d.fallback.(approval.GroupLister)
	if !ok {
		return nil, errNotListed
	}
	return l.GroupNames(ctx)
}
