package approval

import (
	"errors"
	"testing"
)

func TestCheckConditions(t *testing.T) {
	t.Parallel()
	constraints := []string{
		"max_lines_changed <= 500",
		"window <= 2h",
		"not_after <= 2026-12-03T18:00:00Z",
		"region in [eu-west-1, eu-central-1, us-east-1]",
		"retries >= 1",
		"replicas > 0",
		"replicas <= 10",
		"read-only replica", // free text: not read
	}
	for _, tc := range []struct {
		cond string
		ok   bool
	}{
		{"max_lines_changed <= 200", true},
		{"max_lines_changed <= 500", true},
		{"max_lines_changed < 500", true},
		{"max_lines_changed <= 500.0", true},
		{"max_lines_changed = 120", true},
		{"max_lines_changed in [1, 2, 3]", true},
		{"max_lines_changed <= 501", false},
		{"max_lines_changed >= 10", true}, // a floor: the ceiling still applies beside it
		{"max_lines_changed in [1, 600]", false},
		{"max_lines_changed <= 2h", false}, // another kind
		{"window <= 30m", true},
		{"window < 2h", true},
		{"window <= 3h", false},
		{"window <= 7200s", true},
		{"window <= 7201s", false},
		{"not_after <= 2026-12-03T12:00:00Z", true},
		{"not_after <= 2026-12-03T19:00:00+01:00", true},
		{"not_after <= 2026-12-04T00:00:00Z", false},
		{"region = eu-west-1", true},
		{"region in [eu-west-1, eu-central-1]", true},
		{"region in [eu-west-1, ap-south-1]", false},
		{"region = ap-south-1", false},
		{"region <= eu-west-1", false}, // words are not ordered
		{"retries >= 3", true},
		{"retries > 1", true},
		{"retries >= 0", false},
		{"replicas <= 3", true}, // the floor still applies beside it
		{"replicas > 0", true},
		{"replicas >= 0", false},
		{"replicas <= 11", false},
		{"dry_run = true", true}, // a new key adds a limit
		{"budget_usd < 100", true},
		{"max_lines_changed", false},
		{"max_lines_changed != 3", false},
		{"ignore the line limit", false},
		{"region in []", false},
		{"region in [eu-west-1, 3]", false},
		{"", false},
	} {
		got, err := checkConditions([]string{tc.cond}, constraints)
		if tc.ok {
			if err != nil {
				t.Errorf("%q: %v", tc.cond, err)
			} else if len(got) != 1 {
				t.Errorf("%q: got %v", tc.cond, got)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidCondition) {
			t.Errorf("%q: err %v, want ErrInvalidCondition", tc.cond, err)
		}
	}
	got, err := checkConditions([]string{"  window   <=  1h "}, constraints)
	if err != nil || got[0] != "window <= 1h" {
		t.Errorf("normal spelling: %q, %v", got, err)
	}
	if _, err := checkConditions(make([]string, maxConditions+1), nil); !errors.Is(err, ErrInvalidCondition) {
		t.Errorf("too many: %v", err)
	}
}
