package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipwayhq/slipway/internal/contract"
)

// labelReplicas keeps, on a sleeping service, the replicas Start restores.
const labelReplicas = contract.SlipwayLabelPrefix + "sleep.replicas"

// Stop scales every replicated service of project to 0 (sleep_after) and
// waits until their tasks have stopped; nothing is removed, and Start
// brings them back. Jobs that completed stay completed.
func (e *Engine) Stop(ctx context.Context, project string) error {
	svcs, err := e.services(ctx, project)
	if err != nil {
		return err
	}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(svcs)) {
		s := svcs[name]
		n := replicas(s.Spec.Mode)
		if n <= 0 {
			continue
		}
		spec := s.Spec
		spec.Labels = maps.Clone(spec.Labels)
		spec.Labels[labelReplicas] = strconv.FormatInt(n, 10)
		zero := uint64(0)
		spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &zero}}
		if _, err := e.docker.ServiceUpdate(ctx, s.ID, s.Version, spec, e.updateOptions(spec)); err != nil {
			errs = append(errs, fmt.Errorf("scale service %s to 0: %w", s.Spec.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return e.waitStopped(ctx, project)
}

// waitStopped waits until no task of project's services still runs
// (bounded by ReadyTimeout).
func (e *Engine) waitStopped(ctx context.Context, project string) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", LabelNamespace+"="+project))
	for {
		tasks, err := e.docker.TaskList(ctx, swarm.TaskListOptions{Filters: f})
		if err == nil && liveTasks(tasks) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			if err != nil {
				return fmt.Errorf("list tasks of %s: %w", project, err)
			}
			return fmt.Errorf("%d tasks of %s still run after %s", liveTasks(tasks), project, e.opts.ReadyTimeout)
		case <-time.After(e.opts.PollInterval):
		}
	}
}

// liveTasks counts the tasks that run or are on their way to. Pure.
func liveTasks(tasks []swarm.Task) int {
	n := 0
	for _, t := range tasks {
		switch t.Status.State {
		case swarm.TaskStateComplete, swarm.TaskStateShutdown, swarm.TaskStateFailed, swarm.TaskStateRejected,
			swarm.TaskStateRemove, swarm.TaskStateOrphaned:
		default:
			n++
		}
	}
	return n
}

// Start scales the services Stop scaled down back to their replicas, and
// waits until they run (healthy where they have a healthcheck).
func (e *Engine) Start(ctx context.Context, project string) error {
	svcs, err := e.services(ctx, project)
	if err != nil {
		return err
	}
	if len(svcs) == 0 {
		return fmt.Errorf("project %s has no services", project)
	}
	var errs []error
	var started []swarm.Service
	for _, name := range slices.Sorted(maps.Keys(svcs)) {
		s := svcs[name]
		v, ok := s.Spec.Labels[labelReplicas]
		if !ok {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("service %s: label %s=%q: %w", s.Spec.Name, labelReplicas, v, err))
			continue
		}
		spec := s.Spec
		spec.Labels = maps.Clone(spec.Labels)
		delete(spec.Labels, labelReplicas)
		spec.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}}
		if _, err := e.docker.ServiceUpdate(ctx, s.ID, s.Version, spec, e.updateOptions(spec)); err != nil {
			errs = append(errs, fmt.Errorf("scale service %s to %d: %w", s.Spec.Name, n, err))
			continue
		}
		started = append(started, s)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// The routed services' checks run on the node Slipway talks to, so the
	// proxy serves a woken task at its first passing check (checkNode).
	node := ""
	if info, err := e.docker.Info(ctx); err == nil {
		node = info.Swarm.NodeID
	}
	for _, s := range started {
		if err := e.waitService(ctx, s.ID, conditionReady, e.checkNode(s.Spec, node)); err != nil {
			return fmt.Errorf("start %s: %w", s.Spec.Name, err)
		}
	}
	return nil
}
