package sqlstore

import (
	"bytes"
	"fmt"
	"reflect"
	"strconv"
	"unicode/utf8"
)

// replacementEscape is how encoding/json writes a byte that is not UTF-8:
// the escape of U+FFFD. It writes a valid U+FFFD as itself, unescaped.
var replacementEscape = []byte(`\ufffd`)

// checkText returns an error wrapping ErrInvalidText if v, a request or an
// event whose JSON is body, holds a string (or map key) that is not valid
// UTF-8. encoding/json writes each such byte as the escape \ufffd, so a
// body without one proves v valid with no walk over it.
func checkText(what string, v any, body []byte) error {
	if !bytes.Contains(body, replacementEscape) {
		return nil
	}
	if path, bad := invalidText(reflect.ValueOf(v), what); bad {
		return fmt.Errorf("%w: %s", ErrInvalidText, path)
	}
	return nil
}

// invalidText returns the path of the first string in v, a value or map
// key reached through exported fields, slices and maps, that is not valid
// UTF-8. Byte slices are skipped: JSON holds them in base64.
func invalidText(v reflect.Value, path string) (string, bool) {
	switch v.Kind() {
	case reflect.String:
		return path, !utf8.ValidString(v.String())
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			return invalidText(v.Elem(), path)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range v.NumField() {
			if f := t.Field(i); f.IsExported() {
				if p, bad := invalidText(v.Field(i), path+"."+f.Name); bad {
					return p, true
				}
			}
		}
	case reflect.Slice, reflect.Array:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return "", false
		}
		for i := range v.Len() {
			if p, bad := invalidText(v.Index(i), path+"["+strconv.Itoa(i)+"]"); bad {
				return p, true
			}
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			key := fmt.Sprint(it.Key())
			if p, bad := invalidText(it.Key(), path+" key "+strconv.Quote(key)); bad {
				return p, true
			}
			if p, bad := invalidText(it.Value(), path+"["+strconv.Quote(key)+"]"); bad {
				return p, true
			}
		}
	}
	return "", false
}
