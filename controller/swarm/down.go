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
	// (the proxy's container) leaves them before the tasks go: a container
	// killed while a task of an overlay it is on is being removed cannot
	// be started again (Docker 20.10 answers "network … not found" and
	// keeps its attachment), and Slipway's own container is such a one.
	if err := e.detachOthers(ctx, project); err != nil {
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
	if err := e.removeNetworks(ctx, project); err != nil {
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

// detachOthers disconnects from project's networks, on this node, every
// container that is not a swarm task.
func (e *Engine) detachOthers(ctx context.Context, project string) error {
	nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: namespaceFilter(project)})
	if err != nil {
		return fmt.Errorf("list networks of %s: %w", project, err)
	}
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
			if err := e.docker.NetworkDisconnect(ctx, n.ID, c.ID, true); err != nil && !errdefs.IsNotFound(err) && !strings.Contains(err.Error(), "is not connected") {
				errs = append(errs, fmt.Errorf("disconnect %s from network %s: %w", strings.TrimPrefix(firstName(c.Names), "/"), n.Name, err))
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
// every removal went through it looks again at once (Swarm may have
// started another task meanwhile); otherwise after PollInterval.
func (e *Engine) removeTaskContainers(ctx context.Context, f filters.Args) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
	defer cancel()
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
			next = min(next, followUpInterval)
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

// removeNetworks removes the project's networks, detaching what else is
// attached (the proxy, a test's probe), and retrying while the swarm
// still releases the endpoints of removed tasks, until none is listed: a
// node drops its copy of a removed overlay network a moment after the
// manager removed it, which is looked for every followUpInterval once
// every removal went through.
func (e *Engine) removeNetworks(ctx context.Context, project string) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
	defer cancel()
	for {
		nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: namespaceFilter(project)})
		if err != nil {
			return fmt.Errorf("list networks of %s: %w", project, err)
		}
		if len(nets) == 0 {
			return nil
		}
		errs := []error{fmt.Errorf("%d networks of %s still listed", len(nets), project)}
		next := followUpInterval
		for _, n := range nets {
			if ins, err := e.docker.NetworkInspect(ctx, n.ID, network.InspectOptions{}); err == nil {
				for id := range ins.Containers {
					if len(id) == 64 { // a container, not a load-balancer endpoint
						_ = e.docker.NetworkDisconnect(ctx, n.ID, id, true)
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
