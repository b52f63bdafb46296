package approval

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/gowebpki/jcs"
	"github.com/stretchr/testify/require"
)

// The action hash is written field by field (appendCanonical). These tests
// find the fields by reflection instead, so that a field added to Action,
// or to a struct inside it, fails them until it is either hashed or listed
// here as excluded.

// hashExcluded lists, by Go field path ("Diff.Hunks.Body"), the fields the
// action hash leaves out on purpose, and why. A listed struct excludes the
// fields inside it.
var hashExcluded = map[string]string{
	"Message":        "context for reviewers: a retry that rewords it is the same action",
	"Provenance":     "context for reviewers: where the request came from",
	"Recommendation": "context for reviewers: an automated reviewer's advice, which the request keeps apart",
	"IdempotencyKey": "names the operation, not the bytes: the same bytes under two keys are two runs of one action, and a key reused with other bytes is refused, not another action",
}

// hashValues overrides the value generated for a field where the generic
// one would not validate (see normalize and identity.go).
var hashValues = map[string]any{
	"Cost.Currency":             "EUR", // three letters, and not the minimal cost's USD
	"Recommendation.Verdict":    VerdictApprove,
	"Recommendation.Confidence": 0.5,
	"Recommendation.At":         time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
}

// minimalValue is the smallest valid value of a struct type: the base on
// which one field inside it is set.
func minimalValue(t reflect.Type) reflect.Value {
	v := reflect.New(t).Elem()
	switch t {
	case reflect.TypeFor[Action]():
		v.Set(reflect.ValueOf(Action{Name: "n", RequestedBy: "r"}))
	case reflect.TypeFor[Cost]():
		v.Set(reflect.ValueOf(Cost{Currency: "USD"})) // a cost names its currency
	case reflect.TypeFor[FileDiff]():
		v.Set(reflect.ValueOf(FileDiff{Path: "p"})) // a file has a path
	case reflect.TypeFor[Recommendation]():
		v.Set(reflect.ValueOf(Recommendation{By: "b", Verdict: VerdictDeny})) // a valid recommendation
	}
	return v
}

// hashField is a field of Action or of a struct inside it.
type hashField struct {
	path     string // Go field path: "Diff.Hunks.Body"
	steps    []int  // field index at each level
	excluded bool   // by hashExcluded, itself or a struct around it
	typ      reflect.Type
}

// container reports the struct type a field holds (itself, through a
// pointer or as slice elements), if it holds one.
func container(t reflect.Type) (reflect.Type, bool) {
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice:
		t = t.Elem()
	}
	return t, t.Kind() == reflect.Struct && t != reflect.TypeFor[time.Time]()
}

// hashFields lists every field of Action, depth first, structs before the
// fields inside them.
func hashFields(t *testing.T) []hashField {
	var out []hashField
	var walk func(typ reflect.Type, prefix string, steps []int, excluded bool)
	walk = func(typ reflect.Type, prefix string, steps []int, excluded bool) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			path := prefix + f.Name
			if !f.IsExported() {
				t.Fatalf("%s is unexported: the action hash tests cannot set it", path)
			}
			_, ex := hashExcluded[path]
			hf := hashField{path: path, steps: append(slices.Clone(steps), i), excluded: excluded || ex, typ: f.Type}
			out = append(out, hf)
			if ct, ok := container(f.Type); ok {
				walk(ct, path+".", hf.steps, hf.excluded)
			}
		}
	}
	walk(reflect.TypeFor[Action](), "", nil, false)
	known := map[string]bool{}
	for _, f := range out {
		known[f.path] = true
	}
	for p := range hashExcluded {
		require.True(t, known[p], "hashExcluded names %s, which Action does not have", p)
	}
	for p := range hashValues {
		require.True(t, known[p], "hashValues names %s, which Action does not have", p)
	}
	return out
}

// materialize returns the struct a field holds, creating it (minimal) if
// the field is nil or empty.
func materialize(f reflect.Value) reflect.Value {
	switch f.Kind() {
	case reflect.Pointer:
		if f.IsNil() {
			p := reflect.New(f.Type().Elem())
			p.Elem().Set(minimalValue(f.Type().Elem()))
			f.Set(p)
		}
		return f.Elem()
	case reflect.Slice:
		if f.Len() == 0 {
			s := reflect.MakeSlice(f.Type(), 1, 1)
			s.Index(0).Set(minimalValue(f.Type().Elem()))
			f.Set(s)
		}
		return f.Index(0)
	}
	return f
}

