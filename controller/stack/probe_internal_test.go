package stack

import (
	"bufio"
	"context"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
)

// scriptedExecDocker answers exec probes without an engine: a check
// started while block is set waits until its context ends; otherwise it
// exits with exitCode at once.
type scriptedExecDocker struct {
	Docker
	block    bool
	exitCode int
	started  chan string // container ID, as each check starts
	ended    chan string // container ID, as a blocked check is cut short

	mu    sync.Mutex
	execs int
}

func (d *scriptedExecDocker) ContainerExecCreate(ctx context.Context, id string, opts container.ExecOptions) (container.ExecCreateResponse, error) {
	d.mu.Lock()
	d.execs++
	d.mu.Unlock()
	d.started <- id
	if d.block {
		<-ctx.Done()
		d.ended <- id
		return container.ExecCreateResponse{}, ctx.Err()
	}
	return container.ExecCreateResponse{ID: "exec-" + id}, nil
}

func (d *scriptedExecDocker) ContainerExecAttach(ctx context.Context, execID string, _ container.ExecAttachOptions) (types.HijackedResponse, error) {
	ours, theirs := net.Pipe()
	theirs.Close() // the check printed nothing and ended
	return types.HijackedResponse{Conn: ours, Reader: bufio.NewReader(ours)}, nil
}

func (d *scriptedExecDocker) ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error) {
	return container.ExecInspect{ExecID: execID, ExitCode: d.exitCode}, nil
}

func (d *scriptedExecDocker) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.execs
}

func inspectedWithHealth(id string, status container.HealthStatus, running bool) container.InspectResponse {
	return container.InspectResponse{
		ContainerJSONBase: &container.ContainerJSONBase{ID: id, Name: "/" + id, State: &container.State{
			Running: running, Status: map[bool]container.ContainerState{true: container.StateRunning, false: container.StateExited}[running],
			Health: &container.Health{Status: status},
		}},
		Config: &container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "true"}}},
	}
}

// A running check is cut short, and no other starts, as soon as Docker's
// own health leaves "starting" or the container stops; closing the probes
// waits for their loops and gives back every slot.
func TestExecProbesStopWhenDockerTakesOver(t *testing.T) {
	for _, tt := range []struct {
		name string
		then container.InspectResponse
	}{
		{"docker says healthy", inspectedWithHealth("c1", container.Healthy, true)},
		{"docker says unhealthy", inspectedWithHealth("c1", container.Unhealthy, true)},
		{"container stopped", inspectedWithHealth("c1", container.Starting, false)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d := &scriptedExecDocker{block: true, started: make(chan string, 1), ended: make(chan string, 1)}
			e := NewEngine(d, nil, EngineOptions{})
			p := e.newExecProbes(context.Background())
			if p.follow(inspectedWithHealth("c1", container.Starting, true)) {
				t.Fatal("check passed before it ran")
			}
			<-d.started
			if got := len(e.probes.slots); got != 1 {
				t.Errorf("a running check holds %d slots, want 1", got)
			}
			if p.follow(inspectedWithHealth("c1", container.Starting, true)) {
				t.Error("check passed while it ran")
			}
			if p.follow(tt.then) {
				t.Error("check counted as passed")
			}
			if id := <-d.ended; id != "c1" {
				t.Errorf("ended the check of %s", id)
			}
			p.close()
			if n := d.count(); n != 1 {
				t.Errorf("%d checks ran, want 1 (one cut short, none after)", n)
			}
			if got := len(e.probes.slots); got != 0 {
				t.Errorf("%d slots still held after close", got)
			}
		})
	}
}

// A check that passes is remembered for the rest of the wait, tells the
// wait to look again, and is not run again.
func TestExecProbesRememberAPass(t *testing.T) {
	d := &scriptedExecDocker{started: make(chan string, 1)}
	e := NewEngine(d, nil, EngineOptions{})
	p := e.newExecProbes(context.Background())
	defer p.close()
	starting := inspectedWithHealth("c1", container.Starting, true)
	if p.follow(starting) {
		t.Fatal("check passed before it ran")
	}
	<-d.started
	<-p.passed
	if !p.follow(starting) {
		t.Error("a passed check is not remembered")
	}
	if n := d.count(); n != 1 {
		t.Errorf("%d checks ran, want 1", n)
	}
}

