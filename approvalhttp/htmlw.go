package approvalhttp

import (
	"bytes"
	"strconv"
)

// The review page is written by hand rather than by html/template: a page
// is some two hundred interpolations, and html/template makes each one a
// reflective call (about 1 µs and 2.5 allocations apiece), which cost more
// than the Decide the page leads to. The writer below keeps
// html/template's guarantee for the two contexts the page uses, element
// text and double-quoted attribute values, by construction:
//
//   - markup is the only type raw accepts, and only string constants
//     convert to it implicitly: a dynamic string cannot reach the page
//     unescaped without an explicit, greppable conversion to markup,
//     and there is none;
//   - every dynamic string goes through text or attr, which escape it as
//     html/template's text escaper does (& < > " ' + and NUL);
//   - the page has no script, style, or URL taken from a request: links
//     are built from request IDs (checked hex) and url.Values encodings,
//     and still escaped.

// markup is trusted HTML: string constants of this package only.
type markup string

// htmlWriter writes a page into a buffer.
type htmlWriter struct{ b *bytes.Buffer }

func (w htmlWriter) raw(s markup) { w.b.WriteString(string(s)) }

// text writes s escaped for element text or a quoted attribute value.
func (w htmlWriter) text(s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var rep string
		switch s[i] {
		case '&':
			rep = "&amp;"
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '"':
			rep = "&#34;"
		case '\'':
			rep = "&#39;"
		case '+':
			rep = "&#43;"
		case 0:
			rep = "\uFFFD"
		default:
			continue
		}
		w.b.WriteString(s[last:i])
		w.b.WriteString(rep)
		last = i + 1
	}
	w.b.WriteString(s[last:])
}

// attr writes ` name="value"`, value escaped.
func (w htmlWriter) attr(name markup, value string) {
	w.b.WriteByte(' ')
	w.raw(name)
	w.b.WriteString(`="`)
	w.text(value)
	w.b.WriteByte('"')
}

// elem writes <tag attrs...>text</tag> for a tag with an id.
func (w htmlWriter) elem(tag markup, id, class string, text string) {
	w.b.WriteByte('<')
	w.raw(tag)
	if class != "" {
		w.attr("class", class)
	}
	if id != "" {
		w.attr("id", id)
	}
	w.b.WriteByte('>')
	w.text(text)
	w.b.WriteString("</")
	w.raw(tag)
	w.b.WriteByte('>')
}

// dt writes <dt>term</dt>; dd writes <dd id=...>text</dd>.
func (w htmlWriter) dt(term markup) {
	w.raw("<dt>")
	w.raw(term)
	w.raw("</dt>")
}

func (w htmlWriter) dd(id, text string) { w.elem("dd", id, "", text) }

func (w htmlWriter) int(n int) { w.b.WriteString(strconv.Itoa(n)) }

// timeEl writes <time datetime=iso id=id>text</time>.
func (w htmlWriter) timeEl(id, text, iso string) {
	w.raw("<time")
	w.attr("datetime", iso)
	if id != "" {
		w.attr("id", id)
	}
	w.raw(">")
	w.text(text)
	w.raw("</time>")
}

// head writes the document start, the top bar and <main>, as
// templates/layout.html does for the other pages.
func (w htmlWriter) head(base, title, viewer string) {
	w.raw("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n" +
		"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n" +
		"<meta name=\"referrer\" content=\"no-referrer\">\n<title>")
	w.text(title)
	w.raw("</title>\n<link rel=\"stylesheet\"")
	w.attr("href", base+"assets/style.css")
	w.raw(">\n</head>\n<body>\n<header class=\"top\"><a")
	w.attr("href", base+"approvals")
	w.raw(" id=\"queue-link\">Approvals</a>")
	if viewer != "" {
		w.raw("<span class=\"who\" id=\"viewer\">")
		w.text(viewer)
		w.raw("</span>")
	}
	w.raw("</header>\n<main>\n")
}

func (w htmlWriter) foot() { w.raw("</main>\n</body>\n</html>\n") }
