package approvalhttp

import (
	"bytes"
	"html/template"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzText: the writer escapes element text and quoted attribute values
// exactly as html/template escapes a value in element text.
func FuzzText(f *testing.F) {
	for _, s := range []string{"", "plain", `<script>alert("x")</script>`, `a&b'c"d+e`, "\x00nul", "é→\u2028", `"><img src=x onerror=alert(1)>`} {
		f.Add(s)
	}
	tmpl := template.Must(template.New("t").Parse(`{{.}}`))
	f.Fuzz(func(t *testing.T, s string) {
		var want bytes.Buffer
		if err := tmpl.Execute(&want, s); err != nil {
			t.Skip()
		}
		var got bytes.Buffer
		htmlWriter{&got}.text(s)
		if got.String() != want.String() {
			t.Fatalf("text(%q) = %q, html/template writes %q", s, got.String(), want.String())
		}
		if strings.ContainsAny(got.String(), `<>"'`) {
			t.Fatalf("text(%q) = %q leaves markup characters", s, got.String())
		}
	})
}

// TestNoDynamicMarkup: raw takes markup, which only constants convert to
// implicitly; no source file converts anything to it explicitly.
func TestNoDynamicMarkup(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	conv := regexp.MustCompile(`\bmarkup\(`)
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if loc := conv.FindIndex(src); loc != nil {
			t.Errorf("%s:%d converts a value to markup", name, bytes.Count(src[:loc[0]], []byte("\n"))+1)
		}
	}
}
