package proxy

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Phase is where the environment behind a host is in its life. The proxy
// answers each phase differently: running hosts are proxied, the others get
// a status page.
type Phase string

// Phases. Running, Starting, Unhealthy and Stopped are observed from Docker;
// Queued, Building, Starting, Failed and Removing are published by the
// controller through Routes.SetState.
const (
	// PhaseRunning: at least one running container that is healthy (or has
	// no healthcheck) serves the host.
	PhaseRunning Phase = "running"
	// PhaseQueued: the controller has the environment in its queue.
	PhaseQueued Phase = "queued"
	// PhaseBuilding: images are being built.
	PhaseBuilding Phase = "building"
	// PhaseStarting: containers are being started or wait for their
	// healthcheck to pass.
	PhaseStarting Phase = "starting"
	// PhaseUnhealthy: containers run but every one fails its healthcheck.
	PhaseUnhealthy Phase = "unhealthy"
	// PhaseStopped: the containers exist but none runs (the environment
	// sleeps); a request wakes it through HandlerOptions.OnWake.
	PhaseStopped Phase = "stopped"
	// PhaseFailed: the last deploy failed and nothing runs.
	PhaseFailed Phase = "failed"
	// PhaseRemoving: the environment is being torn down.
	PhaseRemoving Phase = "removing"
)

// controllerPhase reports whether the controller may publish p.
func controllerPhase(p Phase) bool {
	switch p {
	case PhaseQueued, PhaseBuilding, PhaseStarting, PhaseFailed, PhaseRemoving:
		return true
	}
	return false
}

// State is a non-running state the controller publishes for a project.
type State struct {
	// Phase is one of PhaseQueued, PhaseBuilding, PhaseStarting,
	// PhaseFailed or PhaseRemoving.
	Phase Phase
	// Step names the step that failed (for example "build", "up",
	// "after_deploy"), or the step in progress.
	Step string
	// Service names the service the step was working on, if any.
	Service string
	// Reason is a one-line explanation shown on the failed page. It must
	// not hold secrets: the page is public.
	Reason string
}

// ProjectState is a controller State together with the hosts it applies to.
type ProjectState struct {
	Hosts []string
	State State
}

// Container is what the route table needs to know about one container,
// observed from Docker (see Observer). Host and Port are the raw values of
// the dev.slipway.route.* labels; ComputeTable validates them.
type Container struct {
	ID      string
	Name    string
	Project string
	Service string
	// Host is the dev.slipway.route.host label; empty for a container that
	// is not exposed (it is then ignored).
	Host string
	// Port is the dev.slipway.route.port label.
	Port string
	// Running is true while the container's state is "running".
	Running bool
	// Health is "" without a healthcheck, else "starting", "healthy" or
	// "unhealthy".
	Health string
	// IP is the address the proxy dials, chosen by the Observer's
	// BackendIP function; empty when the container has none.
	IP string
}

// serves reports whether c may receive requests.
func (c Container) serves() bool {
	return c.Running && (c.Health == "" || c.Health == "healthy")
}

// Backend is one container serving a host.
type Backend struct {
	// Addr is ip:port, what the proxy dials.
	Addr string
	// ContainerID and Name identify the container.
	ContainerID string
	Name        string
}

// Route is the table entry for one host.
type Route struct {
	Host    string
	Project string
	// Service is the compose service whose containers serve the host (empty
	// when only a controller state is known).
	Service string
	Phase   Phase
	// State is the controller's state for the project, if it published one.
	State State
	// Backends are the containers requests go to, sorted by name; set only
	// when Phase is PhaseRunning.
	Backends []Backend

	next *atomic.Uint32 // round-robin position
}

// Pick returns the backend for the next request, spreading requests over
// all backends round-robin. It must only be called on a running route.
func (r *Route) Pick() Backend {
	if len(r.Backends) == 1 {
		return r.Backends[0]
	}
	n := r.next.Add(1)
	return r.Backends[int(n%uint32(len(r.Backends)))]
}

// Problem is a container or state the table could not use, or a conflict it
// resolved. Routes logs each problem once.
type Problem struct {
	// Subject is the container name (or ID) or "project <name>".
	Subject string
	Host    string
	Reason  string
}

// String renders the problem for logs.
func (p Problem) String() string {
	return fmt.Sprintf("%s host %q: %s", p.Subject, p.Host, p.Reason)
}

