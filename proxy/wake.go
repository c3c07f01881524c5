package proxy

import (
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// A request for a sleeping preview wakes it and is held until the preview
// answers: the handler asks for the wake once (OnWake), however many
// requests arrive meanwhile, then waits on the route table — every swap
// wakes the held requests, which look their host up again — until the
// host's route runs (the request is proxied and gets the real answer), the
// wake fails (the failure page), the request's hold limit passes (the
// waiting page, which reloads itself) or the client goes away.

// wakeAction is what the handler does with a request for a host whose
// route does not run.
type wakeAction int

const (
	// wakeAnswer: answer with the route's page now.
	wakeAnswer wakeAction = iota
	// wakeServe: the route runs: proxy the request.
	wakeServe
	// wakeStart: ask for a wake (OnWake), then hold the request.
	wakeStart
	// wakeHold: a wake is under way: hold the request.
	wakeHold
)

// wakeFacts is what decideWake rests on.
type wakeFacts struct {
	// Gone: the host has no route (any more).
	Gone bool
	// Phase is the host's route phase.
	Phase Phase
	// CanWake: the handler asks for wakes (OnWake is set).
	CanWake bool
	// Waking: this handler asked for a wake of the project, and a request
	// still waits on it.
	Waking bool
	// WakeAge is how long ago that wake was asked for.
	WakeAge time.Duration
	// Limit is how long a request is held.
	Limit time.Duration
}

// decideWake is the pure rule for a request whose route does not run (and
// for a held request, at each change of the route table):
//   - a route that runs is served; a host without a route gets the 404
//     page;
//   - a stopped (sleeping) route is woken, unless a wake is under way,
//     which the request joins; a wake asked for a hold limit ago that has
//     not even started a container is asked for again (the controller may
//     not have heard it, or the route went back to sleep since);
//   - while a wake is under way, a route that is starting, or queued or
//     building (a push arrived while the preview slept), keeps the request
//     held;
//   - anything else — failed, unhealthy, being removed, or starting for
//     another reason than a wake (a deploy) — is answered with its page
//     at once.
func decideWake(f wakeFacts) wakeAction {
	switch {
	case f.Gone:
		return wakeAnswer
	case f.Phase == PhaseRunning:
		return wakeServe
	case !f.CanWake:
		return wakeAnswer
	}
	switch f.Phase {
	case PhaseStopped:
		if !f.Waking || f.WakeAge >= f.Limit {
			return wakeStart
		}
		return wakeHold
	case PhaseStarting, PhaseQueued, PhaseBuilding:
		if f.Waking {
			return wakeHold
		}
	}
	return wakeAnswer
}

// wakes holds requests for sleeping previews: the wakes under way, one per
// project, and a signal of route table changes held requests wait on.
type wakes struct {
	routes *Routes
	onWake func(project string)
	limit  time.Duration
	now    func() time.Time

	// changed is closed at the next table swap (and replaced).
	changed     atomic.Pointer[chan struct{}]
	unsubscribe func()
	holding     atomic.Int64
	// maxHeld bounds the requests held at once, over every project: one
	// more gets the waiting page at once (each held request keeps a
	// connection and a goroutine for up to the hold limit).
	maxHeld int64

	mu      sync.Mutex
	flights map[string]*wakeFlight // by project
}

// wakeFlight is one wake the handler asked for. It lasts until none of
// the project's hosts is waking any more (stopped, starting, queued or
// building): a request that arrives while the preview still starts, after
// earlier ones outlasted their hold, is held too.
type wakeFlight struct {
	asked time.Time
}

// waking reports whether a route in phase p may still be on its way up.
func waking(p Phase) bool {
	switch p {
	case PhaseStopped, PhaseStarting, PhaseQueued, PhaseBuilding:
		return true
	}
	return false
}

// defaultMaxHeld is how many requests may wait for wakes at once.
const defaultMaxHeld = 1024

// newWakes follows routes' swaps. onWake may be nil (nothing wakes: pages
// at once); limit ≤ 0 holds no request (each asks for a wake and gets the
// waiting page).
func newWakes(routes *Routes, onWake func(string), limit time.Duration) *wakes {
	wk := &wakes{routes: routes, onWake: onWake, limit: limit, now: time.Now, maxHeld: defaultMaxHeld, flights: map[string]*wakeFlight{}}
	ch := make(chan struct{})
	wk.changed.Store(&ch)
	wk.unsubscribe = routes.Subscribe(wk.tableChanged)
	return wk
}

// tableChanged forgets the wakes that are over and wakes every held
// request (it runs under Routes' lock).
func (wk *wakes) tableChanged(t *Table) {
	wk.mu.Lock()
	for project := range wk.flights {
		over := true
		for _, host := range t.projects[project] {
			if waking(t.routes[host].Phase) {
				over = false
				break
			}
		}
		if over {
			delete(wk.flights, project)
		}
	}
	wk.mu.Unlock()
	next := make(chan struct{})
	close(*wk.changed.Swap(&next))
}

func (wk *wakes) close() { wk.unsubscribe() }

// step decides for one look at project's route, and books it: a start
// records the wake (OnWake is called by the caller, outside the lock).
func (wk *wakes) step(project string, rt *Route) wakeAction {
	wk.mu.Lock()
	defer wk.mu.Unlock()
	fl := wk.flights[project]
	f := wakeFacts{Gone: rt == nil, CanWake: wk.onWake != nil, Waking: fl != nil, Limit: wk.limit}
	if rt != nil {
		f.Phase = rt.Phase
	}
	if fl != nil {
		f.WakeAge = wk.now().Sub(fl.asked)
	}
	a := decideWake(f)
	switch {
	case wk.limit <= 0:
		// Nothing is held: no wake to join.
	case a == wakeStart:
		wk.flights[project] = &wakeFlight{asked: wk.now()}
	case a == wakeServe || a == wakeAnswer:
		// Over for this host (a table swap forgets it for the project too;
		// this catches a wake booked on a table older than the swap).
		delete(wk.flights, project)
	}
	return a
}

// Holding returns how many requests wait for a preview to wake.
func (h *Handler) Holding() int { return int(h.wake.holding.Load()) }

// awaitRunning deals with a request whose route rt does not run: it
// returns the route to proxy the request to once it runs, or nil when it
// has answered the request itself (a page, or nothing to a client that
// went away). See decideWake.
func (h *Handler) awaitRunning(w http.ResponseWriter, r *http.Request, rt *Route, st *projectStats, start time.Time) *Route {
	wk := h.wake
	project := rt.Project
	var (
		joined bool
		limit  *time.Timer
	)
	defer func() {
		if joined {
			limit.Stop()
			wk.holding.Add(-1)
		}
	}()
	for {
		// The signal is taken before the table is read: a swap in between
		// closes it, and the loop looks again.
		changed := *wk.changed.Load()
		rt = lookup(h.routes.Table(), r.Host)
		if rt != nil && rt.Project != project {
			// The host went to another project meanwhile: the gate
			// admitted the request for the first one.
			rt = nil
		}
		switch wk.step(project, rt) {
		case wakeServe:
			if joined {
				h.log.Debug("wake: held request released to the woken preview", "host", r.Host, "held", time.Since(start))
			}
			return rt
		case wakeAnswer:
			h.answerPage(w, rt, st, start)
			return nil
		case wakeStart:
			h.log.Debug("wake: request for a sleeping preview asks for a wake", "host", r.Host, "project", project)
			wk.onWake(project)
			if wk.limit <= 0 {
				h.answerPage(w, rt, st, start)
				return nil
			}
		}
		if !joined {
			if wk.holding.Add(1) > wk.maxHeld {
				wk.holding.Add(-1)
				h.answerPage(w, rt, st, start) // the waiting page
				return nil
			}
			joined = true
			limit = time.NewTimer(wk.limit)
		}
		select {
		case <-changed:
		case <-limit.C:
			// Held for the whole limit: the waiting page, which reloads.
			rt = lookup(h.routes.Table(), r.Host)
			if rt != nil && rt.Project != project {
				rt = nil // the gate admitted the request for project only
			}
			h.answerPage(w, rt, st, start)
			return nil
		case <-r.Context().Done():
			h.record(st, 499, start) // the client went away
			return nil
		}
	}
}

// answerPage answers with rt's page (the 404 page when the host has no
// route).
func (h *Handler) answerPage(w http.ResponseWriter, rt *Route, st *projectStats, start time.Time) {
	if rt == nil {
		writePage(w, notFoundPage, http.StatusNotFound, 0)
		h.record(st, http.StatusNotFound, start)
		return
	}
	body, status, refresh := phasePage(rt)
	writePage(w, body, status, refresh)
	h.record(st, status, start)
}
