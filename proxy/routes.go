package proxy

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Routes is the live route table. Its inputs — the containers the Observer
// sees and the states the controller publishes — change under a mutex; each
// change recomputes the whole table with ComputeTable and swaps it in
// atomically, so the request path (Table, Lookup) never takes a lock.
type Routes struct {
	log   *slog.Logger
	owner HostOwner
	table atomic.Pointer[Table]

	mu         sync.Mutex
	containers map[string]Container // by ID
	states     map[string]ProjectState
	logged     map[string]bool // problems already logged
	problems   []Problem       // of the current table
	subs       map[int]func(*Table)
	nextSub    int
	// passed holds, by container ID, the start of the run in which the
	// container's own healthcheck passed before Docker's first probe.
	passed map[string]time.Time
}

// NewRoutes returns an empty live table whose containers may serve only the
// hosts owner accepts for their pull request (see ComputeTable); with a nil
// owner no container route is served. A nil logger discards logs.
func NewRoutes(log *slog.Logger, owner HostOwner) *Routes {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Routes{
		log:        log,
		owner:      owner,
		containers: map[string]Container{},
		states:     map[string]ProjectState{},
		logged:     map[string]bool{},
		subs:       map[int]func(*Table){},
		passed:     map[string]time.Time{},
	}
	t, _ := ComputeTable(nil, nil, owner)
	r.table.Store(t)
	return r
}

// Table returns the current table. It never blocks.
func (r *Routes) Table() *Table { return r.table.Load() }

// Lookup returns the current route of host (normalized), or nil.
func (r *Routes) Lookup(host string) *Route { return r.table.Load().Lookup(host) }

// Subscribe calls fn with the current table now and with every new table
// after it is swapped in, in order. fn runs under Routes' lock: it must be
// quick and must not change Routes. The returned func unsubscribes.
func (r *Routes) Subscribe(fn func(*Table)) (unsubscribe func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id := r.nextSub
	r.nextSub++
	r.subs[id] = fn
	fn(r.table.Load())
	return func() {
		r.mu.Lock()
		delete(r.subs, id)
		r.mu.Unlock()
	}
}

// Problems returns the problems of the current table: routes refused
// (undeclared hosts, bad labels, a host another project claimed first) and
// conflicts resolved.
func (r *Routes) Problems() []Problem {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Problem(nil), r.problems...)
}

// RouteProblems returns the current problems by project, as one line each
// ("<subject> host "<host>": <reason>"); problems of no known project are
// left out (they are logged). The dashboard shows them on the environment.
func (r *Routes) RouteProblems() map[string][]string {
	out := map[string][]string{}
	for _, p := range r.Problems() {
		if p.Project != "" {
			out[p.Project] = append(out[p.Project], p.String())
		}
	}
	return out
}

// ReplaceContainers sets the whole observed container set (after a list).
func (r *Routes) ReplaceContainers(cs []Container) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.containers = make(map[string]Container, len(cs))
	for _, c := range cs {
		r.containers[c.ID] = c
	}
	for id := range r.passed {
		if _, ok := r.containers[id]; !ok {
			delete(r.passed, id)
		}
	}
	r.recompute()
}

// PutContainer adds or updates one observed container.
func (r *Routes) PutContainer(c Container) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.containers[c.ID]; ok && old == c {
		return
	}
	r.containers[c.ID] = c
	r.recompute()
}

// CheckPassed records that the healthcheck of container id passed in its
// run that started at started, run by Slipway's own engine (through exec)
// before Docker's first scheduled probe: while Docker's health of that run
// still says "starting", the container serves. It is a trusted, in-process
// signal; it makes no route: the container must carry the route labels
// Slipway declared, as ever, and Docker's own verdict (unhealthy, or a new
// run) overrides it.
func (r *Routes) CheckPassed(id string, started time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.passed[id]; ok && old.Equal(started) {
		return
	}
	r.passed[id] = started
	if c, ok := r.containers[id]; ok && c.Health == "starting" && c.Started.Equal(started) {
		r.recompute()
	}
}

// RemoveContainer forgets a container (destroyed).
func (r *Routes) RemoveContainer(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.containers[id]; !ok {
		return
	}
	delete(r.containers, id)
	delete(r.passed, id)
	r.recompute()
}

// maxStateText bounds the free-text fields of a State shown on pages.
const maxStateText = 300

// SetState publishes a controller state for project's hosts, replacing any
// earlier state of the project. Phase must be queued, building, starting,
// failed or removing; hosts must be valid lower-case host names. On bad
// input it returns an error and changes nothing. Reason is cut to its first
// line.
func (r *Routes) SetState(project string, hosts []string, st State) error {
	if project == "" {
		return errors.New("set state: empty project")
	}
	if !controllerPhase(st.Phase) {
		return fmt.Errorf("set state of %s: phase %q is not one the controller may publish", project, st.Phase)
	}
	if len(hosts) == 0 {
		return fmt.Errorf("set state of %s: no hosts", project)
	}
	for _, h := range hosts {
		if err := contract.ValidHost(h); err != nil {
			return fmt.Errorf("set state of %s: %w", project, err)
		}
	}
	st.Step = oneLine(st.Step)
	st.Service = oneLine(st.Service)
	st.Reason = oneLine(st.Reason)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states[project] = ProjectState{Hosts: append([]string(nil), hosts...), State: st}
	r.recompute()
	return nil
}

// ClearState removes the controller's state of project: its hosts are then
// what Docker shows (running containers, stopped ones, or nothing).
func (r *Routes) ClearState(project string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.states[project]; !ok {
		return
	}
	delete(r.states, project)
	r.recompute()
}

// oneLine keeps the first line of s, trimmed and cut to maxStateText bytes
// (on a rune boundary).
func oneLine(s string) string {
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if len(s) > maxStateText {
		cut := maxStateText
		for cut > 0 && !isRuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return s
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// recompute builds a new table from the inputs, swaps it in, logs new
// problems and tells subscribers. Callers hold r.mu.
func (r *Routes) recompute() {
	cs := make([]Container, 0, len(r.containers))
	for id, c := range r.containers {
		if started, ok := r.passed[id]; ok {
			if c.Started.After(started) {
				delete(r.passed, id) // a later run: the pass is stale
			} else {
				c.CheckPassed = c.Started.Equal(started)
			}
		}
		cs = append(cs, c)
	}
	t, problems := ComputeTable(cs, r.states, r.owner)
	r.table.Store(t)
	r.problems = problems

	seen := make(map[string]bool, len(problems))
	for _, p := range problems {
		key := p.String()
		seen[key] = true
		if !r.logged[key] {
			r.log.Warn("route skipped or conflict resolved", "subject", p.Subject, "project", p.Project, "host", p.Host, "reason", p.Reason)
		}
	}
	r.logged = seen
	for _, fn := range r.subs {
		fn(t)
	}
}
