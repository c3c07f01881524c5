package stack

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"golang.org/x/sync/errgroup"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Stop stops every running container of project (sleep_after): nothing is
// removed, and Start brings it back as it was.
func (e *Engine) Stop(ctx context.Context, project string) error {
	cs, err := e.projectContainers(ctx, project)
	if err != nil {
		return err
	}
	// All at once: a stack sleeps in one stop timeout, not one per
	// container. Nothing depends on the order: nothing is removed, and
	// Start brings them back in dependency order.
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	timeout := int(e.opts.StopTimeout.Seconds())
	for name, c := range cs {
		if c.State != container.StateRunning {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := e.docker.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil && !errdefs.IsNotFound(err) {
				mu.Lock()
				errs = append(errs, fmt.Errorf("stop container %s: %w", name, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Start starts the stopped containers of project and waits until they
// are ready. One-shot containers that completed are left alone. Services
// start as early as their depends_on labels allow, all the others at
// once: a service starts once each of its dependencies has started, is
// healthy (service_healthy, its own check's first pass counting, as in
// Up) or has completed (service_completed_successfully).
func (e *Engine) Start(ctx context.Context, project string) error {
	cs, err := e.projectContainers(ctx, project)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return fmt.Errorf("project %s has no containers", project)
	}
	byService := map[string][]container.Summary{}
	labels := map[string]string{}
	var ids []string
	for _, c := range cs {
		svc := c.Labels[contract.LabelService]
		byService[svc] = append(byService[svc], c)
		labels[svc] = c.Labels[contract.LabelDependsOn]
		ids = append(ids, c.ID)
	}
	deps, err := startDependencies(labels)
	if err != nil {
		return fmt.Errorf("start %s: %w", project, err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	begun := time.Now()
	started := make(map[string]chan struct{}, len(byService))
	for svc := range byService {
		started[svc] = make(chan struct{})
	}
	idsOf := func(svc string) []string {
		var out []string
		for _, c := range byService[svc] {
			out = append(out, c.ID)
		}
		return out
	}
	var wg sync.WaitGroup
	for svc, containers := range byService {
		wg.Add(1)
		go func() {
			defer wg.Done()
			log := e.log.With("project", project, "service", svc)
			if err := e.awaitStartDependencies(ctx, deps[svc], started, idsOf); err != nil {
				// After another service's failure, the first cause stays.
				cancel(fmt.Errorf("service %s: dependency %w", svc, err))
				return
			}
			for _, c := range containers {
				if c.State == container.StateRunning || completed(c) {
					continue
				}
				t := time.Now()
				if err := e.docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
					cancel(fmt.Errorf("start container %s: %w", containerName(c), err))
					return
				}
				log.Debug("start: container started", "container", containerName(c), "took", time.Since(t), "at", time.Since(begun))
			}
			close(started[svc])
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	e.log.Debug("start: every service started", "project", project, "at", time.Since(begun))
	return e.waitReady(ctx, ids, nil)
}

// awaitStartDependencies waits until each of deps is met: started (its
// containers' starts returned), then healthy or completed where the
// condition says so. The dependencies are waited for at once, not one
// after another, so a completed job is looked at while another
// dependency still starts.
func (e *Engine) awaitStartDependencies(ctx context.Context, deps []startDependency, started map[string]chan struct{}, idsOf func(string) []string) error {
	g, gctx := errgroup.WithContext(ctx)
	for _, d := range deps {
		g.Go(func() error {
			select {
			case <-started[d.service]:
			case <-gctx.Done():
				return context.Cause(gctx)
			}
			if d.condition == types.ServiceConditionHealthy || d.condition == types.ServiceConditionCompletedSuccessfully {
				return e.waitCondition(gctx, d.service, idsOf(d.service), d.condition, nil)
			}
			return nil
		})
	}
	return g.Wait()
}

// startDependency is one depends_on entry of a service, as its label
// records it.
type startDependency struct {
	service, condition string
}

// startDependencies reads each service's depends_on label
// ("db:service_healthy:false,...") into the dependencies Start waits for,
// keeping only services of the project (a dependency left out by a
// profile is not waited for). A cycle, which compose never creates, is
// refused rather than waited on forever. Pure.
func startDependencies(labels map[string]string) (map[string][]startDependency, error) {
	deps := make(map[string][]startDependency, len(labels))
	for svc, label := range labels {
		for _, part := range strings.Split(label, ",") {
			name, rest, _ := strings.Cut(part, ":")
			cond, _, _ := strings.Cut(rest, ":")
			if _, ok := labels[name]; !ok || name == "" {
				continue
			}
			if cond == "" {
				cond = types.ServiceConditionStarted
			}
			deps[svc] = append(deps[svc], startDependency{service: name, condition: cond})
		}
		slices.SortFunc(deps[svc], func(a, b startDependency) int { return strings.Compare(a.service, b.service) })
	}
	// Depth-first: a service met again while its own dependencies are
	// being walked closes a cycle.
	const (
		unvisited = iota
		walking
		done
	)
	state := map[string]int{}
	var walk func(svc string, path []string) error
	walk = func(svc string, path []string) error {
		switch state[svc] {
		case walking:
			return fmt.Errorf("depends_on labels form a cycle: %s", strings.Join(append(path, svc), " → "))
		case done:
			return nil
		}
		state[svc] = walking
		for _, d := range deps[svc] {
			if err := walk(d.service, append(path, svc)); err != nil {
				return err
			}
		}
		state[svc] = done
		return nil
	}
	for _, svc := range slices.Sorted(maps.Keys(labels)) {
		if err := walk(svc, nil); err != nil {
			return nil, err
		}
	}
	return deps, nil
}
