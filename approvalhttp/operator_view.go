package approvalhttp

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/signoff/approval"
	"github.com/signoff/approval/internal/text"
)

// operatorView is the data of the operator page: every number
// preformatted here, the chart's geometry included, so that the template
// only reads fields.
type operatorView struct {
	pageChrome
	Base, Viewer string
	Script       bool // never
	At, AtISO    string
	Flash        string
	FlashError   bool
	FlashIn      string // the section it is about: dead-letters or audit

	Open      []openView
	Decisions []decisionView
	Channels  []channelView
	Dead      []deadView
	DeadMore  bool   // more dead letters than the page shows
	DeadNote  string // why there are none to list
	Audit     auditView

	RedriveAction, VerifyAction string
}

type openView struct {
	Policy, QueueURL       string
	Count                  int
	Oldest, OldestISO, Age string
}

type decisionView struct {
	Policy    string
	Day, Week timesView
	Chart     chartView
}

type timesView struct {
	Count    int
	P50, P90 string
	Outcomes []outcomeView
}

type outcomeView struct {
	Kind, Label string
}

// chartView is a policy's 7 daily buckets as SVG bars: for each day a
// light bar to its p90 and a dark one to its p50, on a scale of the
// week's largest p90.
type chartView struct {
	Label         string // the numbers, for a screen reader
	Width, Height int
	Base          int // the y of the bars' baseline
	Max           string
	Bars          []barView
}

type barView struct {
	Title          string
	X, W, X50, W50 int
	Y90, H90       int
	Y50, H50       int
	Empty          bool
}

type channelView struct {
	Channel                       string
	Pending, Retrying, Dead       int
	Lag, OldestPending, OldestISO string
	Error                         errorText
}

// errorText is a delivery error cut for a table cell, whole in Full.
type errorText struct {
	Short, Full string
	Cut         bool
}

type deadView struct {
	ID, Channel, Recipient, RequestID, RequestURL string
	Attempts                                      int
	Error                                         errorText
	Created, CreatedISO                           string
}

type auditView struct {
	HeadSeq                        int64
	HeadHash                       string
	CheckpointSeq                  int64
	CheckpointHash, CheckpointAt   string
	CheckpointISO, CheckpointAge   string
	Verified                       bool
	VerifiedSeq, VerifiedEvents    int64
	VerifiedHash                   string
	VerifiedAt, VerifiedISO, Since string
	Behind                         int64 // events appended since the verified head
	Failed                         *failureView
}

type failureView struct {
	By, Message, At, AtISO string
}

// operatorPageView turns st into the page's data.
func operatorPageView(st approval.Stats, base, who string) *operatorView {
	v := &operatorView{pageChrome: pageChrome{Session: true}, Base: base, Viewer: who,
		RedriveAction: base + "operator/redrive", VerifyAction: base + "operator/verify"}
	v.At, v.AtISO = fmtTime(st.At)
	for _, o := range st.Open {
		ov := openView{Policy: o.Policy, Count: o.Count, Age: fmtAge(st.At.Sub(o.Oldest)),
			QueueURL: base + "approvals?" + url.Values{"status": {"open"}, "policy": {o.Policy}}.Encode()}
		ov.Oldest, ov.OldestISO = fmtTime(o.Oldest)
		v.Open = append(v.Open, ov)
	}
	for _, d := range st.Decisions {
		v.Decisions = append(v.Decisions, decisionView{Policy: d.Policy,
			Day: timesOf(d.Day), Week: timesOf(d.Week), Chart: chartOf(d)})
	}
	for _, c := range st.Channels {
		cv := channelView{Channel: c.Channel, Pending: c.Pending, Retrying: c.Retrying, Dead: c.Dead, Error: cutError(c.LastError, maxErrorDisplay)}
		if !c.OldestPending.IsZero() {
			cv.Lag = fmtAge(st.At.Sub(c.OldestPending))
			cv.OldestPending, cv.OldestISO = fmtTime(c.OldestPending)
		}
		v.Channels = append(v.Channels, cv)
	}
	a := &v.Audit
	a.HeadSeq, a.HeadHash = st.Head.Seq, st.Head.Hash
	if st.LastCheckpoint.Seq > 0 {
		a.CheckpointSeq, a.CheckpointHash = st.LastCheckpoint.Seq, st.LastCheckpoint.Hash
		a.CheckpointAt, a.CheckpointISO = fmtTime(st.LastCheckpointAt)
		a.CheckpointAge = fmtAge(st.At.Sub(st.LastCheckpointAt))
	}
	if vh := st.Verified; !vh.At.IsZero() {
		a.Verified = true
		a.VerifiedSeq, a.VerifiedHash = vh.Head.Seq, vh.Head.Hash
		a.VerifiedEvents = vh.Events
		a.VerifiedAt, a.VerifiedISO = fmtTime(vh.At)
		a.Since = fmtAge(st.At.Sub(vh.At))
		a.Behind = max(st.Head.Seq-vh.Head.Seq, 0)
	}
	return v
}

