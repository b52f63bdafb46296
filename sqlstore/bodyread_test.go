package sqlstore

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/signoff/approval"
)

// bodyEvents are audit events as stores keep them, one with every field.
func bodyEvents() []approval.AuditEvent {
	at := time.Date(2026, 12, 7, 9, 30, 1, 123456000, time.UTC)
	full := approval.AuditEvent{
		Seq: 42, RequestID: "req_" + strings.Repeat("0a", 16), Type: approval.EventDecisionApprove,
		Actor: "bob", OnBehalfOf: "dave",
		Policies: []approval.PolicyRef{{Name: "high_spend", Hash: strings.Repeat("a", 64)}, {Name: "prod", Hash: strings.Repeat("b", 64)}},
		Verdict:  approval.VerdictApprove, Reason: `fine by me: "ok" <b>& \ / ünï ☃ 𝄞` + "\t\n\x01\u2028",
		Conditions:  []string{"amount <= 100", ""},
		ActionHash:  strings.Repeat("c", 64),
		PayloadHash: strings.Repeat("d", 64),
		Passkey:     strings.Repeat("9", 64),
		Checkpoint:  &approval.AuditCheckpoint{Seq: 41, Hash: strings.Repeat("e", 64), KeyID: "kid", Signature: "c2ln"},
		At:          at, PrevHash: strings.Repeat("f", 64), Hash: strings.Repeat("1", 64),
	}
	return []approval.AuditEvent{
		full,
		{Seq: 1, Type: approval.EventAuditSinkFailed, At: at.Truncate(time.Second), Hash: strings.Repeat("2", 64)},
		{Seq: 2, RequestID: "req_x", Type: approval.EventRequestCreated, Actor: "user-1", Policies: full.Policies[:1],
			At: at.Add(-time.Microsecond * 123000), PrevHash: strings.Repeat("2", 64), Hash: strings.Repeat("3", 64)},
	}
}

// bodyRequests are requests as stores keep them, with every field set.
func bodyRequests(t testing.TB) []*approval.Request {
	full := newRequest()
	full.Edit = &approval.PayloadEdit{Payload: []byte(`{"to":"x"}`), PayloadHash: strings.Repeat("c", 64), ActionHash: strings.Repeat("d", 64), By: "bob", At: now()}
	full.Votes = []approval.Vote{
		{Approver: "bob", OnBehalfOf: "dave", Verdict: approval.VerdictApprove, Reason: `"quoted" <b>`, Conditions: []string{"a <= 1"},
			TokenID: "t1", Policies: []string{"high_spend"}, Counts: []approval.VoteCount{{Policy: "high_spend", Groups: []int{0, 1}}}, At: now()},
		{Approver: "erin", Verdict: approval.VerdictApprove, BreakGlass: true, Reuse: &approval.Reuse{For: time.Hour, Uses: 2}, TokenID: "t2", At: now()},
		{Approver: "carol", Verdict: approval.VerdictDeny, Denial: &approval.Denial{Code: "no"}, TokenID: "t3", At: now()},
	}
	full.Status, full.Uses, full.PayloadHash = approval.StatusConsumed, 3, strings.Repeat("9", 64)
	full.Action.Payload = []byte("\xff\x00 not json")
	full.Action.Metadata = map[string]string{"k": "v\u2028"}
	full.Prior = &approval.PriorRun{RequestID: "req_y", At: now()}
	plain := newRequest()
	return []*approval.Request{full, plain}
}

// TestReadEventReadsWhatIsStored: every stored event is read by the fast
// reader, to exactly what encoding/json reads.
func TestReadEventReadsWhatIsStored(t *testing.T) {
	t.Parallel()
	for _, e := range bodyEvents() {
		body, err := json.Marshal(&e)
		require.NoError(t, err)
		var got approval.AuditEvent
		require.True(t, readEvent(string(body), &got), "%s", body)
		require.Equal(t, e, got)
		var d approval.AuditEvent
		require.NoError(t, decodeEvent(string(body), &d))
		require.Equal(t, e, d)
	}
	// Every field of the event is one the reader knows: a new field fails
	// here until it is read.
	e := bodyEvents()[0]
	v := reflect.ValueOf(e)
	for i := range v.NumField() {
		require.False(t, v.Field(i).IsZero(), "bodyEvents()[0] leaves %s zero", v.Type().Field(i).Name)
	}
}

// TestReadAuditedReadsWhatIsStored: every stored request is read by the
// fast reader, to exactly Request.Audited of what encoding/json reads.
func TestReadAuditedReadsWhatIsStored(t *testing.T) {
	t.Parallel()
	for _, r := range bodyRequests(t) {
		row, err := encodeRequest(r)
		require.NoError(t, err)
		var got approval.AuditedRequest
		require.True(t, readAudited(string(row.body), &got), "%s", row.body)
		require.Equal(t, row.req.Audited(), got)
	}
}

