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

//go:embed assets/passkey.js
var passkeyJS []byte

// The page templates are parsed once, when the package loads; a page
// only executes its template into a pooled buffer. Every page is an
// html/template, so every value is escaped for the context it lands in.
var (
	queueTmpl    = parsePage("templates/queue.html")
	errorTmpl    = parsePage("templates/error.html")
	reviewTmpl   = parsePage("templates/review.html", "templates/payload.html")
	bulkTmpl     = parsePage("templates/bulk.html", "templates/payload.html")
	operatorTmpl = parsePage("templates/operator.html")
	passkeysTmpl = parsePage("templates/passkeys.html")
	styleETag    = etag(styleCSS)
	passkeyETag  = etag(passkeyJS)
)

// pageFuncs are the templates' only functions.
var pageFuncs = template.FuncMap{
	// payloadArgs passes a payload and the element ID to show it under
	// to the "payload" template.
	"payloadArgs": func(id string, p payloadView) any {
		return struct {
			ID string
			P  payloadView
		}{id, p}
	},
}

func parsePage(names ...string) *template.Template {
	return template.Must(template.New("layout").Funcs(pageFuncs).ParseFS(templateFS, append([]string{"templates/layout.html"}, names...)...))
}

// render executes t with data into a pooled buffer and writes it with
// status; a template error is a 500, logged, before anything is written.
func (h *handler) render(w http.ResponseWriter, r *http.Request, status int, t *template.Template, data any) {
	if c, ok := data.(interface{ chrome() *pageChrome }); ok {
		c.chrome().SignIn, c.chrome().SignOut = h.signIn, h.signOut
	}
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

// serveAsset is GET /assets/{name}: the embedded stylesheet, cacheable
// (it carries no request data).
func (h *handler) serveAsset(w http.ResponseWriter, r *http.Request) {
	var body []byte
	var tag, typ string
	switch r.PathValue("name") {
	case "style.css":
		body, tag, typ = styleCSS, styleETag, "text/css; charset=utf-8"
	case "passkey.js":
		body, tag, typ = passkeyJS, passkeyETag, "text/javascript; charset=utf-8"
	default:
		h.fail(w, r, errNoRoute)
		return
	}
	hd := w.Header()
	hd.Set("Cache-Control", "public, max-age=3600")
	hd.Set("ETag", tag)
	hd.Set("Content-Type", typ)
	if r.Header.Get("If-None-Match") == tag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = w.Write(body)
}

func etag(b []byte) string {
	sum := sha256.Sum256(b)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}

// pageChrome is what every page's layout shows besides its content:
// the host's sign-in and sign-out pages (Options.SignIn, Options.SignOut),
// which render fills, and whether the viewer is signed in (a session, not
// only a link's token), which the page sets.
type pageChrome struct {
	SignIn, SignOut string
	Session         bool
}

func (c *pageChrome) chrome() *pageChrome { return c }

// errorView is the data of the error and message page.
type errorView struct {
	pageChrome
	Base, Viewer string
	Script       bool // never: an error page runs no script
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