// setField sets field f of the action behind v, creating the structs on
// its way, to a value of its own: n makes the value distinct from other
// fields'. A field holding structs is set to one minimal struct.
func setField(t *testing.T, v reflect.Value, f hashField, n int) {
	for _, i := range f.steps[:len(f.steps)-1] {
		v = materialize(v.Field(i))
	}
	fv := v.Field(f.steps[len(f.steps)-1])
	if o, ok := hashValues[f.path]; ok {
		fv.Set(reflect.ValueOf(o).Convert(fv.Type()))
		return
	}
	if _, ok := container(f.typ); ok {
		materialize(fv)
		return
	}
	// Lower-case ASCII without spaces: a valid name, identity and tag.
	s := strings.ToLower(strings.ReplaceAll(f.path, ".", "-"))
	switch k := fv.Kind(); {
	case k == reflect.String:
		fv.SetString(s)
	case k >= reflect.Int && k <= reflect.Int64:
		fv.SetInt(int64(n%4 + 1)) // within Risk's levels
	case k >= reflect.Uint && k <= reflect.Uint64:
		fv.SetUint(uint64(n))
	case k == reflect.Float32 || k == reflect.Float64:
		fv.SetFloat(float64(n) + 0.5)
	case k == reflect.Bool:
		fv.SetBool(true)
	case k == reflect.Slice && fv.Type().Elem().Kind() == reflect.String:
		fv.Set(reflect.ValueOf([]string{s}).Convert(fv.Type()))
	case k == reflect.Slice && fv.Type().Elem().Kind() == reflect.Uint8:
		fv.Set(reflect.ValueOf([]byte(s)).Convert(fv.Type()))
	case k == reflect.Map && fv.Type().Key().Kind() == reflect.String && fv.Type().Elem().Kind() == reflect.String:
		fv.Set(reflect.ValueOf(map[string]string{s: s}).Convert(fv.Type()))
	default:
		t.Fatalf("%s: no value for a %s; add one to hashValues", f.path, fv.Type())
	}
}

// TestActionHashCoversEveryField sets each field of Action alone, and each
// field of the structs inside it alone in a minimal struct, and checks that
// the action hash changes, unless the field is listed in hashExcluded, in
// which case it must not.
func TestActionHashCoversEveryField(t *testing.T) {
	t.Parallel()
	for n, f := range hashFields(t) {
		// The base: the structs around the field, minimal, without it.
		var base Action
		v := reflect.ValueOf(&base).Elem()
		v.Set(minimalValue(v.Type()))
		for _, i := range f.steps[:len(f.steps)-1] {
			v = materialize(v.Field(i))
		}
		changed := base.clone()
		setField(t, reflect.ValueOf(&changed).Elem(), f, n)

		h0, _, err := base.Hashes()
		require.NoError(t, err, "%s: the base action must validate", f.path)
		h1, _, err := changed.Hashes()
		require.NoError(t, err, "%s: the generated value does not validate; give one in hashValues", f.path)
		if f.excluded {
			require.Equal(t, h0, h1, "%s is in hashExcluded but changes the action hash", f.path)
			continue
		}
		if f.typ.Kind() == reflect.Struct {
			continue // always present: only the fields inside it can change
		}
		require.NotEqual(t, h0, h1, "%s does not change the action hash: hash it in appendCanonical, or list it in hashExcluded", f.path)
	}
}

// everyField returns an action with every field set, each to a value of its
// own, structs holding one element each.
func everyField(t *testing.T) Action {
	var a Action
	v := reflect.ValueOf(&a).Elem()
	v.Set(minimalValue(v.Type()))
	for n, f := range hashFields(t) {
		setField(t, v, f, n)
	}
	return a
}

// jsonName is the key encoding/json writes a field under ("" if none).
func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

// dropExcluded deletes from v, the encoding/json form of a value of type
// typ, the members of the fields in hashExcluded.
func dropExcluded(v any, typ reflect.Type, prefix string) {
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			dropExcluded(e, typ, prefix)
		}
		return
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return
	}
	for i := range typ.NumField() {
		f := typ.Field(i)
		key := jsonName(f)
		if _, ex := hashExcluded[prefix+f.Name]; ex {
			delete(obj, key)
			continue
		}
		if ct, ok := container(f.Type); ok && obj[key] != nil {
			dropExcluded(obj[key], ct, prefix+f.Name+".")
		}
	}
}

// jsonToCanonical is where the canonical form the action hash is taken over
// differs from the encoding/json form of a normalized Action, beyond the
// excluded fields. Risk needs no entry: both write its name, and leave out
// RiskNone. Nor does a cost's currency, omitted by json when empty: a
// normalized cost has one.
var jsonToCanonical = []struct {
	what      string
	translate func(a *Action, m map[string]any)
}{
	{"payload: its hash (PayloadHash, over RFC 8785 form if JSON) under payload_sha256, not its bytes in base64", func(a *Action, m map[string]any) {
		delete(m, "payload")
		if ph := PayloadHash(a.Payload); ph != "" {
			m["payload_sha256"] = ph
		}
	}},
	{"tags: a set, in UTF-16 order (the order JCS gives keys), without duplicates", func(a *Action, m map[string]any) {
		if m["tags"] == nil {
			return
		}
		tags := slices.Clone(a.Tags)
		slices.SortFunc(tags, func(x, y string) int {
			return slices.Compare(utf16.Encode([]rune(x)), utf16.Encode([]rune(y)))
		})
		m["tags"] = slices.Compact(tags)
	}},
	{"diff[].hunks and diff[].old_path: written even when empty", func(a *Action, m map[string]any) {
		files, _ := m["diff"].([]any)
		for _, f := range files {
			f := f.(map[string]any)
			if _, ok := f["hunks"]; !ok {
				f["hunks"] = []any{}
			}
			if _, ok := f["old_path"]; !ok {
				f["old_path"] = ""
			}
		}
	}},
}

