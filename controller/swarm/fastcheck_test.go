package swarm

import (
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
)

func withCheck(s swarm.Service) swarm.Service {
	s.Spec.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "true"}}
	return s
}

func startingTask(id, node, containerID string) swarm.Task {
	t := task("h1", swarm.TaskStateRunning, swarm.TaskStateStarting, "")
	t.ID, t.NodeID = id, node
	if containerID != "" {
		t.Status.ContainerStatus = &swarm.ContainerStatus{ContainerID: containerID}
	}
	return t
}

// A task whose own check passed through exec counts for service_healthy
// while Swarm still calls it starting; never for the final readiness, and
// a task whose check did not pass never counts.
func TestJudgeCountsAPassedExecCheck(t *testing.T) {
	one := swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(1)}}
	two := swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(2)}}
	for _, tc := range []struct {
		name   string
		svc    swarm.Service
		tasks  []swarm.Task
		cond   string
		passed map[string]bool
		done   bool
	}{
		{"passed, service_healthy", withCheck(svcWith("h1", one, "any")), []swarm.Task{startingTask("t1", "n1", "c1")},
			types.ServiceConditionHealthy, map[string]bool{"t1": true}, true},
		{"not passed", withCheck(svcWith("h1", one, "any")), []swarm.Task{startingTask("t1", "n1", "c1")},
			types.ServiceConditionHealthy, nil, false},
		{"another task passed", withCheck(svcWith("h1", one, "any")), []swarm.Task{startingTask("t1", "n1", "c1")},
			types.ServiceConditionHealthy, map[string]bool{"t2": true}, false},
		{"readiness waits for Swarm's verdict", withCheck(svcWith("h1", one, "any")), []swarm.Task{startingTask("t1", "n1", "c1")},
			conditionReady, map[string]bool{"t1": true}, false},
		{"one of two replicas passed", withCheck(svcWith("h1", two, "any")), []swarm.Task{startingTask("t1", "n1", "c1"), startingTask("t2", "n2", "c2")},
			types.ServiceConditionHealthy, map[string]bool{"t1": true}, false},
		{"a passed task that failed since does not count", withCheck(svcWith("h1", one, "any")),
			[]swarm.Task{func() swarm.Task {
				t := startingTask("t1", "n1", "c1")
				t.Status.State = swarm.TaskStateFailed
				return t
			}()},
			types.ServiceConditionHealthy, map[string]bool{"t1": true}, false},
		{"a task being shut down does not count", withCheck(svcWith("h1", one, "any")),
			[]swarm.Task{func() swarm.Task {
				t := startingTask("t1", "n1", "c1")
				t.DesiredState = swarm.TaskStateShutdown
				return t
			}()},
			types.ServiceConditionHealthy, map[string]bool{"t1": true}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(tc.svc, tc.tasks, judging{Cond: tc.cond, Now: now, CheckPassed: tc.passed})
			if v.Done != tc.done {
				t.Errorf("done %v, want %v (%+v)", v.Done, tc.done, v)
			}
		})
	}
}

// Only starting tasks of the current spec, on the node Slipway talks to,
// with a container and a healthcheck, are checked through exec.
func TestCheckCandidates(t *testing.T) {
	one := swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(3)}}
	svc := withCheck(svcWith("h1", one, "any"))
	running := startingTask("run", "n1", "c4")
	running.Status.State = swarm.TaskStateRunning
	old := startingTask("old", "n1", "c5")
	old.Spec.ContainerSpec.Labels = map[string]string{}
	tasks := []swarm.Task{startingTask("here", "n1", "c1"), startingTask("there", "n2", "c2"), startingTask("nocontainer", "n1", ""), running, old}
	var got []string
	for _, t := range checkCandidates(svc, tasks, "n1") {
		got = append(got, t.ID)
	}
	if !slices.Equal(got, []string{"here"}) {
		t.Errorf("candidates %v, want [here]", got)
	}
	if c := checkCandidates(svcWith("h1", one, "any"), tasks, "n1"); len(c) != 0 {
		t.Errorf("a service without healthcheck has candidates %v", c)
	}
	if c := checkCandidates(svc, tasks, ""); len(c) != 0 {
		t.Errorf("no node, yet candidates %v", c)
	}
}

func TestDecided(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state *container.State
		want  bool
	}{
		{"starting", &container.State{Status: container.StateRunning, Running: true, Health: &container.Health{Status: container.Starting}}, false},
		{"healthy", &container.State{Status: container.StateRunning, Running: true, Health: &container.Health{Status: container.Healthy}}, true},
		{"unhealthy", &container.State{Status: container.StateRunning, Running: true, Health: &container.Health{Status: container.Unhealthy}}, true},
		{"created, not started", &container.State{Status: container.StateCreated}, false},
		{"exited", &container.State{Status: container.StateExited}, true},
		{"no state", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ins := container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{State: tc.state}}
			if got := decided(ins); got != tc.want {
				t.Errorf("decided %v, want %v", got, tc.want)
			}
		})
	}
}
