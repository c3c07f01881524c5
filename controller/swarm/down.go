package swarm

import (
	"context"
	"errors"
	"fmt"
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
	f := namespaceFilter(project)
	var errs []error
	svcs, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return fmt.Errorf("list services of %s: %w", project, err)
	}
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
	if e.opts.Registry != nil && e.opts.Registry.Address != "" {
		if err := e.opts.Registry.DeleteProject(ctx, project); err != nil {
			errs = append(errs, fmt.Errorf("delete the registry tags of %s: %w", project, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("down %s: %w", project, err)
	}
	return nil
}

// waitTasksGone removes the task containers of project left on this node
// once their services are gone (Swarm keeps those of completed jobs), and
// waits until none is left (bounded by ReadyTimeout).
func (e *Engine) waitTasksGone(ctx context.Context, project string) error {
	return e.removeTaskContainers(ctx, filters.NewArgs(filters.Arg("label", contract.ManagedFilter), filters.Arg("label", LabelNamespace+"="+project)))
}

// removeTaskContainers force-removes the containers f selects until none
// is left, or ReadyTimeout passes.
func (e *Engine) removeTaskContainers(ctx context.Context, f filters.Args) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
	defer cancel()
	for {
		cs, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		if err == nil && len(cs) == 0 {
			return nil
		}
		for _, c := range cs {
			// Swarm may be removing it too: any error is looked at again on the next listing.
			_ = e.docker.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("list task containers: %w", err)
			}
			return fmt.Errorf("%d task containers still there after %s", len(cs), e.opts.ReadyTimeout)
		case <-time.After(e.opts.PollInterval):
		}
	}
}

// removeNetworks removes the project's networks, detaching what else is
// attached (the proxy, a test's probe), and retrying while the swarm
// still releases the endpoints of removed tasks, until none is listed: a
// node drops its copy of a removed overlay network a moment after the
// manager removed it.
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
			}
		}
		select {
		case <-ctx.Done():
			return errors.Join(errs...)
		case <-time.After(e.opts.PollInterval):
		}
	}
}
