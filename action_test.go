package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fullAction sets every field, identity and context alike.
func fullAction() Action {
	return Action{
		Name:        "deploy:production",
		RequestedBy: "user-1",
		Cost:        &Cost{Amount: 1234.5, Currency: "USD"},
		Risk:        RiskHigh,
		Tags:        []string{"prod", "customer-data"},
		Metadata:    map[string]string{"ticket": "OPS-1", "region": "eu-west-1"},
		Message:     "roll out v2",
		RunID:       "run-7",
		StepID:      "step-3",
		Constraints: []string{"max 3 retries", "read-only replica"},
		Payload:     []byte(`{"image":"app:v2","replicas":3}`),
		Provenance:  &Provenance{Source: "sdk", CreatedBy: "agent-x", SourceID: "s-1", CreatedFrom: "ticket OPS-1"},
		Diff: []FileDiff{{
			Path:    "deploy/app.yaml",
			OldPath: "deploy/app.yml",
			Hunks:   []Hunk{{OldStart: 1, OldLines: 2, NewStart: 1, NewLines: 3, Body: "-image: v1\n+image: v2\n"}},
		}},
	}
}

func TestActionValidate(t *testing.T) {
	t.Parallel()
	const bad = "\xff\xfe"
	manyTags := func(n int) []string {
		tags := make([]string, n)
		for i := range tags {
			tags[i] = fmt.Sprintf("t%d", i)
		}
		return tags
	}
	manyMeta := func(n int) map[string]string {
		m := make(map[string]string, n)
		for i := range n {
			m[fmt.Sprintf("k%d", i)] = "v"
		}
		return m
	}
	tests := []struct {
		name   string
		mutate func(a *Action)
		ok     bool
	}{
		{"minimal", func(a *Action) { *a = Action{Name: "n", RequestedBy: "r"} }, true},
		{"full", func(a *Action) {}, true},
		{"zero cost", func(a *Action) { a.Cost = &Cost{Currency: "USD"} }, true},
		{"every risk level", func(a *Action) { a.Risk = RiskCritical }, true},
		{"payload at the limit", func(a *Action) { a.Payload = make([]byte, 256<<10) }, true},
		{"64 tags", func(a *Action) { a.Tags = manyTags(64) }, true},
		{"64 metadata keys", func(a *Action) { a.Metadata = manyMeta(64) }, true},
		{"name at the string limit", func(a *Action) { a.Name = strings.Repeat("n", 4<<10) }, true},
		{"message at its limit", func(a *Action) { a.Message = strings.Repeat("m", 16<<10) }, true},
		{"diff without hunks", func(a *Action) { a.Diff = []FileDiff{{Path: "x"}} }, true},

		{"empty name", func(a *Action) { a.Name = "" }, false},
		{"empty requester", func(a *Action) { a.RequestedBy = "" }, false},
		{"negative cost", func(a *Action) { a.Cost.Amount = -0.01 }, false},
		{"NaN cost", func(a *Action) { a.Cost.Amount = math.NaN() }, false},
		{"+Inf cost", func(a *Action) { a.Cost.Amount = math.Inf(1) }, false},
		{"-Inf cost", func(a *Action) { a.Cost.Amount = math.Inf(-1) }, false},
		{"long currency", func(a *Action) { a.Cost.Currency = strings.Repeat("X", 17) }, false},
		{"unknown risk 9", func(a *Action) { a.Risk = Risk(9) }, false},
		{"unknown risk -1", func(a *Action) { a.Risk = Risk(-1) }, false},
		{"payload over the limit", func(a *Action) { a.Payload = make([]byte, 256<<10+1) }, false},
		{"65 tags", func(a *Action) { a.Tags = manyTags(65) }, false},
		{"65 metadata keys", func(a *Action) { a.Metadata = manyMeta(65) }, false},
		{"empty tag", func(a *Action) { a.Tags = []string{"prod", ""} }, false},
		{"name over the string limit", func(a *Action) { a.Name = strings.Repeat("n", 4<<10+1) }, false},
		{"tag over the string limit", func(a *Action) { a.Tags = []string{strings.Repeat("t", 4<<10+1)} }, false},
		{"message over its limit", func(a *Action) { a.Message = strings.Repeat("m", 16<<10+1) }, false},
		{"diff over its limit", func(a *Action) {
			a.Diff = []FileDiff{{Path: "a", Hunks: []Hunk{{Body: strings.Repeat("x", 1<<19)}}}, {Path: "b", Hunks: []Hunk{{Body: strings.Repeat("y", 1<<19+1)}}}}
		}, false},
		{"diff without path", func(a *Action) { a.Diff = []FileDiff{{OldPath: "x"}} }, false},
		{"diff hunk with negative line", func(a *Action) { a.Diff[0].Hunks[0].NewStart = -1 }, false},
		{"NUL byte in name", func(a *Action) { a.Name = "wire\x00transfer" }, false},
		{"NUL byte in metadata value", func(a *Action) { a.Metadata = map[string]string{"k": "v\x00"} }, false},
		{"invalid UTF-8 name", func(a *Action) { a.Name = "wire" + bad }, false},
		{"invalid UTF-8 requester", func(a *Action) { a.RequestedBy = bad }, false},
		{"invalid UTF-8 currency", func(a *Action) { a.Cost.Currency = bad }, false},
		{"invalid UTF-8 tag", func(a *Action) { a.Tags = []string{"ok", bad} }, false},
		{"invalid UTF-8 metadata key", func(a *Action) { a.Metadata = map[string]string{bad: "v"} }, false},
		{"invalid UTF-8 metadata value", func(a *Action) { a.Metadata = map[string]string{"k": bad} }, false},
		{"invalid UTF-8 message", func(a *Action) { a.Message = bad }, false},
		{"invalid UTF-8 run ID", func(a *Action) { a.RunID = bad }, false},
		{"invalid UTF-8 step ID", func(a *Action) { a.StepID = bad }, false},
		{"invalid UTF-8 constraint", func(a *Action) { a.Constraints = []string{bad} }, false},
		{"invalid UTF-8 provenance", func(a *Action) { a.Provenance.CreatedFrom = bad }, false},
		{"invalid UTF-8 diff path", func(a *Action) { a.Diff[0].Path = bad }, false},
		{"invalid UTF-8 diff old path", func(a *Action) { a.Diff[0].OldPath = bad }, false},
		{"invalid UTF-8 hunk body", func(a *Action) { a.Diff[0].Hunks[0].Body = bad }, false},
		{"lone surrogate (CESU-8) in name", func(a *Action) { a.Name = "\xed\xa0\x80" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := fullAction()
			tt.mutate(&a)
			l := Limits{}.withDefaults()
			err := a.normalize(&l)
			_, _, herr := a.Hashes()
			if tt.ok {
				require.NoError(t, err)
				require.NoError(t, herr)
				return
			}
			require.ErrorIs(t, err, ErrInvalidAction)
			require.ErrorIs(t, herr, ErrInvalidAction, "Hashes validates too")
		})
	}
}

