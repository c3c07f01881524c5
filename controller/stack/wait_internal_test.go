package stack

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
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

// A container whose own check passed through exec is healthy while
// Docker's health still says "starting"; Docker's "unhealthy" still fails
// it, and a check that has not passed changes nothing.
func TestEvaluateWithPassedCheck(t *testing.T) {
	running := func(h container.HealthStatus) *container.State {
		return &container.State{Status: container.StateRunning, Running: true, Health: &container.Health{Status: h}}
	}
	tests := []struct {
		name   string
		o      observation
		cond   string
		want   readyState
		reason string
	}{
		{"starting, check passed", observation{State: running(container.Starting), CheckPassed: true}, conditionReady, ready, "healthcheck passed"},
		{"starting, check passed, service_healthy", observation{State: running(container.Starting), CheckPassed: true}, types.ServiceConditionHealthy, ready, "healthcheck passed"},
		{"starting, check not passed", observation{State: running(container.Starting)}, types.ServiceConditionHealthy, notYet, "starting"},
		{"unhealthy wins over a passed check", observation{State: running(container.Unhealthy), CheckPassed: true}, conditionReady, failed, "unhealthy"},
		{"restarted wins over a passed check", observation{State: running(container.Starting), CheckPassed: true, Restarted: true}, conditionReady, failed, "restarting"},
		{"stopped wins over a passed check", observation{State: &container.State{Status: container.StateExited, ExitCode: 3, Health: &container.Health{Status: container.Starting}}, CheckPassed: true}, types.ServiceConditionHealthy, failed, "code 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := evaluate(tt.o, tt.cond, time.Second)
			if got != tt.want || !strings.Contains(reason, tt.reason) {
				t.Errorf("evaluate = %v %q, want %v containing %q", got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestProbeWanted(t *testing.T) {
	routed := map[string]string{"dev.slipway.route.host": "pr-1.example.test", "dev.slipway.route.port": "8080"}
	for _, tc := range []struct {
		name   string
		cond   string
		labels map[string]string
		want   bool
	}{
		{"a dependency's health, routed", types.ServiceConditionHealthy, routed, true},
		{"a dependency's health, not routed", types.ServiceConditionHealthy, map[string]string{}, true},
		{"a dependency's health, no labels", types.ServiceConditionHealthy, nil, true},
		{"readiness of a routed container", conditionReady, routed, true},
		{"readiness of a container without a route", conditionReady, map[string]string{"com.docker.compose.service": "api"}, false},
		{"readiness, no labels", conditionReady, nil, false},
		{"readiness, empty route host", conditionReady, map[string]string{"dev.slipway.route.host": ""}, false},
	} {
		if got := probeWanted(tc.cond, tc.labels); got != tc.want {
			t.Errorf("%s: probeWanted = %v, want %v", tc.name, got, tc.want)
		}
	}
}
