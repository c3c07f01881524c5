package controller

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipwayhq/slipway/internal/contract"
)

// removal says why an environment goes, and whether it stays gone.
type removal struct {
	sha    string
	reason string
	// held makes the removal stick until the next push or redeploy
	// (/slipway destroy, TTL expiry).
	held bool
}

// teardown removes the environment, if there is one or the history says
// there was, and reports it removed.
func (c *Controller) teardown(ctx context.Context, r *request, rm removal) (Result, error) {
	c.slots.leave(r.key)
	st, err := c.store.Environment(ctx, r.project)
	known := err == nil && (st.Removed.IsZero() || rm.held)
	projects, err := c.engine.Projects(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("list projects: %w", err)
	}
	_, exists := projects[r.project]
	if !exists && !known {
		if c.routes != nil {
			c.routes.ClearState(r.project)
		}
		return Result{}, nil // nothing was ever deployed or reported: stay silent
	}
	c.slots.release(r.project)
	// Down is idempotent: run it whenever the history says the environment
	// is not removed yet, since a half-done teardown may have left volumes
	// or images that Projects does not see.
	c.transition(ctx, r, transition{Phase: contract.PhaseRemoving, SHA: rm.sha, Detail: rm.reason})
	start := c.now()
	if err := c.engine.Down(ctx, r.project); err != nil {
		return Result{}, fmt.Errorf("remove %s: %w", r.project, err)
	}
	c.metrics.downSeconds.Observe(c.now().Sub(start).Seconds())
	if err := os.RemoveAll(filepath.Join(c.srcDir, r.project)); err != nil {
		c.log.Warn("remove sources", "project", r.project, "err", err)
	}
	c.memory.forget(r.project)
	c.transition(ctx, r, transition{Phase: contract.PhaseRemoved, SHA: rm.sha, Detail: rm.reason, Held: rm.held})
	c.log.Info("environment removed", "project", r.project, "sha", rm.sha, "why", rm.reason)
	return Result{}, nil
}

// awaitApproval reports, once per SHA, that a fork PR waits for approval,
// and removes an environment of an earlier approved SHA: a push needs a new
// approval.
func (c *Controller) awaitApproval(ctx context.Context, r *request) (Result, error) {
	env, err := c.engine.Inspect(ctx, r.project)
	if err != nil {
		return Result{}, fmt.Errorf("inspect %s: %w", r.project, err)
	}
	if env != nil {
		if _, err := c.teardown(ctx, r, removal{sha: env.SHA, reason: "a new push needs a new approval"}); err != nil {
			return Result{}, err
		}
	}
	st, _ := c.store.Environment(ctx, r.project)
	c.upsert(ctx, r, st)
	c.transition(ctx, r, transition{Phase: contract.PhaseWaiting, Wait: contract.WaitApproval, SHA: r.sha(), Detail: r.want.reason})
	return Result{}, nil
}