func deadViews(msgs []approval.OutboxMessage, base string) []deadView {
	out := make([]deadView, len(msgs))
	for i, m := range msgs {
		d := deadView{ID: m.ID, Channel: m.Channel, Recipient: m.Recipient, RequestID: m.RequestID,
			Attempts: m.Attempts, Error: cutError(m.LastError, maxDeadErrorDisplay)}
		if d.Channel == "" {
			d.Channel = "(notice)"
		}
		if isRequestID(m.RequestID) {
			d.RequestURL = base + "approvals/" + m.RequestID
		}
		d.Created, d.CreatedISO = fmtTime(m.CreatedAt)
		out[i] = d
	}
	return out
}

func timesOf(t approval.DecisionTimes) timesView {
	tv := timesView{Count: t.Count}
	if t.Count == 0 {
		return tv
	}
	tv.P50, tv.P90 = fmtAge(t.P50), fmtAge(t.P90)
	for _, o := range [...]struct {
		n           int
		kind, label string
	}{
		{t.Approved, "approved", "approved"}, {t.Denied, "denied", "denied"},
		{t.TimedOut, "timed_out", "timed out"}, {t.Cancelled, "cancelled", "cancelled"},
	} {
		if o.n > 0 {
			tv.Outcomes = append(tv.Outcomes, outcomeView{o.kind, fmt.Sprintf("%d %s", o.n, o.label)})
		}
	}
	return tv
}

// The chart's geometry, in SVG user units (CSS pixels at scale 1).
const (
	chartSlot   = 30 // the width given to one day
	chartBar    = 22 // the p90 bar's width in it
	chartBar50  = 12 // the p50 bar's width
	chartHeight = 56 // the tallest bar
	chartTop    = 14 // room for the scale's label
	chartAxis   = 14 // room under the baseline for the day labels
)

// chartOf lays out a policy's daily buckets, oldest first. The numbers
// are the Go ints below, never text from a request.
func chartOf(d approval.PolicyDecisions) chartView {
	c := chartView{Width: 7 * chartSlot, Height: chartTop + chartHeight + chartAxis, Base: chartTop + chartHeight}
	var top time.Duration
	for _, b := range d.Daily {
		top = max(top, b.P90)
	}
	scale := func(x time.Duration) int {
		if top <= 0 || x <= 0 {
			return 0
		}
		// Rounded, and at least a pixel: a quick day still shows.
		return max(int((2*int64(chartHeight)*int64(x)+int64(top))/(2*int64(top))), 1)
	}
	parts := make([]string, 0, len(d.Daily))
	for i, b := range d.Daily {
		bar := barView{X: i*chartSlot + (chartSlot-chartBar)/2, W: chartBar, X50: i*chartSlot + (chartSlot-chartBar50)/2, W50: chartBar50}
		when := dayLabel(i)
		if b.Count == 0 {
			bar.Empty, bar.Title = true, when+": no decisions"
			bar.Y90, bar.H90 = c.Base-1, 1
		} else {
			bar.H90, bar.H50 = scale(b.P90), scale(b.P50)
			bar.Y90, bar.Y50 = c.Base-bar.H90, c.Base-bar.H50
			bar.Title = fmt.Sprintf("%s: %s, p50 %s, p90 %s", when, plural(b.Count, "decision"), fmtAge(b.P50), fmtAge(b.P90))
		}
		c.Bars = append(c.Bars, bar)
		parts = append(parts, bar.Title)
	}
	if top > 0 {
		c.Max = "p90 max " + fmtAge(top)
	}
	c.Label = "Time to decision of " + d.Policy + " per day, oldest first: " + strings.Join(parts, "; ") + "."
	return c
}

// dayLabel names the i-th of Stats' daily buckets (6: the last 24 hours).
func dayLabel(i int) string {
	if i == 6 {
		return "Last 24 hours"
	}
	return fmt.Sprintf("%d to %d days ago", 6-i, 7-i)
}

// fmtAge prints a duration for a person in at most two units: "45s",
// "12m 30s", "3h 12m", "2d 4h".
func fmtAge(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Round(time.Second)
	days, hours, mins, secs := int(d/(24*time.Hour)), int(d/time.Hour)%24, int(d/time.Minute)%60, int(d/time.Second)%60
	two := func(a int, ua string, b int, ub string) string {
		if b == 0 {
			return fmt.Sprintf("%d%s", a, ua)
		}
		return fmt.Sprintf("%d%s %d%s", a, ua, b, ub)
	}
	switch {
	case days > 0:
		return two(days, "d", hours, "h")
	case hours > 0:
		return two(hours, "h", mins, "m")
	case mins > 0:
		return two(mins, "m", secs, "s")
	}
	return fmt.Sprintf("%ds", secs)
}

func cutError(s string, n int) errorText {
	short := text.Clip(s, n)
	return errorText{Short: short, Full: s, Cut: short != s}
}
