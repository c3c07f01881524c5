package dashboard

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/proxy"
)

// The concrete types the lead wires in satisfy the dashboard's interfaces.
var (
	_ History     = (*store.Store)(nil)
	_ Engine      = (*stack.Engine)(nil)
	_ StatsClient = (*client.Client)(nil)
	_ RequestLog  = (*proxy.Handler)(nil)
)

func TestSnapshot(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	s := newSnapshot(time.Hour, func(ctx context.Context) (int64, error) {
		n := calls.Add(1)
		if n == 1 {
			<-release
		}
		return n, nil
	})
	ctx := context.Background()
	got := make(chan int64)
	go func() {
		v, _ := s.get(ctx)
		got <- v
	}()
	for calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	// An action invalidates while the first listing is in flight: that
	// listing may predate the action, so it must not be cached.
	s.invalidate()
	close(release)
	if v := <-got; v != 1 {
		t.Fatalf("first get = %d", v)
	}
	if v, _ := s.get(ctx); v != 2 {
		t.Errorf("after an invalidation during the listing: %d, want a fresh listing (2)", v)
	}
	if v, _ := s.get(ctx); v != 2 {
		t.Errorf("within the TTL: %d, want the cached 2", v)
	}

	failing := newSnapshot(time.Hour, func(context.Context) (int, error) {
		calls.Add(1)
		return 0, errors.New("engine down")
	})
	before := calls.Load()
	for range 2 {
		if _, err := failing.get(ctx); err == nil {
			t.Error("error not returned")
		}
	}
	if calls.Load()-before != 2 {
		t.Error("an error was cached")
	}
}
