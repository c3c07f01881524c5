package controller

import (
	"context"
	"errors"
	"fmt"

	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/text"
)

// maxDetail bounds the one line a failure shows in the history, on
// GitHub and on the failed page.
const maxDetail = 300

var (
	errSuperseded    = errors.New("superseded by a newer push")
	errClosed        = errors.New("the pull request was closed")
	errDeployTimeout = errors.New("the deploy took too long")
)

// outcome is what a failed deploy means for the controller.
type outcome int

const (
	// outcomeAbandoned: a newer push or a close cancelled the deploy; not
	// a failure: the key runs again and converges to the new state.
	outcomeAbandoned outcome = iota
	// outcomeShutdown: the controller is stopping; the next start converges.
	outcomeShutdown
	// outcomeFailed: a failure, recorded and reported; retried unless terminal.
	outcomeFailed
)

// judgement is the verdict on a failed deploy.
type judgement struct {
	outcome outcome
	// err is the error to report: with the deploy's own cause (a timeout)
	// when there is one.
	err     error
	failure failure // for outcomeFailed; Message is unmasked
}

// judgeFailure decides what a deploy's failure at step means. cause is
// the deploy context's cause (nil while it was not cancelled); stopping
// says the controller's own context ended. It is the one place that
// decides final or retry: the pull request's own failures (a
// contract.Failure that says it is terminal: bad input, a source archive
// that cannot be unpacked) and deploys out of time are final until the
// next push; anything else (the engine, GitHub, the host) is retried with
// backoff.
func judgeFailure(step string, err, cause error, stopping bool) judgement {
	if errors.Is(err, errSuperseded) || errors.Is(err, errClosed) || errors.Is(cause, errSuperseded) || errors.Is(cause, errClosed) {
		return judgement{outcome: outcomeAbandoned, err: firstErr(cause, err)}
	}
	if stopping {
		return judgement{outcome: outcomeShutdown, err: err}
	}
	timedOut := errors.Is(cause, errDeployTimeout)
	if timedOut {
		err = fmt.Errorf("%w: %v", cause, err)
	}
	f := failure{Step: step, Message: err.Error(), Terminal: timedOut}
	var tf contract.Failure
	if errors.As(err, &tf) {
		f.Service = tf.FailedService()
		if s := tf.FailedStep(); s != "" {
			f.Step = s
		}
		f.Terminal = f.Terminal || tf.Terminal()
	}
	return judgement{outcome: outcomeFailed, err: err, failure: f}
}

// failed records and reports a failed deploy (see judgeFailure). It
// returns nil for what is not retried, and the error for what is.
func (c *Controller) failed(ctx, dctx context.Context, r *request, hosts []string, status gh.Status, step string, err error) (Result, error) {
	j := judgeFailure(step, err, context.Cause(dctx), ctx.Err() != nil)
	switch j.outcome {
	case outcomeAbandoned:
		c.log.Info("deploy abandoned", "project", r.project, "sha", r.sha(), "why", j.err)
		c.queue.Add(r.key)
		return Result{}, nil
	case outcomeShutdown:
		return Result{}, ctx.Err()
	}
	f := j.failure
	f.Message = c.mask.String(f.Message)
	c.transition(ctx, r, transition{Phase: contract.PhaseFailed, SHA: r.sha(), Detail: text.FirstLine(f.Message, maxDetail), Failure: &f, Hosts: hosts, Status: status})
	c.metrics.failures.WithLabelValues(f.Step).Inc()
	c.log.Warn("deploy failed", "project", r.project, "sha", r.sha(), "step", f.Step, "service", f.Service, "terminal", f.Terminal, "err", text.FirstLine(f.Message, maxDetail))
	if f.Terminal {
		return Result{}, nil
	}
	return Result{}, j.err
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}
