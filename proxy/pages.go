package proxy

import (
	"bytes"
	"html/template"
	"net/http"
	"strconv"
)

// page is what a status page shows. Every field is escaped by html/template.
type page struct {
	Status  int
	Title   string
	Message string
	// Phase, Step, Service and Reason are shown as a small table when set.
	Phase   string
	Step    string
	Service string
	Reason  string
	// Refresh, when > 0, reloads the page after that many seconds and is
	// also sent as Retry-After.
	Refresh int
}

// pageTemplate is self-contained: inline CSS, no scripts, no external
// assets, nothing that names other environments.
var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{{if gt .Refresh 0}}<meta http-equiv="refresh" content="{{.Refresh}}">{{end}}
<title>{{.Title}}</title>
<style>
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f6f7f9;color:#1d2330}
main{max-width:36rem;margin:12vh auto;padding:2rem;background:#fff;border-radius:12px;box-shadow:0 1px 4px rgba(0,0,0,.08)}
h1{margin:0 0 .5rem;font-size:1.4rem}
p{margin:.5rem 0}
.code{color:#6b7280;font-size:.9rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem;margin:1rem 0 0}
dt{color:#6b7280}
dd{margin:0;word-break:break-word}
{{if gt .Refresh 0}}.spin{display:inline-block;width:.8em;height:.8em;border:2px solid #c7cbd3;border-top-color:#3b6ef5;border-radius:50%;animation:s 1s linear infinite;margin-right:.4em}@keyframes s{to{transform:rotate(360deg)}}{{end}}
</style>
</head>
<body>
<main>
<h1>{{if gt .Refresh 0}}<span class="spin"></span>{{end}}{{.Title}}</h1>
<p>{{.Message}}</p>
{{if or .Phase .Step .Service .Reason}}<dl>
{{if .Phase}}<dt>Phase</dt><dd>{{.Phase}}</dd>{{end}}
{{if .Step}}<dt>Step</dt><dd>{{.Step}}</dd>{{end}}
{{if .Service}}<dt>Service</dt><dd>{{.Service}}</dd>{{end}}
{{if .Reason}}<dt>Reason</dt><dd>{{.Reason}}</dd>{{end}}
</dl>{{end}}
<p class="code">{{.Status}} · Slipway preview</p>
</main>
</body>
</html>
`))

// pageRefresh is how often waiting pages reload, in seconds.
const pageRefresh = 3

// renderPage renders p into bytes; the template cannot fail on a page.
func renderPage(p page) []byte {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		// Only a broken template gets here; tests render every page.
		panic("proxy: status page template: " + err.Error())
	}
	return buf.Bytes()
}

// writePage sends a status page.
func writePage(w http.ResponseWriter, body []byte, status, refresh int) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if refresh > 0 {
		h.Set("Retry-After", strconv.Itoa(refresh))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// Fixed pages, rendered once.
var (
	notFoundPage = renderPage(page{
		Status:  http.StatusNotFound,
		Title:   "No preview here",
		Message: "There is no preview environment at this address.",
	})
	badGatewayPage = renderPage(page{
		Status:  http.StatusBadGateway,
		Title:   "The preview did not answer",
		Message: "The environment exists but refused the connection or broke it off. Try again in a moment.",
	})
	gatewayTimeoutPage = renderPage(page{
		Status:  http.StatusGatewayTimeout,
		Title:   "The preview took too long",
		Message: "The environment did not answer in time.",
	})
	removedPage = renderPage(page{
		Status:  http.StatusGone,
		Title:   "Environment removed",
		Message: "This preview environment has been removed, usually because its pull request was closed.",
	})
	misdirectedPage = renderPage(page{
		Status:  http.StatusMisdirectedRequest,
		Title:   "Wrong connection",
		Message: "This connection was opened for a different host name. Reload the page.",
	})
)

// phasePage renders the page for a route that is not running and returns
// it with its status code and refresh interval.
func phasePage(r *Route) (body []byte, status, refresh int) {
	switch r.Phase {
	case PhaseRemoving:
		return removedPage, http.StatusGone, 0
	case PhaseFailed:
		p := page{
			Status:  http.StatusBadGateway,
			Title:   "Deploy failed",
			Message: "The last deploy of this preview failed and nothing is running yet.",
			Step:    r.State.Step,
			Service: r.State.Service,
			Reason:  r.State.Reason,
		}
		return renderPage(p), p.Status, 0
	}
	p := page{Status: http.StatusServiceUnavailable, Refresh: pageRefresh, Phase: string(r.Phase)}
	switch r.Phase {
	case PhaseQueued:
		p.Title, p.Message = "Preview queued", "This preview is waiting for its turn to be built. The page reloads by itself."
	case PhaseBuilding:
		p.Title, p.Message = "Preview building", "This preview is being built. The page reloads by itself."
		p.Step, p.Service = r.State.Step, r.State.Service
	case PhaseUnhealthy:
		p.Title, p.Message = "Preview unhealthy", "The preview runs but fails its health check. The page reloads by itself."
	case PhaseStopped:
		p.Title, p.Message = "Preview waking up", "This preview was asleep and is starting again. The page reloads by itself."
		p.Phase = string(PhaseStarting)
	default:
		p.Title, p.Message = "Preview starting", "This preview is starting. The page reloads by itself."
		p.Step, p.Service = r.State.Step, r.State.Service
	}
	return renderPage(p), p.Status, p.Refresh
}