// TestReadBodiesGiveUp: bodies in other forms than encoding/json writes go
// to encoding/json, which reads them, or fails, as before.
func TestReadBodiesGiveUp(t *testing.T) {
	t.Parallel()
	e := bodyEvents()[2]
	body, err := json.Marshal(&e)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(body, &m))
	spaced, err := json.MarshalIndent(m, "", " ")
	require.NoError(t, err)
	for _, b := range []string{
		string(spaced), // whitespace, keys reordered
		strings.Replace(string(body), `"seq"`, `"Seq"`, 1),                   // another case
		strings.Replace(string(body), `"actor":`, `"Actor":"x","actor":`, 1), // twice, in two cases
		strings.Replace(string(body), `"user-1"`, `"user\ud83d\ude00"`, 1),   // a surrogate pair
		strings.Replace(string(body), `"user-1"`, "\"user\xff\"", 1),         // invalid UTF-8
		strings.Replace(string(body), `"seq":2`, `"seq":2.0`, 1),             // a number encoding/json refuses
		strings.Replace(string(body), `"seq":2`, `"seq":2,"extra":[1]`, 1),   // a member AuditEvent lacks
		string(body) + " ",
	} {
		var got approval.AuditEvent
		require.False(t, readEvent(b, &got), "%s", b)
		var want approval.AuditEvent
		werr := json.Unmarshal([]byte(b), &want)
		d := approval.AuditEvent{Seq: 99, Reason: "left over"}
		err := decodeEvent(b, &d)
		if werr != nil {
			require.Error(t, err)
			continue
		}
		require.NoError(t, err, "%s", b)
		require.Equal(t, want, d)
	}
	err = decodeEvent(`{"seq":1,`, new(approval.AuditEvent))
	require.ErrorContains(t, err, "decode stored audit event")
	_, err = decodeAudited(`{"id":"req_1","votes":null,`)
	require.ErrorContains(t, err, "decode stored request")
}

// FuzzReadEvent: what the fast reader reads, encoding/json reads alike.
func FuzzReadEvent(f *testing.F) {
	for _, e := range bodyEvents() {
		body, err := json.Marshal(&e)
		require.NoError(f, err)
		f.Add(string(body))
	}
	f.Fuzz(func(t *testing.T, body string) {
		var got approval.AuditEvent
		if !readEvent(body, &got) {
			return
		}
		var want approval.AuditEvent
		require.NoError(t, json.Unmarshal([]byte(body), &want), "%q", body)
		require.Equal(t, want, got, "%q", body)
	})
}

// FuzzReadAudited: what the fast reader reads of a request, encoding/json
// reads alike; the members it does not decode are well-formed JSON.
func FuzzReadAudited(f *testing.F) {
	for _, r := range bodyRequests(f) {
		row, err := encodeRequest(r)
		require.NoError(f, err)
		f.Add(string(row.body))
	}
	f.Fuzz(func(t *testing.T, body string) {
		var got approval.AuditedRequest
		if !readAudited(body, &got) {
			return
		}
		require.True(t, json.Valid([]byte(body)), "%q", body)
		var r approval.Request
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			// A member the reader does not decode has a value its field
			// cannot take (another type, a time or base64 that does not
			// parse): the reader checks only that it is JSON.
			return
		}
		require.Equal(t, r.Audited(), got, "%q", body)
	})
}

func BenchmarkReadEvent(b *testing.B) {
	e := bodyEvents()[2]
	e.Reason = "high_spend"
	body, err := json.Marshal(&e)
	require.NoError(b, err)
	s := string(body)
	b.ReportAllocs()
	for b.Loop() {
		var got approval.AuditEvent
		if !readEvent(s, &got) {
			b.Fatal("not read")
		}
	}
}

func BenchmarkReadAudited(b *testing.B) {
	row, err := encodeRequest(bodyRequests(b)[0])
	require.NoError(b, err)
	s := string(row.body)
	b.ReportAllocs()
	for b.Loop() {
		var got approval.AuditedRequest
		if !readAudited(s, &got) {
			b.Fatal("not read")
		}
	}
}

// TestPlain: the eight-bytes-at-a-time checks find every byte they look
// for, wherever it is.
func TestPlain(t *testing.T) {
	t.Parallel()
	for i := range 300 {
		for _, c := range []byte{0, 0x1f, '\\', 0x80, 0xff} {
			b := []byte(strings.Repeat("a0 ~[]", 50)[:i+1])
			require.True(t, plain(string(b)))
			b[i] = c
			require.False(t, plain(string(b)), "%q", b)
		}
	}
	require.True(t, plain(""))
	for n := range 20 {
		for _, around := range []byte{'a', ' ', 0x7f, 0x80, 0xff} {
			b := []byte(strings.Repeat(string(around), n+1))
			require.False(t, escapes(string(b)))
			for c := range 256 {
				b[n] = byte(c)
				require.Equal(t, c < 0x20 || c == '\\', escapes(string(b)), "%q", b)
			}
		}
	}
}
