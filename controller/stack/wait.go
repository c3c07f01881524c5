package stack

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/slipwayhq/slipway/internal/contract"
)

// serviceLogTail is how many log lines a ServiceError carries.
const serviceLogTail = 20

// ServiceError is a service that did not come up: it exited, turned
// unhealthy, kept restarting, or was not ready in time. It carries the
// service's last log lines.
type ServiceError struct {
	Service   string
	Container string
	Reason    string
	Logs      []string
}

func (e *ServiceError) Error() string {
	msg := fmt.Sprintf("service %s: %s", e.Service, e.Reason)
	if len(e.Logs) > 0 {
		msg += "\n  " + strings.Join(e.Logs, "\n  ")
	}
	return msg
}

// readyState is the verdict on one container for one condition.
type readyState int

const (
	notYet readyState = iota
	ready
	failed
)

// condition is what a wait requires of a container: a depends_on
// condition, or conditionReady for the final readiness check.
const conditionReady = "ready"

// observation is what evaluate judges: a container's inspected state, its
// restart policy, whether it restarted since the wait began, for how long
// it has been running, and whether its healthcheck, run through exec while
// Docker's health said "starting", has passed (see execProbes).
type observation struct {
	State       *container.State
	Restart     container.RestartPolicyMode
	Restarted   bool
	Uptime      time.Duration
	CheckPassed bool
}

// evaluate judges a container against cond. A running container without a
// healthcheck counts as ready once it has run for minUptime, so a process
// that crashes straight away is not mistaken for a started one. One whose
// health is still "starting" counts as healthy once its own check has
// passed, before Docker's first scheduled probe; unhealthy stays a
// failure. It is pure; the reason explains a failure or what is still
// awaited.
func evaluate(o observation, cond string, minUptime time.Duration) (readyState, string) {
	st, restart := o.State, o.Restart
	if st == nil {
		return notYet, "no state yet"
	}
	if o.Restarted {
		return failed, fmt.Sprintf("keeps restarting (last exit code %d)", st.ExitCode)
	}
	health := ""
	if st.Health != nil {
		health = st.Health.Status
	}
	exitedTerminally := (st.Status == container.StateExited || st.Status == container.StateDead) &&
		(restart == "" || restart == container.RestartPolicyDisabled || (restart == container.RestartPolicyOnFailure && st.ExitCode == 0))
	switch cond {
	case types.ServiceConditionCompletedSuccessfully:
		switch {
		case st.Status == container.StateExited && st.ExitCode == 0:
			return ready, "completed"
		case st.Status == container.StateExited || st.Status == container.StateDead:
			return failed, fmt.Sprintf("exited with code %d", st.ExitCode)
		case st.Restarting:
			return failed, fmt.Sprintf("keeps restarting (last exit code %d)", st.ExitCode)
		}
		return notYet, "still running"
	case types.ServiceConditionHealthy:
		if st.Health == nil {
			return failed, "has no healthcheck, but a dependent waits for service_healthy"
		}
	}
	switch {
	case st.Restarting:
		return failed, fmt.Sprintf("keeps restarting (last exit code %d)", st.ExitCode)
	case st.OOMKilled:
		return failed, "was killed for running out of memory"
	case st.Running && health == container.Unhealthy:
		return failed, "is unhealthy" + lastProbe(st.Health)
	case st.Running && health == container.Starting && o.CheckPassed:
		return ready, "healthcheck passed"
	case st.Running && health == container.Starting:
		return notYet, "health check starting"
	case st.Running && st.Health == nil && o.Uptime < minUptime:
		return notYet, "just started"
	case st.Running:
		return ready, "running"
	case exitedTerminally && st.ExitCode == 0 && cond == conditionReady:
		return ready, "completed"
	case st.Status == container.StateExited || st.Status == container.StateDead:
		return failed, fmt.Sprintf("exited with code %d", st.ExitCode)
	}
	return notYet, st.Status
}

func lastProbe(h *container.Health) string {
	if h == nil || len(h.Log) == 0 {
		return ""
	}
	out := strings.TrimSpace(h.Log[len(h.Log)-1].Output)
	if out == "" {
		return ""
	}
	if len(out) > 200 {
		out = out[:200] + "…"
	}
	return " (last check: " + out + ")"
}

// waitCondition waits until every container in ids meets cond; a
// service_healthy dependency is met by its own check's first pass.
func (e *Engine) waitCondition(ctx context.Context, service string, ids []string, cond string, fresh map[string]bool) error {
	return e.waitAll(ctx, ids, cond, service, fresh)
}

// waitReady waits until every container in ids is running (healthy, in
// Docker's own health, where it has a healthcheck) or, for one-shot
// services, completed successfully.
// fresh holds the containers created by this run: any restart of theirs is a
// failure; a kept container fails only if it restarts during the wait.
func (e *Engine) waitReady(ctx context.Context, ids []string, fresh map[string]bool) error {
	return e.waitAll(ctx, ids, conditionReady, "", fresh)
}

