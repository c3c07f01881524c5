package dashboard

import (
	"context"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/controller/stack"
)

// inventory caches the engine's list of environments for a short time, so
// that any number of page views, API calls and the stats sampler cost at
// most one container listing per TTL. Concurrent callers of a stale cache
// share one listing.
type inventory struct {
	engine Engine
	ttl    time.Duration

	mu       sync.Mutex
	envs     []stack.Environment
	at       time.Time // zero: nothing cached
	inflight chan struct{}
	err      error
	gen      int // bumped by invalidate: a listing begun before is not cached
}

// list returns the cached listing when it is younger than the TTL, else
// lists again. The listing is shared: callers must not modify it.
func (i *inventory) list(ctx context.Context) ([]stack.Environment, error) {
	for {
		i.mu.Lock()
		if !i.at.IsZero() && time.Since(i.at) < i.ttl {
			envs := i.envs
			i.mu.Unlock()
			return envs, nil
		}
		if wait := i.inflight; wait != nil {
			i.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			i.mu.Lock()
			envs, err, at := i.envs, i.err, i.at
			i.mu.Unlock()
			if err != nil {
				return nil, err
			}
			if !at.IsZero() {
				return envs, nil
			}
			continue // invalidated meanwhile
		}
		done := make(chan struct{})
		i.inflight = done
		gen := i.gen
		i.mu.Unlock()

		// One caller giving up must not fail the others waiting on it.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		envs, err := i.engine.List(lctx)
		cancel()

		i.mu.Lock()
		i.inflight = nil
		i.err = err
		if err == nil && gen == i.gen {
			i.envs, i.at = envs, time.Now()
		} else {
			i.envs, i.at = nil, time.Time{}
		}
		i.mu.Unlock()
		close(done)
		return envs, err
	}
}

// invalidate makes the next list read the engine again (after an action).
func (i *inventory) invalidate() {
	i.mu.Lock()
	i.at = time.Time{}
	i.gen++
	i.mu.Unlock()
}
