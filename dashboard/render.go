package dashboard

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/text"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// pageNames are the templates, each rendered inside layout.html.
var pageNames = []string{"list", "environment", "login", "error", "access"}

type templates struct {
	pages map[string]*template.Template
	bufs  sync.Pool
}

func (s *Server) parseTemplates() (*templates, error) {
	t := &templates{pages: map[string]*template.Template{}}
	funcs := s.funcs()
	for _, name := range pageNames {
		tt, err := template.New(name).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("dashboard: parse template %s: %w", name, err)
		}
		t.pages[name] = tt
	}
	return t, nil
}

// view is what every page template receives.
type view struct {
	Base   string
	Title  string
	Viewer viewer
	Asset  map[string]string // file name → versioned URL
	Now    time.Time
	Data   any
}

// viewer says who looks at the page, for the header and the buttons.
type viewer struct {
	Kind     string
	User     string
	Operator bool
	CSRF     string
	CanLogin bool
	SignedIn bool
}

// render executes a page into a buffer first, so a template error becomes
// a clean 500 rather than half a page.
func (s *Server) render(w http.ResponseWriter, r *http.Request, p principal, status int, name, title string, data any) {
	t := s.tmpl.pages[name]
	buf, _ := s.tmpl.bufs.Get().(*bytes.Buffer)
	if buf == nil {
		buf = new(bytes.Buffer)
	}
	buf.Reset()
	defer s.tmpl.bufs.Put(buf)
	v := view{
		Base:  s.base,
		Title: title,
		Viewer: viewer{
			Kind: p.kind, User: p.user, Operator: p.role >= roleOperator, CSRF: p.csrf,
			CanLogin: s.auth.loginEnabled() && p.kind != "session" && p.kind != "token",
			SignedIn: p.kind == "session",
		},
		Asset: s.assets.urls,
		Now:   s.opts.Now(),
		Data:  data,
	}
	if err := t.ExecuteTemplate(buf, "layout", v); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeBody(w, r, status, "text/html; charset=utf-8", buf.Bytes())
}

func (s *Server) funcs() template.FuncMap {
	now := s.opts.Now
	base := s.base
	return template.FuncMap{
		"ago": func(t time.Time) string { return agoText(now(), t) },
		"newestFirst": func(tl []store.PhaseEntry) []store.PhaseEntry {
			out := slices.Clone(tl)
			slices.Reverse(out)
			return out
		},
		"until":      func(t time.Time) string { return untilText(now(), t) },
		"abs":        absTime,
		"iso":        isoTime,
		"short":      contract.ShortSHA,
		"cpu":        cpuText,
		"mem":        memText,
		"cpuLevel":   cpuLevel,
		"memLevel":   memLevel,
		"bytes":      formatBytes,
		"phaseLabel": phaseLabel,
		"dot":        containerDot,
		"envURL":     func(project string) string { return base + "environments/" + project },
		"apiURL":     func(project, rest string) string { return base + "api/v1/environments/" + project + rest },
		"plain":      func(b []byte) string { return text.StripANSI(string(b)) },
		"i64":        func(n int64) string { return strconv.FormatInt(n, 10) },
		"title":      actionTitle,
		"hostOf":     hostOf,
	}
}

func agoText(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 5*time.Second {
		return "just now"
	}
	return humanDuration(d) + " ago"
}

func ageText(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return humanDuration(now.Sub(t))
}

func untilText(now, t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := t.Sub(now)
	if d <= 0 {
		return "due"
	}
	return "in " + humanDuration(d)
}

func absTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func isoTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func cpuText(u *Usage) string {
	if u == nil || u.CPUPercent == nil {
		return "—"
	}
	return formatPercent(*u.CPUPercent)
}

func memText(u *Usage) string {
	if u == nil {
		return "—"
	}
	return formatBytes(u.MemoryBytes)
}

func cpuLevel(u *Usage) string {
	switch {
	case u == nil || u.CPUPercent == nil:
		return "none"
	case *u.CPUPercent >= 80:
		return "high"
	case *u.CPUPercent >= 30:
		return "mid"
	}
	return "low"
}

func memLevel(u *Usage) string {
	switch {
	case u == nil || u.MemoryLimitBytes == 0:
		return "none"
	case float64(u.MemoryBytes) >= 0.85*float64(u.MemoryLimitBytes):
		return "high"
	case float64(u.MemoryBytes) >= 0.5*float64(u.MemoryLimitBytes):
		return "mid"
	}
	return "low"
}

