package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/lifetime"
)

// lifeFacts is what the TTL and sleep_after decisions rest on.
type lifeFacts struct {
	Now time.Time
	// Operator is repos[].ttl (slipway.yaml), File the .slipway.yml ttl
	// of the last deploy; nil when unset.
	Operator, File *config.Duration
	History        store.Environment
	// SleepAfter is .slipway.yml's sleep_after (0: never).
	SleepAfter time.Duration
	// Ready is when the environment last became ready (or woke);
	// LastRequest when it last served a request, if known.
	Ready       time.Time
	LastRequest time.Time
}

// lifeVerdict is what to do with an up-to-date environment.
type lifeVerdict struct {
	Expire bool
	Reason string // why it expires
	Sleep  bool
	Idle   time.Duration // how long it has been idle, when it sleeps
}

// judgeLifetime is the pure decision of the TTL and sleep_after: an
// environment past its TTL without a push is removed; one idle longer
// than sleep_after sleeps.
func judgeLifetime(f lifeFacts) lifeVerdict {
	ttl := config.RepoPolicy{TTL: f.Operator}.TTLFor(&config.Repo{TTL: f.File})
	keep := lifetime.Keep{Forever: f.History.Keep.Forever, Until: f.History.Keep.Until}
	if lifetime.Expired(ttl, f.History.LastPush, f.History.Created, keep, f.Now) {
		return lifeVerdict{Expire: true, Reason: fmt.Sprintf("removed after %s without a push; push again or comment /slipway redeploy to bring it back", humanDuration(ttl))}
	}
	if f.SleepAfter <= 0 {
		return lifeVerdict{}
	}
	last := f.LastRequest
	if last.Before(f.Ready) {
		last = f.Ready
	}
	if idle := f.Now.Sub(last); idle > f.SleepAfter {
		return lifeVerdict{Sleep: true, Idle: idle}
	}
	return lifeVerdict{}
}

// lifeFactsOf gathers the facts of r's environment.
func (c *Controller) lifeFactsOf(r *request, st store.Environment) lifeFacts {
	cs, _ := c.memory.convergedOf(r.project)
	f := lifeFacts{Now: c.now(), Operator: r.policy.TTL, File: st.FileTTL, History: st, SleepAfter: cs.repo.SleepAfter.D(), Ready: cs.ready}
	if c.lastReq == nil {
		f.SleepAfter = 0 // nobody tells requests: never idle
	} else if last, ok := c.lastReq(r.project); ok {
		f.LastRequest = last
	}
	return f
}

// lifetimes applies the TTL and sleep_after to an environment that is up
// to date.
func (c *Controller) lifetimes(ctx context.Context, r *request, st store.Environment) (Result, error) {
	c.intake.takeWake(r.key) // awake already
	v := judgeLifetime(c.lifeFactsOf(r, st))
	switch {
	case v.Expire:
		return c.teardown(ctx, r, removal{sha: st.SHA, reason: v.Reason, held: true})
	case v.Sleep:
		if err := c.engine.Stop(ctx, r.project); err != nil {
			return Result{}, fmt.Errorf("put %s to sleep: %w", r.project, err)
		}
		c.transition(ctx, r, transition{Phase: contract.PhaseSleeping, SHA: st.SHA, Detail: fmt.Sprintf("idle for %s", humanDuration(v.Idle))})
		c.log.Info("environment asleep", "project", r.project, "sha", st.SHA)
	}
	return Result{}, nil
}

// wakeFirst wakes, before anything else of a reconcile, an environment
// that sleeps at the SHA it last deployed when a request waits for it
// (the proxy holds it): from the history and the engine alone, without
// the pull request's round trips to GitHub, which would add their latency
// to every wake. done says it woke it (or failed to); the key is then
// reconciled again in full, so a pull request closed or pushed while the
// environment slept is converged right after. Anything else (no wake
// asked, not asleep, nothing or another SHA on the engine) is left to the
// full reconcile.
func (c *Controller) wakeFirst(ctx context.Context, r *request) (_ Result, done bool, _ error) {
	if !c.intake.hasWake(r.key) {
		return Result{}, false, nil
	}
	st, err := c.store.Environment(ctx, r.project)
	if err != nil || st.Phase != contract.PhaseSleeping || st.SHA == "" {
		return Result{}, false, nil
	}
	env, err := c.engine.Inspect(ctx, r.project)
	if err != nil || env == nil || env.SHA != st.SHA {
		return Result{}, false, nil
	}
	r.pr = gh.PullRequest{Number: r.key.PR, HeadSHA: st.SHA}
	c.log.Debug("wake: starting the sleeping environment", "project", r.project)
	res, err := c.sleeping(ctx, r, st)
	c.queue.Add(r.key)
	return res, true, err
}

// sleeping keeps a sleeping environment asleep until a request wakes it,
// or its TTL removes it.
func (c *Controller) sleeping(ctx context.Context, r *request, st store.Environment) (Result, error) {
	if !c.intake.takeWake(r.key) {
		if v := judgeLifetime(c.lifeFactsOf(r, st)); v.Expire {
			return c.teardown(ctx, r, removal{sha: st.SHA, reason: v.Reason, held: true})
		}
		return Result{}, nil
	}
	if err := c.engine.Start(ctx, r.project); err != nil {
		// Recorded and shown like a failed deploy: the requests the proxy
		// holds for the wake get the failure page at once, not the end of
		// their hold; the retry deploys the environment again.
		return c.failed(ctx, ctx, r, nil, gh.Status{}, "wake", fmt.Errorf("wake %s: %w", r.project, err))
	}
	c.log.Debug("wake: every container ready", "project", r.project)
	c.memory.woken(r.project, c.now())
	env, _ := c.engine.Inspect(ctx, r.project)
	sha := ""
	if env != nil {
		sha = env.SHA
	}
	c.transition(ctx, r, transition{Phase: contract.PhaseReady, SHA: sha, Detail: "woken by a request"})
	c.log.Info("environment woken", "project", r.project, "sha", sha)
	return Result{}, nil
}

func humanDuration(d time.Duration) string {
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return fmt.Sprintf("%dd", int(d/(24*time.Hour)))
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	}
	return d.Round(time.Second).String()
}
