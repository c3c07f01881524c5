package stack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

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

// Start starts the stopped containers of project in dependency order of
// their depends_on labels and waits until they are ready. One-shot
// containers that completed are left alone.
func (e *Engine) Start(ctx context.Context, project string) error {
	cs, err := e.projectContainers(ctx, project)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return fmt.Errorf("project %s has no containers", project)
	}
	byService := map[string][]container.Summary{}
	deps := map[string][]string{}
	for _, c := range cs {
		svc := c.Labels[contract.LabelService]
		byService[svc] = append(byService[svc], c)
		deps[svc] = dependsOnServices(c.Labels[contract.LabelDependsOn])
	}
	started := map[string]bool{}
	var ids []string
	var visit func(svc string, depth int) error
	visit = func(svc string, depth int) error {
		if started[svc] || depth > len(byService) {
			return nil
		}
		started[svc] = true
		for _, d := range deps[svc] {
			if err := visit(d, depth+1); err != nil {
				return err
			}
		}
		for _, c := range byService[svc] {
			ids = append(ids, c.ID)
			if c.State == container.StateRunning || completed(c) {
				continue
			}
			if err := e.docker.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
				return fmt.Errorf("start container %s: %w", containerName(c), err)
			}
		}
		return nil
	}
	for svc := range byService {
		if err := visit(svc, 0); err != nil {
			return err
		}
	}
	return e.waitReady(ctx, ids, nil)
}

// dependsOnServices parses compose's depends_on label ("db:service_healthy:false,...").
func dependsOnServices(label string) []string {
	var out []string
	for _, part := range strings.Split(label, ",") {
		if name, _, _ := strings.Cut(part, ":"); name != "" {
			out = append(out, name)
		}
	}
	return out
}
