package swarm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Down removes every service, network, secret, config and volume Slipway
// made for project, the project's images on this node, and its tags in the
// registry. Objects without our managed label are never touched. It is
// idempotent: a project that does not exist is not an error.
//
// Volumes are node-local: Down removes those on the node it talks to,
// which is where stateful services are pinned (see docs/swarm.md).
func (e *Engine) Down(ctx context.Context, project string) error {
	// The registry's tags are deleted meanwhile: nothing on the swarm
	// waits for them, nor they for it.
	registry := make(chan error, 1)
	if r := e.opts.Registry; r != nil && r.Address != "" {
		go func() {
			if err := r.DeleteProject(ctx, project); err != nil {
				registry <- fmt.Errorf("delete the registry tags of %s: %w", project, err)
				return
			}
			registry <- nil
		}()
	} else {
		registry <- nil
	}
	err := e.downSwarm(ctx, project)
	if err = errors.Join(err, <-registry); err != nil {
		return fmt.Errorf("down %s: %w", project, err)
	}
	return nil
}

// downSwarm is Down but for the registry: the project's services, then
// (once their tasks are gone) its secrets, configs and networks, then
// what is left on this node.
func (e *Engine) downSwarm(ctx context.Context, project string) error {
	f := namespaceFilter(project)
	var errs []error
	svcs, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("list services of %s: %w", project, err)
	}
	// What is on the project's networks without being one of its tasks
	// (the proxy's container) leaves them before the tasks go, and the
	// proxy keeps off them (Options.Proxy) while the services go one by
	// one: a container killed while a task of an overlay it is on is
	// being removed cannot be started again (Docker 20.10 answers
	// "network … not found" and keeps its attachment), and Slipway's own
	// container is such a one.
	nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks of %s: %w", project, err))
	}
	done, err := e.keepOff(ctx, nets)
	defer done()
	if err != nil {
		errs = append(errs, err)
	}
	// Routed services first: a proxy that looks at the networks once one
	// service is gone finds none it would join again (ServicesServeNetwork).
	slices.SortStableFunc(svcs, func(a, b swarm.Service) int { return routedFirst(a) - routedFirst(b) })
	for _, s := range svcs {
		if err := e.docker.ServiceRemove(ctx, s.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove service %s: %w", s.Spec.Name, err))
		}
	}
	// The tasks' containers go after their services, asynchronously; the
	// networks, secrets and volumes they use cannot go before them.
	if err := e.waitTasksGone(ctx, project); err != nil {
		errs = append(errs, err)
	}
	secrets, err := e.docker.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list secrets of %s: %w", project, err))
	}
	for _, s := range secrets {
		if err := e.docker.SecretRemove(ctx, s.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove secret %s: %w", s.Spec.Name, err))
		}
	}
	configs, err := e.docker.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list configs of %s: %w", project, err))
	}
	for _, c := range configs {
		if err := e.docker.ConfigRemove(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove config %s: %w", c.Spec.Name, err))
		}
	}
	if err := e.removeNetworks(ctx, e.projectNetworks(project)); err != nil {
		errs = append(errs, err)
	}
	// What is left on this node carries the compose labels as on one host:
	// the volumes the tasks made, the images built and pushed, anything an
	// interrupted build left.
	if err := e.builder.Down(ctx, project); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// routedFirst sorts routed services (0) before the others (1).
func routedFirst(s swarm.Service) int {
	if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil && cs.Labels[contract.LabelRouteHost] != "" {
		return 0
	}
	return 1
}

// keepOff readies nets for the removal of tasks on them: the proxy's
// container leaves them and keeps off them until done, and every other
// container that is not a task is detached. Down does it before it
// removes a service, a rollback before it touches one, and Up before it
// moves services off networks the plan no longer has.
func (e *Engine) keepOff(ctx context.Context, nets []network.Summary) (done func(), err error) {
	done = e.keepProxyOff(ctx, nets)
	return done, e.detachOthers(ctx, nets)
}

// keepProxyOff has the proxy's container leave nets and keep off them
// until done (Options.Proxy); without a proxy it does nothing.
func (e *Engine) keepProxyOff(ctx context.Context, nets []network.Summary) (done func()) {
	if e.opts.Proxy == nil || len(nets) == 0 {
		return func() {}
	}
	ids := make([]string, 0, len(nets))
	for _, n := range nets {
		ids = append(ids, n.ID)
	}
	return e.opts.Proxy.Exclude(ctx, ids)
}

