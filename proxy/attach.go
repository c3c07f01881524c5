package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
)

// EnvContainerID is the environment variable that names the container
// Slipway runs in (ID or name), for the rare setups where it cannot find
// itself (a custom hostname on an engine whose mount table hides the
// container ID).
const EnvContainerID = "SLIPWAY_CONTAINER_ID"

// AttachAPI is the part of the Docker client the Attacher uses.
// *client.Client satisfies it.
type AttachAPI interface {
	ContainerInspect(ctx context.Context, containerID string) (container.InspectResponse, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	NetworkConnect(ctx context.Context, networkID, containerID string, config *network.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, networkID, containerID string, force bool) error
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
}

// AttacherOptions configures NewAttacher.
type AttacherOptions struct {
	// ContainerID names Slipway's own container (ID or name). Empty means
	// find it: the container ID in the mount table (Docker bind-mounts
	// /etc/hostname from the container's directory), else the hostname
	// (Docker's default hostname is the short container ID). An explicit ID
	// that names no container is an error.
	ContainerID string
	// Domain limits the networks joined to those of containers exposed
	// under it (dev.slipway.route.host is the domain or a subdomain): the
	// proxy dials nothing else, and another Slipway on the same engine
	// keeps its own networks. Empty means every exposed container.
	Domain string
	// Hostname of this process; default os.Hostname().
	Hostname string
	// MountInfo is the path of this process's mount table; default
	// /proc/self/mountinfo.
	MountInfo string
	// Retry is how often a network that could not be joined is tried
	// again, and how often networks left empty are looked at. Default 1s.
	Retry time.Duration
	// LeaveAfter is how long a project network must have had no exposed
	// container before the Attacher leaves it. The pause lets
	// stack.Engine.Down, which removes the containers and then
	// force-disconnects whatever is still on the network, finish without
	// racing the Attacher's own disconnect. Default 3s.
	LeaveAfter time.Duration
	// Services, when set, makes the Attacher swarm-aware (engine: swarm):
	// a managed network also counts as needed when a managed service
	// exposed under the domain, with replicas to run, is attached to it,
	// wherever its tasks run (their containers on other nodes are not
	// listed here), and service events make it look at every network.
	Services ServiceLister
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// ServiceLister lists swarm services. *client.Client satisfies it.
type ServiceLister interface {
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
}

// Attacher keeps the container Slipway runs in connected to the managed
// project networks that have containers, so that its proxy can dial the
// environments: a process in a container reaches only the networks its
// container is on.
//
// It follows network events. When a container exposed through the proxy
// (dev.slipway.route.host under the domain) joins a managed network
// (labelled dev.slipway.managed=true), the Attacher joins it too, before
// the container can turn healthy; networks without an exposed service (a
// database's) are never joined. When the last exposed container has left
// (an environment stopped, asleep or removed) for LeaveAfter, the Attacher
// leaves, so that a network removed later (`docker compose -p … down` of a
// stopped environment) is found empty. stack.Engine.Down does not need it:
// it force-disconnects every endpoint before removing a network, within
// the LeaveAfter pause. At start, and whenever the events stream had to be
// subscribed again, every managed network is looked at. Joins that fail
// are retried.
type Attacher struct {
	docker     AttachAPI
	id         string // full ID of Slipway's own container
	name       string
	log        *slog.Logger
	retry      time.Duration
	leaveAfter time.Duration
	domain     string
	services   ServiceLister // nil unless on a swarm
	// listed holds, during Sync, the managed services listed once for
	// every network Sync looks at; nil otherwise. Owned by Run's goroutine.
	listed []swarm.Service

	mu      sync.Mutex
	joined  map[string]bool   // names of the networks the container is on
	pending map[string]string // network ID → name, joins to retry
	// empty holds the joined networks seen without exposed containers, by
	// ID, with their name and when they were first seen so.
	empty map[string]emptyNetwork
	// held counts the Holds of each network, by ID: held networks are
	// joined and never left.
	held map[string]int
	// excluded counts the Excludes of each network, by ID: excluded
	// networks are left and never joined, held or not.
	excluded map[string]int
	// ownFirst is the first by name of the container's networks that are
	// not project networks (where it was started).
	ownFirst      string
	warnedGateway bool
}

// NewAttacher returns an Attacher for the container this process runs in,
// or nil and no error when it does not run in a container of this engine
// (Slipway on the host reaches bridge networks directly), or runs in one
// without a network stack of its own (network_mode host).
func NewAttacher(ctx context.Context, docker AttachAPI, opts AttacherOptions) (*Attacher, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Retry <= 0 {
		opts.Retry = time.Second
	}
	if opts.LeaveAfter <= 0 {
		opts.LeaveAfter = 3 * time.Second
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.MountInfo == "" {
		opts.MountInfo = "/proc/self/mountinfo"
	}
	self, found, err := findSelf(ctx, docker, opts)
	if err != nil || !found || !OwnNetworkStack(self) {
		return nil, err
	}
	a := &Attacher{
		docker:     docker,
		id:         self.ID,
		name:       strings.TrimPrefix(self.Name, "/"),
		log:        opts.Logger,
		retry:      opts.Retry,
		leaveAfter: opts.LeaveAfter,
		domain:     contract.NormalizeHost(opts.Domain),
		services:   opts.Services,
		joined:     map[string]bool{},
		pending:    map[string]string{},
		empty:      map[string]emptyNetwork{},
		held:       map[string]int{},
		excluded:   map[string]int{},
	}
	a.setJoined(self)
	return a, nil
}

// findSelf inspects the candidates for this process's own container.
func findSelf(ctx context.Context, docker AttachAPI, opts AttacherOptions) (container.InspectResponse, bool, error) {
	if opts.ContainerID != "" {
		ins, err := docker.ContainerInspect(ctx, opts.ContainerID)
		if err != nil {
			return ins, false, fmt.Errorf("find Slipway's own container %q (%s): %w", opts.ContainerID, EnvContainerID, err)
		}
		return ins, true, nil
	}
	var ids []string
	if f, err := os.Open(opts.MountInfo); err == nil {
		ids = ContainerIDsFromMountInfo(f)
		f.Close()
	}
	for _, id := range ids {
		ins, err := docker.ContainerInspect(ctx, id)
		if errdefs.IsNotFound(err) {
			continue // a container of another engine (Slipway in a VM or nested)
		}
		if err != nil {
			return ins, false, fmt.Errorf("inspect container %s: %w", id[:12], err)
		}
		if ins.ID == id {
			return ins, true, nil
		}
	}
	if h := opts.Hostname; h != "" {
		ins, err := docker.ContainerInspect(ctx, h)
		if errdefs.IsNotFound(err) {
			return ins, false, nil
		}
		if err != nil {
			return ins, false, fmt.Errorf("inspect container %s: %w", h, err)
		}
		if IsHostnameOf(ins, h) {
			return ins, true, nil
		}
	}
	return container.InspectResponse{}, false, nil
}

// OwnNetworkStack reports whether a container has a network namespace of
// its own, which joining networks extends. With network_mode host it
// reaches bridge networks as the host does; with container:<id> it shares
// another container's networks (and cannot join any).
func OwnNetworkStack(ins container.InspectResponse) bool {
	if ins.ContainerJSONBase == nil || ins.HostConfig == nil {
		return true
	}
	m := ins.HostConfig.NetworkMode
	return !m.IsHost() && !m.IsContainer() && !m.IsNone()
}

// mountedIDPattern matches the files Docker (…/containers/<id>/hostname)
// and Podman (…/overlay-containers/<id>/userdata/hostname) bind-mount into
// a container.
var mountedIDPattern = regexp.MustCompile(`containers/([0-9a-f]{64})/(?:userdata/)?(?:hostname|hosts|resolv\.conf)$`)

// ContainerIDsFromMountInfo returns the container IDs named by the sources
// of the /etc/hostname, /etc/hosts and /etc/resolv.conf bind mounts in a
// /proc/<pid>/mountinfo table, first seen first. Outside a container there
// are none.
func ContainerIDsFromMountInfo(r io.Reader) []string {
	var ids []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		// id parent major:minor root mountpoint options … - fstype source superoptions
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		switch f[4] {
		case "/etc/hostname", "/etc/hosts", "/etc/resolv.conf":
		default:
			continue
		}
		if m := mountedIDPattern.FindStringSubmatch(f[3]); m != nil && !seen[m[1]] {
			seen[m[1]] = true
			ids = append(ids, m[1])
		}
	}
	return ids
}

// IsHostnameOf reports whether hostname identifies ins as the container
// this process runs in: Docker's default hostname is the first 12 hex
// digits of the container ID. A container that merely has that name, or a
// host whose name is a container's name, does not count.
func IsHostnameOf(ins container.InspectResponse, hostname string) bool {
	if ins.ContainerJSONBase == nil || ins.Config == nil || len(hostname) < 12 {
		return false
	}
	return strings.HasPrefix(ins.ID, hostname) && ins.Config.Hostname == hostname
}

// ContainerID is the full ID of the container Slipway runs in.
func (a *Attacher) ContainerID() string { return a.id }

// Networks returns the names of the networks the container is on, sorted.
func (a *Attacher) Networks() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]string, 0, len(a.joined))
	for n := range a.joined {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func (a *Attacher) isJoined(name string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.joined[name]
}

// BackendIP is the ObserverOptions.BackendIP for a proxy in a container:
// SharedNetworkIP over the networks the container has joined.
func (a *Attacher) BackendIP(project string, networks map[string]string) string {
	return SharedNetworkIP(project, networks, a.isJoined)
}

// SharedNetworkIP chooses the address to dial from a backend container's
// networks (name → IP) when the proxy runs in a container: the IP on a
// network the proxy's container has joined (joined reports that), the
// project's own networks first. When it shares none yet (the join of a new
// project's network is still on its way), it falls back to
// ProjectNetworkIP, the network it is about to join.
func SharedNetworkIP(project string, networks map[string]string, joined func(network string) bool) string {
	shared := make(map[string]string, len(networks))
	for name, ip := range networks {
		if joined(name) {
			shared[name] = ip
		}
	}
	if ip := ProjectNetworkIP(project, shared); ip != "" {
		return ip
	}
	return ProjectNetworkIP(project, networks)
}

// Start runs the Attacher in a goroutine until ctx ends or stop is called;
// stop waits for it to finish.
func (a *Attacher) Start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = a.Run(ctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// Run keeps the container attached until ctx is done. It returns nil when
// ctx ends; a broken events stream is subscribed again (and every managed
// network listed again, since events may have been missed).
func (a *Attacher) Run(ctx context.Context) error {
	resubscribe(ctx, a.watch)
	return nil
}

// networkEventFilters selects the network events the Attacher acts on,
// and on a swarm the service events. Network events carry no labels, so a
// network is inspected to learn whether it is managed.
func networkEventFilters(swarmAware bool) filters.Args {
	f := filters.NewArgs(
		filters.Arg("type", string(events.NetworkEventType)),
		filters.Arg("event", string(events.ActionDestroy)),
		filters.Arg("event", string(events.ActionConnect)),
		filters.Arg("event", string(events.ActionDisconnect)),
	)
	if swarmAware {
		f.Add("type", string(events.ServiceEventType))
		f.Add("event", string(events.ActionCreate))
		f.Add("event", string(events.ActionUpdate))
		f.Add("event", string(events.ActionRemove))
	}
	return f
}

// watch subscribes, looks at every managed network (Sync), then follows
// the stream until it breaks. It reports whether Sync succeeded.
func (a *Attacher) watch(ctx context.Context) bool {
	evCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before listing, so that a network created during the list
	// is not missed.
	msgs, errs := a.docker.Events(evCtx, events.ListOptions{Filters: networkEventFilters(a.services != nil)})
	ok := true
	if err := a.Sync(ctx); err != nil {
		a.log.Warn("join managed networks", "err", err)
		ok = false
	}
	tick := time.NewTicker(a.retry)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ok
		case m := <-msgs:
			a.handle(ctx, m)
		case err := <-errs:
			if ctx.Err() == nil {
				a.log.Warn("docker network events stream ended; subscribing again", "err", err)
			}
			return ok
		case <-tick.C:
			a.retryPending(ctx)
			a.leaveEmpty(ctx)
		}
	}
}

