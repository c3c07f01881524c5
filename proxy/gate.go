package proxy

import (
	"net/http"
	"time"
)

// Gate decides who may open a preview (package access implements it). The
// Handler asks it about every request for a preview host, whatever the
// route's phase, before anything else: before a status page, a wake-up or
// the backend.
type Gate interface {
	// Admit returns 0 to let r go on, or the status it answered r with
	// itself (a sign-in redirect, a password form, a refusal). project is
	// the route's project, "" for a host with no environment. Admit
	// removes Slipway's own credentials from r before it goes on.
	Admit(w http.ResponseWriter, r *http.Request, project string) int
}

// admit asks the gate about r (rt is nil for a host with no environment)
// and reports whether the gate answered r itself.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, rt *Route, start time.Time) bool {
	project, stats := "", unknownProject
	if rt != nil {
		project, stats = rt.Project, rt.Project
	}
	status := h.gate.Admit(w, r, project)
	if status == 0 {
		return false
	}
	h.record(h.statsFor(stats), status, start)
	return true
}
