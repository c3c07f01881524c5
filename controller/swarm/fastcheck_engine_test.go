package swarm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// A dependency's service_healthy is met by its own check run through exec
// on the node Slipway talks to, before Docker's first probe: with an
// interval of an hour, Docker's probe never comes within the test. A
// check that fails never meets it.
func TestServiceHealthyThroughExec(t *testing.T) {
	e, cli, _ := testEngine(t)
	ctx := context.Background()
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	project := dockertest.UniqueName("fastcheck")
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := e.Down(cctx, project); err != nil {
			t.Errorf("cleanup down: %v", err)
		}
	})
	create := func(name, check string) string {
		t.Helper()
		labels := map[string]string{contract.LabelManaged: "true", LabelNamespace: project, contract.LabelProject: project, contract.LabelService: name}
		spec := swarm.ServiceSpec{
			Annotations: swarm.Annotations{Name: project + "_" + name, Labels: labels},
			TaskTemplate: swarm.TaskSpec{
				ContainerSpec: &swarm.ContainerSpec{Image: dockertest.BusyboxImage, Args: []string{"sleep", "86400"}, Labels: labels,
					Healthcheck: &container.HealthConfig{Test: []string{"CMD-SHELL", check}, Interval: time.Hour, Timeout: 5 * time.Second, Retries: 1}},
				Placement: &swarm.Placement{Constraints: []string{"node.id==" + info.Swarm.NodeID}},
			},
			EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
		}
		resp, err := cli.ServiceCreate(ctx, spec, swarm.ServiceCreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.ID
	}
	good := create("good", "test -d /proc")
	if err := e.waitService(ctx, good, types.ServiceConditionHealthy, info.Swarm.NodeID); err != nil {
		t.Fatalf("a passing check did not meet service_healthy: %v", err)
	}
	svc, _, err := cli.ServiceInspectWithRaw(ctx, good, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Swarm itself still calls the task starting: the pass was the exec's.
	if v := judge(svc, tasksOf(t, e, good), judging{Cond: conditionReady, Now: time.Now()}); v.Done {
		t.Errorf("Swarm already calls the task healthy, so the test proves nothing: %+v", v)
	}

	// The final readiness of a routed service runs its check too, only to
	// report the first pass to the proxy (by task ID and the starting
	// status's time), while Swarm still calls the task starting; readiness
	// itself still waits for Swarm.
	type pass struct {
		task    string
		started time.Time
	}
	passes := make(chan pass, 4)
	reporting := NewEngine(cli, nil, Options{Registry: e.opts.Registry, PollInterval: 100 * time.Millisecond,
		Build: stack.EngineOptions{StopTimeout: 2 * time.Second, OnCheckPassed: func(id string, started time.Time) { passes <- pass{id, started} }}})
	routed := create("routed", "test -d /proc")
	wctx, stopWait := context.WithCancel(ctx)
	waited := make(chan error, 1)
	go func() { waited <- reporting.waitService(wctx, routed, conditionReady, info.Swarm.NodeID) }()
	select {
	case p := <-passes:
		var task swarm.Task
		for _, t := range tasksOf(t, e, routed) {
			if t.ID == p.task {
				task = t
			}
		}
		if task.ID == "" || task.Status.State != swarm.TaskStateStarting || !task.Status.Timestamp.Equal(p.started) {
			t.Errorf("reported task %s at %v; the task: %s %s at %v", p.task, p.started, task.ID, task.Status.State, task.Status.Timestamp)
		}
	case err := <-waited:
		t.Fatalf("readiness ended before a pass was reported: %v", err)
	case <-time.After(3 * time.Minute):
		t.Fatal("no pass reported")
	}
	select {
	case err := <-waited:
		t.Fatalf("readiness took the exec's pass for Swarm's verdict: %v", err)
	default:
	}
	stopWait()
	<-waited

	bad := create("bad", "false")
	short := NewEngine(cli, nil, Options{Registry: e.opts.Registry, ReadyTimeout: 5 * time.Second, PollInterval: 100 * time.Millisecond,
		Build: stack.EngineOptions{StopTimeout: 2 * time.Second}})
	err = short.waitService(ctx, bad, types.ServiceConditionHealthy, info.Swarm.NodeID)
	if err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("a failing check: %v, want not ready", err)
	}
}

func tasksOf(t *testing.T, e *Engine, serviceID string) []swarm.Task {
	t.Helper()
	list, err := e.docker.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", serviceID))})
	if err != nil {
		t.Fatal(err)
	}
	return list
}
