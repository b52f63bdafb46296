package approvalhttp_test

import (
	"html"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// queueRows returns the request IDs of a queue page, in order.
func queueRows(page string) []string {
	var ids []string
	for _, m := range regexp.MustCompile(`id="row-(req_[0-9a-f]+)"`).FindAllStringSubmatch(page, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

// nextHref returns the next-page link of a queue page, as a path.
func nextHref(t *testing.T, page, id string) string {
	t.Helper()
	h := attr(page, id, "href")
	require.NotEmpty(t, h, "no %s link", id)
	return "/" + html.UnescapeString(strings.TrimPrefix(h, "./"))
}

// TestQueuePage: open requests first, filters, pagination, and a notice on
// later pages when requests arrived since the first.
func TestQueuePage(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var open, done []string
	for i := range 7 {
		a := transfer(float64(1000 + i))
		if i == 6 {
			a.RequestedBy = "alice"
		}
		id := f.pending(a)
		if i%3 == 0 { // 0, 3 and 6 end denied
			_, err := f.gate.Decide(f.ctx, id, approval.Decision{Token: f.token(id, "bob", approval.VerdictDeny), Verdict: approval.VerdictDeny})
			require.NoError(t, err)
			done = append(done, id)
			continue
		}
		open = append(open, id)
	}
	page := f.get("/approvals", "alice").html(t, http.StatusOK)
	require.Equal(t, append(append([]string(nil), open...), done...), queueRows(page), "open first, then the rest, each oldest first")
	require.Contains(t, page, `data-status="denied"`)
	require.NotContains(t, page, `id="next"`)
	require.NotContains(t, page, `id="first"`)

	require.Equal(t, done, queueRows(f.get("/approvals?status=denied", "alice").html(t, 200)))
	require.Equal(t, open, queueRows(f.get("/approvals?status=open", "alice").html(t, 200)))
	require.Equal(t, []string{done[2]}, queueRows(f.get("/approvals?requested_by=alice", "bob").html(t, 200)))
	require.Equal(t, open, queueRows(f.get("/approvals?awaiting=me&policy=high_spend", "alice").html(t, 200)))
	require.Empty(t, queueRows(f.get("/approvals?policy=none", "alice").html(t, 200)))
	require.Contains(t, f.get("/approvals?awaiting=me", "dave").html(t, 200), `id="empty"`)
	require.Contains(t, f.get("/approvals?status=open", "alice").html(t, 200), `<option value="open" selected>`)

	require.Equal(t, "invalid_query", attr(f.get("/approvals?status=bogus", "alice").html(t, 422), "message", "data-code"))
	require.Equal(t, "invalid_query", attr(f.get("/approvals?awaiting=bob", "alice").html(t, 422), "message", "data-code"))
	require.Equal(t, "invalid_cursor", attr(f.get("/approvals?cursor=zz", "alice").html(t, 422), "message", "data-code"))
	require.Equal(t, "unauthenticated", attr(f.get("/approvals", "").html(t, 401), "message", "data-code"))
	require.Equal(t, http.StatusSeeOther, f.get("/approvals/", "alice").StatusCode)
}

// TestQueuePagination: 120 requests page through 50 at a time, open first,
// with the filters kept; once on a later page, new arrivals are announced
// with a way back to the first page.
func TestQueuePagination(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var all []string
	var closed []string
	for i := range 120 {
		id := f.pending(transfer(float64(1000 + i)))
		if i < 10 {
			_, err := f.gate.Cancel(f.ctx, id, "user-1", "")
			require.NoError(t, err)
			closed = append(closed, id)
			continue
		}
		all = append(all, id)
		f.clock.Advance(time.Second)
	}
	all = append(all, closed...)

	page1 := f.get("/approvals", "alice").html(t, http.StatusOK)
	require.NotContains(t, page1, `id="first"`)
	next := nextHref(t, page1, "next")
	page2 := f.get(next, "alice").html(t, http.StatusOK)
	require.Contains(t, page2, `id="first"`)
	require.NotContains(t, page2, `id="new-requests"`)

	// A request arrives while the reviewer reads page 2.
	f.clock.Advance(time.Second)
	newID := f.pending(transfer(9999))
	page2 = f.get(next, "alice").html(t, http.StatusOK)
	require.Contains(t, page2, `id="new-requests"`)
	require.Contains(t, page2, "1 new request arrived")
	require.Equal(t, "/approvals", nextHref(t, page2, "first-page"))
	page3 := f.get(nextHref(t, page2, "next"), "alice").html(t, http.StatusOK)
	require.Contains(t, page3, `id="new-requests"`)
	require.NotContains(t, page3, `id="next"`)
	require.NotContains(t, f.get("/approvals", "alice").html(t, http.StatusOK), `id="new-requests"`, "the first page has no notice")

	var got []string
	for _, p := range []string{page1, page2, page3} {
		rows := queueRows(p)
		require.LessOrEqual(t, len(rows), 50)
		got = append(got, rows...)
	}
	want := append(append(append([]string(nil), all[:110]...), newID), all[110:]...)
	require.Equal(t, want, got)

	// The filters travel with the cursor.
	page := f.get("/approvals?status=open&policy=high_spend", "alice").html(t, http.StatusOK)
	next = nextHref(t, page, "next")
	require.Contains(t, next, "status=open")
	require.Contains(t, next, "policy=high_spend")
	require.Contains(t, next, "since=")
	require.Equal(t, "/approvals?policy=high_spend&status=open", nextHref(f.t, f.get(next, "alice").html(t, 200), "first"))
}
