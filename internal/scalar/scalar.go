// Package scalar holds the values a field condition (the approval
// package's Field matcher) compares: a string, a finite float64 or a bool,
// and lists of them. It normalizes Go values and decoded JSON into that
// form, looks a value up in a JSON payload by a path of member names,
// compares and orders values the way metadata strings and numbers meet,
// describes a value for an error, and writes one as canonical JSON.
package scalar

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"

	"github.com/signoff/approval/internal/canon"
	"github.com/signoff/approval/internal/text"
)

// Of normalizes a value given to a condition: a string or a bool as it is,
// any Go number or json.Number as a finite float64; anything else is an
// error.
func Of(v any) (any, error) {
	switch x := v.(type) {
	case string, bool:
		return x, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("value is not a finite number")
		}
		return x, nil
	case float32:
		return Of(float64(x))
	case int:
		return float64(x), nil
	case int64:
		return float64(x), nil
	case int32:
		return float64(x), nil
	case uint:
		return float64(x), nil
	case uint64:
		return float64(x), nil
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return nil, fmt.Errorf("value %q is not a number", x)
		}
		return Of(f)
	}
	return nil, fmt.Errorf("value of type %T (want a string, a number or a bool)", v)
}

var errNotJSON = errors.New("the payload is not JSON")

// Lookup returns the value at path (member names, outermost first) in the
// JSON payload, numbers as float64 (FromJSON), or nil when the payload is
// empty or has no such member. A payload that is not JSON is an error.
func Lookup(payload []byte, path []string) (any, error) {
	if len(payload) == 0 {
		return nil, nil
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, errNotJSON
	}
	for _, k := range path {
		obj, ok := doc.(map[string]any)
		if !ok {
			return nil, nil
		}
		if doc, ok = obj[k]; !ok {
			return nil, nil
		}
	}
	return FromJSON(doc), nil
}

// FromJSON turns the json.Numbers of a value decoded with UseNumber into
// float64, in lists too (in place); a number a float64 cannot hold stays
// its text.
func FromJSON(v any) any {
	switch x := v.(type) {
	case json.Number:
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case []any:
		for i := range x {
			x[i] = FromJSON(x[i])
		}
	}
	return v
}

// Equal compares two scalar values; a number equals a string that parses
// as the same number, and a bool the string of its name (metadata values
// are strings).
func Equal(a, b any) bool {
	switch x := a.(type) {
	case string:
		switch y := b.(type) {
		case string:
			return x == y
		case float64:
			f, err := strconv.ParseFloat(x, 64)
			return err == nil && f == y
		case bool:
			return x == strconv.FormatBool(y)
		}
	case float64:
		switch y := b.(type) {
		case float64:
			return x == y
		case string:
			return Equal(y, x)
		}
	case bool:
		switch y := b.(type) {
		case bool:
			return x == y
		case string:
			return Equal(y, x)
		}
	}
	return false
}

// Number returns v as a number for ordering: a float64 as it is, a string
// that parses as a finite number; false for anything else.
func Number(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return f, true
		}
	}
	return 0, false
}

// Describe names v for an error: a string quoted (and clipped), anything
// else by its type.
func Describe(v any) string {
	if s, ok := v.(string); ok {
		return strconv.Quote(text.Clip(s, 32))
	}
	return fmt.Sprintf("a %T", v)
}

// AppendCanonical appends v, a value as Of returns it, as canonical JSON
// (RFC 8785).
func AppendCanonical(b []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return canon.AppendString(b, x)
	case bool:
		if x {
			return append(b, "true"...)
		}
		return append(b, "false"...)
	case float64:
		if out, err := canon.AppendFloat(b, x); err == nil {
			return out
		}
	}
	return append(b, "null"...) // not reached: Of keeps finite numbers only
}
