package proxy

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Phase is where the environment behind a host is in its life
// (contract.RoutePhase). The proxy answers each phase differently: running
// hosts are proxied, the others get a status page.
type Phase = contract.RoutePhase

// The phases, as the contract names them.
const (
	PhaseRunning   = contract.RouteRunning
	PhaseQueued    = contract.RouteQueued
	PhaseBuilding  = contract.RouteBuilding
	PhaseStarting  = contract.RouteStarting
	PhaseUnhealthy = contract.RouteUnhealthy
	PhaseStopped   = contract.RouteStopped
	PhaseFailed    = contract.RouteFailed
	PhaseRemoving  = contract.RouteRemoving
)

// controllerPhase reports whether the controller may publish p.
func controllerPhase(p Phase) bool {
	switch p {
	case PhaseQueued, PhaseBuilding, PhaseStarting, PhaseFailed, PhaseRemoving:
		return true
	}
	return false
}

// State is a non-running state the controller publishes for a project
// (contract.RouteState).
type State = contract.RouteState

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
	// Repo (owner/name) and PR are the dev.slipway.repo and dev.slipway.pr
	// labels, which Slipway sets on every container it creates: whose
	// pull request the container belongs to.
	Repo string
	PR   int
	// Created is when the engine created the container; of two projects
	// claiming one host, the one that claimed it first keeps it.
	Created time.Time
	// Host is the dev.slipway.route.host label; empty for a container that
	// is not exposed (it is then ignored). Slipway sets it to "" on the
	// containers of services it does not expose, whatever the image says.
	Host string
	// Port is the dev.slipway.route.port label.
	Port string
	// Running is true while the container's state is "running".
	Running bool
	// Health is "" without a healthcheck, else "starting", "healthy" or
	// "unhealthy".
	Health string
	// Started is when the container last started (its run: a check that
	// passed in an earlier run says nothing of this one).
	Started time.Time
	// CheckPassed: while Docker's health still says "starting", the
	// container's own healthcheck already passed in this run, run by
	// Slipway's engine before Docker's first scheduled probe (see
	// Routes.CheckPassed). Docker's own verdict wins once it has one.
	CheckPassed bool
	// IP is the address the proxy dials, chosen by the Observer's
	// BackendIP function; empty when the container has none.
	IP string
}

