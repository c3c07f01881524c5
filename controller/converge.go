package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

// convergeFacts is what the choice of what to do for a PR that should
// have an environment rests on.
type convergeFacts struct {
	SHA    string
	Forced bool
	// History is the store's record (the zero value when there is none).
	History store.Environment
	// Observed says whether the engine has been asked yet; OnEngine and
	// EngineSHA are what it said.
	Observed  bool
	OnEngine  bool
	EngineSHA string
	// UpToDate: this process deployed SHA and every container it left
	// runs (or completed).
	UpToDate bool
	// DebounceLeft is how long the key's burst of events has to quiet down.
	DebounceLeft time.Duration
}

// convergeStep is what converge does.
type convergeStep int

const (
	// stepHold: nothing, until a push or a redeploy (destroyed or
	// expired at this SHA, or the PR's own failure at this SHA).
	stepHold convergeStep = iota
	// stepObserve: ask the engine, then choose again.
	stepObserve
	// stepSleeping: the environment sleeps at this SHA: wake it on a
	// request, or let its TTL remove it.
	stepSleeping
	// stepLifetimes: up to date: apply the TTL and sleep_after.
	stepLifetimes
	// stepDebounce: wait for the burst of events to end.
	stepDebounce
	// stepAdmit: a new environment: it needs an environment slot first.
	stepAdmit
	// stepDeploy: fetch, build and up (quietly when the history already
	// shows it ready at this SHA: a restart, or a container removed by hand).
	stepDeploy
)

// convergence is the choice: a step and its parameters.
type convergence struct {
	step  convergeStep
	quiet bool
	wait  time.Duration
}

// chooseConvergence is the pure decision of what converge does.
func chooseConvergence(f convergeFacts) convergence {
	st := f.History
	if !f.Forced && st.SHA == f.SHA {
		if !st.Removed.IsZero() && st.Held {
			return convergence{step: stepHold} // destroyed or expired at this SHA
		}
		if st.Phase == contract.PhaseFailed && !st.Retry {
			return convergence{step: stepHold} // the PR's own failure: not retried until the SHA changes
		}
	}
	if !f.Observed {
		return convergence{step: stepObserve}
	}
	current := f.OnEngine && f.EngineSHA == f.SHA && !f.Forced
	if current && st.Phase == contract.PhaseSleeping {
		return convergence{step: stepSleeping}
	}
	if current && f.UpToDate {
		return convergence{step: stepLifetimes}
	}
	if current && st.Phase == contract.PhaseReady && st.SHA == f.SHA {
		return convergence{step: stepDeploy, quiet: true}
	}
	if f.DebounceLeft > 0 {
		return convergence{step: stepDebounce, wait: f.DebounceLeft}
	}
	if !f.OnEngine {
		return convergence{step: stepAdmit}
	}
	return convergence{step: stepDeploy}
}

// converge deploys the head SHA unless the environment already runs it.
func (c *Controller) converge(ctx context.Context, r *request) (Result, error) {
	st, err := c.store.Environment(ctx, r.project)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Result{}, fmt.Errorf("read history of %s: %w", r.project, err)
	}
	f := convergeFacts{SHA: r.sha(), Forced: r.forced, History: st}
	ch := chooseConvergence(f)
	if ch.step == stepObserve {
		env, err := c.engine.Inspect(ctx, r.project)
		if err != nil {
			return Result{}, fmt.Errorf("inspect %s: %w", r.project, err)
		}
		f.Observed = true
		if env != nil {
			f.OnEngine, f.EngineSHA = true, env.SHA
			f.UpToDate = c.upToDate(r.project, r.sha(), env)
		}
		f.DebounceLeft = c.intake.debounceLeft(r.key, c.debounce, c.now())
		ch = chooseConvergence(f)
	}
	switch ch.step {
	case stepHold:
		return Result{}, nil
	case stepSleeping:
		return c.sleeping(ctx, r, st)
	case stepLifetimes:
		return c.lifetimes(ctx, r, st)
	case stepDebounce:
		return Result{RequeueAfter: ch.wait}, nil
	case stepAdmit:
		if res, admitted, err := c.admit(ctx, r, st); !admitted || err != nil {
			return res, err
		}
	}
	return c.deploy(ctx, r, st, ch.quiet)
}

// upToDate reports whether this controller deployed sha to project and
// every container it left is still running (or completed).
func (c *Controller) upToDate(project, sha string, env *stack.Environment) bool {
	cs, ok := c.memory.convergedOf(project)
	if !ok || cs.sha != sha || env.Phase() != "running" {
		return false
	}
	have := map[string]bool{}
	for _, s := range env.Services {
		for _, ct := range s.Containers {
			have[ct.Name] = true
		}
	}
	for _, name := range cs.containers {
		if !have[name] {
			return false
		}
	}
	return true
}
