package swarm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
)

// conditionCompleted is what a job service is waited for.
const conditionCompleted = types.ServiceConditionCompletedSuccessfully

// verdict is what the tasks of a service say about a condition.
type verdict struct {
	Done bool
	// Err is set when the condition can no longer be met.
	Err error
	// Waiting says what is missing, for the timeout's message.
	Waiting string
}

// judging is what judge needs besides the service and its tasks.
type judging struct {
	Cond string
	// Now and MinUptime: a task without a healthcheck counts as ready once
	// it has been running MinUptime (one that exits at once never does).
	Now       time.Time
	MinUptime time.Duration
	// CheckPassed holds the tasks whose own healthcheck, run through exec
	// (fastcheck.go), has passed while Swarm still calls them starting:
	// they count as healthy for a service_healthy condition. Readiness
	// (conditionReady) ignores it and waits for Swarm's own verdict.
	CheckPassed map[string]bool
}

// conditionReady is Up's final wait: every replica running (healthy by
// Docker's own probe where it has a healthcheck), as the proxy routes on.
const conditionReady = "ready"

// currentTasks are the tasks of the service's current spec: same config
// hash and force-update counter, and for a job the current iteration.
// Pure.
func currentTasks(svc swarm.Service, tasks []swarm.Task) []swarm.Task {
	hash := ""
	if cs := svc.Spec.TaskTemplate.ContainerSpec; cs != nil {
		hash = cs.Labels[contract.LabelConfigHash]
	}
	var current []swarm.Task
	for _, t := range tasks {
		if t.ServiceID != svc.ID || t.Spec.ContainerSpec == nil {
			continue
		}
		if t.Spec.ContainerSpec.Labels[contract.LabelConfigHash] != hash || t.Spec.ForceUpdate != svc.Spec.TaskTemplate.ForceUpdate {
			continue
		}
		if svc.JobStatus != nil && (t.JobIteration == nil || t.JobIteration.Index != svc.JobStatus.JobIteration.Index) {
			continue
		}
		current = append(current, t)
	}
	return current
}

// judge decides whether a service meets a condition from its tasks. Pure.
//
// Only the tasks of the service's current spec count (same config hash
// and force-update counter; for a job, the current iteration). Swarm
// reports a task with a healthcheck as running only once it is healthy,
// so service_healthy is "every replica running", on whichever node.
func judge(svc swarm.Service, tasks []swarm.Task, j judging) verdict {
	cond := j.Cond
	current := currentTasks(svc, tasks)
	count := func(states ...swarm.TaskState) int {
		n := 0
		for _, t := range current {
			if slices.Contains(states, t.Status.State) && (t.DesiredState == swarm.TaskStateRunning || t.DesiredState == swarm.TaskStateComplete) {
				n++
			}
		}
		return n
	}
	lastErr := ""
	failed := 0
	for _, t := range current {
		if t.Status.State == swarm.TaskStateFailed || t.Status.State == swarm.TaskStateRejected {
			failed++
			lastErr = taskError(t)
		}
	}
	live := count(swarm.TaskStateNew, swarm.TaskStateAllocated, swarm.TaskStatePending, swarm.TaskStateAssigned,
		swarm.TaskStateAccepted, swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting, swarm.TaskStateRunning)
	noRestart := svc.Spec.TaskTemplate.RestartPolicy != nil && svc.Spec.TaskTemplate.RestartPolicy.Condition == swarm.RestartPolicyConditionNone
	giveUp := func(what string) verdict {
		if failed > 0 && live == 0 && noRestart {
			return verdict{Err: fmt.Errorf("%s: %s", what, lastErr)}
		}
		w := what
		if lastErr != "" {
			w += " (last task: " + lastErr + ")"
		}
		return verdict{Waiting: w}
	}

	m := svc.Spec.Mode
	if m.ReplicatedJob != nil {
		want := 1
		if m.ReplicatedJob.TotalCompletions != nil {
			want = int(*m.ReplicatedJob.TotalCompletions)
		}
		done := 0
		for _, t := range current {
			if t.Status.State == swarm.TaskStateComplete {
				done++
			}
		}
		if done >= want {
			return verdict{Done: true}
		}
		if cond == types.ServiceConditionStarted && live > 0 {
			return verdict{Done: true}
		}
		return giveUp(fmt.Sprintf("%d of %d completions", done, want))
	}
	want := 1
	if m.Replicated != nil && m.Replicated.Replicas != nil {
		want = int(*m.Replicated.Replicas)
	}
	if want == 0 {
		return verdict{Done: true}
	}
	switch cond {
	case types.ServiceConditionStarted:
		if count(swarm.TaskStateStarting, swarm.TaskStateRunning) >= 1 {
			return verdict{Done: true}
		}
		return giveUp("no task started")
	case conditionCompleted:
		return verdict{Err: errors.New("is not a job: service_completed_successfully needs a service that ends")}
	}
	running := 0
	for _, t := range current {
		switch {
		case t.DesiredState != swarm.TaskStateRunning:
		case t.Status.State == swarm.TaskStateRunning && (hasHealthcheck(svc) || !j.Now.Before(t.Status.Timestamp.Add(j.MinUptime))):
			running++
		case t.Status.State == swarm.TaskStateStarting && cond == types.ServiceConditionHealthy && hasHealthcheck(svc) && j.CheckPassed[t.ID]:
			running++
		}
	}
	if running >= want {
		return verdict{Done: true}
	}
	return giveUp(fmt.Sprintf("%d of %d tasks running", running, want))
}

