package approval

import "fmt"

// Risk is an ordered risk level: RiskLow < RiskMedium < RiskHigh <
// RiskCritical. The zero value RiskNone means "not assessed"; risk matchers
// never match it. Risk marshals to and from its lower-case name.
type Risk int8

// Risk levels, in order.
const (
	RiskNone Risk = iota
	RiskLow
	RiskMedium
	RiskHigh
	RiskCritical
)

var riskNames = [...]string{"", "low", "medium", "high", "critical"}

// String returns the level's name ("high"), or "" for RiskNone.
func (r Risk) String() string {
	if r < RiskNone || r > RiskCritical {
		return fmt.Sprintf("Risk(%d)", int(r))
	}
	return riskNames[r]
}

// ParseRisk returns the level named s. The empty string is RiskNone; any
// other unknown name reports ErrInvalidAction.
func ParseRisk(s string) (Risk, error) {
	for i, n := range riskNames {
		if n == s {
			return Risk(i), nil
		}
	}
	return RiskNone, fmt.Errorf("%w: unknown risk level %q (want low, medium, high or critical)", ErrInvalidAction, s)
}

// MarshalText implements encoding.TextMarshaler.
func (r Risk) MarshalText() ([]byte, error) {
	if r < RiskNone || r > RiskCritical {
		return nil, fmt.Errorf("%w: unknown risk level %d", ErrInvalidAction, int(r))
	}
	return []byte(riskNames[r]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Risk) UnmarshalText(b []byte) error {
	v, err := ParseRisk(string(b))
	if err != nil {
		return err
	}
	*r = v
	return nil
}
