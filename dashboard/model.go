package dashboard

import (
	"cmp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/lifetime"
)

// PhaseDegraded is the phase the dashboard shows for an environment the
// controller considers ready (or does not know) while the engine shows a
// container exited or unhealthy. It is not a store phase.
const PhaseDegraded = "degraded"

// PhaseQueued is shown for an environment the engine has but the
// controller has recorded no phase of yet.
const PhaseQueued = "queued"

// Engine states of Environment.State: those of stack.Environment.Phase,
// and StateAbsent when nothing of the environment is on the engine.
const (
	StateRunning  = "running"
	StateStarting = "starting"
	StateDegraded = "degraded"
	StateStopped  = "stopped"
	StateAbsent   = "absent"
)

// Phases lists the phases the dashboard filters on, in display order: the
// store's phases, after PhaseQueued, with PhaseDegraded after ready.
func Phases() []string {
	out := []string{PhaseQueued} // shown before the controller recorded any phase
	for _, p := range contract.Phases() {
		out = append(out, string(p))
		if p == contract.PhaseReady {
			out = append(out, PhaseDegraded)
		}
	}
	return out
}

// Environment is one preview environment as the dashboard shows it: what the
// controller's history says (PR, phase, last error), what runs on the engine
// (SHA, services, routes), when the proxy last served it, and what it uses.
type Environment struct {
	// Project is the compose project name, <owner>-<repo>-pr-<N>.
	Project string `json:"project"`
	// Repo (owner/name) and PR number it previews.
	Repo string `json:"repo,omitempty"`
	PR   int    `json:"pr,omitempty"`
	// Title and Author of the pull request, when the controller read them.
	Title  string `json:"title,omitempty"`
	Author string `json:"author,omitempty"`
	// HeadRepo is the fork the PR comes from, when it differs from Repo.
	HeadRepo string `json:"head_repo,omitempty"`
	// SHA is the commit running on the engine, else the latest one the
	// controller recorded.
	SHA string `json:"sha,omitempty"`
	// Phase is the controller's phase (queued, waiting, building, deploying,
	// ready, failed, sleeping, removing, removed), corrected by what the
	// engine shows for the steady ones: a "ready" environment whose
	// containers are stopped is sleeping, one with an exited or unhealthy
	// container is degraded. Environments the controller does not know
	// (made by `slipway up`) get a phase derived from State.
	Phase string `json:"phase"`
	// Detail is the controller's note on the phase ("waiting for approval").
	Detail string `json:"detail,omitempty"`
	// Retry marks a failure the controller retries (the host's fault);
	// Held a removal that stands until the next push or a redeploy.
	Retry bool `json:"retry,omitempty"`
	Held  bool `json:"held,omitempty"`
	// PhaseAt is when the controller recorded the phase.
	PhaseAt time.Time `json:"phase_at,omitzero"`
	// State is what the engine shows: running, starting, degraded, stopped,
	// or absent.
	State string `json:"state"`
	// LastError is the latest failure, kept until the environment is ready again.
	LastError *store.Failure `json:"last_error,omitempty"`
	// URL is the primary route's URL.
	URL string `json:"url,omitempty"`
	// Routes are every exposed service's host, the primary first.
	Routes []Route `json:"routes,omitempty"`
	// RouteProblems are the proxy's reasons for not serving routes of the
	// environment: a host Slipway did not declare for this PR (a label an
	// image brought along), a host another environment claimed first.
	RouteProblems []string `json:"route_problems,omitempty"`
	// Services and their containers, sorted by name.
	Services []Service `json:"services,omitempty"`
	// Created is when the environment first appeared (store or engine).
	Created time.Time `json:"created,omitzero"`
	// Updated is the latest time the controller recorded anything.
	Updated time.Time `json:"updated,omitzero"`
	// LastPush is when the PR's head last moved; the TTL counts from it.
	LastPush time.Time `json:"last_push,omitzero"`
	// LastRequest is when the proxy last served the environment.
	LastRequest time.Time `json:"last_request,omitzero"`
	// Removed is when the environment was removed (zero while it exists).
	Removed time.Time `json:"removed,omitzero"`
	// Keep is the TTL override (`/slipway keep`).
	Keep store.Keep `json:"keep,omitzero"`
	// Expires is when the TTL will remove the environment, as the
	// controller reckons it (lifetime.Expiry); zero when it never will, or
	// when the controller does not track the environment.
	Expires time.Time `json:"expires,omitzero"`
	// Usage is the latest CPU and memory sample summed over the running
	// containers; nil before the first sample.
	Usage *Usage `json:"usage,omitempty"`
	// Tracked reports whether the controller's history knows the
	// environment (false for environments made by `slipway up`).
	Tracked bool `json:"tracked"`
}

