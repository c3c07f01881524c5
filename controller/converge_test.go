package controller

import (
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

func TestChooseConvergence(t *testing.T) {
	const sha, old = "bbbb", "aaaa"
	at := time.Unix(1000, 0)
	hist := func(p contract.Phase, s string, f func(*store.Environment)) store.Environment {
		e := store.Environment{Phase: p, SHA: s}
		if f != nil {
			f(&e)
		}
		return e
	}
	held := func(e *store.Environment) { e.Removed, e.Held = at, true }
	retry := func(e *store.Environment) { e.Retry = true }
	seen := func(f convergeFacts) convergeFacts { f.Observed = true; return f }
	for _, tc := range []struct {
		name string
		f    convergeFacts
		want convergence
	}{
		{"held removal at this SHA", convergeFacts{SHA: sha, History: hist(contract.PhaseRemoved, sha, held)}, convergence{step: stepHold}},
		{"held removal, forced", convergeFacts{SHA: sha, Forced: true, History: hist(contract.PhaseRemoved, sha, held)}, convergence{step: stepObserve}},
		{"held removal at an older SHA", convergeFacts{SHA: sha, History: hist(contract.PhaseRemoved, old, held)}, convergence{step: stepObserve}},
		{"removal not held (closed, reopened)", convergeFacts{SHA: sha, History: hist(contract.PhaseRemoved, sha, func(e *store.Environment) { e.Removed = at })}, convergence{step: stepObserve}},
		{"the PR's own failure", convergeFacts{SHA: sha, History: hist(contract.PhaseFailed, sha, nil)}, convergence{step: stepHold}},
		{"a failure retried", convergeFacts{SHA: sha, History: hist(contract.PhaseFailed, sha, retry)}, convergence{step: stepObserve}},
		{"own failure, forced", convergeFacts{SHA: sha, Forced: true, History: hist(contract.PhaseFailed, sha, nil)}, convergence{step: stepObserve}},
		{"own failure at an older SHA", convergeFacts{SHA: sha, History: hist(contract.PhaseFailed, old, nil)}, convergence{step: stepObserve}},
		{"sleeping at this SHA", seen(convergeFacts{SHA: sha, OnEngine: true, EngineSHA: sha, History: hist(contract.PhaseSleeping, sha, nil)}), convergence{step: stepSleeping}},
		{"up to date", seen(convergeFacts{SHA: sha, OnEngine: true, EngineSHA: sha, UpToDate: true, History: hist(contract.PhaseReady, sha, nil)}), convergence{step: stepLifetimes}},
		{"ready in history, not deployed by this process", seen(convergeFacts{SHA: sha, OnEngine: true, EngineSHA: sha, History: hist(contract.PhaseReady, sha, nil), DebounceLeft: time.Second}), convergence{step: stepDeploy, quiet: true}},
		{"up to date but forced", seen(convergeFacts{SHA: sha, Forced: true, OnEngine: true, EngineSHA: sha, UpToDate: true, History: hist(contract.PhaseReady, sha, nil)}), convergence{step: stepDeploy}},
		{"a push to a running environment", seen(convergeFacts{SHA: sha, OnEngine: true, EngineSHA: old, History: hist(contract.PhaseReady, old, nil)}), convergence{step: stepDeploy}},
		{"a burst of pushes waits", seen(convergeFacts{SHA: sha, OnEngine: true, EngineSHA: old, DebounceLeft: 300 * time.Millisecond}), convergence{step: stepDebounce, wait: 300 * time.Millisecond}},
		{"a new environment needs a slot", seen(convergeFacts{SHA: sha}), convergence{step: stepAdmit}},
		{"a new environment in a burst waits first", seen(convergeFacts{SHA: sha, DebounceLeft: time.Second}), convergence{step: stepDebounce, wait: time.Second}},
		{"on the engine, history lost", seen(convergeFacts{SHA: sha, OnEngine: true, EngineSHA: sha}), convergence{step: stepDeploy}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := chooseConvergence(tc.f); got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestDebounceLeft(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		name  string
		last  time.Time
		burst bool
		want  time.Duration
	}{
		{"no event", time.Time{}, true, 0},
		{"a lone event", now, false, 0},
		{"a burst, just now", now, true, time.Second},
		{"a burst, quiet for half", now.Add(-500 * time.Millisecond), true, 500 * time.Millisecond},
		{"a burst, quiet long enough", now.Add(-2 * time.Second), true, 0},
	} {
		if got := debounceLeft(tc.last, tc.burst, time.Second, now); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.name, got, tc.want)
		}
	}
}
