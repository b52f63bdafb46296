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

// BenchmarkWriteReview: writing the review page alone, from its view.
func BenchmarkWriteReview(b *testing.B) {
	v := &reviewView{
		Base: "../", Viewer: "approver-2", ID: "req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b", Status: "pending", StatusLabel: "Pending",
		StatusNote: "Waiting for approvers.", Reason: "high_spend", PolicyReason: "high_spend",
		Name: "wire-transfer", RequestedBy: "user-1", Message: "Pay invoice INV-2291 to ACME GmbH", RunID: "run-1", StepID: "pay",
		Risk: "high", Cost: "5000 USD", Tags: []string{"payments", "eu"}, Constraints: []string{"single transfer", "EUR account only"},
		Rules:      []string{"The requester (user-1) may not approve it.", "One denial by an approver denies it."},
		Metadata:   []metaView{{Key: "invoice", Value: "INV-2291"}, {Key: "ticket", Value: "FIN-1182"}},
		ActionHash: strings.Repeat("ab", 32), PayloadHash: strings.Repeat("cd", 32), Redacted: true,
		Payload: payloadView{Kind: "json", Size: 140, Text: "{\n  \"to\": {\n    \"name\": \"ACME GmbH\",\n    \"iban\": \"[redacted]\"\n  },\n  \"amount\": 5000\n}"},
		Diff: []fileView{{Path: "payments/queue.yaml", Adds: 1, Hunks: []hunkView{{Header: "@@ -4,2 +4,3 @@",
			Lines: []lineView{{"ctx", " - id: INV-2290"}, {"add", "+ - id: INV-2291"}, {"ctx", "   amount: 5000"}}}}}},
		Policies: []policyView{{Name: "high_spend", Hash: strings.Repeat("ef", 32), Needs: "2 approvals", Approvers: "group:finance"}},
		Votes:    []voteView{{Approver: "approver-1", Verdict: "approve", Policies: "high_spend", At: "2026-03-01 09:00:00 UTC", AtISO: "2026-03-01T09:00:00Z"}},
		History: []eventView{{Type: "request.created", Actor: "user-1", At: "2026-03-01 09:00:00 UTC", AtISO: "2026-03-01T09:00:00Z"},
			{Type: "decision.approve", Actor: "approver-1", Verdict: "approve", At: "2026-03-01 09:00:00 UTC", AtISO: "2026-03-01T09:00:00Z"}},
		Created: "2026-03-01 09:00:00 UTC", CreatedISO: "2026-03-01T09:00:00Z", Deadline: "2026-03-02 09:00:00 UTC",
		DeadlineISO: "2026-03-02T09:00:00Z", TimeLeft: "1d 0h left",
		Form: &formView{Action: "../approvals/req_0190b5d2a1c47e2f9c3b6a1d2e3f4a5b/decide", Approve: true, Deny: true},
	}
	b.ReportAllocs()
	for b.Loop() {
		buf := getBuf()
		writeReview(htmlWriter{buf}, v)
		putBuf(buf)
	}
}
