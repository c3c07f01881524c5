// Package dashboard serves Slipway's operations dashboard and its JSON API.
//
// The dashboard answers "what is running, for which PR, is it healthy, and
// why did it fail": a list of every preview environment (the controller's
// history merged with what runs on the engine, the proxy's last request and
// CPU and memory sampled in the background), a page per environment with its
// phase timeline, build log and live service logs, and the actions redeploy,
// sleep, wake and destroy. Pages are server-rendered html/template with a
// little plain JavaScript embedded in the binary: no build step, no external
// assets.
//
// The JSON API under /api/v1/ serves the same data to scripts and to
// `slipway ls|logs --server`, through Client:
//
//	GET  /api/v1/environments[?repo=&phase=&q=]          EnvironmentList
//	GET  /api/v1/environments/{project}                  EnvironmentDetail
//	GET  /api/v1/environments/{project}/logs             text; ?service=&follow=1&tail=&timestamps=1;
//	                                                     server-sent events with Accept: text/event-stream
//	GET  /api/v1/environments/{project}/build-log        text; ?sha=&follow=1; JSON (BuildLog) with
//	                                                     Accept: application/json; events as above
//	POST /api/v1/environments/{project}/actions/{action} redeploy, destroy, sleep, wake → ActionResult:
//	                                                     202 with status "queued" when the controller
//	                                                     will carry it out (watch the phase), 200 with
//	                                                     status "done" when it is done (local mode)
//
// Errors are JSON {"error": "..."} with 400, 401, 403, 404, 409 (not
// possible for this environment) or 501 (no controller runs actions).
//
// Access is closed by default: a bearer token and/or a user and password
// (login form, HMAC-signed session cookie), CSRF tokens on every form,
// read-only views public only when Options.Public says so. With no
// credentials the dashboard answers 403 and says how to configure it,
// unless Options.Insecure allows loopback clients in local mode.
package dashboard

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
)