// Route is one exposed service.
type Route struct {
	Service string `json:"service"`
	Host    string `json:"host"`
	URL     string `json:"url"`
	Primary bool   `json:"primary,omitempty"`
}

// Service is one compose service and its containers.
type Service struct {
	Name       string      `json:"name"`
	Containers []Container `json:"containers"`
}

// Container is one container of a service.
type Container struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Health   string `json:"health,omitempty"`
	ExitCode int    `json:"exit_code,omitempty"`
	Image    string `json:"image,omitempty"`
	SHA      string `json:"sha,omitempty"`
	// Usage is the container's latest sample; nil before the first one or
	// when it is not running.
	Usage *Usage `json:"usage,omitempty"`
}

// Usage is a resource sample.
type Usage struct {
	// CPUPercent is CPU time used between the last two samples, in percent
	// of one core (200 = two cores busy); nil until two samples exist.
	CPUPercent *float64 `json:"cpu_percent,omitempty"`
	// MemoryBytes is memory in use, page cache excluded (as `docker stats`).
	MemoryBytes uint64 `json:"memory_bytes"`
	// MemoryLimitBytes is the memory limit (the host's memory without one).
	MemoryLimitBytes uint64 `json:"memory_limit_bytes,omitempty"`
	// SampledAt is when the sample was taken (the oldest, for a sum).
	SampledAt time.Time `json:"sampled_at"`
}

// EnvironmentDetail is one environment with its history.
type EnvironmentDetail struct {
	Environment
	// Timeline is every phase recorded, oldest first.
	Timeline []store.PhaseEntry `json:"timeline"`
	// BuildLogs lists the kept build logs, most recent first, without data.
	BuildLogs []store.BuildLog `json:"build_logs"`
	// Warnings name the sources that could not be read.
	Warnings []string `json:"warnings,omitempty"`
}

// EnvironmentList is the answer of GET /api/v1/environments.
type EnvironmentList struct {
	Environments []Environment `json:"environments"`
	// Warnings name the sources that could not be read (the engine, the
	// history): the list holds what the others said.
	Warnings []string `json:"warnings,omitempty"`
}

// ActionResult is the answer of an accepted action.
type ActionResult struct {
	Project string `json:"project"`
	Action  string `json:"action"`
	// Status is "queued" (answered with 202 Accepted: the controller
	// carries the action out at its next reconcile; the environment's
	// phase shows how it goes) or "done" (200 OK: carried out already).
	Status Outcome `json:"status"`
}

// mergeInput is everything one listing is computed from.
type mergeInput struct {
	now       time.Time
	history   []store.Environment
	live      []stack.Environment
	requests  map[string]time.Time
	problems  map[string][]string // the proxy's route problems, by project
	usage     map[string]Usage    // by container ID
	url       func(host string) string
	repoTTL   func(repo string) *config.Duration // slipway.yaml's repos[].ttl; nil func or result: none
	liveKnown bool                               // false when the engine could not be read: no "absent" verdicts
}