func (e *Engine) waitAll(ctx context.Context, ids []string, cond string, service string, fresh map[string]bool) error {
	timeout := e.opts.ReadyTimeout
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	pending := append([]string(nil), ids...)
	tick := time.NewTicker(e.opts.PollInterval)
	defer tick.Stop()
	reasons := map[string]string{}
	baseline := map[string]int{}
	// A depends_on condition counts a service's own check passing through
	// exec (execProbes). Readiness waits for Docker's own verdict: the proxy
	// routes only to containers Docker calls healthy, and Environment.Phase
	// (what the controller checks an environment against) reads the same,
	// so a ready environment is one that is served and observed as running.
	// With OnCheckPassed set, the final readiness probes too, only to tell
	// the proxy of the first pass.
	var probes *execProbes
	if cond != conditionReady || e.opts.OnCheckPassed != nil {
		probes = e.newExecProbes(ctx)
	}
	defer probes.close()
	for {
		var still []string
		looked := e.inspectAll(ctx, pending)
		for i, id := range pending {
			ins, err := looked[i].ins, looked[i].err
			if err != nil {
				if ctx.Err() != nil {
					// The wait ended while this one was looked at: it and the
					// rest are still pending, never ready.
					still = append(still, pending[i:]...)
					break
				}
				return fmt.Errorf("inspect container %s: %w", id[:min(12, len(id))], err)
			}
			svc := ins.Config.Labels[contract.LabelService]
			if service != "" {
				svc = service
			}
			if _, seen := baseline[id]; !seen {
				baseline[id] = ins.RestartCount
				if fresh[id] {
					baseline[id] = 0
				}
			}
			passed := false
			if probeWanted(cond, ins.Config.Labels) {
				passed = probes.follow(ins)
			}
			o := observation{State: ins.State, Restart: ins.HostConfig.RestartPolicy.Name, Restarted: ins.RestartCount > baseline[id],
				CheckPassed: passed && cond != conditionReady}
			if started, err := time.Parse(time.RFC3339Nano, ins.State.StartedAt); err == nil {
				o.Uptime = time.Since(started)
			}
			state, reason := evaluate(o, cond, e.opts.MinUptime)
			if state != notYet {
				probes.stop(id)
			}
			switch state {
			case failed:
				return &ServiceError{Service: svc, Container: strings.TrimPrefix(ins.Name, "/"), Reason: reason, Logs: e.logTail(ctx, id, serviceLogTail)}
			case notYet:
				reasons[id] = reason
				still = append(still, id)
			}
		}
		pending = still
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-tick.C:
			if ctx.Err() == nil {
				continue
			}
		case <-probes.passes():
			if ctx.Err() == nil {
				continue
			}
		case <-ctx.Done():
		}
		// The wait is over with containers still pending.
		if ctx.Err() == context.DeadlineExceeded {
			id := pending[0]
			ins, _ := e.docker.ContainerInspect(context.WithoutCancel(ctx), id)
			svc := service
			if svc == "" && ins.Config != nil {
				svc = ins.Config.Labels[contract.LabelService]
			}
			return &ServiceError{Service: svc, Container: strings.TrimPrefix(ins.Name, "/"),
				Reason: fmt.Sprintf("not ready after %s (%s)", timeout, reasons[id]),
				Logs:   e.logTail(context.WithoutCancel(ctx), id, serviceLogTail)}
		}
		return ctx.Err()
	}
}

// inspected is one container's inspection in a round of waitAll.
type inspected struct {
	ins container.InspectResponse
	err error
}

// inspectParallelism bounds the inspections of one round of waitAll.
const inspectParallelism = 8

// inspectAll inspects ids at once rather than one after another: a
// container further down the list (the one a wake waits for, just
// started) is looked at, and its check started, without waiting for the
// others' answers. The results are in ids' order.
func (e *Engine) inspectAll(ctx context.Context, ids []string) []inspected {
	out := make([]inspected, len(ids))
	if len(ids) == 1 {
		out[0].ins, out[0].err = e.docker.ContainerInspect(ctx, ids[0])
		return out
	}
	var wg sync.WaitGroup
	slots := make(chan struct{}, inspectParallelism)
	for i, id := range ids {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			out[i].ins, out[i].err = e.docker.ContainerInspect(ctx, id)
		}()
	}
	wg.Wait()
	return out
}

// probeWanted decides whether a wait runs a container's check through
// exec (when execCheckFor allows): a depends_on condition always does;
// the final readiness does only for a container the proxy routes to,
// whose first pass it reports (OnCheckPassed) — probing the others would
// only load the daemon while the routed ones start. Pure.
func probeWanted(cond string, labels map[string]string) bool {
	return cond != conditionReady || labels[contract.LabelRouteHost] != ""
}

// logTail returns the last n lines a container wrote (stdout and stderr).
func (e *Engine) logTail(ctx context.Context, id string, n int) []string {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rc, err := e.docker.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
	if err != nil {
		return nil
	}
	defer rc.Close()
	var buf bytes.Buffer
	if _, err := stdcopy.StdCopy(&buf, &buf, io.LimitReader(rc, 1<<20)); err != nil {
		// A TTY container's log is not multiplexed; read it raw.
		buf.Reset()
		rc2, err := e.docker.ContainerLogs(ctx, id, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(n)})
		if err != nil {
			return nil
		}
		defer rc2.Close()
		_, _ = io.Copy(&buf, io.LimitReader(rc2, 1<<20))
	}
	return lastLines(buf.Bytes(), n)
}