// Options configure the dashboard. Zero values take the defaults.
type Options struct {
	// Engine is the stack engine: what runs, and the services' logs.
	// Required.
	Engine Engine
	// History is the controller's history database (phases, last errors,
	// build logs). Nil shows only what runs on the engine.
	History History
	// Stats, if set, is sampled in the background by Run for the CPU and
	// memory columns. Pass the Docker client.
	Stats StatsClient
	// Requests, if set, gives the last request per environment (the proxy).
	Requests RequestLog
	// Routes, if set, gives the routes the proxy refused, shown on each
	// environment (the proxy's live table).
	Routes RouteProblems
	// Actions, if set, runs redeploy, destroy, sleep and wake. Nil (local
	// mode without a controller) hides the buttons; the API answers 501.
	Actions Actions

	// Token is the bearer token of the API (`Authorization: Bearer …`).
	// It also signs a browser in on the login form. Compared in constant
	// time. Config: dashboard.token / token_file.
	Token string
	// User and Password enable the login form. Both or neither. Config:
	// dashboard.user, dashboard.password / password_file.
	User     string
	Password string
	// Public makes the read-only pages and GET API calls visible without
	// credentials: the list, each environment's status and timeline.
	// Actions still need credentials. Config: dashboard.public.
	Public bool
	// PublicLogs also makes service and build logs public when Public is
	// set. They hold whatever the services print, secrets included if an
	// app prints them; keep it off unless every log is fit for anyone.
	PublicLogs bool
	// Insecure serves everything, actions included, without credentials,
	// but only to clients on loopback addresses, and only while no
	// credentials are configured. It is meant for `slipway serve` in local
	// mode listening on 127.0.0.1; never set it behind a reverse proxy on
	// the same host (every client would look local).
	Insecure bool
	// SessionKey signs session cookies and CSRF tokens: at least 32 random
	// bytes. Empty: a random key per process, so sessions end when Slipway
	// restarts. Changing the password or the token ends every session.
	SessionKey []byte
	// SessionTTL is how long a login lasts. Default 12h.
	SessionTTL time.Duration

	// BaseURL is where the dashboard is reached, e.g.
	// "https://preview.example.com/" or "/slipway/". Its path is where the
	// handler serves (default "/"); an https scheme marks the session
	// cookie Secure even behind a proxy that terminates TLS (it is always
	// Secure on a TLS request).
	BaseURL string
	// PreviewURL turns a route's host into the URL shown, e.g.
	// stack.HostOptions.URL. Default "http://" + host.
	PreviewURL func(host string) string
	// RepoTTL, if set, returns the ttl slipway.yaml's repos[] sets for a
	// repository, nil when it sets none. The "expires" column shows when
	// the controller's TTL removes each environment it tracks: that ttl,
	// else the one the repository's .slipway.yml set at the environment's
	// last deploy, else config.DefaultTTL (see config.RepoPolicy.TTLFor).
	RepoTTL func(repo string) *config.Duration
	// AccessNote, if set, is shown on the list page: which previews are
	// public (anyone who finds their host can open them).
	AccessNote string
	// Grants, if set, lets operators create, list and revoke bypass tokens
	// and share links on the access page.
	Grants TokenAdmin

	// StatsInterval is how often container stats are sampled. Default 15s.
	StatsInterval time.Duration
	// StatsConcurrency bounds the stats calls in flight. Default 4.
	StatsConcurrency int
	// StatsTimeout bounds one container's stats call. Default 10s.
	StatsTimeout time.Duration
	// ListCacheTTL is how long the engine's list of environments and the
	// history's are reused across requests (a page never waits for more
	// than one listing of each per TTL; an action refreshes them). Single
	// environment pages always read afresh. Default 2s.
	ListCacheTTL time.Duration
	// ActionTimeout bounds one action. Actions run to completion even when
	// the client goes away. Default 10m.
	ActionTimeout time.Duration
	// BuildLogPoll is how often a running build's log is read again while
	// a client follows it. Default 500ms.
	BuildLogPoll time.Duration
	// KeepAlive is the interval of comments sent on idle event streams so
	// that proxies keep them open. Default 15s.
	KeepAlive time.Duration

	// Logger receives errors and the audit log of actions. Nil discards.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Server is the dashboard's HTTP handler. Create it with New; call Run to
// sample container stats in the background.
type Server struct {
	opts    Options
	log     *slog.Logger
	base    string // path prefix ending in "/"
	auth    *authenticator
	inv     *snapshot[[]stack.Environment] // the engine's environments
	hist    *snapshot[[]store.Environment] // the store's; nil without History
	stats   *sampler
	tmpl    *templates
	assets  *assets
	cop     *http.CrossOriginProtection
	mux     *http.ServeMux
	gzipper sync.Pool
}

// New checks opts and returns the dashboard handler. It starts nothing:
// call Run for the background stats sampler.
func New(opts Options) (*Server, error) {
	if opts.Engine == nil {
		return nil, errors.New("dashboard: Options.Engine is required")
	}
	if (opts.User == "") != (opts.Password == "") {
		return nil, errors.New("dashboard: user and password go together (set both, or neither)")
	}
	for name, v := range map[string]string{"token": opts.Token, "password": opts.Password, "user": opts.User} {
		if strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("dashboard: the %s contains a line break (a trailing newline read from a file?)", name)
		}
	}
	if n := len(opts.SessionKey); n > 0 && n < 32 {
		return nil, fmt.Errorf("dashboard: session key has %d bytes, want at least 32", n)
	}
	base, secure, err := parseBase(opts.BaseURL)
	if err != nil {
		return nil, err
	}
	setDefaults(&opts)
	master := opts.SessionKey
	if len(master) == 0 {
		master = make([]byte, 32)
		if _, err := rand.Read(master); err != nil {
			return nil, fmt.Errorf("dashboard: session key: %w", err)
		}
	}
	s := &Server{
		opts: opts,
		log:  opts.Logger,
		base: base,
		auth: newAuthenticator(&opts, master, base, secure),
		inv:  newSnapshot(opts.ListCacheTTL, opts.Engine.List),
		cop:  http.NewCrossOriginProtection(),
		mux:  http.NewServeMux(),
	}
	if opts.History != nil {
		s.hist = newSnapshot(opts.ListCacheTTL, opts.History.Environments)
	}
	if opts.Stats != nil {
		s.stats = newSampler(opts.Stats, s.log, opts.StatsConcurrency, opts.StatsTimeout, opts.Now)
	}
	if s.assets, err = loadAssets(); err != nil {
		return nil, err
	}
	s.assets.withBase(base)
	if s.tmpl, err = s.parseTemplates(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func setDefaults(o *Options) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PreviewURL == nil {
		o.PreviewURL = func(host string) string { return "http://" + host }
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.SessionTTL, 12*time.Hour)
	def(&o.StatsInterval, 15*time.Second)
	def(&o.StatsTimeout, 10*time.Second)
	def(&o.ListCacheTTL, 2*time.Second)
	def(&o.ActionTimeout, 10*time.Minute)
	def(&o.BuildLogPoll, 500*time.Millisecond)
	def(&o.KeepAlive, 15*time.Second)
	if o.StatsConcurrency <= 0 {
		o.StatsConcurrency = 4
	}
}

// parseBase returns the path prefix (ending in "/") of a BaseURL and
// whether it is https.
func parseBase(raw string) (string, bool, error) {
	if raw == "" {
		return "/", false, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", false, fmt.Errorf("dashboard: base URL %q: %w", raw, err)
	}
	if u.Scheme != "" && u.Scheme != "http" && u.Scheme != "https" {
		return "", false, fmt.Errorf("dashboard: base URL %q: scheme must be http or https", raw)
	}
	if u.Scheme != "" && u.Host == "" {
		return "", false, fmt.Errorf("dashboard: base URL %q has no host", raw)
	}
	p := u.Path
	if p == "" {
		p = "/"
	}
	if !strings.HasPrefix(p, "/") {
		return "", false, fmt.Errorf("dashboard: base URL %q: path must be absolute", raw)
	}
	if !strings.HasSuffix(p, "/") {
		p += "/"
	}
	if strings.ContainsAny(p, "{}") {
		return "", false, fmt.Errorf("dashboard: base URL %q: path may not contain braces", raw)
	}
	return p, u.Scheme == "https", nil
}

// Run samples container stats every Options.StatsInterval until ctx ends.
// Without Options.Stats it just waits. It returns nil when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if s.stats == nil {
		<-ctx.Done()
		return nil
	}
	t := time.NewTicker(s.opts.StatsInterval)
	defer t.Stop()
	for {
		s.sampleStats(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// sampleStats runs one stats round over the running containers.
func (s *Server) sampleStats(ctx context.Context) {
	envs, err := s.inv.get(ctx)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("stats: list environments", "err", err)
		}
		return
	}
	var ids []string
	for _, e := range envs {
		for _, svc := range e.Services {
			for _, c := range svc.Containers {
				if c.State == StateRunning {
					ids = append(ids, c.ID)
				}
			}
		}
	}
	s.stats.round(ctx, ids)
}

