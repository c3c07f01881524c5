package proxy

import (
	"context"
	"log/slog"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"

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

// inspectOnly answers inspections with the container it holds; the
// observer's handling of one event needs nothing else.
type inspectOnly struct {
	ins      container.InspectResponse
	inspects int
}

func (d *inspectOnly) ContainerList(context.Context, container.ListOptions) ([]container.Summary, error) {
	return nil, nil
}

func (d *inspectOnly) ContainerInspect(context.Context, string) (container.InspectResponse, error) {
	d.inspects++
	return d.ins, nil
}

func (d *inspectOnly) Events(context.Context, events.ListOptions) (<-chan events.Message, <-chan error) {
	return nil, nil
}

// A running container first seen without an address (its network was
// connected after the start event's inspection) is inspected again on its
// health event, so its route goes live then rather than at the next
// re-list; one known with an address takes the health from the event.
func TestObserverInspectsAgainAContainerKnownWithoutAnAddress(t *testing.T) {
	d := &inspectOnly{ins: container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: "c1", Name: "/c1",
			State: &container.State{Running: true, Health: &container.Health{Status: "healthy"}}},
		Config: &container.Config{Labels: map[string]string{
			contract.LabelManaged: "true", contract.LabelRouteHost: "pr-1.example.test", contract.LabelRoutePort: "80",
			contract.LabelProject: "acme-shop-pr-1", contract.LabelPR: "1",
		}},
		NetworkSettings: &container.NetworkSettings{Networks: map[string]*network.EndpointSettings{
			"acme-shop-pr-1_default": {IPAddress: "172.30.0.5"},
		}},
	}}
	routes := NewRoutes(slog.New(slog.DiscardHandler), nil)
	o := NewObserver(d, routes, ObserverOptions{})
	o.known["c1"] = Container{ID: "c1", Project: "acme-shop-pr-1", Host: "pr-1.example.test", Port: "80", PR: 1, Running: true}
	healthy := events.Message{Action: events.Action(string(events.ActionHealthStatus) + ": healthy"), Actor: events.Actor{ID: "c1"}}
	o.handle(context.Background(), healthy)
	if d.inspects != 1 || o.known["c1"].IP != "172.30.0.5" || o.known["c1"].Health != "healthy" {
		t.Fatalf("known without an address: %d inspections, %+v", d.inspects, o.known["c1"])
	}
	o.handle(context.Background(), healthy)
	if d.inspects != 1 {
		t.Errorf("known with an address: inspected again (%d)", d.inspects)
	}
}
