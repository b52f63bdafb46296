package oncall_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/testkit"
	"github.com/signoff/approval/oncall"
)

// The fixtures in testdata are shaped on the example response of
// PagerDuty's REST API v2 "List all of the on-calls" (GET /oncalls,
// in PagerDuty's API reference at https://developer.pagerduty.com/api-reference/,
// and the OpenAPI document at github.com/PagerDuty/api-schema,
// reference/REST/openapiv3.json): {"oncalls": [{"user", "schedule",
// "escalation_policy", "escalation_level", "start", "end"}], "limit",
// "offset", "more", "total"}, with "user" the full User object that
// include[]=users puts in place of the user_reference (id, type "user",
// name, email, ...). Tim Wright on PI7DH85 is the documented example's
// on-call; oncalls_night.json is the next shift, Earline Greenholt, a user
// of PagerDuty's other documented examples.

const token = "y_NbAkKc66ryYTWUXYEu" // the shape of a REST API key

// fakePagerDuty serves GET /oncalls with the page its pages function
// returns, checking each request as PagerDuty's REST API v2 documents it.
type fakePagerDuty struct {
	t   *testing.T
	srv *httptest.Server

	mu      sync.Mutex
	pages   func(q map[string][]string) (int, []byte)
	queries []map[string][]string
}

func newFakePagerDuty(t *testing.T, fixture string) *fakePagerDuty {
	t.Helper()
	f := &fakePagerDuty{t: t}
	f.serve(fixture)
	f.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Authentication and versioning, as the REST API documents them
		// (https://developer.pagerduty.com/docs/authentication,
		// https://developer.pagerduty.com/docs/versioning).
		if r.Method != http.MethodGet || r.URL.Path != "/oncalls" ||
			r.Header.Get("Authorization") != "Token token="+token ||
			r.Header.Get("Accept") != "application/vnd.pagerduty+json;version=2" {
			t.Errorf("unexpected request: %s %s %v", r.Method, r.URL.Path, r.Header)
			http.Error(w, `{"error":{"message":"Unauthorized","code":2006}}`, http.StatusUnauthorized)
			return
		}
		q := r.URL.Query()
		f.mu.Lock()
		f.queries = append(f.queries, q)
		pages := f.pages
		f.mu.Unlock()
		code, body := pages(q)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write(body)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

// serve answers every request with testdata file fixture.
func (f *fakePagerDuty) serve(fixture string) {
	body, err := os.ReadFile("testdata/" + fixture)
	require.NoError(f.t, err)
	f.mu.Lock()
	f.pages = func(map[string][]string) (int, []byte) { return http.StatusOK, body }
	f.mu.Unlock()
}

func (f *fakePagerDuty) requests() []map[string][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]map[string][]string(nil), f.queries...)
}

func newDirectory(t *testing.T, f *fakePagerDuty, mod ...func(*oncall.PagerDutyConfig)) *oncall.PagerDuty {
	t.Helper()
	cfg := oncall.PagerDutyConfig{
		Token:  token,
		Roles:  map[string]oncall.PagerDutyTarget{"oncall-sre": {Schedule: "PI7DH85"}},
		APIURL: f.srv.URL,
		Client: f.srv.Client(),
	}
	for _, m := range mod {
		m(&cfg)
	}
	d, err := oncall.NewPagerDuty(cfg)
	require.NoError(t, err)
	return d
}

var sre = approval.Role("oncall-sre")

func TestPagerDutyOnCallFromDocumentedResponse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFakePagerDuty(t, "oncalls_day.json")
	d := newDirectory(t, f)

	members, err := d.Members(ctx, sre)
	require.NoError(t, err)
	require.Equal(t, []string{"tim.wright@example.com"}, members)
	ok, err := d.IsMember(ctx, sre, "tim.wright@example.com")
	require.NoError(t, err)
	require.True(t, ok)
	ok, err = d.IsMember(ctx, sre, "earline.greenholt@example.com")
	require.NoError(t, err)
	require.False(t, ok)

	reqs := f.requests()
	require.Len(t, reqs, 1, "the second and third lookups come from the cache")
	require.Equal(t, map[string][]string{
		"schedule_ids[]": {"PI7DH85"}, "time_zone": {"UTC"}, "include[]": {"users"},
		"limit": {"100"}, "offset": {"0"},
	}, reqs[0])
}