func TestActionValidateCustomLimits(t *testing.T) {
	t.Parallel()
	l := Limits{MaxPayloadBytes: 4, MaxTags: 1, MaxMetadata: 1, MaxStringBytes: 8, MaxMessageBytes: 2, MaxDiffBytes: 3}.withDefaults()
	ok := Action{Name: "n", RequestedBy: "r", Payload: []byte("1234"), Tags: []string{"a"}, Message: "hi"}
	require.NoError(t, ok.normalize(&l))
	for _, a := range []Action{
		{Name: "n", RequestedBy: "r", Payload: []byte("12345")},
		{Name: "n", RequestedBy: "r", Tags: []string{"a", "b"}},
		{Name: "n", RequestedBy: "r", Metadata: map[string]string{"a": "", "b": ""}},
		{Name: "123456789", RequestedBy: "r"},
		{Name: "n", RequestedBy: "r", Message: "hey"},
		{Name: "n", RequestedBy: "r", Diff: []FileDiff{{Path: "p", Hunks: []Hunk{{Body: "abcd"}}}}},
	} {
		require.ErrorIs(t, a.normalize(&l), ErrInvalidAction, "%+v", a)
	}
}

func mustHashes(t *testing.T, a Action) (string, string) {
	t.Helper()
	ah, ph, err := a.Hashes()
	require.NoError(t, err)
	require.Len(t, ah, 64)
	return ah, ph
}