// Sync refreshes the set of joined networks from the engine, joins every
// managed network that has an exposed container, and marks the joined ones
// that have none to be left after LeaveAfter.
func (a *Attacher) Sync(ctx context.Context) error {
	self, err := a.docker.ContainerInspect(ctx, a.id)
	if err != nil {
		return fmt.Errorf("inspect own container %s: %w", a.name, err)
	}
	a.setJoined(self)
	nets, err := a.docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", contract.ManagedFilter))})
	if err != nil {
		return fmt.Errorf("list managed networks: %w", err)
	}
	a.noteOwnNetworks(self, nets)
	var errs []error
	if a.services != nil {
		// On failure each network lists again (and is retried if that fails).
		if a.listed, err = a.listServices(ctx); err != nil {
			errs = append(errs, err)
		}
		defer func() { a.listed = nil }()
	}
	for _, n := range nets {
		if err := a.reconcile(ctx, n.ID, n.Name); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// noteOwnNetworks remembers the first by name of the container's networks
// that are not managed project networks.
func (a *Attacher) noteOwnNetworks(self container.InspectResponse, managed []network.Summary) {
	if self.NetworkSettings == nil {
		return
	}
	isManaged := make(map[string]bool, len(managed))
	for _, n := range managed {
		isManaged[n.Name] = true
	}
	first := ""
	for name := range self.NetworkSettings.Networks {
		if !isManaged[name] && (first == "" || name < first) {
			first = name
		}
	}
	a.mu.Lock()
	a.ownFirst = first
	a.mu.Unlock()
}

// setJoined replaces the joined set with the networks of an inspected self.
func (a *Attacher) setJoined(self container.InspectResponse) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.joined = map[string]bool{}
	if self.NetworkSettings != nil {
		for name := range self.NetworkSettings.Networks {
			a.joined[name] = true
		}
	}
}

// handle applies one network event.
func (a *Attacher) handle(ctx context.Context, m events.Message) {
	if m.Type == events.ServiceEventType {
		// A service created, scaled or removed: its tasks may be anywhere,
		// so look at every managed network.
		if err := a.Sync(ctx); err != nil {
			a.log.Warn("join managed networks after a service event", "err", err)
		}
		return
	}
	name := m.Actor.Attributes["name"]
	switch m.Action {
	case events.ActionDestroy:
		a.mu.Lock()
		delete(a.joined, name)
		delete(a.pending, m.Actor.ID)
		delete(a.empty, m.Actor.ID)
		a.mu.Unlock()
	case events.ActionConnect, events.ActionDisconnect:
		if m.Actor.Attributes["container"] == a.id {
			a.mu.Lock()
			if m.Action == events.ActionConnect {
				a.joined[name] = true
			} else {
				delete(a.joined, name)
			}
			a.mu.Unlock()
			return
		}
		joined := a.isJoined(name)
		switch {
		case m.Action == events.ActionConnect && !joined:
			// A container is starting on it: join if it is exposed. (The
			// engine does not list it on the network yet.)
			if err := a.joinFor(ctx, m.Actor.ID, name, m.Actor.Attributes["container"]); err != nil {
				a.log.Warn("follow project network", "network", name, "err", err)
			}
		case m.Action == events.ActionDisconnect && joined:
			// A container went: look again after LeaveAfter (its state may
			// not say "exited" yet).
			a.mu.Lock()
			if _, seen := a.empty[m.Actor.ID]; !seen {
				a.empty[m.Actor.ID] = emptyNetwork{name: name, since: time.Now()}
			}
			a.mu.Unlock()
		}
	}
}

// joinFor joins network id when the container connecting to it is exposed
// under the domain and the network is managed.
func (a *Attacher) joinFor(ctx context.Context, id, name, containerID string) error {
	c, err := a.docker.ContainerInspect(ctx, containerID)
	if errdefs.IsNotFound(err) {
		return nil // gone already
	}
	if err != nil {
		return a.reconcile(ctx, id, name) // judge from the network instead
	}
	if c.Config == nil || c.Config.Labels[contract.LabelManaged] != "true" ||
		!servesNetwork([]container.Summary{{ID: c.ID, Labels: c.Config.Labels}}, a.id, a.domain) {
		return nil
	}
	ins, err := a.docker.NetworkInspect(ctx, id, network.InspectOptions{})
	if errdefs.IsNotFound(err) {
		return nil
	}
	if err != nil {
		a.setPending(id, name)
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	if ins.Labels[contract.LabelManaged] != "true" {
		return nil
	}
	a.mu.Lock()
	delete(a.empty, id)
	a.mu.Unlock()
	return a.join(ctx, ins.ID, ins.Name)
}

// emptyNetwork is a joined network that may have lost its exposed
// containers, since when.
type emptyNetwork struct {
	name  string
	since time.Time
}

// reconcile looks at network id: it joins it if it is managed and a live
// container on it is exposed under the domain. Otherwise, when Slipway's
// container is on it, it leaves once LeaveAfter has passed since the
// network was first seen (or reported) without one. A failed join is
// remembered and retried.
func (a *Attacher) reconcile(ctx context.Context, id, name string) error {
	ins, err := a.docker.NetworkInspect(ctx, id, network.InspectOptions{})
	if errdefs.IsNotFound(err) {
		a.mu.Lock()
		delete(a.pending, id)
		delete(a.empty, id)
		delete(a.joined, name)
		a.mu.Unlock()
		return nil // removed meanwhile
	}
	if err != nil {
		a.setPending(id, name)
		return fmt.Errorf("inspect network %s: %w", name, err)
	}
	if ins.Labels[contract.LabelManaged] != "true" {
		a.mu.Lock()
		delete(a.pending, id)
		delete(a.empty, id)
		a.mu.Unlock()
		return nil
	}
	if a.isExcluded(id) {
		a.mu.Lock()
		delete(a.pending, id)
		delete(a.empty, id)
		_, on := ins.Containers[a.id]
		on = on || a.joined[ins.Name]
		a.mu.Unlock()
		if on {
			return a.leave(ctx, ins.ID, ins.Name)
		}
		return nil
	}
	if a.isHeld(id) {
		a.mu.Lock()
		delete(a.empty, id)
		a.mu.Unlock()
		return a.join(ctx, ins.ID, ins.Name)
	}
	exposed, err := a.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("network", ins.ID),
		filters.Arg("label", contract.ManagedFilter),
		filters.Arg("label", contract.LabelRouteHost),
	)})
	if err != nil {
		a.setPending(id, name)
		return fmt.Errorf("list the containers of network %s: %w", name, err)
	}
	serves := servesNetwork(exposed, a.id, a.domain)
	if !serves && a.services != nil {
		svcs := a.listed
		if svcs == nil {
			if svcs, err = a.listServices(ctx); err != nil {
				a.setPending(id, name)
				return fmt.Errorf("look at network %s: %w", name, err)
			}
		}
		serves = ServicesServeNetwork(svcs, ins.ID, ins.Name, a.domain)
	}
	if serves {
		a.mu.Lock()
		delete(a.empty, id)
		a.mu.Unlock()
		return a.join(ctx, ins.ID, ins.Name)
	}
	a.mu.Lock()
	delete(a.pending, id)
	_, on := ins.Containers[a.id]
	on = on || a.joined[ins.Name]
	e, seen := a.empty[id]
	held := a.held[id] > 0 // held since it was looked at above
	switch {
	case !on || held:
		delete(a.empty, id)
	case !seen:
		a.empty[id] = emptyNetwork{name: ins.Name, since: time.Now()}
	}
	a.mu.Unlock()
	if on && seen && !held && time.Since(e.since) >= a.leaveAfter {
		return a.leave(ctx, ins.ID, ins.Name)
	}
	return nil
}

