package swarm

import (
	"context"
	"errors"
	"maps"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/controller/stack"
)

// Swarm reports a task with a healthcheck as running only once Docker's
// own first probe has passed, one health interval after the container
// started (engines before API 1.44 have no start_interval, and the swarm
// API does not carry one before it either). While a dependent waits for
// service_healthy, taskChecks runs the check of each starting task on the
// node Slipway talks to through exec, as the single-host engine does
// (controller/stack/probe.go), every stack.FastProbeInterval until it
// first passes. A pass lets the dependent start at once; a check that
// fails never counts, and the final readiness still waits for Swarm's own
// verdict. The final readiness (and a wake) runs the checks of routed
// services too, only to report each first pass (Build.OnCheckPassed, by
// task ID and the starting status's time): the proxy routes to the task
// from then on, while Swarm still calls it starting, as it does for a
// container on one host. Tasks on other nodes are left to Swarm: their
// containers are out of this engine's reach.

// checkCandidates are the tasks of the service's current spec whose check
// can be run through exec: meant to run, starting, on node, in a container
// of known ID, with a healthcheck. Pure.
func checkCandidates(svc swarm.Service, tasks []swarm.Task, node string) []swarm.Task {
	if node == "" || !hasHealthcheck(svc) {
		return nil
	}
	var out []swarm.Task
	for _, t := range currentTasks(svc, tasks) {
		if t.DesiredState != swarm.TaskStateRunning || t.Status.State != swarm.TaskStateStarting || t.NodeID != node {
			continue
		}
		if t.Status.ContainerStatus == nil || t.Status.ContainerStatus.ContainerID == "" {
			continue
		}
		out = append(out, t)
	}
	return out
}

// taskChecks runs the exec checks of one wait (a nil *taskChecks runs
// none): one loop per starting task, until its check first passes, the
// task is no longer starting, or the wait ends.
type taskChecks struct {
	engine *Engine
	node   string
	ctx    context.Context
	cancel context.CancelFunc
	// passed has a value when a check has passed since the wait last
	// looked: the wait looks again at once rather than at its next tick.
	passed chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]context.CancelFunc // by task ID
	ok      map[string]bool
}

func (e *Engine) newTaskChecks(ctx context.Context, node string) *taskChecks {
	ctx, cancel := context.WithCancel(ctx)
	return &taskChecks{engine: e, node: node, ctx: ctx, cancel: cancel, passed: make(chan struct{}, 1),
		running: map[string]context.CancelFunc{}, ok: map[string]bool{}}
}

// follow starts a loop for every candidate task that has none, stops the
// loops of tasks that are no longer candidates, and returns the tasks
// whose check has passed.
func (c *taskChecks) follow(svc swarm.Service, tasks []swarm.Task) map[string]bool {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	want := map[string]bool{}
	for _, t := range checkCandidates(svc, tasks, c.node) {
		want[t.ID] = true
		if c.ok[t.ID] || c.running[t.ID] != nil {
			continue
		}
		ctx, cancel := context.WithCancel(c.ctx)
		c.running[t.ID] = cancel
		c.wg.Add(1)
		go c.loop(ctx, t.ID, t.Status.ContainerStatus.ContainerID, t.Status.Timestamp)
	}
	for id, cancel := range c.running {
		if !want[id] {
			cancel()
			delete(c.running, id)
		}
	}
	return maps.Clone(c.ok)
}

// passes has a value when a check has passed since the wait last looked.
func (c *taskChecks) passes() <-chan struct{} {
	if c == nil {
		return nil
	}
	return c.passed
}

// close ends every loop and waits until they have returned.
func (c *taskChecks) close() {
	if c == nil {
		return
	}
	c.cancel()
	c.wg.Wait()
}

// loop checks the task's container until its check first passes. The
// container may not run yet when the task is first seen starting; a
// container whose health is no longer "starting" is Docker's to judge.
// since is the time of the task's starting status, which a pass is
// reported with.
func (c *taskChecks) loop(ctx context.Context, taskID, containerID string, since time.Time) {
	defer c.wg.Done()
	log := c.engine.log.With("task", taskID, "container", containerID[:min(12, len(containerID))])
	for attempt := 1; ; attempt++ {
		ins, err := c.engine.docker.ContainerInspect(ctx, containerID)
		switch {
		case ctx.Err() != nil:
			return
		case errdefs.IsNotFound(err):
			return // not on this node after all
		case err != nil:
			log.Debug("inspect task container", "err", err)
		default:
			if decided(ins) {
				return
			}
			if check, ok := stack.HealthcheckFor(ins); ok {
				passed, err := c.engine.builder.RunHealthcheck(ctx, containerID, stack.Healthcheck(check))
				if ctx.Err() != nil {
					return
				}
				if passed {
					c.mu.Lock()
					c.ok[taskID] = true
					c.mu.Unlock()
					select {
					case c.passed <- struct{}{}:
					default:
					}
					log.Debug("healthcheck passed before Docker's first probe", "attempt", attempt)
					if report := c.engine.opts.Build.OnCheckPassed; report != nil {
						report(taskID, since)
					}
					return
				}
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					log.Debug("healthcheck through exec", "attempt", attempt, "err", err)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(stack.FastProbeInterval):
		}
	}
}

// decided reports whether Docker has judged the container: it has ended,
// or its health is no longer "starting". Pure.
func decided(ins container.InspectResponse) bool {
	st := ins.State
	if st == nil {
		return false
	}
	if st.Status == container.StateExited || st.Status == container.StateDead {
		return true
	}
	return st.Running && st.Health != nil && st.Health.Status != container.Starting
}
