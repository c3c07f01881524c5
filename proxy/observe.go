package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
)

// DockerAPI is the part of the Docker client the Observer uses.
// *client.Client satisfies it.
type DockerAPI interface {
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
}

// ObserverOptions configures an Observer.
type ObserverOptions struct {
	// Resync is how often every managed container is listed again, whatever
	// events arrived. Default 1m.
	Resync time.Duration
	// BackendIP chooses the address to dial from a container's networks
	// (network name → IP). Default ProjectNetworkIP.
	BackendIP func(project string, networks map[string]string) string
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// Observer turns Docker's view of managed containers into Routes inputs:
// it lists them, then follows the events stream, inspecting a container as
// soon as an event names it, so a route goes live as soon as Docker reports
// the container healthy. When the stream breaks it subscribes again and
// re-lists (events may have been missed); a periodic re-list heals anything
// else.
type Observer struct {
	docker    DockerAPI
	routes    *Routes
	log       *slog.Logger
	resync    time.Duration
	backendIP func(string, map[string]string) string

	known      map[string]Container // owned by Run's goroutine
	syncedOnce sync.Once
	synced     chan struct{}
}

// NewObserver returns an Observer feeding routes from docker.
func NewObserver(docker DockerAPI, routes *Routes, opts ObserverOptions) *Observer {
	if opts.Resync <= 0 {
		opts.Resync = time.Minute
	}
	if opts.BackendIP == nil {
		opts.BackendIP = ProjectNetworkIP
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Observer{
		docker:    docker,
		routes:    routes,
		log:       opts.Logger,
		resync:    opts.Resync,
		backendIP: opts.BackendIP,
		known:     map[string]Container{},
		synced:    make(chan struct{}),
	}
}

// Synced is closed once the first full list has reached the table
// (a readiness check can wait for it).
func (o *Observer) Synced() <-chan struct{} { return o.synced }

// ProjectNetworkIP is the default BackendIP: the IP on the first (by name)
// network named <project>_*, the project's own bridge networks; failing
// that, the first network by name that gives the container an IP.
func ProjectNetworkIP(project string, networks map[string]string) string {
	names := make([]string, 0, len(networks))
	for n := range networks {
		names = append(names, n)
	}
	sort.Strings(names)
	prefix := project + "_"
	for _, n := range names {
		if strings.HasPrefix(n, prefix) && networks[n] != "" {
			return networks[n]
		}
	}
	for _, n := range names {
		if networks[n] != "" {
			return networks[n]
		}
	}
	return ""
}

// swarmTaskLabel is set by the engine on every container of a swarm task.
const swarmTaskLabel = "com.docker.swarm.task.id"

// eventFilters selects the container events that change routes.
func eventFilters() filters.Args {
	return filters.NewArgs(
		filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", contract.ManagedFilter),
		filters.Arg("event", string(events.ActionStart)),
		filters.Arg("event", string(events.ActionDie)),
		filters.Arg("event", string(events.ActionStop)),
		filters.Arg("event", string(events.ActionDestroy)),
		filters.Arg("event", string(events.ActionHealthStatus)),
	)
}

// Run observes Docker until ctx is done. It returns nil when ctx ends; it
// never gives up on a broken connection (it backs off and tries again).
func (o *Observer) Run(ctx context.Context) error {
	resubscribe(ctx, o.watch)
	return nil
}

// resubscribe calls watch (which follows an events stream until it breaks)
// again and again until ctx ends, backing off from 100ms to 5s between
// attempts; an attempt that made progress resets the backoff.
func resubscribe(ctx context.Context, watch func(context.Context) bool) {
	backoff := 100 * time.Millisecond
	const maxBackoff = 5 * time.Second
	for ctx.Err() == nil {
		ok := watch(ctx)
		if ctx.Err() != nil {
			return
		}
		if ok {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// watch subscribes to events, lists, and follows the stream until it
// breaks. It reports whether at least one event or list succeeded.
func (o *Observer) watch(ctx context.Context) bool {
	evCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before listing, so that nothing happening during the list
	// is missed.
	msgs, errs := o.docker.Events(evCtx, events.ListOptions{Filters: eventFilters()})
	progressed := false
	if err := o.relist(ctx); err != nil {
		o.log.Warn("list managed containers", "err", err)
	} else {
		progressed = true
	}
	tick := time.NewTicker(o.resync)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return progressed
		case m := <-msgs:
			progressed = true
			o.handle(ctx, m)
		case err := <-errs:
			if ctx.Err() == nil {
				o.log.Warn("docker events stream ended; subscribing again", "err", err)
			}
			return progressed
		case <-tick.C:
			if err := o.relist(ctx); err != nil {
				o.log.Warn("resync managed containers", "err", err)
			}
		}
	}
}

// relist lists every exposed managed container, inspects each, and
// replaces the table's container set. On error the table is left as it was.
func (o *Observer) relist(ctx context.Context) error {
	list, err := o.docker.ContainerList(ctx, container.ListOptions{
		All: true,
		Filters: filters.NewArgs(
			filters.Arg("label", contract.ManagedFilter),
			filters.Arg("label", contract.LabelRouteHost),
		),
	})
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	known := make(map[string]Container, len(list))
	for _, s := range list {
		ins, err := o.docker.ContainerInspect(ctx, s.ID)
		if errdefs.IsNotFound(err) {
			continue // removed since the list
		}
		if err != nil {
			return fmt.Errorf("inspect container %s: %w", s.ID, err)
		}
		if c, ok := o.fromInspect(ins); ok {
			known[c.ID] = c
		}
	}
	o.known = known
	cs := make([]Container, 0, len(known))
	for _, c := range known {
		cs = append(cs, c)
	}
	o.routes.ReplaceContainers(cs)
	o.syncedOnce.Do(func() { close(o.synced) })
	return nil
}

// handle applies one container event. A die, stop or health change of a
// known container is applied from the event itself; anything else is
// inspected at once.
func (o *Observer) handle(ctx context.Context, m events.Message) {
	id := m.Actor.ID
	action := string(m.Action)
	c, isKnown := o.known[id]
	switch {
	case m.Action == events.ActionDestroy:
		o.forget(id)
		return
	case isKnown && (m.Action == events.ActionDie || m.Action == events.ActionStop):
		c.Running = false
		o.put(c)
		return
	case isKnown && (c.IP != "" || !c.Running) && strings.HasPrefix(action, string(events.ActionHealthStatus)+":"):
		// A running container known without an address (seen before its
		// network was connected) is inspected again instead, so that its
		// route does not wait for the next re-list.
		switch h := strings.TrimSpace(strings.TrimPrefix(action, string(events.ActionHealthStatus)+":")); h {
		case "healthy", "unhealthy", "starting":
			c.Health = h
			o.put(c)
			return
		}
	}
	ins, err := o.docker.ContainerInspect(ctx, id)
	if errdefs.IsNotFound(err) {
		o.forget(id)
		return
	}
	if err != nil {
		o.log.Warn("inspect container after event", "container", id, "event", action, "err", err)
		return
	}
	if c, ok := o.fromInspect(ins); ok {
		o.put(c)
	} else {
		o.forget(id)
	}
}

func (o *Observer) put(c Container) {
	o.known[c.ID] = c
	o.routes.PutContainer(c)
}

func (o *Observer) forget(id string) {
	delete(o.known, id)
	o.routes.RemoveContainer(id)
}

// fromInspect turns an inspected container into a Container; ok is false
// for a container that is not exposed.
func (o *Observer) fromInspect(ins container.InspectResponse) (Container, bool) {
	if ins.ContainerJSONBase == nil || ins.Config == nil {
		return Container{}, false
	}
	labels := ins.Config.Labels
	if labels[contract.LabelManaged] != "true" || labels[contract.LabelRouteHost] == "" {
		return Container{}, false
	}
	// A swarm task's container carries the service's labels, but its
	// routes come from the swarm observer (task addresses on the
	// preview's overlay), never from this one: on an engine that is also
	// a swarm manager it would otherwise claim the preview's hosts.
	if labels[swarmTaskLabel] != "" {
		return Container{}, false
	}
	c := Container{
		ID:      ins.ID,
		Name:    strings.TrimPrefix(ins.Name, "/"),
		Project: labels[contract.LabelProject],
		Service: labels[contract.LabelService],
		Repo:    labels[contract.LabelRepo],
		Host:    labels[contract.LabelRouteHost],
		Port:    labels[contract.LabelRoutePort],
	}
	// A label that does not parse leaves the zero value, which
	// ComputeTable refuses (PR) or ranks last among claimants (Created).
	c.PR, _ = strconv.Atoi(labels[contract.LabelPR])
	c.Created, _ = time.Parse(time.RFC3339Nano, ins.Created)
	if st := ins.State; st != nil {
		c.Running = st.Running && !st.Restarting && !st.Paused
		c.Started, _ = time.Parse(time.RFC3339Nano, st.StartedAt)
		if st.Health != nil && st.Health.Status != container.NoHealthcheck {
			c.Health = string(st.Health.Status)
		}
	}
	if ins.NetworkSettings != nil {
		nets := make(map[string]string, len(ins.NetworkSettings.Networks))
		for name, ep := range ins.NetworkSettings.Networks {
			if ep != nil {
				nets[name] = ep.IPAddress
			}
		}
		c.IP = o.backendIP(c.Project, nets)
	}
	return c, true
}