// ServeHTTP serves the dashboard.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	// Browsers' cross-origin state-changing requests are refused before
	// anything else; requests with a bearer token carry no ambient
	// credentials and are not browsers' to forge.
	if r.Header.Get("Authorization") == "" {
		if err := s.cop.Check(r); err != nil {
			s.deny(w, r, http.StatusForbidden, "Cross-origin request refused", "This request came from another site. Actions can only be taken from the dashboard's own pages.")
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	b := s.base
	m := s.mux
	m.HandleFunc("GET "+b+"{$}", s.page(roleViewer, s.listPage))
	m.HandleFunc("GET "+b+"environments/{project}", s.page(roleViewer, s.environmentPage))
	m.HandleFunc("POST "+b+"environments/{project}/actions/{action}", s.page(roleOperator, s.actionForm))
	m.HandleFunc("GET "+b+"login", s.loginPage)
	m.HandleFunc("POST "+b+"login", s.loginSubmit)
	m.HandleFunc("POST "+b+"logout", s.logout)
	m.HandleFunc("GET "+b+"static/{name}", s.assets.serve)
	m.HandleFunc("GET "+b+"access", s.page(roleOperator, s.accessPage))
	m.HandleFunc("POST "+b+"access/tokens", s.page(roleOperator, s.accessCreate))
	m.HandleFunc("POST "+b+"access/tokens/{id}/revoke", s.page(roleOperator, s.accessRevoke))

	m.HandleFunc("GET "+b+"api/v1/environments", s.api(roleViewer, s.apiEnvironments))
	m.HandleFunc("GET "+b+"api/v1/environments/{project}", s.api(roleViewer, s.apiEnvironment))
	m.HandleFunc("GET "+b+"api/v1/environments/{project}/logs", s.api(roleViewer, s.apiLogs))
	m.HandleFunc("GET "+b+"api/v1/environments/{project}/build-log", s.api(roleViewer, s.apiBuildLog))
	m.HandleFunc("POST "+b+"api/v1/environments/{project}/actions/{action}", s.api(roleOperator, s.apiAction))
	m.HandleFunc(b+"api/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, http.StatusNotFound, "no such API endpoint: "+r.Method+" "+r.URL.Path)
	})
	m.HandleFunc(b, s.page(roleNone, func(w http.ResponseWriter, r *http.Request, p principal) {
		s.errorPage(w, r, p, http.StatusNotFound, "Not found", "There is no page at "+r.URL.Path+".")
	}))
}

