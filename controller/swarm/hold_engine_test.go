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

// Up hands the routed services' networks to the proxy's Hold once it has
// made them and before it creates the first service, and releases the
// hold before it returns; Down has the proxy exclude them before it
// removes a service, until they are gone. The test's hold connects a container of its own, as
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

	proxy := &testProxy{cli: cli, holder: holder, project: project}
	e.opts.Proxy = proxy
	up(t, e, load(t, src))

	proxy.mu.Lock()
	if !slices.Equal(proxy.held, []string{netName}) {
		t.Fatalf("held %q, want the routed web's network %s", proxy.held, netName)
	}
	if proxy.services != 0 {
		t.Errorf("%d services of the project existed when the hold came, want none", proxy.services)
	}
	if proxy.err != nil {
		t.Errorf("join the held network: %v", proxy.err)
	}
	if !proxy.released {
		t.Error("the hold was not released when Up returned")
	}
	proxy.services = -1
	proxy.mu.Unlock()
	ins, err := cli.NetworkInspect(context.Background(), netName, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, on := ins.Containers[holder]; !on {
		t.Errorf("the holder is not on %s", netName)
	}

	// Down has the proxy keep off the project's networks, and detaches
	// what is not a task (the holder, as the proxy's container), before
	// it removes a service: Docker 20.10 will not start again a container
	// killed on an overlay while a task of it is being removed. The
	// exclusion lasts until the networks are gone.
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
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if !slices.Contains(proxy.excluded, netName) {
		t.Errorf("Down excluded %q, want the project's network %s among them", proxy.excluded, netName)
	}
	if proxy.services < 2 {
		t.Errorf("%d services of the project existed when Down excluded its networks, want both", proxy.services)
	}
	if proxy.excluding != 0 || proxy.doneWith < 0 {
		t.Errorf("%d exclusions not done when Down returned (the networks left then: %d)", proxy.excluding, proxy.doneWith)
	} else if proxy.doneWith != 0 {
		t.Errorf("an exclusion was done while %d of the project's networks were still there", proxy.doneWith)
	}
	// (Docker 20.10 reports a disconnect from an overlay twice.)
	firstRemoved := slices.Index(order, "service removed")
	if len(order) == 0 || order[0] != "holder detached" || firstRemoved < 0 || slices.Contains(order[firstRemoved:], "holder detached") {
		t.Errorf("Down's steps %v, want the holder detached before the services were removed", order)
	}
}

// testProxy stands for the proxy's Attacher: its hold connects the
// holder, as the proxy's container joins; it records what Up and Down ask.
type testProxy struct {
	cli             *client.Client
	holder, project string

	mu        sync.Mutex
	held      []string
	services  int // the project's services when the last hold or exclusion came; -1 before
	err       error
	released  bool
	excluded  []string // names
	excluding int      // exclusions not done yet
	doneWith  int      // the most of the project's networks there when an exclusion was done; -1 if not known
	// atExclude, if set, is called as each exclusion comes.
	atExclude func(ctx context.Context)
}

func (p *testProxy) countServices(ctx context.Context) int {
	svcs, err := p.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: namespaceFilter(p.project)})
	if err != nil {
		return -1
	}
	return len(svcs)
}

func (p *testProxy) Hold(ctx context.Context, networks []string) func() {
	services := p.countServices(ctx)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held, p.services = networks, services
	for _, n := range networks {
		if err := p.cli.NetworkConnect(ctx, n, p.holder, nil); err != nil {
			p.err = err
		}
	}
	return func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		p.released = true
	}
}

func (p *testProxy) Exclude(ctx context.Context, networks []string) func() {
	services := p.countServices(ctx)
	if p.atExclude != nil {
		p.atExclude(ctx)
	}
	var names []string
	for _, n := range networks { // IDs, as the engine gives them
		if ins, err := p.cli.NetworkInspect(ctx, n, network.InspectOptions{}); err == nil {
			names = append(names, ins.Name)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.services < 0 {
		p.services = services
	}
	p.excluded = append(p.excluded, names...)
	p.excluding++
	var once sync.Once
	return func() {
		once.Do(func() {
			nets, err := p.cli.NetworkList(context.Background(), network.ListOptions{Filters: namespaceFilter(p.project)})
			p.mu.Lock()
			defer p.mu.Unlock()
			p.excluding--
			switch {
			case err != nil || p.doneWith < 0:
				p.doneWith = -1
			default:
				p.doneWith = max(p.doneWith, len(nets))
			}
		})
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
