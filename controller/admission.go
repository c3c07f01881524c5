package controller

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

// admission holds the slots of limits.environments and limits.builds.
type admission struct {
	mu       sync.Mutex
	waitlist []Key           // PRs waiting for an environment slot, in arrival order
	reserved map[string]bool // projects granted a slot, deploying, not on the engine yet
	builds   chan struct{}   // build slots
}

func newAdmission(l config.Limits) admission {
	return admission{reserved: map[string]bool{}, builds: make(chan struct{}, max(1, l.Builds))}
}

// slotQuestion is what the decision on an environment slot rests on.
type slotQuestion struct {
	Key     Key
	Project string
	Limit   int
	// Running counts the other environments of configured repositories on
	// the engine, plus those granted a slot that are not on it yet.
	Running  int
	Waitlist []Key
}

// slotAnswer is the decision: granted, or the place in line.
type slotAnswer struct {
	Granted  bool
	Waitlist []Key // the waitlist after the decision
	Ahead    int   // when not granted: how many wait before the key
}

// decideSlot is the pure rule of limits.environments: a PR gets a slot
// when one is free and nobody waits before it; others wait in arrival
// order, and as slots free up the first in line go first.
func decideSlot(q slotQuestion) slotAnswer {
	free := q.Limit - q.Running
	wl := slices.Clone(q.Waitlist)
	pos := slices.Index(wl, q.Key)
	if pos < 0 {
		if free > 0 && len(wl) == 0 {
			return slotAnswer{Granted: true, Waitlist: wl}
		}
		pos = len(wl)
		wl = append(wl, q.Key)
	}
	if pos < free {
		return slotAnswer{Granted: true, Waitlist: slices.Delete(wl, pos, pos+1)}
	}
	return slotAnswer{Waitlist: wl, Ahead: pos}
}

// countRunning counts the environments that hold a slot other than
// project: those of configured repositories on the engine, and those
// granted one that are not on it yet.
func countRunning(onEngine map[string]stack.ProjectRef, configured func(repo string) bool, reserved map[string]bool, project string) int {
	n := 0
	for p, ref := range onEngine {
		if p != project && configured(ref.Repo) {
			n++
		}
	}
	for p := range reserved {
		if _, on := onEngine[p]; !on && p != project {
			n++
		}
	}
	return n
}

// admit asks for an environment slot for a new environment. Over the
// limit, the PR is recorded waiting (once) with the queued page on its
// host, and comes back later.
func (c *Controller) admit(ctx context.Context, r *request, st store.Environment) (Result, bool, error) {
	projects, err := c.engine.Projects(ctx)
	if err != nil {
		return Result{}, false, fmt.Errorf("count environments: %w", err)
	}
	configured := func(repo string) bool { _, ok := c.cfg.Repo(repo); return ok }
	a := &c.slots
	a.mu.Lock()
	q := slotQuestion{Key: r.key, Project: r.project, Limit: c.cfg.Limits.Environments, Waitlist: a.waitlist,
		Running: countRunning(projects, configured, a.reserved, r.project)}
	ans := decideSlot(q)
	a.waitlist = ans.Waitlist
	if ans.Granted {
		a.reserved[r.project] = true
	}
	a.mu.Unlock()
	if ans.Granted {
		return Result{}, true, nil
	}
	c.upsert(ctx, r, st)
	c.transition(ctx, r, transition{Phase: contract.PhaseWaiting, Wait: contract.WaitEnvironmentSlot, SHA: r.sha(),
		Detail: fmt.Sprintf("waiting: %d environments are running (limit %d); %d ahead in line", q.Running, q.Limit, ans.Ahead)})
	return Result{RequeueAfter: 10 * time.Second}, false, nil
}

// release ends project's reservation of an environment slot: once its
// deploy is over it is either on the engine or gone.
func (a *admission) release(project string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.reserved, project)
}

// leave takes key off the waitlist.
func (a *admission) leave(key Key) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if i := slices.Index(a.waitlist, key); i >= 0 {
		a.waitlist = slices.Delete(a.waitlist, i, i+1)
	}
}

// tryBuild takes a build slot if one is free; release gives it back.
func (a *admission) tryBuild() (release func(), ok bool) {
	select {
	case a.builds <- struct{}{}:
		return func() { <-a.builds }, true
	default:
		return nil, false
	}
}

// buildLimit is limits.builds.
func (a *admission) buildLimit() int { return cap(a.builds) }
