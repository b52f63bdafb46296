package approval

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/signoff/approval/internal/text"

	"github.com/gobwas/glob"

	"github.com/signoff/approval/internal/canon"
	"github.com/signoff/approval/internal/ident"
)

// Matcher decides whether a policy applies to an action. Matchers are pure:
// they do no I/O and keep no state, so one tree is compiled once and
// evaluated concurrently by any number of Guards.
//
// Build matchers with Name, TagAny, TagAll, TagNone, CostAtLeast, CostBelow,
// CostBetween, RiskAtLeast, Field, Custom, All, Any and Not. The set is closed so that every
// tree has a canonical form for policy snapshot hashes; Custom is the
// extension point.
type Matcher interface {
	// Match reports whether the matcher applies to a. An error means the
	// matcher could not decide; the gate then applies the policy anyway
	// (fail closed).
	Match(a *Action) (bool, error)

	// appendCanonical writes the matcher's canonical JSON form.
	appendCanonical(b []byte) ([]byte, error)
	// check reports a construction error, such as a bad glob.
	check() error
}

// ValidateMatcher reports what is wrong with m as built, the error
// SetPolicy would refuse a policy using m with: a bad glob, an empty or
// unfoldable tag, a bad currency or an empty cost range, an unknown risk
// level, a Field with an unknown field or operator, a Custom matcher
// without a name or function, an All or Any without children, a nil child.
// Constructors do not fail, so that trees are built in one expression;
// their errors surface here. The error wraps ErrInvalidPolicy.
func ValidateMatcher(m Matcher) error {
	if m == nil {
		return fmt.Errorf("%w: nil matcher", ErrInvalidPolicy)
	}
	if err := m.check(); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	return nil
}

// CanonicalMatcher returns m described as data: its canonical form, the
// JSON that a policy's snapshot hash covers (and so fixed for good). It is
// an object of one key naming the matcher, the shape policy files are
// written in (see policyfile):
//
//	{"name":"deploy:*"}
//	{"tag":{"any_of":["eu","prod"]}}          (or all_of, none_of; sorted, once each)
//	{"cost":{"at_least":1000,"below":5000,"currency":"USD"}}   (either bound may be absent)
//	{"risk":{"at_least":"high"}}
//	{"field":{"name":"metadata.priority","op":"=","value":"critical"}}   (for in, a list)
//	{"custom":"weekend"}
//	{"all":[...]}, {"any":[...]}, {"not":{...}}
//
// Names, tags and currencies are in their canonical spelling, numbers in
// RFC 8785 form. A Custom matcher is described by its name only. For a
// matcher that does not validate, it returns ValidateMatcher's error.
func CanonicalMatcher(m Matcher) ([]byte, error) {
	if err := ValidateMatcher(m); err != nil {
		return nil, err
	}
	b, err := m.appendCanonical(nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidPolicy, err)
	}
	return b, nil
}

// Name matches actions whose whole name matches the glob pattern: '*'
// matches any run of characters (':' and '/' included), '?' one character,
// '[abc]' and '{a,b}' as usual. The pattern is compiled once, here.
//
// Action names are compared in lower case (see CanonicalID), so the pattern
// is folded to lower case too; a pattern that is not printable ASCII
// without spaces could never match and is refused when the policy is set.
func Name(pattern string) Matcher {
	folded, err := ident.Name(pattern)
	if err != nil {
		return &nameMatcher{pattern: pattern, err: fmt.Errorf("name glob %q %v", text.Clip(pattern, 64), err)}
	}
	pattern = folded
	g, err := glob.Compile(pattern)
	if err != nil {
		err = fmt.Errorf("name glob %q: %v", pattern, err)
	}
	m := &nameMatcher{pattern: pattern, g: g, err: err}
	// A pattern without metacharacters is compared directly.
	m.literal = glob.QuoteMeta(pattern) == pattern
	return m
}

type nameMatcher struct {
	pattern string
	literal bool
	g       *glob.Pattern
	err     error
}

func (m *nameMatcher) Match(a *Action) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	if m.literal {
		return a.Name == m.pattern, nil
	}
	if m.g == nil {
		return false, m.err
	}
	return m.g.Match(a.Name), nil
}

func (m *nameMatcher) check() error { return m.err }

func (m *nameMatcher) appendCanonical(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = canon.AppendKey(b, "name")
	b = canon.AppendString(b, m.pattern)
	return append(b, '}'), nil
}

type tagMode uint8

const (
	tagAny tagMode = iota
	tagAll
	tagNone
)

var tagModeKeys = [...]string{tagAny: "any_of", tagAll: "all_of", tagNone: "none_of"}

// TagAny matches actions that carry at least one of tags.
func TagAny(tags ...string) Matcher { return newTagMatcher(tagAny, tags) }

