package swarm

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/docker/docker/api/types/swarm"

	"github.com/slipwayhq/slipway/internal/contract"
)

// labelReplicas keeps, on a sleeping service, the replicas Start restores.
const labelReplicas = contract.SlipwayLabelPrefix + "sleep.replicas"

// Stop scales every replicated service of project to 0 (sleep_after);
// nothing is removed, and Start brings them back. Jobs that completed stay
// completed.
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
		if _, err := e.docker.ServiceUpdate(ctx, s.ID, s.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("scale service %s to 0: %w", s.Spec.Name, err))
		}
	}
	return errors.Join(errs...)
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
		if _, err := e.docker.ServiceUpdate(ctx, s.ID, s.Version, spec, swarm.ServiceUpdateOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("scale service %s to %d: %w", s.Spec.Name, n, err))
			continue
		}
		started = append(started, s)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, s := range started {
		if err := e.waitService(ctx, s.ID, "service_healthy"); err != nil {
			return fmt.Errorf("start %s: %w", s.Spec.Name, err)
		}
	}
	return nil
}
