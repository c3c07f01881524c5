package stack

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

// cancellingDocker cancels the wait while a container is being inspected.
type cancellingDocker struct {
	Docker
	cancel context.CancelFunc
}

func (d cancellingDocker) ContainerInspect(ctx context.Context, id string) (container.InspectResponse, error) {
	d.cancel()
	<-ctx.Done()
	return container.InspectResponse{}, ctx.Err()
}

// A wait that ends while a container is inspected is not a success.
func TestWaitEndedDuringInspectIsNotReady(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	e := NewEngine(cancellingDocker{cancel: cancel}, nil, EngineOptions{ReadyTimeout: time.Minute})
	err := e.waitReady(ctx, []string{"0123456789abcdef"}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("waitReady = %v, want context.Canceled", err)
	}
}