// leaveEmpty looks again at the joined networks seen empty, and leaves
// those still empty after LeaveAfter.
func (a *Attacher) leaveEmpty(ctx context.Context) {
	a.mu.Lock()
	todo := make(map[string]emptyNetwork, len(a.empty))
	for id, e := range a.empty {
		if time.Since(e.since) >= a.leaveAfter {
			todo[id] = e
		}
	}
	a.mu.Unlock()
	for id, e := range todo {
		if err := a.reconcile(ctx, id, e.name); err != nil {
			a.log.Warn("leave project network", "network", e.name, "err", err)
		}
	}
}

// servesNetwork reports whether the proxy needs a network: one of the
// containers on it (other than the proxy's own) is live — created,
// starting, running, restarting or paused, not stopped — and exposed under
// domain (any domain when empty).
func servesNetwork(containers []container.Summary, self, domain string) bool {
	for _, c := range containers {
		switch c.State {
		case container.StateExited, container.StateDead, container.StateRemoving:
			continue
		}
		if c.ID == self {
			continue
		}
		host := contract.NormalizeHost(c.Labels[contract.LabelRouteHost])
		if host != "" && (domain == "" || host == domain || strings.HasSuffix(host, "."+domain)) {
			return true
		}
	}
	return false
}

// listServices lists the managed swarm services (never nil on success).
func (a *Attacher) listServices(ctx context.Context) ([]swarm.Service, error) {
	svcs, err := a.services.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", contract.ManagedFilter))})
	if err != nil {
		return nil, fmt.Errorf("list managed services: %w", err)
	}
	if svcs == nil {
		svcs = []swarm.Service{}
	}
	return svcs, nil
}