// A failing check runs again; a check of a container with a disabled
// healthcheck never runs.
func TestExecProbesRetryAFailure(t *testing.T) {
	d := &scriptedExecDocker{exitCode: 1, started: make(chan string)}
	e := NewEngine(d, nil, EngineOptions{})
	p := e.newExecProbes(context.Background())
	disabled := inspectedWithHealth("c2", container.Starting, true)
	disabled.Config.Healthcheck.Test = []string{"NONE"}
	p.follow(disabled)
	p.follow(inspectedWithHealth("c1", container.Starting, true))
	for range 3 {
		if id := <-d.started; id != "c1" {
			t.Errorf("checked %s, want c1 only", id)
		}
	}
	if p.follow(inspectedWithHealth("c1", container.Starting, true)) {
		t.Error("a failing check counted as passed")
	}
	// Stop the loop while it may be starting another check: take what it
	// sends until it has returned.
	done := make(chan struct{})
	go func() { p.close(); close(done) }()
	for closed := false; !closed; {
		select {
		case <-d.started:
		case <-done:
			closed = true
		}
	}
}

func TestExecCheckFor(t *testing.T) {
	inspected := func(status container.HealthStatus, hc *container.HealthConfig, mod func(*container.InspectResponse)) container.InspectResponse {
		ins := container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{ID: "c1", State: &container.State{Status: container.StateRunning, Running: true}},
			Config:            &container.Config{Healthcheck: hc},
		}
		if status != "" {
			ins.State.Health = &container.Health{Status: status}
		}
		if mod != nil {
			mod(&ins)
		}
		return ins
	}
	cmd := &container.HealthConfig{Test: []string{"CMD", "wget", "-q", "http://127.0.0.1/"}, Timeout: 2 * time.Second}
	shell := &container.HealthConfig{Test: []string{"CMD-SHELL", "test -f /ready && echo ok"}}
	tests := []struct {
		name string
		ins  container.InspectResponse
		want execCheck
		ok   bool
	}{
		{"CMD while starting", inspected(container.Starting, cmd, nil),
			execCheck{Cmd: []string{"wget", "-q", "http://127.0.0.1/"}, Timeout: 2 * time.Second}, true},
		{"CMD-SHELL through /bin/sh, Docker's default timeout capped", inspected(container.Starting, shell, nil),
			execCheck{Cmd: []string{"/bin/sh", "-c", "test -f /ready && echo ok"}, Timeout: maxExecCheckTimeout}, true},
		{"CMD-SHELL through the image's SHELL", inspected(container.Starting, shell, func(i *container.InspectResponse) { i.Config.Shell = []string{"/bin/ash", "-eo", "pipefail", "-c"} }),
			execCheck{Cmd: []string{"/bin/ash", "-eo", "pipefail", "-c", "test -f /ready && echo ok"}, Timeout: maxExecCheckTimeout}, true},
		{"a start interval without a start period does nothing", inspected(container.Starting, &container.HealthConfig{Test: cmd.Test, StartInterval: time.Second}, nil),
			execCheck{Cmd: []string{"wget", "-q", "http://127.0.0.1/"}, Timeout: maxExecCheckTimeout}, true},
		{"a long timeout capped: a slower check is Docker's to judge", inspected(container.Starting, &container.HealthConfig{Test: cmd.Test, Timeout: time.Hour}, nil),
			execCheck{Cmd: []string{"wget", "-q", "http://127.0.0.1/"}, Timeout: maxExecCheckTimeout}, true},
		{"Docker probes fast itself", inspected(container.Starting, &container.HealthConfig{Test: cmd.Test, StartInterval: time.Second, StartPeriod: time.Minute}, nil), execCheck{}, false},
		{"healthy: Docker has taken over", inspected(container.Healthy, cmd, nil), execCheck{}, false},
		{"unhealthy: Docker's verdict", inspected(container.Unhealthy, cmd, nil), execCheck{}, false},
		{"no healthcheck", inspected("", nil, nil), execCheck{}, false},
		{"disabled", inspected(container.Starting, &container.HealthConfig{Test: []string{"NONE"}}, nil), execCheck{}, false},
		{"CMD without a command", inspected(container.Starting, &container.HealthConfig{Test: []string{"CMD"}}, nil), execCheck{}, false},
		{"stopped", inspected(container.Starting, cmd, func(i *container.InspectResponse) { i.State.Running, i.State.Status = false, container.StateExited }), execCheck{}, false},
		{"restarting", inspected(container.Starting, cmd, func(i *container.InspectResponse) { i.State.Restarting = true }), execCheck{}, false},
		{"no config", inspected(container.Starting, nil, func(i *container.InspectResponse) { i.Config = nil }), execCheck{}, false},
		{"no state", inspected(container.Starting, cmd, func(i *container.InspectResponse) { i.State = nil }), execCheck{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := execCheckFor(tt.ins)
			if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("execCheckFor = %+v %v, want %+v %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
