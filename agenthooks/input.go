package agenthooks

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"unicode/utf8"

	"github.com/signoff/approval"
)

// checkInput refuses a tool input that is not one JSON object, or that
// holds a key twice in one object: parsers disagree on which of the two
// values counts, so a reviewer could approve one reading and the tool run
// the other.
func checkInput(in json.RawMessage) error {
	t := bytes.TrimSpace(in)
	if len(t) == 0 || t[0] != '{' || !json.Valid(t) {
		return fmt.Errorf("%w: the tool input is not a JSON object", approval.ErrInvalidAction)
	}
	if !utf8.Valid(t) {
		return fmt.Errorf("%w: the tool input is not valid UTF-8", approval.ErrInvalidAction)
	}
	dec := json.NewDecoder(bytes.NewReader(t))
	dec.UseNumber()
	type frame struct {
		keys    map[string]bool // nil in an array
		wantKey bool
	}
	var open []frame
	valueDone := func() {
		if n := len(open); n > 0 && open[n-1].keys != nil {
			open[n-1].wantKey = true
		}
	}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: the tool input: %v", approval.ErrInvalidAction, err)
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				open = append(open, frame{keys: map[string]bool{}, wantKey: true})
			case '[':
				open = append(open, frame{})
			default:
				open = open[:len(open)-1]
				valueDone()
			}
		case string:
			if n := len(open); n > 0 && open[n-1].keys != nil && open[n-1].wantKey {
				if open[n-1].keys[tok] {
					return fmt.Errorf("%w: the tool input holds the key %q twice in one object", approval.ErrInvalidAction, tok)
				}
				open[n-1].keys[tok] = true
				open[n-1].wantKey = false
				continue
			}
			valueDone()
		default:
			valueDone()
		}
	}
}