// ServicesServeNetwork is servesNetwork for a swarm: whether one of the
// services is attached to the network (by ID or name), has tasks to run
// (replicas above 0, or global) and its containers are exposed under
// domain (any domain when empty). Pure.
func ServicesServeNetwork(svcs []swarm.Service, netID, netName, domain string) bool {
	for _, s := range svcs {
		cs := s.Spec.TaskTemplate.ContainerSpec
		if cs == nil || cs.Labels[contract.LabelManaged] != "true" {
			continue
		}
		host := contract.NormalizeHost(cs.Labels[contract.LabelRouteHost])
		if host == "" || domain != "" && host != domain && !strings.HasSuffix(host, "."+domain) {
			continue
		}
		m := s.Spec.Mode
		switch {
		case m.Global != nil:
		case m.Replicated != nil && (m.Replicated.Replicas == nil || *m.Replicated.Replicas > 0):
		default:
			continue
		}
		for _, n := range s.Spec.TaskTemplate.Networks {
			if n.Target == netID || n.Target == netName {
				return true
			}
		}
	}
	return false
}

// join connects the container to a network unless it is on it already. A
// failure other than "gone" is remembered and retried.
func (a *Attacher) join(ctx context.Context, id, name string) error {
	if a.isJoined(name) || a.isExcluded(id) {
		return nil
	}
	// GwPriority below the default keeps the default route (and the
	// published ports, which follow it) on Slipway's own network, on
	// engines that honour it (API 1.48+). Older engines pick the gateway
	// network by name: see warnGateway.
	err := a.docker.NetworkConnect(ctx, id, a.id, &network.EndpointSettings{GwPriority: joinedGwPriority})
	switch {
	case err == nil || isAlreadyConnected(err):
		a.mu.Lock()
		a.joined[name] = true
		delete(a.pending, id)
		excluded := a.excluded[id] > 0
		a.mu.Unlock()
		if excluded {
			// Excluded while it connected: Exclude may have looked
			// before the connection was there.
			return a.leave(ctx, id, name)
		}
		if err == nil {
			a.log.Info("joined project network", "network", name)
			a.warnGateway(name)
		}
		return nil
	case errdefs.IsNotFound(err):
		a.mu.Lock()
		delete(a.pending, id)
		a.mu.Unlock()
		return nil // removed meanwhile
	}
	a.setPending(id, name)
	return fmt.Errorf("connect %s to network %s: %w", a.name, name, err)
}