func TestActionHashIgnoresContextFields(t *testing.T) {
	t.Parallel()
	want, _ := mustHashes(t, fullAction())
	for name, mutate := range map[string]func(a *Action){
		"same action":           func(a *Action) {},
		"tags reordered":        func(a *Action) { a.Tags = []string{"customer-data", "prod"} },
		"tags duplicated":       func(a *Action) { a.Tags = []string{"prod", "customer-data", "prod", "customer-data"} },
		"message changed":       func(a *Action) { a.Message = "something else entirely" },
		"message removed":       func(a *Action) { a.Message = "" },
		"provenance changed":    func(a *Action) { a.Provenance.Source = "proxy"; a.Provenance.CreatedBy = "other" },
		"provenance removed":    func(a *Action) { a.Provenance = nil },
		"metadata rebuilt":      func(a *Action) { a.Metadata = map[string]string{"region": "eu-west-1", "ticket": "OPS-1"} },
		"payload reformatted":   func(a *Action) { a.Payload = []byte("{\n  \"replicas\": 3.0,\n  \"image\": \"app:v2\"\n}\n") },
		"payload escapes":       func(a *Action) { a.Payload = []byte(`{"replicas":3e0,"image":"app\u003av2"}`) },
		"risk via text marshal": func(a *Action) { require.NoError(t, a.Risk.UnmarshalText([]byte("high"))) },
	} {
		a := fullAction()
		mutate(&a)
		got, _ := mustHashes(t, a)
		require.Equal(t, want, got, name)
	}

	// An empty payload and a nil one are the same: no payload.
	a, b := fullAction(), fullAction()
	a.Payload, b.Payload = nil, []byte{}
	ha, pa := mustHashes(t, a)
	hb, pb := mustHashes(t, b)
	require.Equal(t, ha, hb)
	require.Empty(t, pa)
	require.Empty(t, pb)
}

func TestActionHashCoversIdentityFields(t *testing.T) {
	t.Parallel()
	base, _ := mustHashes(t, fullAction())
	seen := map[string]string{base: "base"}
	for _, tt := range []struct {
		name   string
		mutate func(a *Action)
	}{
		{"name", func(a *Action) { a.Name = "deploy:staging" }},
		{"requester", func(a *Action) { a.RequestedBy = "user-2" }},
		{"cost amount", func(a *Action) { a.Cost.Amount = 1234.51 }},
		{"cost currency", func(a *Action) { a.Cost.Currency = "EUR" }},
		{"cost removed", func(a *Action) { a.Cost = nil }},
		{"risk", func(a *Action) { a.Risk = RiskCritical }},
		{"risk removed", func(a *Action) { a.Risk = RiskNone }},
		{"first tag", func(a *Action) { a.Tags[0] = "staging" }},
		{"second tag", func(a *Action) { a.Tags[1] = "public-data" }},
		{"tag added", func(a *Action) { a.Tags = append(a.Tags, "urgent") }},
		{"tag removed", func(a *Action) { a.Tags = a.Tags[:1] }},
		{"tags removed", func(a *Action) { a.Tags = nil }},
		{"metadata value", func(a *Action) { a.Metadata["ticket"] = "OPS-2" }},
		{"metadata key", func(a *Action) { a.Metadata = map[string]string{"ticket": "OPS-1", "zone": "eu-west-1"} }},
		{"metadata added", func(a *Action) { a.Metadata["extra"] = "" }},
		{"metadata removed", func(a *Action) { a.Metadata = nil }},
		{"run ID", func(a *Action) { a.RunID = "run-8" }},
		{"step ID", func(a *Action) { a.StepID = "step-4" }},
		{"constraint", func(a *Action) { a.Constraints[1] = "primary" }},
		{"constraint added", func(a *Action) { a.Constraints = append(a.Constraints, "dry run") }},
		{"constraints removed", func(a *Action) { a.Constraints = nil }},
		{"payload value", func(a *Action) { a.Payload = []byte(`{"image":"app:v2","replicas":4}`) }},
		{"payload removed", func(a *Action) { a.Payload = nil }},
		{"diff path", func(a *Action) { a.Diff[0].Path = "deploy/other.yaml" }},
		{"diff old path", func(a *Action) { a.Diff[0].OldPath = "" }},
		{"hunk body", func(a *Action) { a.Diff[0].Hunks[0].Body = "-image: v1\n+image: v3\n" }},
		{"hunk old start", func(a *Action) { a.Diff[0].Hunks[0].OldStart = 2 }},
		{"hunk old lines", func(a *Action) { a.Diff[0].Hunks[0].OldLines = 3 }},
		{"hunk new start", func(a *Action) { a.Diff[0].Hunks[0].NewStart = 2 }},
		{"hunk new lines", func(a *Action) { a.Diff[0].Hunks[0].NewLines = 4 }},
		{"hunk added", func(a *Action) { a.Diff[0].Hunks = append(a.Diff[0].Hunks, Hunk{Body: "+x"}) }},
		{"hunks removed", func(a *Action) { a.Diff[0].Hunks = nil }},
		{"file added", func(a *Action) { a.Diff = append(a.Diff, FileDiff{Path: "README"}) }},
		{"diff removed", func(a *Action) { a.Diff = nil }},
		// A value moved from one field to another must not collide.
		{"name and requester swapped", func(a *Action) { a.Name, a.RequestedBy = a.RequestedBy, a.Name }},
		{"metadata key and value swapped", func(a *Action) { a.Metadata = map[string]string{"OPS-1": "ticket", "region": "eu-west-1"} }},
	} {
		a := fullAction()
		tt.mutate(&a)
		got, _ := mustHashes(t, a)
		prev, dup := seen[got]
		require.False(t, dup, "%s: same hash as %s", tt.name, prev)
		seen[got] = tt.name
	}
}