// merge joins the store's history with what runs on the engine into the
// dashboard's environments, most recently active first. Pure.
func merge(in mergeInput) []Environment {
	byProject := make(map[string]*Environment, len(in.history)+len(in.live))
	order := make([]*Environment, 0, len(in.history)+len(in.live))
	get := func(project string) *Environment {
		if e := byProject[project]; e != nil {
			return e
		}
		e := &Environment{Project: project}
		byProject[project] = e
		order = append(order, e)
		return e
	}
	storePhase := map[string]string{}
	for _, h := range in.history {
		e := get(h.Project)
		e.Tracked = true
		e.Repo, e.PR = h.Repo, h.PR
		e.Title, e.Author = h.Title, h.Author
		if h.HeadRepo != h.Repo {
			e.HeadRepo = h.HeadRepo
		}
		e.SHA = h.SHA
		storePhase[h.Project] = string(h.Phase)
		e.Detail, e.PhaseAt = h.Detail, h.PhaseAt
		e.Retry, e.Held = h.Retry, h.Held
		e.LastError = h.LastError
		e.Created, e.Updated, e.LastPush, e.Removed = h.Created, h.Updated, h.LastPush, h.Removed
		e.Keep = h.Keep
		if h.Removed.IsZero() {
			e.Expires = expiry(h, in.repoTTL)
		}
	}
	running := map[string]bool{}
	for i := range in.live {
		l := &in.live[i]
		e := get(l.Project)
		running[l.Project] = true
		if e.Repo == "" {
			e.Repo, e.PR = l.Repo, l.PR
		}
		if l.SHA != "" {
			e.SHA = l.SHA
		}
		e.State = l.Phase()
		if e.Created.IsZero() || (!l.Created.IsZero() && l.Created.Before(e.Created)) {
			e.Created = l.Created
		}
		for _, r := range l.Routes { // the engine sorts the primary first
			e.Routes = append(e.Routes, Route{Service: r.Service, Host: r.Host, URL: in.url(r.Host), Primary: r.Primary})
		}
		if len(e.Routes) > 0 {
			e.URL = e.Routes[0].URL
		}
		e.Services, e.Usage = services(l.Services, in.usage)
	}
	for _, e := range order {
		if !running[e.Project] {
			if in.liveKnown {
				e.State = StateAbsent
			} else {
				e.State = ""
			}
		}
		e.Phase = displayPhase(storePhase[e.Project], e.Tracked, e.State)
		if t, ok := in.requests[e.Project]; ok {
			e.LastRequest = t
		}
		e.RouteProblems = in.problems[e.Project]
	}
	out := make([]Environment, len(order))
	for i, e := range order {
		out[i] = *e
	}
	slices.SortStableFunc(out, func(a, b Environment) int {
		if c := activity(b).Compare(activity(a)); c != 0 {
			return c
		}
		return cmp.Compare(a.Project, b.Project)
	})
	return out
}

// services converts the engine's services and sums the usage of their
// running containers.
func services(in []stack.ServiceState, usage map[string]Usage) ([]Service, *Usage) {
	var sum *Usage
	out := make([]Service, 0, len(in))
	for _, s := range in {
		svc := Service{Name: s.Service, Containers: make([]Container, 0, len(s.Containers))}
		for _, c := range s.Containers {
			ct := Container{Name: c.Name, State: c.State, Health: c.Health, ExitCode: c.ExitCode, Image: c.Image, SHA: c.SHA}
			if u, ok := usage[c.ID]; ok && c.State == StateRunning {
				ct.Usage = &u
				sum = addUsage(sum, u)
			}
			svc.Containers = append(svc.Containers, ct)
		}
		out = append(out, svc)
	}
	return out, sum
}

func addUsage(sum *Usage, u Usage) *Usage {
	if sum == nil {
		c := u
		if u.CPUPercent != nil {
			v := *u.CPUPercent
			c.CPUPercent = &v
		}
		return &c
	}
	sum.MemoryBytes += u.MemoryBytes
	if u.MemoryLimitBytes > sum.MemoryLimitBytes {
		// Containers of one environment share the host; the largest limit
		// is the most meaningful bound for the sum.
		sum.MemoryLimitBytes = u.MemoryLimitBytes
	}
	switch {
	case sum.CPUPercent != nil && u.CPUPercent != nil:
		*sum.CPUPercent += *u.CPUPercent
	case u.CPUPercent != nil:
		v := *u.CPUPercent
		sum.CPUPercent = &v
	}
	if u.SampledAt.Before(sum.SampledAt) {
		sum.SampledAt = u.SampledAt
	}
	return sum
}

// displayPhase combines the controller's phase with the engine's state.
// The engine is the truth for what runs, so the steady phases follow it;
// phases of work in progress (building, deploying, ...) and failures are
// the controller's to tell.
func displayPhase(phase string, tracked bool, state string) string {
	if !tracked || phase == "" {
		switch state {
		case StateRunning:
			return string(contract.PhaseReady)
		case StateStarting:
			return string(contract.PhaseDeploying)
		case StateDegraded:
			return PhaseDegraded
		case StateStopped:
			return string(contract.PhaseSleeping)
		}
		if phase == "" {
			return PhaseQueued
		}
		return phase
	}
	switch store.Phase(phase) {
	case contract.PhaseReady, contract.PhaseSleeping:
		switch state {
		case StateRunning:
			return string(contract.PhaseReady)
		case StateDegraded:
			return PhaseDegraded
		case StateStopped:
			return string(contract.PhaseSleeping)
		}
	}
	return phase
}