func TestPagerDutyShiftChangeAfterTTL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clock := testkit.NewClock()
	f := newFakePagerDuty(t, "oncalls_day.json")
	d := newDirectory(t, f, func(c *oncall.PagerDutyConfig) { c.Now, c.TTL = clock.Now, 5*time.Minute })

	ok, err := d.IsMember(ctx, sre, "tim.wright@example.com")
	require.NoError(t, err)
	require.True(t, ok)

	f.serve("oncalls_night.json")
	clock.Advance(4 * time.Minute)
	ok, err = d.IsMember(ctx, sre, "tim.wright@example.com")
	require.NoError(t, err)
	require.True(t, ok, "within the TTL the cached shift holds")

	clock.Advance(time.Minute)
	ok, err = d.IsMember(ctx, sre, "tim.wright@example.com")
	require.NoError(t, err)
	require.False(t, ok, "after the TTL the new shift holds")
	ok, err = d.IsMember(ctx, sre, "earline.greenholt@example.com")
	require.NoError(t, err)
	require.True(t, ok)
	require.Len(t, f.requests(), 2)
}

func TestPagerDutyPagination(t *testing.T) {
	t.Parallel()
	day, err := os.ReadFile("testdata/oncalls_day.json")
	require.NoError(t, err)
	night, err := os.ReadFile("testdata/oncalls_night.json")
	require.NoError(t, err)
	f := newFakePagerDuty(t, "oncalls_day.json")
	f.pages = func(q map[string][]string) (int, []byte) {
		if q["offset"][0] == "0" {
			var page map[string]any
			require.NoError(t, json.Unmarshal(day, &page))
			page["more"] = true
			b, _ := json.Marshal(page)
			return http.StatusOK, b
		}
		var page map[string]any
		require.NoError(t, json.Unmarshal(night, &page))
		page["offset"] = 1
		b, _ := json.Marshal(page)
		return http.StatusOK, b
	}
	d := newDirectory(t, f)
	members, err := d.Members(context.Background(), sre)
	require.NoError(t, err)
	require.Equal(t, []string{"tim.wright@example.com", "earline.greenholt@example.com"}, members)
	reqs := f.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, []string{"0"}, reqs[0]["offset"])
	require.Equal(t, []string{"1"}, reqs[1]["offset"])
}

func TestPagerDutyEscalationPolicyLevel(t *testing.T) {
	t.Parallel()
	f := newFakePagerDuty(t, "oncalls_day.json") // Tim is at level 1
	for level, want := range map[int][]string{0: {"tim.wright@example.com"}, 2: nil} {
		d := newDirectory(t, f, func(c *oncall.PagerDutyConfig) {
			c.Roles = map[string]oncall.PagerDutyTarget{"oncall-sre": {EscalationPolicy: "PT20YPA", Level: level}}
		})
		members, err := d.Members(context.Background(), sre)
		require.NoError(t, err)
		require.Equal(t, want, members, "level %d", level)
	}
	for _, q := range f.requests() {
		require.Equal(t, []string{"PT20YPA"}, q["escalation_policy_ids[]"])
		require.Empty(t, q["schedule_ids[]"])
	}
}

func TestPagerDutyFailsClosed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, answer := range map[string]struct {
		code int
		body string
	}{
		"server error":   {http.StatusInternalServerError, `{"error":{"message":"Internal Server Error"}}`},
		"unauthorized":   {http.StatusUnauthorized, `{"error":{"message":"Unauthorized","code":2006}}`},
		"not json":       {http.StatusOK, `<html>maintenance</html>`},
		"not an oncalls": {http.StatusOK, `{"users":[]}`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := newFakePagerDuty(t, "oncalls_day.json")
			f.pages = func(map[string][]string) (int, []byte) { return answer.code, []byte(answer.body) }
			d := newDirectory(t, f)
			ok, err := d.IsMember(ctx, sre, "tim.wright@example.com")
			require.ErrorIs(t, err, oncall.ErrPagerDuty)
			require.False(t, ok)
			require.NotContains(t, err.Error(), token)
			_, err = d.Members(ctx, sre)
			require.ErrorIs(t, err, oncall.ErrPagerDuty)
			require.Len(t, f.requests(), 2, "a failed lookup is not cached")

			f.serve("oncalls_day.json")
			ok, err = d.IsMember(ctx, sre, "tim.wright@example.com")
			require.NoError(t, err)
			require.True(t, ok)
		})
	}
}

