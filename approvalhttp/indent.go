package approvalhttp

import "bytes"

// indentPrefix appends src, valid JSON, to dst pretty-printed exactly as
// json.Indent(dst, src, "", "  ") prints it, but stops once it has
// appended more than limit bytes: the review page shows at most
// MaxPayloadDisplayBytes of a payload, and one byte past the limit is
// enough to tell that it is cut and where (see payload). It does not check
// src: invalid JSON gives output of no particular form.
func indentPrefix(dst, src []byte, limit int) []byte {
	start := len(dst)
	// depth is the indentation; nest counts the open objects and arrays.
	depth, nest := 0, 0
	// opened is set after { or [: the newline waits for the first
	// member, so that an empty object or array stays {} or [].
	opened, begun := false, false
	for i := 0; i < len(src); i++ {
		room := limit + 1 - (len(dst) - start)
		if room <= 0 {
			return dst
		}
		c := src[i]
		switch c {
		case ' ', '\t', '\n', '\r':
			if begun && nest == 0 {
				// json.Indent drops the space before the value but
				// copies the space after it.
				return append(dst, src[i:min(len(src), i+room)]...)
			}
			continue
		}
		begun = true
		if opened && c != '}' && c != ']' {
			opened = false
			depth++
			dst = newline(dst, depth)
		}
		switch c {
		case '"':
			// A string is copied as it is, through its closing quote, or
			// as far as the limit needs.
			room := limit + 1 - (len(dst) - start)
			if room <= 0 {
				return dst
			}
			j := closingQuote(src[:min(len(src), i+room)], i)
			if j < 0 {
				return append(dst, src[i:min(len(src), i+room)]...)
			}
			dst = append(dst, src[i:j+1]...)
			i = j
		case '{', '[':
			opened = true
			nest++
			dst = append(dst, c)
		case ',':
			dst = newline(append(dst, c), depth)
		case ':':
			dst = append(dst, c, ' ')
		case '}', ']':
			nest--
			if opened {
				opened = false
			} else {
				depth--
				dst = newline(dst, depth)
			}
			dst = append(dst, c)
		default:
			dst = append(dst, c)
		}
	}
	return dst
}

// closingQuote returns the index in src of the quote that closes the
// string opened at src[i], or -1 if src ends first.
func closingQuote(src []byte, i int) int {
	for j := i + 1; ; j++ {
		k := bytes.IndexByte(src[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		escaped := false
		for b := j - 1; src[b] == '\\'; b-- {
			escaped = !escaped
		}
		if !escaped {
			return j
		}
	}
}

// newline starts a line indented depth levels of two spaces.
func newline(dst []byte, depth int) []byte {
	dst = append(dst, '\n')
	for range depth {
		dst = append(dst, ' ', ' ')
	}
	return dst
}