// serves reports whether c may receive requests.
func (c Container) serves() bool {
	return c.Running && (c.Health == "" || c.Health == "healthy" || c.Health == "starting" && c.CheckPassed)
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

// HostOwner decides whether Slipway itself declared a route: whether host
// is one of the hosts that the repository's (owner/name) host templates
// give pull request pr. contract.HostTemplates satisfies it.
type HostOwner interface {
	OwnsHost(host, repo string, pr int, service string) error
}

// Problem is a container or state the table could not use, or a conflict it
// resolved. Routes logs each problem once.
type Problem struct {
	// Subject is the container name (or ID) or "project <name>".
	Subject string
	// Project is the project the problem belongs to, when known.
	Project string
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
	// since is when the project's first container carrying the host was
	// created; zero when only a controller state names the host.
	since time.Time
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
//   - A container's route enters the table only when Slipway itself
//     declared it for that pull request: owner must accept the host for the
//     container's dev.slipway.repo and dev.slipway.pr (a label an image or a
//     compose file smuggled in names a host the PR does not own). A nil
//     owner accepts no container route.
//   - Only running containers that are healthy or have no healthcheck are
//     backends; so is one whose health is still "starting" when its own
//     healthcheck has already passed in this run (CheckPassed).
//   - A project in PhaseRemoving shows the removed page even while its
//     containers still run.
//   - Backends win over any other controller state: while old containers
//     run, they are served during a rebuild, and a failed deploy shows its
//     page only when nothing runs.
//   - Otherwise the controller's state wins; then running containers that
//     are not healthy yet (starting, or unhealthy when all of them are);
//     then containers that exist but do not run (stopped).
//   - Two projects claiming one host: the first claimant keeps it (the
//     project whose earliest container carrying the host was created
//     first; a claim by a controller state alone comes after any claim by
//     containers). The others are refused with a Problem naming the
//     holder; claims of the very same instant are all refused. Two
//     services of one project claiming a host: the one with backends,
//     then the smaller name.
func ComputeTable(containers []Container, states map[string]ProjectState, owner HostOwner) (*Table, []Problem) {
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
		refuse := func(reason string) { problems = append(problems, Problem{subject, c.Project, c.Host, reason}) }
		if err := contract.ValidHost(c.Host); err != nil {
			refuse("invalid route host label: " + err.Error())
			continue
		}
		if c.Project == "" {
			refuse("no " + contract.LabelProject + " label")
			continue
		}
		if c.Repo == "" || c.PR <= 0 {
			refuse(fmt.Sprintf("no %s or %s label: not a pull request's container", contract.LabelRepo, contract.LabelPR))
			continue
		}
		if owner == nil {
			refuse("no host ownership rules configured: not serving")
			continue
		}
		if err := owner.OwnsHost(c.Host, c.Repo, c.PR, c.Service); err != nil {
			refuse("route not declared by Slipway for " + c.Repo + "#" + strconv.Itoa(c.PR) + ", not served: " + err.Error())
			continue
		}
		port, err := strconv.Atoi(c.Port)
		if err != nil || port < 1 || port > 65535 {
			refuse(fmt.Sprintf("invalid route port label %q", c.Port))
			continue
		}
		if c.serves() && c.IP == "" {
			refuse("running but has no IP address on any network")
			continue
		}
		cl := getClaim(c.Host, c.Project)
		if !c.Created.IsZero() && (cl.since.IsZero() || c.Created.Before(cl.since)) {
			cl.since = c.Created
		}
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
			problems = append(problems, Problem{"project " + project, project, "", fmt.Sprintf("unknown phase %q", ps.State.Phase)})
			continue
		}
		st := ps.State
		for _, h := range ps.Hosts {
			if err := contract.ValidHost(h); err != nil {
				problems = append(problems, Problem{"project " + project, project, h, "invalid host: " + err.Error()})
				continue
			}
			getClaim(h, project).state = &st
		}
	}

	t := &Table{routes: make(map[string]*Route, len(claims)), projects: map[string][]string{}}
	for host, byProject := range claims {
		winner, refused := firstClaimant(byProject)
		for _, cl := range refused {
			problems = append(problems, Problem{"project " + cl.project, cl.project, host, refusal(cl, winner, byProject)})
		}
		if winner == nil {
			continue
		}
		r, ps := resolveClaim(host, winner)
		problems = append(problems, ps...)
		t.routes[host] = r
		t.projects[r.Project] = append(t.projects[r.Project], host)
	}
	for _, hosts := range t.projects {
		sort.Strings(hosts)
	}
	sort.Slice(problems, func(i, j int) bool {
		if problems[i].Subject != problems[j].Subject {
			return problems[i].Subject < problems[j].Subject
		}
		if problems[i].Host != problems[j].Host {
			return problems[i].Host < problems[j].Host
		}
		return problems[i].Reason < problems[j].Reason
	})
	return t, problems
}

// firstClaimant picks the claim that keeps a host: the earliest claim by
// containers, else (no container claims it) the only state claim. It
// returns nil and every claim when the earliest is not unique.
func firstClaimant(byProject map[string]*claim) (*claim, []*claim) {
	all := make([]*claim, 0, len(byProject))
	for _, cl := range byProject {
		all = append(all, cl)
	}
	if len(all) == 1 {
		return all[0], nil
	}
	sort.Slice(all, func(i, j int) bool {
		if c := compareSince(all[i].since, all[j].since); c != 0 {
			return c < 0
		}
		return all[i].project < all[j].project // only to order the problems
	})
	if compareSince(all[0].since, all[1].since) == 0 {
		return nil, all
	}
	return all[0], all[1:]
}

// compareSince orders claim times, the zero time (no container) last.
func compareSince(a, b time.Time) int {
	switch {
	case a.Equal(b):
		return 0
	case a.IsZero():
		return 1
	case b.IsZero():
		return -1
	}
	return a.Compare(b)
}

// refusal says why cl does not get the host.
func refusal(cl, winner *claim, byProject map[string]*claim) string {
	if winner != nil {
		since := "by its controller state"
		if !winner.since.IsZero() {
			since = "since " + winner.since.UTC().Format(time.RFC3339Nano)
		}
		return fmt.Sprintf("host already claimed by project %s (%s); %s is refused", winner.project, since, cl.project)
	}
	var others []string
	for p := range byProject {
		if p != cl.project {
			others = append(others, p)
		}
	}
	sort.Strings(others)
	return fmt.Sprintf("host claimed at the same time by project %s; neither is served", strings.Join(others, ", "))
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
			problems = append(problems, Problem{"project " + cl.project, cl.project, host,
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
