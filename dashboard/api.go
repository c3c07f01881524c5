package dashboard

import (
	"errors"
	"net/http"
)

// api wraps a JSON API handler with the access check. Unauthenticated
// callers get 401 with a WWW-Authenticate challenge; a state-changing call
// authenticated by a cookie (not a bearer token) must carry the CSRF token
// in X-CSRF-Token.
func (s *Server) api(need role, h pageHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.identify(r)
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="slipway", error="invalid_token"`)
			s.writeError(w, r, http.StatusUnauthorized, "invalid bearer token")
			return
		}
		if v := r.PathValue("project"); v != "" && !projectRE.MatchString(v) {
			s.writeError(w, r, http.StatusBadRequest, "invalid project name "+quote(v))
			return
		}
		if p.role < need {
			s.denyAPI(w, r)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && !s.auth.checkCSRF(p, r.Header.Get("X-CSRF-Token")) {
			s.writeError(w, r, http.StatusForbidden, "missing or invalid X-CSRF-Token header (required when authenticating with the session cookie; send Authorization: Bearer <token> instead)")
			return
		}
		h(w, r, p)
	}
}

// denyAPI explains a refused API call.
func (s *Server) denyAPI(w http.ResponseWriter, r *http.Request) {
	a := s.auth
	switch {
	case !a.configured() && !a.public && !a.insecure:
		s.notConfigured(w, r)
	case !a.configured() && a.insecure && !a.public:
		s.writeError(w, r, http.StatusForbidden, "this dashboard runs without credentials and answers only on loopback; configure dashboard.token_file in slipway.yaml")
	case !a.configured():
		s.writeError(w, r, http.StatusForbidden, "this dashboard is public and read-only: no credentials are configured, so no actions can be taken")
	default:
		w.Header().Set("WWW-Authenticate", `Bearer realm="slipway"`)
		s.writeError(w, r, http.StatusUnauthorized, "authentication required: send Authorization: Bearer <token>")
	}
}

// apiEnvironments answers GET /api/v1/environments[?repo=&phase=&q=].
func (s *Server) apiEnvironments(w http.ResponseWriter, r *http.Request, _ principal) {
	envs, warnings := s.environments(r.Context())
	s.writeJSON(w, r, http.StatusOK, EnvironmentList{Environments: apply(envs, FilterFromQuery(r.URL.Query())), Warnings: warnings})
}

// apiEnvironment answers GET /api/v1/environments/{project}.
func (s *Server) apiEnvironment(w http.ResponseWriter, r *http.Request, _ principal) {
	project := r.PathValue("project")
	d, err := s.detail(r.Context(), project)
	if err != nil {
		s.writeError(w, r, statusOf(err), errorMessage(err, project))
		return
	}
	s.writeJSON(w, r, http.StatusOK, d)
}

// apiAction answers POST /api/v1/environments/{project}/actions/{action}.
func (s *Server) apiAction(w http.ResponseWriter, r *http.Request, p principal) {
	project, action := r.PathValue("project"), r.PathValue("action")
	if !validAction(action) {
		s.writeError(w, r, http.StatusNotFound, "unknown action "+quote(action)+" (want redeploy, destroy, sleep or wake)")
		return
	}
	outcome, err := s.runAction(r, p, project, action)
	if err != nil {
		s.writeError(w, r, statusOf(err), err.Error())
		return
	}
	status := http.StatusOK
	if outcome == Queued {
		status = http.StatusAccepted
	}
	s.writeJSON(w, r, status, ActionResult{Project: project, Action: action, Status: outcome})
}

func errorMessage(err error, project string) string {
	if errors.Is(err, ErrNotFound) {
		return "no environment " + quote(project)
	}
	return err.Error()
}

func quote(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return `"` + s + `"`
}
