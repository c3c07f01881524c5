package swarm

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// Up hands the routed services' networks to HoldNetworks once it has made
// them and before it creates the first service, and releases the hold
// before it returns. The test's hold connects a container of its own, as
// the proxy's container joins.
func TestUpHoldsTheRoutedNetworksBeforeTheFirstService(t *testing.T) {
	e, cli, _ := testEngine(t)
	dir := copyFixture(t, "pair")
	src := stack.Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("hold"), PR: 1, SHA: strings.Repeat("1", 40)}
	project := src.Project()
	netName := contract.ResourceName(project, "default")
	holder := startHolder(t, cli)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := e.Down(ctx, project); err != nil {
			t.Errorf("cleanup down: %v", err)
		}
	})

	var (
		mu       sync.Mutex
		held     []string
		services = -1 // the project's services when the hold came
		joinErr  error
		released bool
	)
	e.opts.HoldNetworks = func(ctx context.Context, networks []string) func() {
		svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: namespaceFilter(project)})
		mu.Lock()
		defer mu.Unlock()
		held = networks
		if err == nil {
			services = len(svcs)
		}
		for _, n := range networks {
			if err := cli.NetworkConnect(ctx, n, holder, nil); err != nil {
				joinErr = err
			}
		}
		return func() {
			mu.Lock()
			defer mu.Unlock()
			released = true
		}
	}
	up(t, e, load(t, src))

	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(held, []string{netName}) {
		t.Fatalf("held %q, want the routed web's network %s", held, netName)
	}
	if services != 0 {
		t.Errorf("%d services of the project existed when the hold came, want none", services)
	}
	if joinErr != nil {
		t.Errorf("join the held network: %v", joinErr)
	}
	if !released {
		t.Error("the hold was not released when Up returned")
	}
	ins, err := cli.NetworkInspect(context.Background(), netName, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, on := ins.Containers[holder]; !on {
		t.Errorf("the holder is not on %s", netName)
	}

	// Down detaches what is not a task (the holder, as the proxy's
	// container) before it removes a service: Docker 20.10 will not start
	// again a container killed on an overlay while a task of it is being
	// removed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	evCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	msgs, errs := cli.Events(evCtx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", string(events.NetworkEventType)), filters.Arg("type", string(events.ServiceEventType)))})
	if err := e.Down(ctx, project); err != nil {
		t.Fatalf("down: %v", err)
	}
	var order []string
	for done := false; !done; {
		select {
		case m := <-msgs:
			switch {
			case m.Type == events.NetworkEventType && m.Action == events.ActionDisconnect && m.Actor.Attributes["container"] == holder:
				order = append(order, "holder detached")
			case m.Type == events.ServiceEventType && m.Action == events.ActionRemove && strings.HasPrefix(m.Actor.Attributes["name"], project+"_"):
				order = append(order, "service removed")
			case m.Type == events.NetworkEventType && m.Action == events.ActionDestroy && m.Actor.Attributes["name"] == netName:
				done = true // the last step of Down that has an event here
			}
		case err := <-errs:
			t.Fatalf("events: %v (seen: %v)", err, order)
		}
	}
	// (Docker 20.10 reports a disconnect from an overlay twice.)
	firstRemoved := slices.Index(order, "service removed")
	if len(order) == 0 || order[0] != "holder detached" || firstRemoved < 0 || slices.Contains(order[firstRemoved:], "holder detached") {
		t.Errorf("Down's steps %v, want the holder detached before the services were removed", order)
	}
}

// startHolder runs a sleeping busybox container (removed at cleanup, after
// the Down registered later) and returns its ID.
func startHolder(t *testing.T, cli *client.Client) string {
	t.Helper()
	ctx := context.Background()
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: dockertest.BusyboxImage, Cmd: []string{"sleep", "600"}},
		nil, nil, nil, dockertest.UniqueName("slipway-hold-"))
	if err != nil {
		t.Fatalf("create the holder: %v", err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}) })
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start the holder: %v", err)
	}
	return resp.ID
}