// TagAll matches actions that carry every one of tags.
func TagAll(tags ...string) Matcher { return newTagMatcher(tagAll, tags) }

// TagNone matches actions that carry none of tags.
func TagNone(tags ...string) Matcher { return newTagMatcher(tagNone, tags) }

// Tags are compared in canonical form (NFKC, case-folded; see
// CanonicalID), so TagAny("Production") matches the tag "production".
func newTagMatcher(mode tagMode, tags []string) *tagMatcher {
	m := &tagMatcher{mode: mode, tags: slices.Clone(tags)}
	for i, t := range m.tags {
		if t == "" {
			m.err = errors.New("tag matcher with an empty tag")
			break
		}
		ft, err := ident.Fold(t)
		if err != nil {
			m.err = fmt.Errorf("tag matcher: tag %q %v", text.Clip(t, 64), err)
			break
		}
		m.tags[i] = ft
	}
	return m
}

type tagMatcher struct {
	mode tagMode
	tags []string
	err  error
}

func (m *tagMatcher) Match(a *Action) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	switch m.mode {
	case tagAny:
		for _, t := range m.tags {
			if slices.Contains(a.Tags, t) {
				return true, nil
			}
		}
		return false, nil
	case tagAll:
		for _, t := range m.tags {
			if !slices.Contains(a.Tags, t) {
				return false, nil
			}
		}
		return true, nil
	default:
		for _, t := range m.tags {
			if slices.Contains(a.Tags, t) {
				return false, nil
			}
		}
		return true, nil
	}
}

func (m *tagMatcher) check() error {
	if len(m.tags) == 0 {
		return errors.New("tag matcher without tags")
	}
	return m.err
}

func (m *tagMatcher) appendCanonical(b []byte) ([]byte, error) {
	tags := slices.Clone(m.tags)
	canon.SortKeys(tags)
	b = append(b, '{')
	b = canon.AppendKey(b, "tag")
	b = append(b, '{')
	b = canon.AppendKey(b, tagModeKeys[m.mode])
	b = canon.AppendStrings(b, slices.Compact(tags))
	return append(b, '}', '}'), nil
}

// CostAtLeast matches actions whose cost is at least amount. A non-empty
// currency (an ISO 4217 code, any case) restricts the match to costs in
// that currency; an empty one compares amounts in any currency. An action
// without a cost never matches. Guard refuses a cost without a currency or
// with one that is not three letters (ErrInvalidAction), so no spelling of
// a currency can slip past a cost policy.
func CostAtLeast(amount float64, currency string) Matcher {
	return newCostMatcher(amount, math.Inf(1), currency)
}

// CostBelow matches actions whose cost is below amount, in currency if it is
// not empty. An action without a cost never matches.
func CostBelow(amount float64, currency string) Matcher {
	return newCostMatcher(math.Inf(-1), amount, currency)
}

// CostBetween matches costs in [min, max), in currency if it is not empty.
func CostBetween(min, max float64, currency string) Matcher {
	return newCostMatcher(min, max, currency)
}

func newCostMatcher(min, max float64, currency string) *costMatcher {
	m := &costMatcher{min: min, max: max, currency: currency}
	if currency != "" {
		m.currency, m.err = ident.Currency(currency)
		if m.err != nil {
			m.currency = currency
		}
	}
	return m
}

type costMatcher struct {
	min, max float64 // [min, max)
	currency string
	err      error
}

func (m *costMatcher) Match(a *Action) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	c := a.Cost
	if c == nil || (m.currency != "" && c.Currency != m.currency) {
		return false, nil
	}
	return c.Amount >= m.min && c.Amount < m.max, nil
}

func (m *costMatcher) check() error {
	if math.IsNaN(m.min) || math.IsNaN(m.max) || m.min >= m.max {
		return fmt.Errorf("cost matcher with empty range [%v, %v)", m.min, m.max)
	}
	if m.err != nil {
		return fmt.Errorf("cost matcher: %v", m.err)
	}
	return nil
}

func (m *costMatcher) appendCanonical(b []byte) ([]byte, error) {
	var err error
	b = append(b, '{')
	b = canon.AppendKey(b, "cost")
	b = append(b, '{')
	sep := false
	if !math.IsInf(m.min, -1) {
		b = canon.AppendKey(b, "at_least")
		if b, err = canon.AppendFloat(b, m.min); err != nil {
			return b, err
		}
		sep = true
	}
	if !math.IsInf(m.max, 1) {
		if sep {
			b = append(b, ',')
		}
		b = canon.AppendKey(b, "below")
		if b, err = canon.AppendFloat(b, m.max); err != nil {
			return b, err
		}
		sep = true
	}
	if m.currency != "" {
		if sep {
			b = append(b, ',')
		}
		b = canon.AppendKey(b, "currency")
		b = canon.AppendString(b, m.currency)
	}
	return append(b, '}', '}'), nil
}

