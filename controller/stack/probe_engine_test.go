package stack

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/internal/contract"
)

// execRecordingDocker is the real engine with the exec probes Slipway
// creates recorded per container, and, if apiVersion is set, Ping
// reporting that version: "1.41" makes the engine take the exec path
// whatever the engine under test supports.
type execRecordingDocker struct {
	Docker
	apiVersion string

	mu    sync.Mutex
	execs map[string][]string // container ID → exec IDs
}

func (d *execRecordingDocker) ContainerExecCreate(ctx context.Context, id string, opts container.ExecOptions) (container.ExecCreateResponse, error) {
	resp, err := d.Docker.ContainerExecCreate(ctx, id, opts)
	if err == nil {
		d.mu.Lock()
		if d.execs == nil {
			d.execs = map[string][]string{}
		}
		d.execs[id] = append(d.execs[id], resp.ID)
		d.mu.Unlock()
	}
	return resp, err
}

func (d *execRecordingDocker) Ping(ctx context.Context) (types.Ping, error) {
	p, err := d.Docker.Ping(ctx)
	if d.apiVersion != "" {
		p.APIVersion = d.apiVersion
	}
	return p, err
}

// execsOf lists the exec probes created in a container.
func (d *execRecordingDocker) execsOf(id string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.execs[id]...)
}

// execEngine is an engine over an execRecordingDocker on the real engine
// (Ping reporting apiVersion, if set).
func execEngine(t *testing.T, apiVersion string, readyTimeout time.Duration) (*Engine, *execRecordingDocker, *client.Client) {
	t.Helper()
	_, cli := testEngine(t)
	rec := &execRecordingDocker{Docker: cli, apiVersion: apiVersion}
	return NewEngine(rec, nil, EngineOptions{ReadyTimeout: readyTimeout, StopTimeout: 2 * time.Second}), rec, cli
}

// engineWithoutStartInterval is the API version of Docker Engine 20.10.
const engineWithoutStartInterval = "1.41"

// hourlyChecked is the compose YAML of a service that sleeps, with the
// healthcheck test given and Docker's first scheduled probe an hour away:
// whatever makes it healthy before that is the exec probe.
func hourlyChecked(name, test string, extra ...string) string {
	return fmt.Sprintf(`  %s:
    image: slipway-test/busybox:1
    init: true
    command: ["sleep", "3600"]
    healthcheck:
      test: %s
      interval: 1h
`, name, test) + strings.Join(extra, "")
}

// assertExecsFinished checks that every exec probe created in a container
// has ended: none is left running once Up has returned.
func assertExecsFinished(t *testing.T, cli *client.Client, rec *execRecordingDocker, id string) {
	t.Helper()
	for _, ex := range rec.execsOf(id) {
		res, err := cli.ContainerExecInspect(context.Background(), ex)
		if err != nil {
			t.Errorf("inspect exec %s: %v", ex, err)
			continue
		}
		if res.Running {
			t.Errorf("exec probe %s is still running after Up", ex)
		}
	}
}

// assertDockerNeverProbed checks that Docker's own health of a service has
// not run a single check: still "starting", nothing logged, no restart.
func assertDockerNeverProbed(t *testing.T, ins container.InspectResponse) {
	t.Helper()
	h := ins.State.Health
	if h == nil || h.Status != container.Starting || len(h.Log) != 0 || ins.RestartCount != 0 {
		t.Errorf("%s: Docker's health is %+v (restarts %d), want starting with no check run", ins.Name, h, ins.RestartCount)
	}
}