// taskError is why a task ended.
func taskError(t swarm.Task) string {
	msg := t.Status.Err
	if msg == "" {
		msg = t.Status.Message
	}
	if cs := t.Status.ContainerStatus; cs != nil && cs.ExitCode != 0 && !strings.Contains(msg, "exit code") {
		msg += fmt.Sprintf(" (exit code %d)", cs.ExitCode)
	}
	return msg
}

// waitService polls the service's tasks until judge says it meets cond,
// it cannot, or ReadyTimeout passes. For service_healthy, the starting
// tasks on node (the node Slipway talks to; empty for none) have their
// own healthcheck run through exec until it first passes (fastcheck.go),
// and a pass counts at once rather than after Docker's first probe, one
// health interval after the start. For readiness, with node set, the
// checks run only to report each pass to the proxy: readiness itself
// waits for Swarm's verdict.
//
// Besides its PollInterval tick, the wait looks again as soon as a task
// container of the service on this node starts or changes health
// (taskEvents), and then every followUpInterval for followUpWindow: Swarm
// records the task's new state a moment after the container's event, and
// a tick would find it up to PollInterval later. A container's end is no
// trigger: right after it, Swarm may still call the task running, and a
// task without a healthcheck counts as ready after MinUptime running, so
// looking often just then could take a task that has already exited for a
// ready one.
func (e *Engine) waitService(ctx context.Context, id, cond, node string) error {
	ctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
	defer cancel()
	var checks *taskChecks
	if (cond == types.ServiceConditionHealthy || cond == conditionReady) && node != "" {
		checks = e.newTaskChecks(ctx, node)
		defer checks.close()
	}
	waiting := id
	var changed <-chan struct{}
	var followUntil time.Time
	for {
		svc, v, err := e.judgeService(ctx, id, cond, checks)
		name := svc.Spec.Name
		if name == "" {
			name = id
		}
		switch {
		case err != nil && ctx.Err() == nil:
			return err
		case err != nil:
			// The wait is over; the timeout below says why.
		case v.Done:
			return nil
		case v.Err != nil:
			return badInput(fmt.Errorf("%s %w", name, v.Err))
		default:
			waiting = name + ": " + v.Waiting
		}
		// Only where a task's next state can be routable at once: a
		// healthcheck's verdict, or a dependency that needs only to have
		// started. A task without a healthcheck counts as ready only after
		// MinUptime anyway.
		if changed == nil && svc.ID != "" && (hasHealthcheck(svc) || cond == types.ServiceConditionStarted) {
			changed = e.taskEvents(ctx, svc.ID)
		}
		next := e.opts.PollInterval
		if time.Until(followUntil) > 0 {
			next = min(next, followUpInterval)
		}
		timer := time.NewTimer(next)
		select {
		case <-ctx.Done():
			timer.Stop()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return badInput(fmt.Errorf("not ready within %s: %s", e.opts.ReadyTimeout, waiting))
			}
			return ctx.Err()
		case <-checks.passes():
		case <-changed:
			followUntil = time.Now().Add(followUpWindow)
		case <-timer.C:
		}
		timer.Stop()
	}
}

// How a wait follows a task container's event: Swarm's task state lags
// the container's by the agent's report to the manager, tens of
// milliseconds on one node.
const (
	followUpInterval = 25 * time.Millisecond
	followUpWindow   = 750 * time.Millisecond
)