// RiskAtLeast matches actions whose risk is level or higher. An action
// without a risk (RiskNone) never matches.
func RiskAtLeast(level Risk) Matcher { return riskMatcher(level) }

type riskMatcher Risk

func (m riskMatcher) Match(a *Action) (bool, error) {
	return a.Risk != RiskNone && a.Risk >= Risk(m), nil
}

func (m riskMatcher) check() error {
	if Risk(m) <= RiskNone || Risk(m) > RiskCritical {
		return fmt.Errorf("risk matcher with unknown level %d", int(m))
	}
	return nil
}

func (m riskMatcher) appendCanonical(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = canon.AppendKey(b, "risk")
	b = append(b, '{')
	b = canon.AppendKey(b, "at_least")
	b = canon.AppendString(b, Risk(m).String())
	return append(b, '}', '}'), nil
}

// Custom matches with a predicate of the host program's, named so that the
// policy's snapshot hash and the audit trail can refer to it. If fn returns
// an error or panics, the policy applies (fail closed) and the failure is
// logged and audited. fn must be safe for concurrent use and must not block.
func Custom(name string, fn func(Action) (bool, error)) Matcher {
	return &customMatcher{name: name, fn: fn}
}

type customMatcher struct {
	name string
	fn   func(Action) (bool, error)
}

func (m *customMatcher) Match(a *Action) (ok bool, err error) {
	defer func() {
		if p := recover(); p != nil {
			ok, err = false, fmt.Errorf("custom matcher %q panicked: %v", m.name, p)
		}
	}()
	ok, err = m.fn(*a)
	if err != nil {
		err = fmt.Errorf("custom matcher %q: %w", m.name, err)
	}
	return ok, err
}

func (m *customMatcher) check() error {
	if m.name == "" {
		return errors.New("custom matcher without a name")
	}
	if m.fn == nil {
		return fmt.Errorf("custom matcher %q without a function", m.name)
	}
	return nil
}

func (m *customMatcher) appendCanonical(b []byte) ([]byte, error) {
	b = append(b, '{')
	b = canon.AppendKey(b, "custom")
	b = canon.AppendString(b, m.name)
	return append(b, '}'), nil
}

// All matches when every one of ms matches (and, evaluated in order,
// stopping at the first that does not).
func All(ms ...Matcher) Matcher { return &listMatcher{all: true, ms: slices.Clone(ms)} }

// Any matches when at least one of ms matches (or, evaluated in order,
// stopping at the first that does).
func Any(ms ...Matcher) Matcher { return &listMatcher{ms: slices.Clone(ms)} }

type listMatcher struct {
	all bool
	ms  []Matcher
}

func (m *listMatcher) Match(a *Action) (bool, error) {
	for _, c := range m.ms {
		ok, err := c.Match(a)
		if err != nil {
			return false, err
		}
		if ok != m.all {
			return ok, nil
		}
	}
	return m.all, nil
}

func (m *listMatcher) check() error {
	if len(m.ms) == 0 {
		return fmt.Errorf("%s matcher without children", m.key())
	}
	for _, c := range m.ms {
		if c == nil {
			return fmt.Errorf("%s matcher with a nil child", m.key())
		}
		if err := c.check(); err != nil {
			return err
		}
	}
	return nil
}

func (m *listMatcher) key() string {
	if m.all {
		return "all"
	}
	return "any"
}

func (m *listMatcher) appendCanonical(b []byte) ([]byte, error) {
	var err error
	b = append(b, '{')
	b = canon.AppendKey(b, m.key())
	b = append(b, '[')
	for i, c := range m.ms {
		if i > 0 {
			b = append(b, ',')
		}
		if b, err = c.appendCanonical(b); err != nil {
			return b, err
		}
	}
	return append(b, ']', '}'), nil
}

// Not matches when m does not. An error from m propagates (fail closed).
func Not(m Matcher) Matcher { return notMatcher{m} }

type notMatcher struct{ m Matcher }

func (n notMatcher) Match(a *Action) (bool, error) {
	ok, err := n.m.Match(a)
	if err != nil {
		return false, err
	}
	return !ok, nil
}

func (n notMatcher) check() error {
	if n.m == nil {
		return errors.New("not matcher with a nil child")
	}
	return n.m.check()
}

func (n notMatcher) appendCanonical(b []byte) ([]byte, error) {
	var err error
	b = append(b, '{')
	b = canon.AppendKey(b, "not")
	if b, err = n.m.appendCanonical(b); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}