// projectRE is what a project name can be (contract.ProjectName output).
var projectRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,254}$`)

// actionNames are the actions, in button order.
var actionNames = []string{"redeploy", "sleep", "wake", "destroy"}

func validAction(a string) bool {
	for _, n := range actionNames {
		if n == a {
			return true
		}
	}
	return false
}

// errNoActions: no controller runs actions here (501).
var errNoActions = fmt.Errorf("%w: no controller runs actions here (local mode)", ErrUnsupported)

// runAction runs one action to completion, even when the client goes away,
// and writes the audit log.
func (s *Server) runAction(r *http.Request, p principal, project, action string) (Outcome, error) {
	if s.opts.Actions == nil {
		return "", errNoActions
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.opts.ActionTimeout)
	defer cancel()
	var (
		outcome Outcome
		err     error
	)
	start := time.Now()
	switch action {
	case "redeploy":
		outcome, err = s.opts.Actions.Redeploy(ctx, project)
	case "destroy":
		outcome, err = s.opts.Actions.Destroy(ctx, project)
	case "sleep":
		outcome, err = s.opts.Actions.Sleep(ctx, project)
	case "wake":
		outcome, err = s.opts.Actions.Wake(ctx, project)
	default:
		return "", fmt.Errorf("%w: unknown action %q", ErrNotFound, action)
	}
	s.inv.invalidate()
	if s.hist != nil {
		s.hist.invalidate()
	}
	by := p.kind
	if p.user != "" {
		by = p.user
	}
	attrs := []any{"project", project, "action", action, "by", by, "remote", r.RemoteAddr, "duration", time.Since(start).Round(time.Millisecond)}
	if err != nil {
		s.log.Warn("dashboard action failed", append(attrs, "err", err)...)
		return "", fmt.Errorf("%s %s: %w", action, project, err)
	}
	if outcome != Done {
		outcome = Queued
	}
	s.log.Info("dashboard action", append(attrs, "outcome", outcome)...)
	return outcome, nil
}

// statusOf maps an error to the HTTP status it deserves.
func statusOf(err error) int {
	switch {
	case errors.Is(err, errNoActions):
		return http.StatusNotImplemented
	case errors.Is(err, ErrNotFound), errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrUnsupported):
		return http.StatusConflict
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// writeBody writes a complete response, gzipped when the client accepts it
// and it is worth it.
func (s *Server) writeBody(w http.ResponseWriter, r *http.Request, status int, contentType string, body []byte) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Add("Vary", "Accept-Encoding")
	if len(body) < 1024 || !acceptsGzip(r) {
		w.WriteHeader(status)
		_, _ = w.Write(body)
		return
	}
	h.Set("Content-Encoding", "gzip")
	w.WriteHeader(status)
	zw, _ := s.gzipper.Get().(*gzip.Writer)
	if zw == nil {
		zw, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
	} else {
		zw.Reset(w)
	}
	_, _ = zw.Write(body)
	_ = zw.Close()
	s.gzipper.Put(zw)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.ReplaceAll(strings.TrimSpace(q), " ", "") != "q=0" {
			return true
		}
	}
	return false
}

// writeJSON writes v as JSON.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		s.log.Error("encode JSON response", "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	s.writeBody(w, r, status, "application/json; charset=utf-8", buf.Bytes())
}

// apiError is the body of every API error.
type apiError struct {
	Error string `json:"error"`
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.writeJSON(w, r, status, apiError{Error: msg})
}

// deny answers a refused request in the form the client expects.
func (s *Server) deny(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	if s.isAPI(r) {
		s.writeError(w, r, status, msg)
		return
	}
	s.errorPage(w, r, principal{}, status, title, msg)
}

func (s *Server) isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, s.base+"api/")
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// flushWriter flushes after every write, for streamed responses.
type flushWriter struct {
	mu sync.Mutex
	w  io.Writer
	rc *http.ResponseController
}

func (f *flushWriter) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}
