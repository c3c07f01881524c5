package controller

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	gh "github.com/slipwayhq/slipway/controller/github"
)

// slowReporter records what it is sent; it blocks on gate and fails the
// first failures calls.
type slowReporter struct {
	mu       sync.Mutex
	got      []gh.Phase
	gate     chan struct{}
	failures int
	// taken, if set, hears of every status as the reporter takes it.
	taken chan gh.Phase
}

func (r *slowReporter) Report(ctx context.Context, s gh.Status) error {
	if r.taken != nil {
		r.taken <- s.Phase
	}
	if r.gate != nil {
		select {
		case <-r.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.failures > 0 {
		r.failures--
		return errors.New("github is down")
	}
	r.got = append(r.got, s.Phase)
	return nil
}

func (r *slowReporter) phases() []gh.Phase {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]gh.Phase(nil), r.got...)
}

func status(pr int, p gh.Phase) gh.Status {
	return gh.Status{Repo: gh.Repo{Owner: "o", Name: "r"}, PR: pr, SHA: "abc", Phase: p}
}

func TestReportsSendTheLatestStatusInOrder(t *testing.T) {
	rep := &slowReporter{gate: make(chan struct{}), taken: make(chan gh.Phase, 8)}
	r := newReports(rep, slog.New(slog.DiscardHandler), func(s string) string { return s })
	r.send(status(1, gh.PhaseQueued)) // taken by the sender, which blocks on the gate
	<-rep.taken
	r.send(status(1, gh.PhaseBuilding))  // replaced by the next one
	r.send(status(1, gh.PhaseDeploying)) // waits
	close(rep.gate)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.flush(ctx)
	got := rep.phases()
	if len(got) != 2 || got[0] != gh.PhaseQueued || got[1] != gh.PhaseDeploying {
		t.Errorf("sent %v, want [queued deploying]", got)
	}
}

func TestReportsRetryUntilGitHubTakesThem(t *testing.T) {
	rep := &slowReporter{failures: 3}
	r := newReports(rep, slog.New(slog.DiscardHandler), func(s string) string { return s })
	r.retry = time.Millisecond
	r.send(status(2, gh.PhaseReady))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r.flush(ctx)
	if got := rep.phases(); len(got) != 1 || got[0] != gh.PhaseReady {
		t.Errorf("sent %v after 3 failures, want [ready]", got)
	}
}

func TestReportsFlushGivesUpAtItsDeadline(t *testing.T) {
	rep := &slowReporter{gate: make(chan struct{})} // never opens
	r := newReports(rep, slog.New(slog.DiscardHandler), func(s string) string { return s })
	r.send(status(3, gh.PhaseReady))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	r.flush(ctx)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("flush took %s past its deadline", d)
	}
}