func TestActionPayloadHash(t *testing.T) {
	t.Parallel()
	sum := func(b string) string {
		s := sha256.Sum256([]byte(b))
		return hex.EncodeToString(s[:])
	}
	tests := []struct {
		name, payload, want string
	}{
		{"empty", "", ""},
		{"canonical JSON", `{"a":[1,2],"b":"x"}`, sum(`{"a":[1,2],"b":"x"}`)},
		{"key order and whitespace", "{ \"b\" : \"x\",\n\t\"a\" : [ 1 , 2.0 ] }", sum(`{"a":[1,2],"b":"x"}`)},
		{"escapes", `{"a":[1e0,2],"b":"\u0078"}`, sum(`{"a":[1,2],"b":"x"}`)},
		{"scalar", ` 42 `, sum(`42`)},
		{"not JSON", `{"a":`, sum(`{"a":`)},
		{"not JSON, whitespace kept", ` not json `, sum(` not json `)},
		{"binary", "\x00\xff\x01", sum("\x00\xff\x01")},
		// jcs refuses duplicate keys; such a payload is hashed as it is.
		{"duplicate keys", `{"a":1,"a":2}`, sum(`{"a":1,"a":2}`)},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, PayloadHash([]byte(tt.payload)), tt.name)
	}
	require.NotEqual(t, PayloadHash([]byte(`{"a":1}`)), PayloadHash([]byte(`{"a":2}`)))
	require.NotEqual(t, PayloadHash([]byte(`{"a":"1"}`)), PayloadHash([]byte(`{"a":1}`)))
	require.NotEqual(t, PayloadHash([]byte(`[1,2]`)), PayloadHash([]byte(`[2,1]`)), "array order is significant")

	// Hashes reports the same payload hash.
	a := fullAction()
	_, ph := mustHashes(t, a)
	require.Equal(t, PayloadHash(a.Payload), ph)
}

// TestActionPayloadHashKeepsLargeIntegers: RFC 8785 reads every number as
// an IEEE 754 double, so integers above 2^53 that differ in their low digits
// canonicalize to the same text. An approval bound to one payload must not
// be usable for another (account IDs, amounts in minor units, snowflake IDs
// in tool-call arguments are commonly that large).
func TestActionPayloadHashKeepsLargeIntegers(t *testing.T) {
	t.Parallel()
	pairs := [][2]string{
		{`{"amount":9007199254740993}`, `{"amount":9007199254740992}`},
		{`{"account":12345678901234567891}`, `{"account":12345678901234567892}`},
		{`[18446744073709551615]`, `[18446744073709551616]`},
	}
	for _, p := range pairs {
		t.Run(p[0], func(t *testing.T) {
			t.Parallel()
			require.NotEqual(t, PayloadHash([]byte(p[0])), PayloadHash([]byte(p[1])),
				"payloads %s and %s are different inputs but hash the same", p[0], p[1])
		})
	}
}

