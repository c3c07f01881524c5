package github

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// RetryPolicy bounds how the client waits and retries when GitHub is rate
// limiting or failing. The zero value gets the defaults documented on each
// field.
type RetryPolicy struct {
	// MaxRetries is how many times a request that failed with a 5xx answer or
	// a connection error is retried. Default 4; negative disables retries.
	MaxRetries int
	// BaseDelay is the first backoff delay; it doubles on each retry, with
	// full jitter. Default 500ms.
	BaseDelay time.Duration
	// MaxDelay caps one backoff delay. Default 20s.
	MaxDelay time.Duration
	// MaxRateLimitWait is the longest the client waits for a rate limit to
	// reset. A reset further away is returned to the caller as an error (the
	// reconciler retries later). Default 1m: a request is retried with the
	// credentials it was signed with, and an App JWT lives 90s, while
	// ghinstallation renews installation tokens a minute before expiry.
	MaxRateLimitWait time.Duration
	// MaxRateLimitRetries is how many rate-limited answers in a row one
	// request waits through. Default 3.
	MaxRateLimitRetries int
	// Sleep waits for d or until ctx is done. Tests inject a fast one.
	// Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock used to read X-RateLimit-Reset. Default time.Now.
	Now func() time.Time
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxRetries == 0 {
		p.MaxRetries = 4
	}
	if p.MaxRetries < 0 {
		p.MaxRetries = 0
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 500 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 20 * time.Second
	}
	if p.MaxRateLimitWait <= 0 {
		p.MaxRateLimitWait = time.Minute
	}
	if p.MaxRateLimitRetries == 0 {
		p.MaxRateLimitRetries = 3
	}
	if p.Sleep == nil {
		p.Sleep = sleepCtx
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// retryTransport waits out rate limits and retries transient failures.
//
// Rate-limited answers (403/429 with Retry-After, or X-RateLimit-Remaining: 0
// with X-RateLimit-Reset) mean GitHub refused the request without acting on
// it, so every method is retried after the wait. 5xx answers and connection
// errors are ambiguous for a POST — GitHub may have created the deployment or
// comment before failing — so a POST is retried only when the connection was
// never made; callers make creates idempotent by looking up before creating.
type retryTransport struct {
	next   http.RoundTripper
	policy RetryPolicy
	log    *slog.Logger
}

func newRetryTransport(next http.RoundTripper, p RetryPolicy, log *slog.Logger) *retryTransport {
	return &retryTransport{next: next, policy: p.withDefaults(), log: log}
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	failures, rateLimited := 0, 0
	for attempt := 0; ; attempt++ {
		r := req
		if attempt > 0 {
			r = req.Clone(ctx)
			if req.GetBody != nil {
				body, err := req.GetBody()
				if err != nil {
					return nil, err
				}
				r.Body = body
			}
		}
		resp, err := t.next.RoundTrip(r)

		if err == nil {
			wait, limited := rateLimitWait(resp, t.policy.Now())
			if limited {
				if !replayable || rateLimited >= t.policy.MaxRateLimitRetries || wait > t.policy.MaxRateLimitWait {
					return resp, nil
				}
				rateLimited++
				t.log.Warn("github rate limited; waiting", "method", req.Method, "path", req.URL.Path,
					"status", resp.StatusCode, "wait", wait)
				discard(resp)
				if err := t.policy.Sleep(ctx, wait); err != nil {
					return nil, err
				}
				continue
			}
			if resp.StatusCode < 500 || !replayable || !idempotent(req) || failures >= t.policy.MaxRetries {
				return resp, nil
			}
			discard(resp)
		} else if ctx.Err() != nil || !replayable || failures >= t.policy.MaxRetries ||
			(!idempotent(req) && !neverSent(err)) {
			return nil, err
		}

		delay := t.backoff(failures)
		failures++
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		t.log.Warn("github request failed; retrying", "method", req.Method, "path", req.URL.Path,
			"status", status, "err", err, "retry", failures, "delay", delay)
		if err := t.policy.Sleep(ctx, delay); err != nil {
			return nil, err
		}
	}
}

// backoff is exponential with full jitter: a random delay in [d/2, d], where
// d = BaseDelay·2^n capped at MaxDelay.
func (t *retryTransport) backoff(n int) time.Duration {
	d := t.policy.BaseDelay << min(n, 20)
	if d <= 0 || d > t.policy.MaxDelay {
		d = t.policy.MaxDelay
	}
	return d/2 + rand.N(d/2+1)
}

// idempotent reports whether repeating req after an ambiguous failure is
// harmless. PATCH is included: every PATCH Slipway sends sets a comment body
// to a complete value. Minting an installation token twice is harmless too.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodPut, http.MethodDelete, http.MethodPatch:
		return true
	case http.MethodPost:
		return strings.Contains(req.URL.Path, "/app/installations/") && strings.HasSuffix(req.URL.Path, "/access_tokens")
	}
	return false
}

// neverSent reports whether err means the request never reached the server
// (the connection could not be made), so even a POST can be repeated.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// rateLimitWait reports whether resp is a rate-limited answer and how long to
// wait before repeating the request.
func rateLimitWait(resp *http.Response, now time.Time) (time.Duration, bool) {
	if resp.StatusCode != http.StatusForbidden && resp.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	if ra := resp.Header.Get("Retry-After"); ra != "" {
		if secs, err := strconv.Atoi(strings.TrimSpace(ra)); err == nil && secs >= 0 {
			return time.Duration(secs) * time.Second, true
		}
		if at, err := http.ParseTime(ra); err == nil {
			return max(at.Sub(now), 0), true
		}
	}
	if resp.Header.Get("X-RateLimit-Remaining") == "0" {
		if reset, err := strconv.ParseInt(resp.Header.Get("X-RateLimit-Reset"), 10, 64); err == nil {
			// The reset is in whole seconds; one more second covers the rounding.
			return max(time.Unix(reset, 0).Sub(now), 0) + time.Second, true
		}
		return time.Minute, true
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		// GitHub's guidance for a secondary limit without headers: wait at least a minute.
		return time.Minute, true
	}
	return 0, false // a 403 that is a permission error, not a rate limit
}

// discard drains a little of the body so the connection can be reused, then closes it.
func discard(resp *http.Response) {
	_, _ = io.CopyN(io.Discard, resp.Body, 64<<10)
	_ = resp.Body.Close()
}
