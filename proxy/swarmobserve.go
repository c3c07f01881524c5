package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipwayhq/slipway/internal/contract"
)

// SwarmAPI is the part of the Docker client the SwarmObserver uses.
// *client.Client satisfies it.
type SwarmAPI interface {
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
}

// SwarmObserverOptions configures a SwarmObserver.
type SwarmObserverOptions struct {
	// Poll is how often services and tasks are listed again whatever
	// events arrived: Swarm emits no event when a task changes state (on
	// another node, a task turning healthy says nothing here). Default 2s.
	Poll time.Duration
	// BackendIP chooses the address to dial from a task's networks
	// (network name → IP). Default ProjectNetworkIP.
	BackendIP func(project string, networks map[string]string) string
	// Logger; nil discards logs.
	Logger *slog.Logger
}

// SwarmObserver is the Observer of a swarm: it fills Routes from the
// managed services and their tasks, listed through the Swarm API and
// turned into Containers by the pure TaskContainers. It lists them at
// start, again on every service event (create, update, remove) and on
// every event of a managed container on this node (a local task starting,
// dying or turning healthy), and every Poll, since task state changes are
// not evented. When the events stream breaks it subscribes again and
// lists again. A failed list leaves the table as it was.
type SwarmObserver struct {
	docker    SwarmAPI
	routes    *Routes
	log       *slog.Logger
	poll      time.Duration
	backendIP func(string, map[string]string) string

	logged     map[string]bool // task problems already logged; owned by Run
	last       []Container     // the set last handed to routes; owned by Run
	syncedOnce sync.Once
	synced     chan struct{}
}

// NewSwarmObserver returns a SwarmObserver feeding routes from docker.
func NewSwarmObserver(docker SwarmAPI, routes *Routes, opts SwarmObserverOptions) *SwarmObserver {
	if opts.Poll <= 0 {
		opts.Poll = 2 * time.Second
	}
	if opts.BackendIP == nil {
		opts.BackendIP = ProjectNetworkIP
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &SwarmObserver{
		docker:    docker,
		routes:    routes,
		log:       opts.Logger,
		poll:      opts.Poll,
		backendIP: opts.BackendIP,
		logged:    map[string]bool{},
		synced:    make(chan struct{}),
	}
}

// Synced is closed once the first full list has reached the table.
func (o *SwarmObserver) Synced() <-chan struct{} { return o.synced }

// Run observes the swarm until ctx is done. It returns nil when ctx ends;
// it never gives up on a broken connection.
func (o *SwarmObserver) Run(ctx context.Context) error {
	resubscribe(ctx, o.watch)
	return nil
}

// swarmEventFilters selects the events after which the swarm is listed
// again: any service event, and the events of managed containers on this
// node that change routes.
func swarmEventFilters() filters.Args {
	return filters.NewArgs(
		filters.Arg("type", string(events.ServiceEventType)),
		filters.Arg("type", string(events.ContainerEventType)),
	)
}

// relevant reports whether an event from the stream calls for a list.
func relevant(m events.Message) bool {
	switch m.Type {
	case events.ServiceEventType:
		return true
	case events.ContainerEventType:
		if m.Actor.Attributes[contract.LabelManaged] != "true" {
			return false
		}
		switch m.Action {
		case events.ActionStart, events.ActionDie, events.ActionStop, events.ActionDestroy:
			return true
		}
		return strings.HasPrefix(string(m.Action), string(events.ActionHealthStatus))
	}
	return false
}

// watch subscribes to events, lists, and follows the stream until it
// breaks. It reports whether a list or an event succeeded.
func (o *SwarmObserver) watch(ctx context.Context) bool {
	evCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before listing, so that nothing happening during the list
	// is missed.
	msgs, errs := o.docker.Events(evCtx, events.ListOptions{Filters: swarmEventFilters()})
	progressed := false
	if err := o.relist(ctx); err != nil {
		o.log.Warn("list swarm services", "err", err)
	} else {
		progressed = true
	}
	tick := time.NewTicker(o.poll)
	defer tick.Stop()
	// Swarm records a task's new state a moment after its container's
	// event (the agent reports to the manager): after each relevant event
	// the swarm is listed again a few times in quick succession, so that a
	// task turning healthy is routed then rather than at the next poll.
	var followUp *time.Timer
	followUps := 0
	follow := func() <-chan time.Time {
		if followUp == nil {
			return nil
		}
		return followUp.C
	}
	defer func() {
		if followUp != nil {
			followUp.Stop()
		}
	}()
	for {
		select {
		case <-ctx.Done():
			return progressed
		case <-follow():
			if err := o.relist(ctx); err != nil {
				o.log.Warn("list swarm services after event", "err", err)
			}
			followUp = nil
			if followUps++; followUps < len(eventFollowUps) {
				followUp = time.NewTimer(eventFollowUps[followUps])
			}
		case m := <-msgs:
			progressed = true
			if !relevant(m) {
				continue
			}
			o.drain(msgs)
			if err := o.relist(ctx); err != nil {
				o.log.Warn("list swarm services after event", "event", string(m.Type)+" "+string(m.Action), "err", err)
			}
			if followUp != nil {
				followUp.Stop()
			}
			followUps, followUp = 0, time.NewTimer(eventFollowUps[0])
		case err := <-errs:
			if ctx.Err() == nil {
				o.log.Warn("docker events stream ended; subscribing again", "err", err)
			}
			return progressed
		case <-tick.C:
			if err := o.relist(ctx); err != nil {
				o.log.Warn("resync swarm services", "err", err)
			}
		}
	}
}

// eventFollowUps are the pauses before each list that follows a relevant
// event (750 ms in all).
var eventFollowUps = []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}

// drain takes the events already waiting, so that a burst (a deploy's
// creates and updates) makes one list, not one per event.
func (o *SwarmObserver) drain(msgs <-chan events.Message) {
	for {
		select {
		case <-msgs:
		default:
			return
		}
	}
}

// relist lists the managed services and the tasks the swarm wants running,
// and replaces the table's container set. On error the table is left as
// it was.
func (o *SwarmObserver) relist(ctx context.Context) error {
	svcs, err := o.docker.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", contract.ManagedFilter))})
	if err != nil {
		return fmt.Errorf("list services: %w", err)
	}
	var tasks []swarm.Task
	if len(svcs) > 0 {
		tasks, err = o.docker.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("desired-state", string(swarm.TaskStateRunning)))})
		if err != nil {
			return fmt.Errorf("list tasks: %w", err)
		}
	}
	cs, problems := TaskContainers(svcs, tasks, o.backendIP)
	seen := make(map[string]bool, len(problems))
	for _, p := range problems {
		key := p.String()
		seen[key] = true
		if !o.logged[key] {
			o.log.Warn("swarm task skipped", "subject", p.Subject, "project", p.Project, "host", p.Host, "reason", p.Reason)
		}
	}
	o.logged = seen
	// A poll that finds nothing new leaves the table (and its subscribers)
	// alone.
	if o.last == nil || !slices.Equal(cs, o.last) {
		o.last = cs
		if o.last == nil {
			o.last = []Container{}
		}
		o.routes.ReplaceContainers(cs)
	}
	o.syncedOnce.Do(func() { close(o.synced) })
	return nil
}
