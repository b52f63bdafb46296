package approvalmcp

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"

	"github.com/signoff/approval"
)

// payload is the action payload of a call's arguments: absent or null
// arguments are the empty object, so that either spelling is one call.
func payload(args json.RawMessage) []byte {
	if t := bytes.TrimSpace(args); len(t) == 0 || string(t) == "null" {
		return []byte("{}")
	}
	return args
}

// checkArgs refuses arguments that are not a JSON object (absent and null
// are the empty object), and objects with a key twice at any depth: JSON
// parsers disagree on which value counts, so a reviewer could approve one
// reading and the tool run another.
func checkArgs(args json.RawMessage) error {
	if t := bytes.TrimSpace(args); len(t) == 0 || string(t) == "null" {
		return nil
	} else if t[0] != '{' || !json.Valid(t) {
		return fmt.Errorf("%w: the arguments are not a JSON object", approval.ErrInvalidAction)
	}
	dec := json.NewDecoder(bytes.NewReader(args))
	type frame struct {
		keys    map[string]bool // nil in an array
		wantKey bool
	}
	var open []frame
	// valueDone marks the value of the innermost object's last key read.
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
			return fmt.Errorf("%w: the arguments are not valid JSON: %v", approval.ErrInvalidAction, err)
		}
		if n := len(open); n > 0 && open[n-1].wantKey {
			if k, ok := tok.(string); ok {
				if open[n-1].keys[k] {
					return fmt.Errorf("%w: the arguments hold the key %q twice in one object", approval.ErrInvalidAction, clip(k, 64))
				}
				open[n-1].keys[k] = true
				open[n-1].wantKey = false
				continue
			}
		}
		switch tok {
		case json.Delim('{'):
			open = append(open, frame{keys: map[string]bool{}, wantKey: true})
		case json.Delim('['):
			open = append(open, frame{})
		case json.Delim('}'), json.Delim(']'):
			open = open[:len(open)-1]
			valueDone()
		default:
			valueDone()
		}
	}
}