// runningText is "up/total" containers running (or completed).
func runningText(e Environment) string {
	n, up := 0, 0
	for _, s := range e.Services {
		for _, c := range s.Containers {
			n++
			if c.State == StateRunning || (c.State == "exited" && c.ExitCode == 0) {
				up++
			}
		}
	}
	return strconv.Itoa(up) + "/" + strconv.Itoa(n)
}

// filterURL is the list page's URL for f with key set to value ("" drops it).
func (s *Server) filterURL(f Filter, key, value string) string {
	q := url.Values{}
	set := func(k, v string) {
		if v != "" {
			q.Set(k, v)
		}
	}
	set("repo", f.Repo)
	set("phase", f.Phase)
	set("q", f.Query)
	q.Del(key)
	set(key, value)
	if len(q) == 0 {
		return s.base
	}
	return s.base + "?" + q.Encode()
}

// humanDuration says d in its largest sensible unit: 42s, 5m, 3h, 2d.
func humanDuration(d time.Duration) string {
	d = d.Abs()
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d.Seconds())) + "s"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + "m"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + "h"
	}
	return strconv.Itoa(int(d.Hours()/24)) + "d"
}

func formatPercent(p float64) string {
	switch {
	case p < 0.05:
		return "0%"
	case p < 10:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(p, 'f', 0, 64) + "%"
}

func formatBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatUint(n, 10) + " B"
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	prec := 1
	if v >= 100 {
		prec = 0
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + string("KMGTP"[exp]) + "iB"
}

func phaseLabel(p string) string {
	if p == "" {
		return "unknown"
	}
	return strings.ToUpper(p[:1]) + p[1:]
}

func actionTitle(a string) string {
	switch a {
	case "redeploy":
		return "Redeploy"
	case "sleep":
		return "Sleep"
	case "wake":
		return "Wake"
	case "destroy":
		return "Destroy"
	}
	return a
}

// containerDot is the status class of one container's dot.
func containerDot(c Container) string {
	switch {
	case c.State == StateRunning && c.Health == "unhealthy":
		return "bad"
	case c.State == StateRunning && c.Health == "starting", c.State == "created", c.State == "restarting":
		return "warn"
	case c.State == StateRunning:
		return "ok"
	case c.State == "exited" && c.ExitCode == 0:
		return "done"
	case c.State == "exited" || c.State == "dead":
		return "bad"
	}
	return "off"
}

// drift says what the engine shows when it contradicts the phase: a ready
// or sleeping environment with nothing on the engine.
func drift(e Environment) string {
	if e.State != StateAbsent {
		return ""
	}
	switch e.Phase {
	case string(contract.PhaseReady), string(contract.PhaseSleeping), PhaseDegraded:
		return "not on the engine"
	}
	return ""
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Host != "" {
		return p.Host
	}
	return u
}

func itoa(n int) string { return strconv.Itoa(n) }

// assets are the embedded static files, served with a content hash in
// their URL so browsers cache them for good.
type assets struct {
	files map[string]asset
	urls  map[string]string
	base  string
}

type asset struct {
	body, gz    []byte
	hash, ctype string
}

func loadAssets() (*assets, error) {
	a := &assets{files: map[string]asset{}, urls: map[string]string{}}
	entries, err := fs.ReadDir(staticFS, "static")
	if err != nil {
		return nil, fmt.Errorf("dashboard: read assets: %w", err)
	}
	for _, e := range entries {
		body, err := staticFS.ReadFile("static/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("dashboard: read asset %s: %w", e.Name(), err)
		}
		sum := sha256.Sum256(body)
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestCompression)
		_, _ = zw.Write(body)
		_ = zw.Close()
		ctype := mime.TypeByExtension(path.Ext(e.Name()))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		a.files[e.Name()] = asset{body: body, gz: gz.Bytes(), hash: hex.EncodeToString(sum[:6]), ctype: ctype}
	}
	return a, nil
}

// withBase fills in the versioned URLs once the base path is known.
func (a *assets) withBase(base string) {
	a.base = base
	for name, f := range a.files {
		a.urls[name] = base + "static/" + name + "?v=" + f.hash
	}
}

func (a *assets) serve(w http.ResponseWriter, r *http.Request) {
	f, ok := a.files[r.PathValue("name")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	etag := `"` + f.hash + `"`
	h.Set("ETag", etag)
	h.Set("Content-Type", f.ctype)
	h.Add("Vary", "Accept-Encoding")
	if r.URL.Query().Get("v") == f.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	body := f.body
	if acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = f.gz
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}
