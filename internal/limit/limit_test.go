package limit

import "testing"

func TestParse(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		s    string
		ok   bool
		kind Kind
	}{
		{"max_lines <= 200", true, Number},
		{"window < 30m", true, Duration},
		{"not_after <= 2026-12-03T18:00:00Z", true, Time},
		{"region = eu-west-1", true, Word},
		{"region in [eu-west-1, us-east-1]", true, Word},
		{"region < eu-west-1", false, 0}, // words only compare equal
		{"n in [1, 2m]", false, 0},       // one kind per list
		{"n <= 1/2", false, 0},           // no fractions
		{"two words <= 3", false, 0},     // a key is one word
		{"k ~ 3", false, 0},              // unknown operator
		{"read-only replica", false, 0},  // free text
		{"k <= 3 4", false, 0},           // one value
		{"k in 1, 2", false, 0},          // brackets
		{"bad/key <= 3", false, 0},       // key characters
	} {
		l, ok := Parse(tc.s)
		if ok != tc.ok || ok && l.Kind() != tc.kind {
			t.Errorf("Parse(%q) = %v, kind %v; want %v, %v", tc.s, ok, func() Kind {
				if ok {
					return l.Kind()
				}
				return 0
			}(), tc.ok, tc.kind)
		}
	}
}

func TestWithin(t *testing.T) {
	t.Parallel()
	must := func(s string) Limit {
		l, ok := Parse(s)
		if !ok {
			t.Fatalf("Parse(%q) failed", s)
		}
		return l
	}
	bounds := []Limit{must("n <= 500"), must("n >= 1")}
	for _, tc := range []struct {
		c  string
		ok bool
	}{
		{"n <= 200", true}, {"n < 500", true}, {"n <= 500", true}, {"n <= 501", false},
		{"n = 3", true}, {"n = 0", false}, {"n in [1, 500]", true}, {"n in [1, 501]", false},
		{"n >= 2", true}, {"n > 1", true}, {"n > 0", false}, {"n >= 0", false}, // numbers are not integers: n > 0 admits 0.5
	} {
		c := must(tc.c)
		if got := c.Within(bounds); got != tc.ok {
			t.Errorf("%q within %v = %v, want %v", tc.c, bounds, got, tc.ok)
		}
	}
	if l := must("region = eu"); !l.Within(nil) {
		t.Error("a limit with no bound adds one: within")
	}
}
