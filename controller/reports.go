package controller

import (
	"context"
	"log/slog"
	"sync"
	"time"

	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/internal/contract"
)

// reports sends phase reports to GitHub off the deploy's path: a report
// costs several API calls, and a deploy must not wait for them. Per pull
// request one goroutine sends in order, and only the latest status waits:
// if a deploy moves on from building to deploying before "building" was
// sent, GitHub sees "deploying". A failed report is retried, with backoff,
// until it is sent or a newer status replaces it.
type reports struct {
	rep    Reporter
	log    *slog.Logger
	mask   func(string) string
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[prRef]gh.Status
	running map[prRef]bool
	wg      sync.WaitGroup
	// retry is the first retry delay (doubling up to a minute).
	retry time.Duration
}

type prRef struct {
	repo string
	pr   int
}

func newReports(rep Reporter, log *slog.Logger, mask func(string) string) *reports {
	ctx, cancel := context.WithCancel(context.Background())
	return &reports{rep: rep, log: log, mask: mask, ctx: ctx, cancel: cancel,
		pending: map[prRef]gh.Status{}, running: map[prRef]bool{}, retry: time.Second}
}

// send queues s as the latest status of its pull request.
func (r *reports) send(s gh.Status) {
	k := prRef{s.Repo.String(), s.PR}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.pending[k] = s
	if r.running[k] {
		return
	}
	r.running[k] = true
	r.wg.Add(1)
	go r.drain(k)
}

// drain sends the pull request's pending statuses until none is left.
func (r *reports) drain(k prRef) {
	defer r.wg.Done()
	delay := r.retry
	for {
		r.mu.Lock()
		s, ok := r.pending[k]
		delete(r.pending, k)
		if !ok {
			delete(r.running, k)
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		err := r.rep.Report(r.ctx, s)
		if err == nil {
			delay = r.retry
			continue
		}
		if r.ctx.Err() != nil {
			r.mu.Lock()
			delete(r.running, k)
			r.mu.Unlock()
			return
		}
		r.log.Warn("report to GitHub; retrying", "project", contract.ProjectName(s.Repo.Owner, s.Repo.Name, s.PR),
			"sha", s.SHA, "phase", s.Phase, "retry_in", delay, "err", r.mask(err.Error()))
		r.mu.Lock()
		if _, newer := r.pending[k]; !newer {
			r.pending[k] = s
		}
		r.mu.Unlock()
		select {
		case <-r.ctx.Done():
		case <-time.After(delay):
		}
		delay = min(delay*2, time.Minute)
	}
}

// flush waits for what is pending to be sent, until ctx ends; then it
// stops the senders.
func (r *reports) flush(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		r.cancel()
		<-done
	}
	r.cancel()
}
