package access

import (
	"html/template"
	"net/http"
)

// pageData is what the gate's pages show.
type pageData struct {
	Repo    string
	Login   string
	Next    string
	SignOut string
	Error   string
}

var pageLayout = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{template "title" .}}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}code{background:#f3f3f3;padding:0 .2em}input,button{font:inherit;padding:.4rem}.err{color:#a00}</style>
</head><body>{{template "body" .}}<p><small>Slipway preview</small></p></body></html>`

func page(body string) *template.Template {
	return template.Must(template.Must(template.New("page").Parse(pageLayout)).Parse(body))
}

var (
	passwordPage = page(`{{define "title"}}Password required{{end}}{{define "body"}}
<h1>This preview of <code>{{.Repo}}</code> is private</h1>
{{if .Error}}<p class="err">{{.Error}}</p>{{end}}
<form method="post" action="/.slipway/password">
<input type="hidden" name="next" value="{{.Next}}">
<label>Password <input type="password" name="password" autofocus required></label>
<button type="submit">Open the preview</button></form>{{end}}`)
	refusedPage = page(`{{define "title"}}No access to {{.Repo}}{{end}}{{define "body"}}
<h1 id="refused">You have no access to the previews of <code>{{.Repo}}</code></h1>
<p>{{if .Login}}You are signed in to GitHub as <strong>{{.Login}}</strong>, who{{else}}Your GitHub account{{end}}
does not have read access to the repository <code>{{.Repo}}</code>. Ask one of its maintainers
for access, or for a share link.</p>
{{if .SignOut}}<p><a href="{{.SignOut}}">Sign out</a> to use another GitHub account.</p>{{end}}{{end}}`)
	unavailablePage = page(`{{define "title"}}Access check failed{{end}}{{define "body"}}
<h1>Your access to <code>{{.Repo}}</code> could not be checked</h1>
<p>GitHub did not answer. Try again in a moment.</p>{{end}}`)
	errorPage = page(`{{define "title"}}Sign-in failed{{end}}{{define "body"}}
<h1>Sign-in failed</h1><p>{{.Error}}</p>{{end}}`)
)

func writePage(w http.ResponseWriter, status int, t *template.Template, d pageData) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_ = t.Execute(w, d)
}

var linkRefusedPage = page(`{{define "title"}}Link not valid{{end}}{{define "body"}}
<h1>This link to a preview of <code>{{.Repo}}</code> is not valid</h1>
<p>It has expired, was revoked, or is for another preview. Ask whoever shared it for a new one.</p>{{end}}`)
