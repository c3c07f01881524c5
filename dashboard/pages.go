package dashboard

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
)

type pageHandler func(w http.ResponseWriter, r *http.Request, p principal)

// page wraps a page handler with the access check: a principal below need
// is sent to the login form (GET) or refused.
func (s *Server) page(need role, h pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.identify(r)
		if err != nil {
			s.errorPage(w, r, principal{}, http.StatusUnauthorized, "Invalid token", "The Authorization header does not carry the dashboard's token.")
			return
		}
		if need > roleNone {
			if v := r.PathValue("project"); v != "" && !projectRE.MatchString(v) {
				s.errorPage(w, r, p, http.StatusNotFound, "Not found", "There is no environment with that name.")
				return
			}
		}
		if p.role >= need {
			h(w, r, p)
			return
		}
		s.denyPage(w, r, p)
	}
}

// denyPage explains why p may not see or do what r asks.
func (s *Server) denyPage(w http.ResponseWriter, r *http.Request, p principal) {
	a := s.auth
	switch {
	case !a.configured() && !a.public && !a.insecure:
		s.notConfigured(w, r)
	case !a.configured() && a.insecure && p.role == roleNone:
		s.errorPage(w, r, p, http.StatusForbidden, "Local access only",
			"This dashboard runs without credentials and answers only on this machine (loopback). Configure dashboard.token_file, or dashboard.user and dashboard.password_file, in slipway.yaml to open it to others.")
	case !a.configured():
		s.errorPage(w, r, p, http.StatusForbidden, "Read-only dashboard",
			"This dashboard is public and read-only: no credentials are configured, so nobody can take actions. Configure dashboard.token_file, or dashboard.user and dashboard.password_file, in slipway.yaml.")
	case (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.Header.Get("Sec-Fetch-Site") == "cross-site" && r.Header.Get("Sec-Fetch-Mode") == "navigate":
		// A link from another site (a PR comment on GitHub): the browser
		// withholds the SameSite=Strict session cookie. Load the page again
		// from this origin, which sends it; no loop, as that request is
		// same-origin.
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Refresh", "0")
		_, _ = io.WriteString(w, `<!doctype html><meta http-equiv="refresh" content="0"><title>Slipway</title><p>Loading…</p>`)
	case r.Method == http.MethodGet || r.Method == http.MethodHead:
		http.Redirect(w, r, s.base+"login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
	default:
		s.errorPage(w, r, p, http.StatusForbidden, "Sign in first", "Only signed-in operators can take actions. Sign in and try again.")
	}
}

// notConfigured is the answer to everything while no access is configured.
func (s *Server) notConfigured(w http.ResponseWriter, r *http.Request) {
	const msg = "The dashboard refuses to serve: no credentials are configured and it is not public. " +
		"In slipway.yaml set dashboard.token_file (a bearer token for the API and the login form), " +
		"or dashboard.user with dashboard.password_file, and/or dashboard.public: true for read-only views; then restart slipway."
	if s.isAPI(r) {
		s.writeError(w, r, http.StatusForbidden, msg)
		return
	}
	s.errorPage(w, r, principal{}, http.StatusForbidden, "Dashboard access is not configured", msg)
}

// environments lists every environment, with warnings for the sources that
// could not be read: a dashboard that shows what it can beats an error page.
func (s *Server) environments(ctx context.Context) ([]Environment, []string) {
	var warnings []string
	var hist []store.Environment
	if s.hist != nil {
		var err error
		if hist, err = s.hist.get(ctx); err != nil {
			s.log.Warn("dashboard: read history", "err", err)
			warnings = append(warnings, "The controller's history could not be read: "+err.Error())
		}
	}
	live, err := s.inv.get(ctx)
	if err != nil {
		s.log.Warn("dashboard: list environments on the engine", "err", err)
		warnings = append(warnings, "The Docker Engine could not be read: "+err.Error())
	}
	return merge(s.mergeInput(hist, live, err == nil)), warnings
}

func (s *Server) mergeInput(hist []store.Environment, live []stack.Environment, liveKnown bool) mergeInput {
	in := mergeInput{
		now: s.opts.Now(), history: hist, live: live, liveKnown: liveKnown,
		usage: s.stats.snapshot(), url: s.opts.PreviewURL, repoTTL: s.opts.RepoTTL,
	}
	if s.opts.Requests != nil {
		in.requests = s.opts.Requests.LastRequests()
	}
	if s.opts.Routes != nil {
		in.problems = s.opts.Routes.RouteProblems()
	}
	return in
}

// detail reads one environment with its history. ErrNotFound when neither
// the store nor the engine knows it.
func (s *Server) detail(ctx context.Context, project string) (*EnvironmentDetail, error) {
	var warnings []string
	var hist []store.Environment
	var histErr error
	if s.opts.History != nil {
		h, err := s.opts.History.Environment(ctx, project)
		switch {
		case err == nil:
			hist = []store.Environment{h}
		case errors.Is(err, store.ErrNotFound):
		default:
			histErr = err
			warnings = append(warnings, "The controller's history could not be read: "+err.Error())
		}
	}
	var live []stack.Environment
	l, liveErr := s.opts.Engine.Inspect(ctx, project)
	if liveErr != nil {
		warnings = append(warnings, "The Docker Engine could not be read: "+liveErr.Error())
	} else if l != nil {
		live = []stack.Environment{*l}
	}
	if len(hist) == 0 && len(live) == 0 {
		if err := errors.Join(histErr, liveErr); err != nil {
			return nil, err
		}
		return nil, ErrNotFound
	}
	envs := merge(s.mergeInput(hist, live, liveErr == nil))
	d := &EnvironmentDetail{Environment: envs[0], Timeline: []store.PhaseEntry{}, BuildLogs: []store.BuildLog{}}
	if d.Tracked {
		if tl, err := s.opts.History.Timeline(ctx, project); err == nil {
			d.Timeline = tl
		} else {
			warnings = append(warnings, "The timeline could not be read: "+err.Error())
		}
		if bl, err := s.opts.History.BuildLogs(ctx, project); err == nil {
			d.BuildLogs = bl
		} else {
			warnings = append(warnings, "The build logs could not be read: "+err.Error())
		}
	}
	d.Warnings = warnings
	return d, nil
}

// listData is what the list page renders.
type listData struct {
	Filter   Filter
	Summary  Summary
	Rows     []listRow
	Chips    []phaseChip
	AllHref  string
	Warnings []string
	Taken    *actionTaken // a destroy just taken from an environment page
	Project  string       // the project Taken was about
	Access   string       // which previews are public (Options.AccessNote)
}

// actionTaken is an action just taken, for the note shown on the page the
// action form redirects to.
type actionTaken struct {
	Action  string
	Outcome Outcome
}

// takenQuery is the query of the redirect after action was taken.
func takenQuery(action string, outcome Outcome) url.Values {
	return url.Values{"action": {action}, "outcome": {string(outcome)}}
}

// takenFrom reads the action just taken from the query of the redirect;
// nil when there is none (or it is not one the dashboard can take).
func takenFrom(q url.Values) *actionTaken {
	a := &actionTaken{Action: q.Get("action"), Outcome: Outcome(q.Get("outcome"))}
	if !validAction(a.Action) || (a.Outcome != Queued && a.Outcome != Done) {
		return nil
	}
	return a
}

func (s *Server) listPage(w http.ResponseWriter, r *http.Request, p principal) {
	f := FilterFromQuery(r.URL.Query())
	envs, warnings := s.environments(r.Context())
	sum := summarize(envs, f)
	data := listData{
		Filter:   f,
		Summary:  sum,
		Rows:     listRows(apply(envs, f), s.opts.Now(), s.base),
		Chips:    phaseChips(sum, f, s.filterURL),
		AllHref:  s.filterURL(f, "phase", ""),
		Warnings: warnings,
		Access:   s.opts.AccessNote,
	}
	if q := r.URL.Query(); projectRE.MatchString(q.Get("project")) {
		if t := takenFrom(q); t != nil && t.Action == "destroy" {
			data.Taken, data.Project = t, q.Get("project")
		}
	}
	s.render(w, r, p, http.StatusOK, "list", "Environments", data)
}

// envData is what the environment page renders.
type envData struct {
	Env      *EnvironmentDetail
	Actions  []string // buttons to show
	CanLogs  bool
	Build    *store.BuildLog // the build log shown, with data
	BuildCut bool            // earlier output is not shown
	Taken    *actionTaken    // the action just taken
	Services []string
	Service  string // the service whose logs are shown; "" for all
}

// maxPageBuildLog is how much of a build log the page renders inline.
const maxPageBuildLog = 256 << 10

func (s *Server) environmentPage(w http.ResponseWriter, r *http.Request, p principal) {
	project := r.PathValue("project")
	d, err := s.detail(r.Context(), project)
	if err != nil {
		status := statusOf(err)
		msg := "There is no environment called " + project + "."
		if status != http.StatusNotFound {
			msg = err.Error()
		}
		s.errorPage(w, r, p, status, http.StatusText(status), msg)
		return
	}
	data := envData{Env: d, CanLogs: s.auth.canReadLogs(p)}
	if p.role >= roleOperator && s.opts.Actions != nil && d.Removed.IsZero() {
		data.Actions = actionsFor(&d.Environment)
	}
	for _, svc := range d.Services {
		data.Services = append(data.Services, svc.Name)
	}
	if svc := r.URL.Query().Get("service"); slices.Contains(data.Services, svc) {
		data.Service = svc
	}
	data.Taken = takenFrom(r.URL.Query())
	if data.CanLogs && len(d.BuildLogs) > 0 {
		sel := d.BuildLogs[0]
		if want := r.URL.Query().Get("build"); want != "" {
			if i := slices.IndexFunc(d.BuildLogs, func(b store.BuildLog) bool { return b.SHA == want }); i >= 0 {
				sel = d.BuildLogs[i]
			}
		}
		from := max(sel.Size-maxPageBuildLog, 0)
		if bl, err := s.opts.History.BuildLog(r.Context(), project, sel.SHA, from); err == nil {
			data.Build = &bl
			data.BuildCut = bl.Offset > 0
		} else {
			d.Warnings = append(d.Warnings, "The build log could not be read: "+err.Error())
		}
	}
	title := d.Project
	if d.PR > 0 {
		title = "#" + itoa(d.PR) + " " + d.Title
	}
	s.render(w, r, p, http.StatusOK, "environment", title, data)
}

// actionsFor lists the buttons that make sense for e.
func actionsFor(e *Environment) []string {
	var out []string
	if e.Tracked {
		out = append(out, "redeploy")
	}
	switch e.State {
	case StateRunning, StateStarting, StateDegraded:
		out = append(out, "sleep")
	case StateStopped:
		out = append(out, "wake")
	}
	return append(out, "destroy")
}

func (s *Server) actionForm(w http.ResponseWriter, r *http.Request, p principal) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	project, action := r.PathValue("project"), r.PathValue("action")
	if !s.auth.checkCSRF(p, r.PostFormValue("csrf")) {
		s.errorPage(w, r, p, http.StatusForbidden, "Form expired",
			"This form did not carry a valid security token: it is from an earlier session, or from another site. Reload the page and try again.")
		return
	}
	if !validAction(action) {
		s.errorPage(w, r, p, http.StatusNotFound, "Not found", "There is no action called "+action+".")
		return
	}
	outcome, err := s.runAction(r, p, project, action)
	if err != nil {
		status := statusOf(err)
		s.errorPage(w, r, p, status, "Could not "+action+" "+project, err.Error())
		return
	}
	q := takenQuery(action, outcome)
	if action == "destroy" {
		q.Set("project", project)
		http.Redirect(w, r, s.base+"?"+q.Encode(), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, s.base+"environments/"+project+"?"+q.Encode(), http.StatusSeeOther)
}

// loginData is what the login page renders.
type loginData struct {
	Next      string
	User      string
	Password  bool // the user/password form is available
	Token     bool // the token form is available
	Error     string
	CSRFError bool
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) {
	p, _ := s.auth.identify(r)
	next := safeNext(r.URL.Query().Get("next"), s.base)
	if !s.auth.loginEnabled() {
		if p.role > roleNone {
			http.Redirect(w, r, next, http.StatusSeeOther)
			return
		}
		s.notConfigured(w, r)
		return
	}
	if p.kind == "session" || p.kind == "token" {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	s.renderLogin(w, r, p, http.StatusOK, loginData{Next: next})
}

func (s *Server) renderLogin(w http.ResponseWriter, r *http.Request, p principal, status int, d loginData) {
	d.Password = s.auth.user != ""
	d.Token = s.auth.token != ""
	s.render(w, r, p, status, "login", "Sign in", d)
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	p, _ := s.auth.identify(r)
	if !s.auth.loginEnabled() {
		s.notConfigured(w, r)
		return
	}
	next := safeNext(r.PostFormValue("next"), s.base)
	ip := clientIP(r.RemoteAddr)
	if !s.auth.limiter.allow(ip) {
		s.renderLogin(w, r, p, http.StatusTooManyRequests, loginData{Next: next, Error: "Too many failed attempts. Wait a minute and try again."})
		return
	}
	sess, ok := s.auth.login(r.PostFormValue("user"), r.PostFormValue("password"), r.PostFormValue("token"))
	if !ok {
		s.auth.limiter.fail(ip)
		s.log.Warn("dashboard login failed", "remote", r.RemoteAddr, "user", r.PostFormValue("user"))
		msg := "Wrong user name or password."
		if r.PostFormValue("token") != "" {
			msg = "That token is not valid."
		}
		s.renderLogin(w, r, p, http.StatusUnauthorized, loginData{Next: next, User: r.PostFormValue("user"), Error: msg})
		return
	}
	s.auth.limiter.succeed(ip)
	s.log.Info("dashboard login", "remote", r.RemoteAddr, "user", sess.User, "kind", sess.Kind)
	http.SetCookie(w, s.auth.sessionCookieFor(r, &sess))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	p, _ := s.auth.identify(r)
	if p.kind == "session" && !s.auth.checkCSRF(p, r.PostFormValue("csrf")) {
		s.errorPage(w, r, p, http.StatusForbidden, "Form expired", "Reload the page and try again.")
		return
	}
	http.SetCookie(w, s.auth.sessionCookieFor(r, nil))
	target := s.base + "login"
	if s.auth.public {
		target = s.base
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// errorData is what the error page renders.
type errorData struct {
	Status  int
	Title   string
	Message string
}

func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, p principal, status int, title, msg string) {
	s.render(w, r, p, status, "error", title, errorData{Status: status, Title: title, Message: strings.TrimSpace(msg)})
}
