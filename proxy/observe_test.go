package proxy

import (
	"log/slog"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/slipwayhq/slipway/internal/contract"
)

// A swarm task's container carries the same managed labels as a
// container of the stack engine, but the docker observer leaves it to the
// swarm observer: otherwise, on an engine that is also a swarm manager, it
// claims the preview's host with an address the proxy cannot reach.
func TestObserverLeavesSwarmTaskContainers(t *testing.T) {
	o := &Observer{log: slog.New(slog.DiscardHandler)}
	ins := func(extra map[string]string) container.InspectResponse {
		labels := map[string]string{
			contract.LabelManaged:   "true",
			contract.LabelRouteHost: "pr-1.example.test",
			contract.LabelProject:   "acme-shop-pr-1",
			contract.LabelPR:        "1",
		}
		for k, v := range extra {
			labels[k] = v
		}
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{ID: "c1", Name: "/c1", State: &container.State{Running: true}},
			Config:            &container.Config{Labels: labels},
		}
	}
	if _, ok := o.fromInspect(ins(nil)); !ok {
		t.Fatal("a stack engine's container was not taken")
	}
	if c, ok := o.fromInspect(ins(map[string]string{swarmTaskLabel: "t1"})); ok {
		t.Fatalf("a swarm task's container was taken: %+v", c)
	}
}