// TestActionCanonicalGolden pins the encoding: a change here changes every
// stored action hash, and with it idempotent Guard across an upgrade.
func TestActionCanonicalGolden(t *testing.T) {
	t.Parallel()
	a := Action{
		Name: "wire-transfer", RequestedBy: "user-1",
		Cost: &Cost{Amount: 5000, Currency: "USD"}, Risk: RiskHigh,
		Tags: []string{"b", "a"}, Payload: []byte(`{"to": "acct-9"}`),
	}
	got, err := a.appendCanonical(nil, PayloadHash(a.Payload))
	require.NoError(t, err)
	require.Equal(t, `{"cost":{"amount":5000,"currency":"USD"},"name":"wire-transfer",`+
		`"payload_sha256":"`+PayloadHash([]byte(`{"to":"acct-9"}`))+`","requested_by":"user-1","risk":"high","tags":["a","b"]}`, string(got))
}

func TestActionClone(t *testing.T) {
	t.Parallel()
	a := fullAction()
	c := a.clone()
	require.Equal(t, a, c)
	c.Cost.Amount = 1
	c.Tags[0] = "x"
	c.Metadata["ticket"] = "x"
	c.Constraints[0] = "x"
	c.Payload[0] = 'x'
	c.Provenance.Source = "x"
	c.Diff[0].Path = "x"
	c.Diff[0].Hunks[0].Body = "x"
	require.Equal(t, fullAction(), a, "the clone shares no memory with the original")
}

func TestRisk(t *testing.T) {
	t.Parallel()
	levels := []Risk{RiskNone, RiskLow, RiskMedium, RiskHigh, RiskCritical}
	require.True(t, slices.IsSorted(levels))
	for i := 1; i < len(levels); i++ {
		require.Less(t, levels[i-1], levels[i])
	}
	names := []string{"", "low", "medium", "high", "critical"}
	for i, r := range levels {
		require.Equal(t, names[i], r.String())
		text, err := r.MarshalText()
		require.NoError(t, err)
		require.Equal(t, names[i], string(text))

		var back Risk = RiskCritical
		if r == RiskCritical {
			back = RiskLow
		}
		require.NoError(t, back.UnmarshalText(text))
		require.Equal(t, r, back)

		p, err := ParseRisk(names[i])
		require.NoError(t, err)
		require.Equal(t, r, p)
	}
	require.Equal(t, "Risk(9)", Risk(9).String())
	require.Equal(t, "Risk(-1)", Risk(-1).String())
	for _, r := range []Risk{-1, 5, 9} {
		_, err := r.MarshalText()
		require.ErrorIs(t, err, ErrInvalidAction, "Risk(%d)", int(r))
	}
	for _, s := range []string{"extreme", "High", " high", "none", "0", "2"} {
		r := RiskHigh
		err := r.UnmarshalText([]byte(s))
		require.ErrorIs(t, err, ErrInvalidAction, "%q", s)
		require.Equal(t, RiskHigh, r, "a failed unmarshal leaves the value alone")
		_, err = ParseRisk(s)
		require.ErrorIs(t, err, ErrInvalidAction, "%q", s)
	}
}

func TestRiskJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Action{Name: "n", RequestedBy: "r", Risk: RiskMedium})
	require.NoError(t, err)
	require.Contains(t, string(b), `"risk":"medium"`)
	var a Action
	require.NoError(t, json.Unmarshal(b, &a))
	require.Equal(t, RiskMedium, a.Risk)

	b, err = json.Marshal(Action{Name: "n", RequestedBy: "r"})
	require.NoError(t, err)
	require.NotContains(t, string(b), "risk", "RiskNone is omitted")

	err = json.Unmarshal([]byte(`{"risk":"extreme"}`), &a)
	require.Error(t, err)
	require.True(t, errors.Is(err, ErrInvalidAction), "got %v", err)
	_, err = json.Marshal(Action{Risk: Risk(9)})
	require.Error(t, err)
}
