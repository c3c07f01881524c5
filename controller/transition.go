package controller

import (
	"context"
	"errors"

	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

// transition is one phase change of an environment. The controller makes
// every phase change through Controller.transition, which records it in
// the history, sets the state the proxy shows on the preview's hosts and
// queues the report to GitHub, each from one table.
type transition struct {
	Phase contract.Phase
	SHA   string
	// Detail is a one-line note for the history and GitHub ("waiting: 3
	// environments are running (limit 3)", "idle for 30m").
	Detail string
	// Wait says what PhaseWaiting waits for.
	Wait contract.Wait
	// Held makes PhaseRemoved stick until the next push or redeploy.
	Held bool
	// Failure says where PhaseFailed failed.
	Failure *failure
	// Hosts are the hosts the route state applies to; nil: the PR's
	// default host.
	Hosts []string
	// Status carries what the GitHub report adds (services, log URL,
	// build duration); Repo, PR, SHA, Phase and Reason are filled in.
	Status gh.Status
}

// failure is where a deploy failed, and whether retrying can help.
type failure struct {
	Step, Service string
	// Message is the error, masked, possibly with the output's last lines.
	Message string
	// Terminal: the pull request's own failure, held until the next push.
	Terminal bool
}

// transition makes one phase change (see the type). A change that repeats
// the latest recorded one (same phase, SHA and wait; the same detail for a
// failure) is not recorded or reported again: an environment that waits for
// a slot is recorded waiting once, not at every look.
func (c *Controller) transition(ctx context.Context, r *request, t transition) {
	t.Detail = c.mask.String(t.Detail)
	prev, err := c.store.Environment(ctx, r.project)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		c.log.Warn("read history", "project", r.project, "err", err)
	}
	c.showRoute(r, t)
	if repeats(prev, t) {
		return
	}
	if errors.Is(err, store.ErrNotFound) {
		if err := c.store.UpsertEnvironment(ctx, store.EnvironmentInfo{Project: r.project, Repo: r.key.Repo, PR: r.key.PR}); err != nil {
			c.log.Warn("record environment", "project", r.project, "err", err)
		}
	}
	c.record(ctx, r.project, historyEntry(t))
	if phase, ok := reportPhase(prev.Phase, t); ok {
		s := t.Status
		s.Repo, s.PR, s.SHA, s.Phase, s.Reason = r.repo, r.key.PR, t.SHA, phase, t.Detail
		if f := t.Failure; f != nil {
			s.Failure = &gh.Failure{Step: f.Step, Service: f.Service, Log: f.Message, Internal: !f.Terminal}
		}
		c.reports.send(s)
	}
}

// record writes one history entry and moves the phase gauge.
func (c *Controller) record(ctx context.Context, project string, e store.PhaseEntry) {
	if err := c.store.RecordPhase(ctx, project, e); err != nil {
		c.log.Warn("record phase", "project", project, "sha", e.SHA, "phase", e.Phase, "err", err)
		return
	}
	c.metrics.setPhase(project, string(e.Phase))
}

// showRoute sets or clears the state the proxy shows on the hosts.
func (c *Controller) showRoute(r *request, t transition) {
	if c.routes == nil {
		return
	}
	st, show, clear := routeState(t)
	switch {
	case clear:
		c.routes.ClearState(r.project)
	case show:
		hosts := t.Hosts
		if hosts == nil {
			hosts = c.defaultHosts(r.repo, r.key.PR)
		}
		if len(hosts) == 0 {
			return
		}
		if err := c.routes.SetState(r.project, hosts, st); err != nil {
			c.log.Warn("publish route state", "project", r.project, "err", err)
		}
	}
}

// repeats reports whether t only repeats the latest recorded phase.
func repeats(prev store.Environment, t transition) bool {
	if prev.Phase != t.Phase || prev.SHA != t.SHA || prev.Wait != t.Wait {
		return false
	}
	switch t.Phase {
	case contract.PhaseWaiting:
		return true // how many are ahead changes; that it waits does not
	case contract.PhaseFailed:
		return t.Failure != nil && prev.Detail == t.Detail && prev.Retry == !t.Failure.Terminal
	}
	return false
}

// historyEntry is the store's record of t.
func historyEntry(t transition) store.PhaseEntry {
	e := store.PhaseEntry{Phase: t.Phase, SHA: t.SHA, Detail: t.Detail, Wait: t.Wait, Held: t.Held}
	if f := t.Failure; f != nil {
		e.Failure = &store.Failure{Step: f.Step, Service: f.Service, Message: f.Message}
		e.Retry = !f.Terminal
	}
	return e
}

// reportPhase is what GitHub is told of t, after prev: the one table from
// the phase model to GitHub's. GitHub hears nothing of sleeping or of a
// removal in progress, and a wake is no news to it.
func reportPhase(prev contract.Phase, t transition) (gh.Phase, bool) {
	switch t.Phase {
	case contract.PhaseWaiting:
		if t.Wait == contract.WaitApproval {
			return gh.PhaseAwaitingApproval, true
		}
		return gh.PhaseQueued, true
	case contract.PhaseBuilding:
		return gh.PhaseBuilding, true
	case contract.PhaseDeploying:
		return gh.PhaseDeploying, true
	case contract.PhaseReady:
		if prev == contract.PhaseSleeping {
			return "", false
		}
		return gh.PhaseReady, true
	case contract.PhaseFailed:
		return gh.PhaseFailed, true
	case contract.PhaseRemoved:
		return gh.PhaseRemoved, true
	}
	return "", false
}

// routeState is what the proxy shows for t: the one table from the phase
// model to the proxy's. show sets st on the hosts; clear removes the
// controller's state (running containers, or nothing, then speak for
// themselves); neither leaves it as it is.
func routeState(t transition) (st contract.RouteState, show, clear bool) {
	switch t.Phase {
	case contract.PhaseWaiting:
		if t.Wait == contract.WaitApproval {
			return st, false, false
		}
		return contract.RouteState{Phase: contract.RouteQueued, Step: string(t.Phase)}, true, false
	case contract.PhaseBuilding:
		return contract.RouteState{Phase: contract.RouteBuilding, Step: string(t.Phase)}, true, false
	case contract.PhaseDeploying:
		return contract.RouteState{Phase: contract.RouteStarting, Step: string(t.Phase)}, true, false
	case contract.PhaseFailed:
		st = contract.RouteState{Phase: contract.RouteFailed, Reason: t.Detail}
		if t.Failure != nil {
			st.Step, st.Service = t.Failure.Step, t.Failure.Service
		}
		return st, true, false
	case contract.PhaseRemoving:
		return contract.RouteState{Phase: contract.RouteRemoving, Reason: t.Detail}, true, false
	case contract.PhaseReady, contract.PhaseRemoved:
		return st, false, true
	}
	return st, false, false
}
