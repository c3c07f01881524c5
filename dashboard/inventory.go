package dashboard

import (
	"context"
	"sync"
	"time"
)

// snapshot caches the result of a listing (the engine's environments, the
// store's history) for a short time, so that any number of page views, API
// calls and the stats sampler cost at most one listing per TTL. Concurrent
// callers of a stale snapshot share one listing.
type snapshot[T any] struct {
	fetch func(context.Context) (T, error)
	ttl   time.Duration

	mu       sync.Mutex
	value    T
	at       time.Time // zero: nothing cached
	inflight chan struct{}
	err      error
	gen      int // bumped by invalidate: a listing begun before is not cached
}

func newSnapshot[T any](ttl time.Duration, fetch func(context.Context) (T, error)) *snapshot[T] {
	return &snapshot[T]{fetch: fetch, ttl: ttl}
}

// get returns the cached value when it is younger than the TTL, else lists
// again. The value is shared: callers must not modify it.
func (s *snapshot[T]) get(ctx context.Context) (T, error) {
	var zero T
	for {
		s.mu.Lock()
		if !s.at.IsZero() && time.Since(s.at) < s.ttl {
			v := s.value
			s.mu.Unlock()
			return v, nil
		}
		if wait := s.inflight; wait != nil {
			s.mu.Unlock()
			select {
			case <-wait:
			case <-ctx.Done():
				return zero, ctx.Err()
			}
			s.mu.Lock()
			v, err, at := s.value, s.err, s.at
			s.mu.Unlock()
			if err != nil {
				return zero, err
			}
			if !at.IsZero() {
				return v, nil
			}
			continue // invalidated meanwhile: list again
		}
		done := make(chan struct{})
		s.inflight = done
		gen := s.gen
		s.mu.Unlock()

		// One caller giving up must not fail the others waiting on it.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		v, err := s.fetch(fctx)
		cancel()

		s.mu.Lock()
		s.inflight = nil
		s.err = err
		if err == nil && gen == s.gen {
			s.value, s.at = v, time.Now()
		} else {
			s.value, s.at = zero, time.Time{}
		}
		s.mu.Unlock()
		close(done)
		return v, err
	}
}

// invalidate makes the next get list again (after an action).
func (s *snapshot[T]) invalidate() {
	s.mu.Lock()
	s.at = time.Time{}
	s.gen++
	s.mu.Unlock()
}