// depends_on: service_healthy is met by the dependency's own check passing
// through exec: the dependent starts while Docker's health of the
// dependency still says "starting" (its first scheduled probe is an hour
// away), and the dependency is ready for Up too. The check fails once
// before it passes.
func TestServiceHealthyMetByTheFirstPassingCheck(t *testing.T) {
	t.Parallel()
	e, rec, cli := execEngine(t, engineWithoutStartInterval, time.Minute)
	src := newSource(t, e, cli, writeFixture(t, map[string]string{"compose.yaml": "services:\n" +
		hourlyChecked("api", `["CMD-SHELL", "test -f /tmp/checked || { touch /tmp/checked; exit 1; }"]`) + `  web:
    build: ./web
    init: true
    command: ["sleep", "3600"]
    depends_on:
      api:
        condition: service_healthy
`,
		// The image's own HEALTHCHECK counts as the service's check.
		"web/Dockerfile": "FROM slipway-test/busybox:1\nHEALTHCHECK --interval=1h CMD [\"true\"]\n",
	}))
	p, _ := up(t, e, src)

	api := inspectService(t, cli, p.Name, "api")
	web := inspectService(t, cli, p.Name, "web")
	assertDockerNeverProbed(t, api)
	assertDockerNeverProbed(t, web)
	if !web.State.Running {
		t.Errorf("web is not running: %+v", web.State)
	}
	if n := len(rec.execsOf(api.ID)); n < 2 {
		t.Errorf("api's check ran %d time(s) through exec, want at least 2 (one failure, one pass)", n)
	}
	if n := len(rec.execsOf(web.ID)); n < 1 {
		t.Errorf("web's image healthcheck never ran through exec")
	}
	assertExecsFinished(t, cli, rec, api.ID)
	assertExecsFinished(t, cli, rec, web.ID)
}

// A check slower than the probe interval runs back to back, never two at
// once, until it passes (the third run here).
func TestSlowCheckRunsOneAtATime(t *testing.T) {
	t.Parallel()
	e, rec, cli := execEngine(t, engineWithoutStartInterval, time.Minute)
	src := newSource(t, e, cli, writeFixture(t, map[string]string{"compose.yaml": "services:\n" +
		hourlyChecked("api", `["CMD-SHELL", "echo start >> /tmp/runs; sleep 0.5; echo end >> /tmp/runs; [ $(grep -c end /tmp/runs) -ge 3 ]"]`)}))
	p, _ := up(t, e, src)

	api := inspectService(t, cli, p.Name, "api")
	assertDockerNeverProbed(t, api)
	// The output is framed (stdout/stderr); the words are in order.
	runs := regexp.MustCompile(`start|end`).FindAllString(execIn(t, cli, api.Name, "cat", "/tmp/runs"), -1)
	if len(runs) < 6 {
		t.Fatalf("runs %v: want at least three complete checks", runs)
	}
	for i, r := range runs {
		want := "start"
		if i%2 == 1 {
			want = "end"
		}
		if r != want {
			t.Fatalf("runs %v: entry %d is %q, want %q (checks overlapped)", runs, i, r, want)
		}
	}
	if n := len(rec.execsOf(api.ID)); n < 3 {
		t.Errorf("%d exec probes, want at least 3", n)
	}
	assertExecsFinished(t, cli, rec, api.ID)
}

// A check that never passes keeps its service unready: the wait ends as it
// did before exec probes (here, Docker's first probe being an hour away, in
// the ready timeout, with the service's logs), and Up rolls back.
func TestFailingCheckStaysUnready(t *testing.T) {
	t.Parallel()
	// The outcome is a timeout whatever the machine's speed: the check
	// never passes.
	e, rec, cli := execEngine(t, engineWithoutStartInterval, 5*time.Second)
	src := newSource(t, e, cli, writeFixture(t, map[string]string{"compose.yaml": `services:
  api:
    image: slipway-test/busybox:1
    init: true
    command: ["sh", "-c", "echo api booted; exec sleep 3600"]
    healthcheck:
      test: ["CMD-SHELL", "echo check ran >> /tmp/runs; exit 1"]
      interval: 1h
  web:
    image: slipway-test/busybox:1
    command: ["sleep", "3600"]
    depends_on:
      api:
        condition: service_healthy
`}))
	p := mustLoad(t, src)
	res, err := e.Up(context.Background(), p, UpOptions{})
	if err == nil {
		t.Fatal("up succeeded with a check that never passes")
	}
	var se *ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("up error is not a ServiceError: %v", err)
	}
	if se.Service != "api" || !strings.Contains(se.Reason, "not ready after") || !strings.Contains(se.Reason, "health check starting") {
		t.Errorf("service error %q: %q, want api not ready (health check starting)", se.Service, se.Reason)
	}
	if !strings.Contains(strings.Join(se.Logs, "\n"), "api booted") {
		t.Errorf("service error lacks api's logs: %q", se.Logs)
	}
	if res == nil || len(res.Created) != 1 || res.Created[0] != contract.ContainerName(p.Name, "api", 1) {
		t.Errorf("up created %v, want api only (web waits for api to be healthy)", res)
	}
	rec.mu.Lock()
	probed := len(rec.execs)
	rec.mu.Unlock()
	if probed != 1 {
		t.Errorf("checks ran through exec in %d container(s), want api's", probed)
	}
	if left := containerIDs(t, e, p.Name); len(left) != 0 {
		t.Errorf("failed up left containers %v", left)
	}
}

