package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	dockertypes "github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// execRecordingDocker is the real engine with the exec probes Slipway
// creates recorded per container, and, as each service container is
// started, Docker's health of the project's other containers at that
// moment (inspected). If apiVersion is set, Ping reports that version:
// "1.41" makes the engine take the exec path whatever the engine under
// test supports.
type execRecordingDocker struct {
	Docker
	apiVersion string

	mu    sync.Mutex
	execs map[string][]string // container ID → exec IDs
	// healthAtStart is, per service started, Docker's health status of
	// every other service of the project then ("" without a healthcheck).
	healthAtStart map[string]map[string]container.HealthStatus
	ids           map[string]string // service → container ID
}

func (d *execRecordingDocker) ContainerStart(ctx context.Context, id string, opts container.StartOptions) error {
	ins, err := d.Docker.ContainerInspect(ctx, id)
	if err != nil {
		return err
	}
	project, service := ins.Config.Labels[contract.LabelProject], ins.Config.Labels[contract.LabelService]
	others, err := d.Docker.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", contract.LabelProject+"="+project))})
	if err != nil {
		return err
	}
	health := map[string]container.HealthStatus{}
	for _, o := range others {
		oi, err := d.Docker.ContainerInspect(ctx, o.ID)
		if err != nil {
			return err
		}
		if oi.State.Health != nil {
			health[oi.Config.Labels[contract.LabelService]] = oi.State.Health.Status
		} else {
			health[oi.Config.Labels[contract.LabelService]] = ""
		}
	}
	d.mu.Lock()
	if d.healthAtStart == nil {
		d.healthAtStart, d.ids = map[string]map[string]container.HealthStatus{}, map[string]string{}
	}
	d.healthAtStart[service], d.ids[service] = health, id
	d.mu.Unlock()
	return d.Docker.ContainerStart(ctx, id, opts)
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

func (d *execRecordingDocker) Ping(ctx context.Context) (dockertypes.Ping, error) {
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

// startHourlyChecked starts a busybox container running command, with the
// healthcheck test and Docker's first scheduled probe an hour away, and
// removes it when the test ends.
func startHourlyChecked(t *testing.T, cli *client.Client, test []string, command ...string) container.InspectResponse {
	t.Helper()
	return startHourlyCheckedWith(t, cli, nil, test, command...)
}

// startHourlyCheckedWith is startHourlyChecked with labels on the container.
func startHourlyCheckedWith(t *testing.T, cli *client.Client, labels map[string]string, test []string, command ...string) container.InspectResponse {
	t.Helper()
	ctx := context.Background()
	cfg := &container.Config{Image: dockertest.BusyboxImage, Cmd: command, Labels: labels, Healthcheck: &container.HealthConfig{Test: test, Interval: time.Hour}}
	created, err := cli.ContainerCreate(ctx, cfg, &container.HostConfig{Init: boolPtr(true)}, nil, nil, dockertest.UniqueName("probe"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.ContainerRemove(context.Background(), created.ID, container.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove %s: %v", created.ID[:12], err)
		}
	})
	if err := cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ContainerInspect(ctx, created.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ins
}

func boolPtr(b bool) *bool { return &b }

// assertExecsFinished checks that every exec probe created in a container
// has ended: none is left running once a wait that saw the check pass has
// returned.
func assertExecsFinished(t *testing.T, cli *client.Client, rec *execRecordingDocker, id string) {
	t.Helper()
	for _, ex := range rec.execsOf(id) {
		res, err := cli.ContainerExecInspect(context.Background(), ex)
		if err != nil {
			t.Errorf("inspect exec %s: %v", ex, err)
			continue
		}
		if res.Running {
			t.Errorf("exec probe %s is still running after the wait", ex)
		}
	}
}

// assertDockerNeverProbed checks that Docker's own health of a container
// has not run a single check: still "starting", nothing logged, no restart.
func assertDockerNeverProbed(t *testing.T, cli *client.Client, id string) {
	t.Helper()
	ins, err := cli.ContainerInspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	h := ins.State.Health
	if h == nil || h.Status != container.Starting || len(h.Log) != 0 || ins.RestartCount != 0 {
		t.Errorf("%s: Docker's health is %+v (restarts %d), want starting with no check run", ins.Name, h, ins.RestartCount)
	}
}

// depends_on: service_healthy is met by the dependency's own check
// passing through exec: the dependent starts while Docker's health of its
// dependencies still says "starting" (their first scheduled probes are an
// hour away). One dependency's check fails once before it passes; the
// other's comes from its image's HEALTHCHECK. Up's final readiness waits
// for Docker's own verdict, so here it ends in its timeout, naming a
// dependency, with nothing left.
func TestServiceHealthyMetByTheFirstPassingCheck(t *testing.T) {
	t.Parallel()
	// The dependencies' checks pass within seconds; the final wait can only
	// end in its timeout.
	e, rec, cli := execEngine(t, engineWithoutStartInterval, 15*time.Second)
	src := newSource(t, e, cli, writeFixture(t, map[string]string{"compose.yaml": "services:\n" +
		hourlyChecked("api", `["CMD-SHELL", "test -f /tmp/checked || { touch /tmp/checked; exit 1; }"]`) + `  cache:
    build: ./cache
    init: true
    command: ["sleep", "3600"]
  web:
    image: slipway-test/busybox:1
    init: true
    command: ["sleep", "3600"]
    depends_on:
      api:
        condition: service_healthy
      cache:
        condition: service_healthy
`,
		"cache/Dockerfile": "FROM slipway-test/busybox:1\nHEALTHCHECK --interval=1h CMD [\"true\"]\n",
	}))
	p := mustLoad(t, src)
	var log bytes.Buffer
	_, err := e.Up(context.Background(), p, UpOptions{BuildLog: &log})

	rec.mu.Lock()
	atWebStart, ids := rec.healthAtStart["web"], rec.ids
	rec.mu.Unlock()
	if atWebStart == nil {
		t.Fatalf("web was never started; up: %v\nlog:\n%s", err, log.String())
	}
	for _, dep := range []string{"api", "cache"} {
		if got := atWebStart[dep]; got != container.Starting {
			t.Errorf("when web started, Docker's health of %s was %q, want %q", dep, got, container.Starting)
		}
	}
	if n := len(rec.execsOf(ids["api"])); n < 2 {
		t.Errorf("api's check ran %d time(s) through exec, want at least 2 (one failure, one pass)", n)
	}
	if n := len(rec.execsOf(ids["cache"])); n < 1 {
		t.Errorf("cache's image healthcheck never ran through exec")
	}
	if n := len(rec.execsOf(ids["web"])); n != 0 {
		t.Errorf("web, without a healthcheck, was probed %d time(s)", n)
	}

	var se *ServiceError
	if !errors.As(err, &se) || (se.Service != "api" && se.Service != "cache") ||
		!strings.Contains(se.Reason, "not ready after") || !strings.Contains(se.Reason, "health check starting") {
		t.Errorf("up = %v, want a dependency not ready after the timeout (health check starting)", err)
	}
	if left := containerIDs(t, e, p.Name); len(left) != 0 {
		t.Errorf("failed up left containers %v", left)
	}
}

// A check slower than the probe interval runs back to back, never two at
// once, until it passes (the third run here), and no exec is left running.
func TestSlowCheckRunsOneAtATime(t *testing.T) {
	t.Parallel()
	e, rec, cli := execEngine(t, engineWithoutStartInterval, time.Minute)
	c := startHourlyChecked(t, cli, []string{"CMD-SHELL", "echo start >> /tmp/runs; sleep 0.5; echo end >> /tmp/runs; [ $(grep -c end /tmp/runs) -ge 3 ]"}, "sleep", "3600")
	if err := e.waitCondition(context.Background(), "api", []string{c.ID}, types.ServiceConditionHealthy, nil); err != nil {
		t.Fatalf("wait for service_healthy: %v", err)
	}
	assertDockerNeverProbed(t, cli, c.ID)
	// The output is framed (stdout/stderr); the words are in order.
	runs := regexp.MustCompile(`start|end`).FindAllString(execIn(t, cli, c.ID, "cat", "/tmp/runs"), -1)
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
	if n := len(rec.execsOf(c.ID)); n < 3 {
		t.Errorf("%d exec probes, want at least 3", n)
	}
	assertExecsFinished(t, cli, rec, c.ID)
}

// A check that never passes keeps a dependency unready: the wait ends as
// it did before exec probes (here, Docker's first probe being an hour away,
// in the timeout, with the service's logs). Docker's "unhealthy" still
// fails it first where Docker probes sooner ("service never healthy" in
// TestBadInputFailsClearlyAndLeavesNothing).
func TestFailingCheckStaysUnready(t *testing.T) {
	t.Parallel()
	// The outcome is a timeout whatever the machine's speed: the check
	// never passes.
	e, rec, cli := execEngine(t, engineWithoutStartInterval, 5*time.Second)
	c := startHourlyChecked(t, cli, []string{"CMD-SHELL", "exit 1"}, "sh", "-c", "echo api booted; exec sleep 3600")
	err := e.waitCondition(context.Background(), "api", []string{c.ID}, types.ServiceConditionHealthy, nil)
	var se *ServiceError
	if !errors.As(err, &se) {
		t.Fatalf("wait = %v, want a ServiceError", err)
	}
	if se.Service != "api" || !strings.Contains(se.Reason, "not ready after") || !strings.Contains(se.Reason, "health check starting") {
		t.Errorf("service error %q: %q, want api not ready (health check starting)", se.Service, se.Reason)
	}
	if !strings.Contains(strings.Join(se.Logs, "\n"), "api booted") {
		t.Errorf("service error lacks the service's logs: %q", se.Logs)
	}
	// A check the timeout cut short may still be ending in the container:
	// the API cannot stop an exec, so its end is not asserted.
	if n := len(rec.execsOf(c.ID)); n == 0 {
		t.Errorf("the check never ran through exec")
	}
}

// Readiness, the final wait of Up, waits for Docker's own verdict, which
// the proxy routes on: a container whose check has passed through exec is
// healthy for its dependents but not ready until Docker says so, and the
// readiness wait runs no exec.
func TestReadinessWaitsForDockersVerdict(t *testing.T) {
	t.Parallel()
	// The outcome is a timeout whatever the machine's speed: Docker's first
	// probe is an hour away.
	e, rec, cli := execEngine(t, engineWithoutStartInterval, 5*time.Second)
	c := startHourlyChecked(t, cli, []string{"CMD", "true"}, "sleep", "3600")
	if err := e.waitCondition(context.Background(), "api", []string{c.ID}, types.ServiceConditionHealthy, nil); err != nil {
		t.Fatalf("wait for service_healthy: %v", err)
	}
	probed := len(rec.execsOf(c.ID))
	err := e.waitReady(context.Background(), []string{c.ID}, nil)
	var se *ServiceError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "health check starting") {
		t.Errorf("waitReady = %v, want not ready (health check starting)", err)
	}
	if n := len(rec.execsOf(c.ID)); n != probed {
		t.Errorf("the readiness wait ran %d exec probe(s)", n-probed)
	}
}

// Services without a healthcheck, or with one disabled, are never probed
// through exec. On an engine without start_interval (this machine's Docker
// 20.10) no healthcheck gets one, and a compose file's own start_interval
// does not stop the container from being created; on an engine with it,
// healthchecks get a short one (and a start period where none is set).
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
    depends_on:
      checked:
        condition: service_healthy
      own:
        condition: service_healthy
  disabled:
    build: ./disabled
    init: true
    command: ["sleep", "3600"]
    healthcheck:
      disable: true
  checked:
    image: slipway-test/busybox:1
    init: true
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 300ms
  own:
    image: slipway-test/busybox:1
    init: true
    command: ["sleep", "3600"]
    healthcheck:
      test: ["CMD", "true"]
      interval: 300ms
      start_period: 1m
      start_interval: 100ms
`,
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
	checked := inspectService(t, cli, p.Name, "checked").Config.Healthcheck
	own := inspectService(t, cli, p.Name, "own").Config.Healthcheck
	if !native {
		if checked.StartInterval != 0 || own.StartInterval != 0 {
			t.Errorf("healthchecks %+v and %+v: want no start interval on this engine", checked, own)
		}
		return
	}
	if checked.StartInterval != fastProbeInterval || checked.StartPeriod != fastStartPeriod {
		t.Errorf("checked's healthcheck %+v lacks the fast start", checked)
	}
	if own.StartInterval != 100*time.Millisecond || own.StartPeriod != time.Minute {
		t.Errorf("own's healthcheck %+v lost the compose file's start settings", own)
	}
}