// expiry is when the controller's TTL removes the environment h, or zero
// when it never will: the TTL the controller applies (slipway.yaml's
// repos[].ttl, else the .slipway.yml ttl of the last deploy, else the
// default), from the store's times and keep, exactly as the controller
// reckons it.
func expiry(h store.Environment, repoTTL func(repo string) *config.Duration) time.Time {
	var operator *config.Duration
	if repoTTL != nil {
		operator = repoTTL(h.Repo)
	}
	ttl := config.RepoPolicy{TTL: operator}.TTLFor(&config.Repo{TTL: h.FileTTL})
	at, _ := lifetime.Expiry(ttl, h.LastPush, h.Created, lifetime.Keep{Forever: h.Keep.Forever, Until: h.Keep.Until})
	return at
}

// activity is the time listings sort on: the latest of what the controller
// recorded and when the environment appeared.
func activity(e Environment) time.Time {
	t := e.Updated
	if e.Created.After(t) {
		t = e.Created
	}
	return t
}

// Filter selects environments in listings. The zero Filter selects every
// environment that was not removed.
type Filter struct {
	// Repo is an exact owner/name.
	Repo string
	// Phase is one of Phases; "removed" is the only way to list removed
	// environments.
	Phase string
	// Query matches the project, title, author, a PR number ("12" or
	// "#12") or a SHA prefix, case-insensitively.
	Query string
}

// FilterFromQuery reads a Filter from the query parameters repo, phase and q.
func FilterFromQuery(q map[string][]string) Filter {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return strings.TrimSpace(v[0])
		}
		return ""
	}
	return Filter{Repo: get("repo"), Phase: get("phase"), Query: get("q")}
}

// Match reports whether f selects e.
func (f Filter) Match(e *Environment) bool {
	if f.Repo != "" && !strings.EqualFold(e.Repo, f.Repo) {
		return false
	}
	if !f.matchPhase(e) {
		return false
	}
	return f.matchQuery(e)
}

func (f Filter) matchPhase(e *Environment) bool {
	if f.Phase == "" {
		return e.Phase != string(contract.PhaseRemoved)
	}
	return e.Phase == f.Phase
}

func (f Filter) matchQuery(e *Environment) bool {
	q := strings.ToLower(f.Query)
	if q == "" {
		return true
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(q, "#")); err == nil && n == e.PR {
		return true
	}
	if len(q) >= 4 && strings.HasPrefix(strings.ToLower(e.SHA), q) {
		return true
	}
	for _, s := range []string{e.Project, e.Title, e.Author, e.Repo} {
		if strings.Contains(strings.ToLower(s), q) {
			return true
		}
	}
	return false
}

// Summary counts environments for the filter bar.
type Summary struct {
	// Total matches the repo and query filters, removed ones excluded.
	Total int
	// ByPhase counts per phase under the repo and query filters.
	ByPhase map[string]int
	// Repos are every repository seen, sorted.
	Repos []string
}

// summarize counts envs for the filter bar: phases under f's repo and query
// (not its phase, so each chip shows what clicking it would list). Pure.
func summarize(envs []Environment, f Filter) Summary {
	s := Summary{ByPhase: map[string]int{}}
	repos := map[string]bool{}
	for i := range envs {
		e := &envs[i]
		if e.Repo != "" {
			repos[e.Repo] = true
		}
		nf := f
		nf.Phase = e.Phase
		if !nf.Match(e) {
			continue
		}
		s.ByPhase[e.Phase]++
		if e.Phase != string(contract.PhaseRemoved) {
			s.Total++
		}
	}
	for r := range repos {
		s.Repos = append(s.Repos, r)
	}
	slices.Sort(s.Repos)
	return s
}

// apply returns the environments f selects.
func apply(envs []Environment, f Filter) []Environment {
	out := make([]Environment, 0, len(envs))
	for i := range envs {
		if f.Match(&envs[i]) {
			out = append(out, envs[i])
		}
	}
	return out
}