// leave disconnects the container from a network with no exposed
// containers, or an excluded one. A network a Hold took meanwhile (and
// found joined, so did not connect) is joined again.
func (a *Attacher) leave(ctx context.Context, id, name string) error {
	err := a.docker.NetworkDisconnect(ctx, id, a.id, false)
	if err != nil && !errdefs.IsNotFound(err) && !strings.Contains(err.Error(), "is not connected") {
		return fmt.Errorf("disconnect %s from network %s: %w", a.name, name, err)
	}
	a.mu.Lock()
	delete(a.joined, name)
	delete(a.empty, id)
	excluded := a.excluded[id] > 0
	rejoin := a.held[id] > 0 && !excluded
	a.mu.Unlock()
	if err == nil {
		if excluded {
			a.log.Info("left project network: it is being removed", "network", name)
		} else {
			a.log.Info("left project network: no exposed container left on it", "network", name)
		}
	}
	if rejoin {
		return a.join(ctx, id, name)
	}
	return nil
}

func (a *Attacher) setPending(id, name string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.pending[id] = name
}

// retryPending looks again at the networks whose join failed.
func (a *Attacher) retryPending(ctx context.Context) {
	a.mu.Lock()
	todo := make(map[string]string, len(a.pending))
	for id, name := range a.pending {
		todo[id] = name
	}
	a.mu.Unlock()
	for id, name := range todo {
		if err := a.reconcile(ctx, id, name); err != nil {
			a.log.Warn("join network", "network", name, "err", err)
		}
	}
}

// joinedGwPriority is the gateway priority of the endpoints the Attacher
// adds: lower than the default 0 of the container's own networks.
const joinedGwPriority = -1

// warnGateway warns, once, when a joined network sorts by name before
// every network Slipway's container was started on. Engines before API
// 1.48 ignore GwPriority and make the network that sorts first the
// container's gateway: its default route and its published ports move to
// the project's network while it exists (and briefly stop answering at
// each move). Naming Slipway's network so that it sorts first ("0-slipway",
// as docker-compose.yml does) avoids it.
func (a *Attacher) warnGateway(joined string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.warnedGateway || a.ownFirst == "" || joined >= a.ownFirst {
		return
	}
	a.warnedGateway = true
	a.log.Warn("a project network sorts before Slipway's own network: on Docker Engine before 28 the container's default route and published ports move to it; name Slipway's network so that it sorts first, e.g. 0-slipway (see docs/container.md)",
		"own_network", a.ownFirst, "project_network", joined)
}

// isAlreadyConnected recognises the engine's answer to connecting a
// container to a network it is already on ("endpoint with name … already
// exists in network …", 403 on Engine 20.10).
func isAlreadyConnected(err error) bool {
	return err != nil && strings.Contains(err.Error(), "already exists in network")
}