// Table maps hosts to routes. A Table is immutable once built; Routes
// swaps whole tables atomically, so readers never lock.
type Table struct {
	routes   map[string]*Route
	projects map[string][]string // project → its hosts, sorted
}

// Lookup returns the route of host (already normalized, see
// contract.NormalizeHost), or nil.
func (t *Table) Lookup(host string) *Route {
	if t == nil {
		return nil
	}
	return t.routes[host]
}

// Len returns the number of hosts.
func (t *Table) Len() int {
	if t == nil {
		return 0
	}
	return len(t.routes)
}

// Routes returns every route, sorted by host.
func (t *Table) Routes() []*Route {
	if t == nil {
		return nil
	}
	out := make([]*Route, 0, len(t.routes))
	for _, r := range t.routes {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

// Projects returns the projects that own at least one host, sorted.
func (t *Table) Projects() []string {
	if t == nil {
		return nil
	}
	out := make([]string, 0, len(t.projects))
	for p := range t.projects {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Hosts returns the hosts of project, sorted.
func (t *Table) Hosts(project string) []string {
	if t == nil {
		return nil
	}
	return append([]string(nil), t.projects[project]...)
}

// claim is everything one project says about one host.
type claim struct {
	project  string
	services map[string]*serviceGroup
	state    *State
}

// serviceGroup is the containers of one service that carry a host.
type serviceGroup struct {
	service   string
	backends  []Backend
	running   int
	starting  int // running, health "starting"
	unhealthy int // running, health "unhealthy"
	total     int
}

// ComputeTable is the pure heart of the proxy: from the containers observed
// in Docker and the states the controller published (keyed by project), it
// computes which host goes where. It never fails as a whole: a container
// with a bad label is skipped and reported as a Problem, and so is each
// conflict it resolves.
//
// Rules, per host:
//   - Only running containers that are healthy or have no healthcheck are
//     backends.
//   - A project in PhaseRemoving shows the removed page even while its
//     containers still run.
//   - Backends win over any other controller state: while old containers
//     run, they are served during a rebuild, and a failed deploy shows its
//     page only when nothing runs.
//   - Otherwise the controller's state wins; then running containers that
//     are not healthy yet (starting, or unhealthy when all of them are);
//     then containers that exist but do not run (stopped).
//   - Two projects claiming one host: the one further along wins (running,
//     then pending, then stopped, then removing); ties go to the smaller
//     project name. Two services of one project claiming a host: the one
//     with backends, then the smaller name.
func ComputeTable(containers []Container, states map[string]ProjectState) (*Table, []Problem) {
	var problems []Problem
	claims := map[string]map[string]*claim{} // host → project → claim
	getClaim := func(host, project string) *claim {
		byProject := claims[host]
		if byProject == nil {
			byProject = map[string]*claim{}
			claims[host] = byProject
		}
		c := byProject[project]
		if c == nil {
			c = &claim{project: project, services: map[string]*serviceGroup{}}
			byProject[project] = c
		}
		return c
	}

	for _, c := range containers {
		if c.Host == "" {
			continue // not exposed
		}
		subject := c.Name
		if subject == "" {
			subject = c.ID
		}
		if err := contract.ValidHost(c.Host); err != nil {
			problems = append(problems, Problem{subject, c.Host, "invalid route host label: " + err.Error()})
			continue
		}
		if c.Project == "" {
			problems = append(problems, Problem{subject, c.Host, "no " + contract.LabelProject + " label"})
			continue
		}
		port, err := strconv.Atoi(c.Port)
		if err != nil || port < 1 || port > 65535 {
			problems = append(problems, Problem{subject, c.Host, fmt.Sprintf("invalid route port label %q", c.Port)})
			continue
		}
		if c.serves() && c.IP == "" {
			problems = append(problems, Problem{subject, c.Host, "running but has no IP address on any network"})
			continue
		}
		cl := getClaim(c.Host, c.Project)
		g := cl.services[c.Service]
		if g == nil {
			g = &serviceGroup{service: c.Service}
			cl.services[c.Service] = g
		}
		g.total++
		if c.Running {
			g.running++
			switch {
			case c.serves():
				g.backends = append(g.backends, Backend{
					Addr:        net.JoinHostPort(c.IP, strconv.Itoa(port)),
					ContainerID: c.ID,
					Name:        c.Name,
				})
			case c.Health == "unhealthy":
				g.unhealthy++
			default:
				g.starting++
			}
		}
	}

	for project, ps := range states {
		if !controllerPhase(ps.State.Phase) {
			problems = append(problems, Problem{"project " + project, "", fmt.Sprintf("unknown phase %q", ps.State.Phase)})
			continue
		}
		st := ps.State
		for _, h := range ps.Hosts {
			if err := contract.ValidHost(h); err != nil {
				problems = append(problems, Problem{"project " + project, h, "invalid host: " + err.Error()})
				continue
			}
			getClaim(h, project).state = &st
		}
	}

	t := &Table{routes: make(map[string]*Route, len(claims)), projects: map[string][]string{}}
	for host, byProject := range claims {
		var routes []*Route
		for _, cl := range byProject {
			r, ps := resolveClaim(host, cl)
			problems = append(problems, ps...)
			routes = append(routes, r)
		}
		sort.Slice(routes, func(i, j int) bool {
			ri, rj := phaseRank(routes[i].Phase), phaseRank(routes[j].Phase)
			if ri != rj {
				return ri > rj
			}
			return routes[i].Project < routes[j].Project
		})
		win := routes[0]
		if len(routes) > 1 {
			var others []string
			for _, r := range routes[1:] {
				others = append(others, r.Project)
			}
			problems = append(problems, Problem{"project " + win.Project, host,
				fmt.Sprintf("host also claimed by %s; serving %s", strings.Join(others, ", "), win.Project)})
		}
		t.routes[host] = win
		t.projects[win.Project] = append(t.projects[win.Project], host)
	}
	for _, hosts := range t.projects {
		sort.Strings(hosts)
	}
	sort.Slice(problems, func(i, j int) bool {
		if problems[i].Subject != problems[j].Subject {
			return problems[i].Subject < problems[j].Subject
		}
		return problems[i].Host < problems[j].Host
	})
	return t, problems
}

// resolveClaim turns one project's containers and state for host into a Route.
func resolveClaim(host string, cl *claim) (*Route, []Problem) {
	var problems []Problem
	groups := make([]*serviceGroup, 0, len(cl.services))
	for _, g := range cl.services {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool {
		bi, bj := len(groups[i].backends) > 0, len(groups[j].backends) > 0
		if bi != bj {
			return bi
		}
		return groups[i].service < groups[j].service
	})
	r := &Route{Host: host, Project: cl.project, next: new(atomic.Uint32)}
	if cl.state != nil {
		r.State = *cl.state
	}
	var g *serviceGroup
	if len(groups) > 0 {
		g = groups[0]
		r.Service = g.service
		if len(groups) > 1 {
			var others []string
			for _, o := range groups[1:] {
				others = append(others, o.service)
			}
			problems = append(problems, Problem{"project " + cl.project, host,
				fmt.Sprintf("host also claimed by services %s; serving %s", strings.Join(others, ", "), g.service)})
		}
	}
	switch {
	case cl.state != nil && cl.state.Phase == PhaseRemoving:
		r.Phase = PhaseRemoving
	case g != nil && len(g.backends) > 0:
		r.Phase = PhaseRunning
		r.Backends = g.backends
		sort.Slice(r.Backends, func(i, j int) bool {
			if r.Backends[i].Name != r.Backends[j].Name {
				return r.Backends[i].Name < r.Backends[j].Name
			}
			return r.Backends[i].ContainerID < r.Backends[j].ContainerID
		})
	case cl.state != nil:
		r.Phase = cl.state.Phase
	case g.running > 0 && g.starting == 0:
		r.Phase = PhaseUnhealthy
	case g.running > 0:
		r.Phase = PhaseStarting
	default:
		r.Phase = PhaseStopped
	}
	return r, problems
}

// phaseRank orders phases for choosing between projects that claim one
// host: the environment further along wins.
func phaseRank(p Phase) int {
	switch p {
	case PhaseRunning:
		return 4
	case PhaseQueued, PhaseBuilding, PhaseStarting, PhaseUnhealthy, PhaseFailed:
		return 3
	case PhaseStopped:
		return 2
	case PhaseRemoving:
		return 1
	}
	return 0
}