// canonicalFromJSON derives the canonical form of a normalized action from
// encoding/json: its JSON form without the excluded fields, translated by
// jsonToCanonical, in RFC 8785 form.
func canonicalFromJSON(t *testing.T, a *Action) []byte {
	t.Helper()
	raw, err := json.Marshal(a)
	require.NoError(t, err)
	d := json.NewDecoder(strings.NewReader(string(raw)))
	d.UseNumber()
	var m map[string]any
	require.NoError(t, d.Decode(&m))
	dropExcluded(m, reflect.TypeFor[Action](), "")
	for _, tr := range jsonToCanonical {
		tr.translate(a, m)
	}
	raw, err = json.Marshal(m)
	require.NoError(t, err)
	out, err := jcs.Transform(raw)
	require.NoError(t, err)
	return out
}

// TestActionCanonicalMatchesJSON: the canonical form appendCanonical writes
// is the RFC 8785 form of the action's encoding/json form, without the
// excluded fields. A field added to Action with a json tag fails it (in the
// every-field action) until appendCanonical writes it or hashExcluded lists
// it.
func TestActionCanonicalMatchesJSON(t *testing.T) {
	t.Parallel()
	tricky := "q\"b\\c\x01\x1f\x7f<>&\u2028é€😀\ufb33"
	actions := map[string]Action{
		"minimal":     {Name: "n", RequestedBy: "r"},
		"full":        fullAction(),
		"every field": everyField(t),
		"tricky strings": {
			// Names, identities, tags and currencies have canonical forms
			// (identity.go), so the tricky text there is what they allow;
			// normalize rewrites it before the oracle sees it.
			Name: `q"b\c<>&~`, RequestedBy: "Ré€😀\ufb33",
			Cost:        &Cost{Amount: 0.1, Currency: "eur"},
			Risk:        RiskLow,
			Tags:        []string{"\ufb33", "😀", "a", "😀", "\u20ac", "1", "ö", "Ö", "ｂ"},
			Metadata:    map[string]string{"\ufb33": tricky, "😀": "", "\r": "cr", "1": "one", "\u0080": "c", "ö": "o", "€": "e"},
			RunID:       tricky,
			StepID:      "\t",
			Constraints: []string{tricky, "", "\u2029"},
			Payload:     []byte("not json"),
			Diff: []FileDiff{
				{Path: tricky, Hunks: []Hunk{{Body: tricky}, {OldStart: 1 << 30, NewLines: 7}}},
				{Path: "b"},
			},
		},
		"empty but not nil": {
			Name: "n", RequestedBy: "r", Tags: []string{}, Metadata: map[string]string{},
			Constraints: []string{}, Payload: []byte{}, Diff: []FileDiff{{Path: "a", Hunks: []Hunk{}}},
		},
		"large and small costs": {Name: "n", RequestedBy: "r", Cost: &Cost{Amount: 1e21, Currency: "USD"}},
		"tiny cost":             {Name: "n", RequestedBy: "r", Cost: &Cost{Amount: 5e-324, Currency: "USD"}},
		"odd cost":              {Name: "n", RequestedBy: "r", Cost: &Cost{Amount: 333333333.33333329, Currency: "USD"}},
		"integral cost":         {Name: "n", RequestedBy: "r", Cost: &Cost{Amount: 9007199254740992, Currency: "JPY"}},
		"every risk":            {Name: "n", RequestedBy: "r", Risk: RiskCritical},
	}
	for name, a := range actions {
		l := Limits{}.withDefaults()
		require.NoError(t, a.normalize(&l), name)
		got, err := a.appendCanonical(nil, PayloadHash(a.Payload))
		require.NoError(t, err, name)
		want := canonicalFromJSON(t, &a)
		require.Equal(t, string(want), string(got), "%s: appendCanonical and the encoding/json form disagree", name)

		ah, _, err := a.Hashes()
		require.NoError(t, err, name)
		sum := sha256.Sum256(want)
		require.Equal(t, hex.EncodeToString(sum[:]), ah, "%s: the action hash is the SHA-256 of the canonical form", name)
	}
}
