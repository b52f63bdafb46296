package signin

import (
	"html/template"
	"net/http"
)

// page is what the handler's own pages show: a title, a message, and a
// link or the Sign out button.
type page struct {
	Title, Message string
	Link, LinkText string
	SignOut        bool
	Back           string // a link back to Config.Home
}

var pageTmpl = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>{{.Title}}</title></head>
<body>
<main>
<h1>{{.Title}}</h1>
{{with .Message}}<p id="message">{{.}}</p>{{end}}
{{if .SignOut}}<form method="post" action="logout" id="logout-form"><button type="submit" id="sign-out">Sign out</button></form>{{end}}
{{with .Link}}<p><a id="sign-in" href="{{.}}">{{$.LinkText}}</a></p>{{end}}
{{with .Back}}<p><a id="back" href="{{.}}">Back to approvals</a></p>{{end}}
</main>
</body>
</html>
`))

func (o *OIDC) page(w http.ResponseWriter, status int, p page) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := pageTmpl.Execute(w, p); err != nil {
		o.log.Warn("signin: writing a page", "err", err)
	}
}
