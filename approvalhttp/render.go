package approvalhttp

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"net/http"
	"strconv"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets/style.css
var styleCSS []byte

// The templates of the queue and message pages are parsed once, when the
// package loads; a page only executes its template into a pooled buffer.
// The review page is written by hand (reviewhtml.go).
var (
	queueTmpl = parsePage("templates/queue.html")
	errorTmpl = parsePage("templates/error.html")
	styleETag = func() string {
		sum := sha256.Sum256(styleCSS)
		return `"` + hex.EncodeToString(sum[:8]) + `"`
	}()
)

func parsePage(name string) *template.Template {
	return template.Must(template.New("layout").ParseFS(templateFS, "templates/layout.html", name))
}

// render executes t with data into a pooled buffer and writes it with
// status; a template error is a 500, logged, before anything is written.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, data any) {
	buf := getBuf()
	defer putBuf(buf)
	if err := t.ExecuteTemplate(buf, "layout", data); err != nil {
		h.log.Error("approvalhttp: render page", "method", r.Method, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// renderReview writes the review page of v into a pooled buffer, then
// serves it.
func renderReview(w http.ResponseWriter, v *reviewView) {
	buf := getBuf()
	defer putBuf(buf)
	writeReview(htmlWriter{buf}, v)
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// serveAsset is GET /assets/{name}: the embedded stylesheet, cacheable
// (it carries no request data).
func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	if r.PathValue("name") != "style.css" {
		h.fail(w, r, errNoRoute)
		return
	}
	hd := w.Header()
	hd.Set("Cache-Control", "public, max-age=3600")
	hd.Set("ETag", styleETag)
	hd.Set("Content-Type", "text/css; charset=utf-8")
	if r.Header.Get("If-None-Match") == styleETag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(styleCSS)))
	_, _ = w.Write(styleCSS)
}

// errorView is the data of the error and message page.
type errorView struct {
	Base, Viewer string
	Status       int
	Title        string
	Detail       string
	Code         string
	Back         string
}

// errorPage answers err with an HTML page of the same status and detail
// as the API's problem object.
func (h *handler) errorPage(w http.ResponseWriter, r *http.Request, err error) {
	p := classify(err)
	h.logInternal(r, p, err)
	challenge(w, p)
	v := errorView{Base: base(r), Status: p.Status, Title: p.Title, Detail: p.Detail, Code: p.Code}
	if id := r.PathValue("id"); isRequestID(id) && p.Status != http.StatusNotFound {
		v.Back = v.Base + "approvals/" + id
	}
	h.render(w, r, p.Status, errorTmpl, &v)
}