func TestPagerDutyUserID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFakePagerDuty(t, "oncalls_day.json")

	d := newDirectory(t, f, func(c *oncall.PagerDutyConfig) {
		c.UserID = func(_ context.Context, u oncall.PagerDutyUser) (string, error) {
			require.Equal(t, oncall.PagerDutyUser{ID: "PT23IWX", Name: "Tim Wright", Email: "tim.wright@example.com"}, u)
			return "pd:" + u.ID, nil
		}
	})
	ok, err := d.IsMember(ctx, sre, "pd:pt23iwx") // canonical form
	require.NoError(t, err)
	require.True(t, ok)

	for name, fn := range map[string]func(context.Context, oncall.PagerDutyUser) (string, error){
		"panics": func(context.Context, oncall.PagerDutyUser) (string, error) { panic("boom") },
		"empty":  func(context.Context, oncall.PagerDutyUser) (string, error) { return "", nil },
		"fails": func(context.Context, oncall.PagerDutyUser) (string, error) {
			return "", context.DeadlineExceeded
		},
	} {
		d := newDirectory(t, f, func(c *oncall.PagerDutyConfig) { c.UserID = fn })
		ok, err := d.IsMember(ctx, sre, "tim.wright@example.com")
		require.ErrorIs(t, err, oncall.ErrUserID, name)
		require.False(t, ok, name)
	}
}

func TestPagerDutyFallback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := newFakePagerDuty(t, "oncalls_day.json")
	fallback := approval.StaticDirectory{Groups: map[string][]string{"sre": {"sam"}}, Roles: map[string][]string{"lead": {"lee"}}}
	d := newDirectory(t, f, func(c *oncall.PagerDutyConfig) { c.Fallback = fallback })

	ok, err := d.IsMember(ctx, approval.Group("sre"), "sam")
	require.NoError(t, err)
	require.True(t, ok)
	members, err := d.Members(ctx, approval.Role("lead"))
	require.NoError(t, err)
	require.Equal(t, []string{"lee"}, members)
	require.Empty(t, f.requests(), "no PagerDuty call for what the fallback answers")

	roles, err := d.RoleNames(ctx)
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"oncall-sre", "lead"}, roles)
	groups, err := d.GroupNames(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"sre"}, groups)

	alone := newDirectory(t, f)
	ok, err = alone.IsMember(ctx, approval.Group("sre"), "sam")
	require.NoError(t, err)
	require.False(t, ok)
}

func TestNewPagerDutyConfig(t *testing.T) {
	t.Parallel()
	roles := map[string]oncall.PagerDutyTarget{"oncall-sre": {Schedule: "PI7DH85"}}
	for name, cfg := range map[string]oncall.PagerDutyConfig{
		"no token":      {Roles: roles},
		"no roles":      {Token: token},
		"both targets":  {Token: token, Roles: map[string]oncall.PagerDutyTarget{"r": {Schedule: "A", EscalationPolicy: "B"}}},
		"no target":     {Token: token, Roles: map[string]oncall.PagerDutyTarget{"r": {}}},
		"schedule lvl":  {Token: token, Roles: map[string]oncall.PagerDutyTarget{"r": {Schedule: "A", Level: 2}}},
		"http":          {Token: token, Roles: roles, APIURL: "http://api.pagerduty.com"},
		"negative ttl":  {Token: token, Roles: roles, TTL: -time.Second},
		"token newline": {Token: token + "\n", Roles: roles},
	} {
		_, err := oncall.NewPagerDuty(cfg)
		require.ErrorIs(t, err, oncall.ErrInvalidConfig, name)
		require.False(t, strings.Contains(err.Error(), token), name)
	}
}