// taskEvents returns a channel that has a value whenever a task container
// of the service, on the node Slipway talks to, starts or changes health.
// It stays quiet for tasks on other nodes, and for good once the
// events stream ends (the wait's poll carries on); its goroutine ends
// with ctx.
func (e *Engine) taskEvents(ctx context.Context, serviceID string) <-chan struct{} {
	out := make(chan struct{}, 1)
	f := filters.NewArgs(filters.Arg("type", string(events.ContainerEventType)),
		filters.Arg("label", "com.docker.swarm.service.id="+serviceID))
	msgs, errs := e.docker.Events(ctx, events.ListOptions{Filters: f})
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-errs:
				return
			case m := <-msgs:
				if !taskEventMatters(m.Action) {
					continue
				}
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}

// taskEventMatters reports whether a container event can bring a wait
// closer to done: a start (a task to check through exec, a dependency
// started) or a health status. Not an end (see waitService). Pure.
func taskEventMatters(a events.Action) bool {
	return a == events.ActionStart || strings.HasPrefix(string(a), string(events.ActionHealthStatus))
}

// judgeService reads a service and its tasks, has checks follow its
// starting tasks, and judges them. It returns the service as read (empty
// when it could not be).
func (e *Engine) judgeService(ctx context.Context, id, cond string, checks *taskChecks) (swarm.Service, verdict, error) {
	svc, _, err := e.docker.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		return swarm.Service{}, verdict{}, fmt.Errorf("inspect service %s: %w", id, err)
	}
	tasks, err := e.docker.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", svc.ID))})
	if err != nil {
		return svc, verdict{}, fmt.Errorf("list tasks of %s: %w", svc.Spec.Name, err)
	}
	passed := checks.follow(svc, tasks)
	return svc, judge(svc, tasks, judging{Cond: cond, Now: e.opts.Now(), MinUptime: e.opts.MinUptime, CheckPassed: passed}), nil
}

// waitReady waits until every service runs (healthy where it has a
// healthcheck) and every job service has completed. node is the node
// Slipway talks to, where the routed services' checks run (checkNode).
func (e *Engine) waitReady(ctx context.Context, project string, specs map[string]swarm.ServiceSpec, node string, log io.Writer) error {
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		cond := conditionReady
		if specs[name].Mode.ReplicatedJob != nil {
			cond = conditionCompleted
		}
		if err := e.waitService(ctx, specs[name].Name, cond, e.checkNode(specs[name], node)); err != nil {
			return failure(contract.StepDeploy, name, fmt.Errorf("service %s: %w", name, err))
		}
		fmt.Fprintf(log, "%s | ready\n", name)
	}
	return nil
}

// checkNode is node for a routed service when the proxy is told of
// passing checks (Build.OnCheckPassed), so that its readiness wait runs
// them; "" otherwise: no one would hear of a pass.
func (e *Engine) checkNode(spec swarm.ServiceSpec, node string) string {
	cs := spec.TaskTemplate.ContainerSpec
	if e.opts.Build.OnCheckPassed == nil || cs == nil || cs.Labels[contract.LabelRouteHost] == "" {
		return ""
	}
	return node
}

// runJob runs an after_deploy job service to completion and removes it.
func (e *Engine) runJob(ctx context.Context, spec swarm.ServiceSpec, log io.Writer) error {
	fmt.Fprintf(log, "running %s: %s\n", spec.Name, strings.Join(spec.TaskTemplate.ContainerSpec.Args, " "))
	// A job service left by an interrupted run goes first.
	if old, _, err := e.docker.ServiceInspectWithRaw(ctx, spec.Name, swarm.ServiceInspectOptions{}); err == nil {
		if err := e.docker.ServiceRemove(ctx, old.ID); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove old job service %s: %w", spec.Name, err)
		}
	}
	resp, err := e.docker.ServiceCreate(ctx, spec, e.createOptions(spec))
	if err != nil {
		return fmt.Errorf("create job service %s: %w", spec.Name, err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := e.docker.ServiceRemove(rctx, resp.ID); err != nil && !errdefs.IsNotFound(err) {
			e.log.Warn("remove job service", "service", spec.Name, "err", err)
		}
		// Swarm keeps a completed job's container; it goes with the job.
		if err := e.removeTaskContainers(rctx, filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.id="+resp.ID))); err != nil {
			e.log.Warn("remove job container", "service", spec.Name, "err", err)
		}
	}()
	return e.waitService(ctx, resp.ID, conditionCompleted, "")
}