// Services without a healthcheck, or with one disabled, are never probed
// through exec; a healthcheck on an engine without start_interval (this
// machine's Docker 20.10) is probed through exec, and a compose file's own
// start_interval does not stop the container from being created there.
// On an engine with start_interval, Docker probes fast itself.
func TestHealthcheckOnThisEngine(t *testing.T) {
	t.Parallel()
	e, rec, cli := execEngine(t, "", time.Minute)
	ping, err := cli.Ping(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	native := hasStartInterval(lowerVersion(ping.APIVersion, cli.ClientVersion()))
	src := newSource(t, e, cli, writeFixture(t, map[string]string{"compose.yaml": `services:
  plain:
    image: slipway-test/busybox:1
    init: true
    command: ["sleep", "3600"]
  disabled:
    build: ./disabled
    init: true
    command: ["sleep", "3600"]
    healthcheck:
      disable: true
` + hourlyChecked("checked", `["CMD", "true"]`) + hourlyChecked("own", `["CMD", "true"]`, "      start_period: 1m\n      start_interval: 100ms\n"),
		"disabled/Dockerfile": "FROM slipway-test/busybox:1\nHEALTHCHECK --interval=1s CMD [\"false\"]\n",
	}))
	p, _ := up(t, e, src)

	for _, svc := range []string{"plain", "disabled"} {
		ins := inspectService(t, cli, p.Name, svc)
		if ins.State.Health != nil {
			t.Errorf("%s has a health state %+v, want none", svc, ins.State.Health)
		}
		if n := len(rec.execsOf(ins.ID)); n != 0 {
			t.Errorf("%s was probed through exec %d time(s)", svc, n)
		}
	}
	checked := inspectService(t, cli, p.Name, "checked")
	own := inspectService(t, cli, p.Name, "own")
	if native {
		if hc := checked.Config.Healthcheck; hc.StartInterval != fastProbeInterval || hc.StartPeriod != fastStartPeriod {
			t.Errorf("checked's healthcheck %+v lacks the fast start", hc)
		}
		if hc := own.Config.Healthcheck; hc.StartInterval != 100*time.Millisecond || hc.StartPeriod != time.Minute {
			t.Errorf("own's healthcheck %+v lost the compose file's start settings", hc)
		}
		for _, ins := range []container.InspectResponse{checked, own} {
			if n := len(rec.execsOf(ins.ID)); n != 0 {
				t.Errorf("%s was probed through exec on an engine that probes fast itself", ins.Name)
			}
		}
		return
	}
	for _, ins := range []container.InspectResponse{checked, own} {
		if hc := ins.Config.Healthcheck; hc == nil || hc.StartInterval != 0 {
			t.Errorf("%s: healthcheck %+v, want no start interval on this engine", ins.Name, hc)
		}
		assertDockerNeverProbed(t, ins)
		if n := len(rec.execsOf(ins.ID)); n == 0 {
			t.Errorf("%s was not probed through exec", ins.Name)
		}
		assertExecsFinished(t, cli, rec, ins.ID)
	}
}