// detachOthers disconnects from nets, on this node, every container that
// is not a swarm task.
func (e *Engine) detachOthers(ctx context.Context, nets []network.Summary) error {
	var errs []error
	for _, n := range nets {
		cs, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("network", n.ID))})
		if err != nil {
			errs = append(errs, fmt.Errorf("list the containers on network %s: %w", n.Name, err))
			continue
		}
		for _, c := range cs {
			if c.Labels[swarmTaskLabel] != "" {
				continue
			}
			name := strings.TrimPrefix(firstName(c.Names), "/")
			err := e.docker.NetworkDisconnect(ctx, n.ID, c.ID, true)
			switch {
			case err == nil:
				e.log.Info("detached a container from a network about to lose tasks", "network", n.Name, "container", name)
			case !errdefs.IsNotFound(err) && !strings.Contains(err.Error(), "is not connected"):
				errs = append(errs, fmt.Errorf("disconnect %s from network %s: %w", name, n.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// swarmTaskLabel is on the container of every swarm task.
const swarmTaskLabel = "com.docker.swarm.task.id"

func firstName(names []string) string {
	if len(names) == 0 {
		return ""
	}
	return names[0]
}

// waitTasksGone removes the task containers of project left on this node
// once their services are gone (Swarm keeps those of completed jobs), and
// waits until none is left (bounded by ReadyTimeout).
func (e *Engine) waitTasksGone(ctx context.Context, project string) error {
	return e.removeTaskContainers(ctx, filters.NewArgs(filters.Arg("label", contract.ManagedFilter), filters.Arg("label", LabelNamespace+"="+project)))
}

// removeTaskContainers force-removes the containers f selects, all at
// once, until none is left, or ReadyTimeout passes. After a round in which
// every removal went through it looks again soon (Swarm may have started
// another task meanwhile), backing off from followUpInterval to
// PollInterval; after a failed round, PollInterval.
func (e *Engine) removeTaskContainers(ctx context.Context, f filters.Args) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
	defer cancel()
	soon := e.backoff()
	for {
		cs, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err == nil && len(cs) == 0 {
			return nil
		}
		var (
			removing sync.WaitGroup
			failed   atomic.Bool
		)
		for _, c := range cs {
			removing.Add(1)
			go func() {
				defer removing.Done()
				// Swarm may be removing it too: any error is looked at again on the next listing.
				if err := e.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
					failed.Store(true)
				}
			}()
		}
		removing.Wait()
		next := e.opts.PollInterval
		if err == nil && !failed.Load() {
			next = soon()
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("list task containers: %w", err)
			}
			return fmt.Errorf("%d task containers still there after %s", len(cs), e.opts.ReadyTimeout)
		case <-time.After(next):
		}
	}
}

// projectNetworks lists project's networks, for removeNetworks.
func (e *Engine) projectNetworks(project string) func(context.Context) ([]network.Summary, error) {
	return func(ctx context.Context) ([]network.Summary, error) {
		nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: namespaceFilter(project)})
		if err != nil {
			return nil, fmt.Errorf("list networks of %s: %w", project, err)
		}
		return nets, nil
	}
}

// removeNetworks removes the networks list returns, with the proxy kept
// off them, detaching what else is attached (the proxy, a test's probe),
// and retrying while the swarm still releases the endpoints of removed
// tasks, until list returns none (or ReadyTimeout passes): a node drops
// its copy of a removed overlay network a moment after the manager
// removed it, which is looked for soon (backing off from
// followUpInterval) once every removal went through.
func (e *Engine) removeNetworks(ctx context.Context, list func(context.Context) ([]network.Summary, error)) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
	defer cancel()
	soon := e.backoff()
	for first := true; ; first = false {
		nets, err := list(ctx)
		if err != nil {
			return err
		}
		if len(nets) == 0 {
			return nil
		}
		if first {
			done := e.keepProxyOff(ctx, nets)
			defer done()
		}
		errs := []error{fmt.Errorf("%d networks still listed: %s", len(nets), networkNames(nets))}
		next := soon()
		for _, n := range nets {
			if ins, err := e.docker.NetworkInspect(ctx, n.ID, network.InspectOptions{}); err == nil {
				for id, ep := range ins.Containers {
					if !isContainerID(id) { // a load-balancer endpoint
						continue
					}
					if err := e.docker.NetworkDisconnect(ctx, n.ID, id, true); err != nil {
						e.log.Debug("detach from a network being removed", "network", n.Name, "container", ep.Name, "err", err)
					} else {
						e.log.Info("detached a container from a network being removed", "network", n.Name, "container", ep.Name)
					}
				}
			}
			if err := e.docker.NetworkRemove(ctx, n.ID); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
				next = e.opts.PollInterval
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(errs...)
		case <-time.After(next):
		}
	}
}

// networkNames joins the names of nets, for an error.
func networkNames(nets []network.Summary) string {
	names := make([]string, 0, len(nets))
	for _, n := range nets {
		names = append(names, n.Name)
	}
	return strings.Join(names, ", ")
}

// backoff returns the successive waits before looking again at what goes
// soon: followUpInterval, doubling up to PollInterval.
func (e *Engine) backoff() func() time.Duration {
	next := followUpInterval
	return func() time.Duration {
		d := min(next, e.opts.PollInterval)
		next *= 2
		return d
	}
}

// isContainerID reports whether s is a full container ID (64 lower-case
// hex digits), as a network lists its containers' endpoints, and not an
// endpoint of Swarm's own ("lb-<network>", "ingress-sbox").
func isContainerID(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
