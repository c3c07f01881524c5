package stack

import (
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Stop stops a stack's containers all at once: each is asked to stop
// (SIGTERM) before any of them has died, so a stack sleeps in one stop
// timeout, not one per container. Told by the engine's events, not by a
// clock.
func TestStopStopsContainersInParallel(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	dir := t.TempDir()
	// sleep as PID 1 ignores SIGTERM: each container dies only when the
	// stop timeout sends SIGKILL.
	svc := "    image: slipway-test/busybox:1\n    command: [\"sleep\", \"3600\"]\n"
	compose := "services:\n  a:\n" + svc + "  b:\n" + svc + "  c:\n" + svc
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := up(t, e, newSource(t, e, cli, dir))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Since replays what happened before the stream was connected: nothing
	// of this project was killed or died before Stop.
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	msgs, errc := cli.Events(ctx, events.ListOptions{Since: since, Filters: filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("label", contract.LabelProject+"="+p.Name),
		filters.Arg("event", "kill"), filters.Arg("event", "die"))})
	stopped := make(chan error, 1)
	go func() { stopped <- e.Stop(context.Background(), p.Name) }()

	terms, dies := 0, 0
	for dies < 3 {
		select {
		case m := <-msgs:
			switch {
			case m.Action == events.ActionKill && m.Actor.Attributes["signal"] == "15":
				if dies == 0 {
					terms++
				}
			case m.Action == events.ActionDie:
				dies++
			}
		case err := <-errc:
			t.Fatalf("events: %v", err)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if terms != 3 {
		t.Errorf("%d of 3 containers were asked to stop before the first died, want all 3 (stopped one after another)", terms)
	}
}

func TestStartDependencies(t *testing.T) {
	tests := []struct {
		name   string
		labels map[string]string
		want   string
		err    string
	}{
		{"none", map[string]string{"web": ""}, "web:[]", ""},
		{"conditions", map[string]string{
			"web": "api:service_healthy:false,cache:service_started:true", "api": "db:service_healthy:false,migrate:service_completed_successfully:false",
			"db": "", "cache": "", "migrate": "db:service_healthy:false",
		}, "api:[db/service_healthy migrate/service_completed_successfully] cache:[] db:[] migrate:[db/service_healthy] web:[api/service_healthy cache/service_started]", ""},
		{"a condition left out is service_started", map[string]string{"web": "db", "db": ""}, "db:[] web:[db/service_started]", ""},
		{"a dependency not in the project is not waited for", map[string]string{"web": "debug:service_started:false", "db": ""}, "db:[] web:[]", ""},
		{"a cycle is refused", map[string]string{"a": "b:service_started:false", "b": "c:service_healthy:false", "c": "a:service_started:false"}, "", "cycle: a → b → c → a"},
	}
	for _, tt := range tests {
		deps, err := startDependencies(tt.labels)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.name, err, tt.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		var parts []string
		for _, svc := range slices.Sorted(maps.Keys(tt.labels)) {
			var ds []string
			for _, d := range deps[svc] {
				ds = append(ds, d.service+"/"+d.condition)
			}
			parts = append(parts, svc+":["+strings.Join(ds, " ")+"]")
		}
		if got := strings.Join(parts, " "); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
}

// startBarrier is the real engine whose ContainerStart of the services in
// together returns only once each of them has been asked to start: Start
// gets past it only by starting them at once. It records the order of the
// starts.
type startBarrier struct {
	Docker
	together map[string]bool
	arrived  chan string
	release  chan struct{}

	mu    sync.Mutex
	order []string
}

func (d *startBarrier) ContainerStart(ctx context.Context, id string, opts container.StartOptions) error {
	ins, err := d.Docker.ContainerInspect(ctx, id)
	if err != nil {
		return err
	}
	svc := ins.Config.Labels[contract.LabelService]
	d.mu.Lock()
	d.order = append(d.order, svc)
	d.mu.Unlock()
	if d.together[svc] {
		d.arrived <- svc
		select {
		case <-d.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return d.Docker.ContainerStart(ctx, id, opts)
}

// Start (a wake) starts services that do not depend on each other at once,
// and a service only after its dependencies: web waits for api to be
// healthy, api and cache start together.
func TestStartStartsIndependentServicesTogether(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	dir := writeFixture(t, map[string]string{"compose.yaml": `services:
  api:
    image: slipway-test/busybox:1
    init: true
    command: ["sleep", "3600"]
    healthcheck: {test: ["CMD", "true"], interval: 300ms}
  cache:
    image: slipway-test/busybox:1
    init: true
    command: ["sleep", "3600"]
  web:
    image: slipway-test/busybox:1
    init: true
    command: ["sleep", "3600"]
    depends_on:
      api: {condition: service_healthy}
      cache: {condition: service_started}
`})
	p, _ := up(t, e, newSource(t, e, cli, dir))
	if err := e.Stop(context.Background(), p.Name); err != nil {
		t.Fatal(err)
	}
	rec := &startBarrier{Docker: cli, together: map[string]bool{"api": true, "cache": true}, arrived: make(chan string, 2), release: make(chan struct{})}
	woke := NewEngine(rec, nil, EngineOptions{ReadyTimeout: time.Minute, StopTimeout: 2 * time.Second})
	done := make(chan error, 1)
	go func() { done <- woke.Start(context.Background(), p.Name) }()
	for range 2 {
		select {
		case <-rec.arrived:
		case err := <-done:
			t.Fatalf("Start returned before api and cache were both asked to start: %v", err)
		}
	}
	close(rec.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	order := append([]string(nil), rec.order...)
	rec.mu.Unlock()
	if len(order) != 3 || order[2] != "web" {
		t.Fatalf("start order %v, want api and cache (either order), then web", order)
	}
	web := inspectService(t, cli, p.Name, "web")
	api := inspectService(t, cli, p.Name, "api")
	if !web.State.Running || api.State.Health == nil || api.State.Health.Status != container.Healthy {
		t.Errorf("after Start: web running %v, api health %+v", web.State.Running, api.State.Health)
	}
}

// With OnCheckPassed set, the final readiness wait tells of a starting
// routed container's first passing check (and of which run), on an engine
// without start_interval, and still waits for Docker's own verdict. A
// container the proxy does not route to is not probed by it.
func TestReadinessReportsFirstPassingCheck(t *testing.T) {
	t.Parallel()
	_, cli := testEngine(t)
	type report struct {
		id      string
		started time.Time
	}
	reports := make(chan report, 4)
	rec := &execRecordingDocker{Docker: cli, apiVersion: engineWithoutStartInterval}
	e := NewEngine(rec, nil, EngineOptions{ReadyTimeout: 5 * time.Minute, OnCheckPassed: func(id string, started time.Time) {
		reports <- report{id, started}
	}})
	// Docker's first probe is an hour away: only the exec probe can pass.
	routed := map[string]string{contract.LabelRouteHost: "pr-1.example.test", contract.LabelRoutePort: "8080"}
	c := startHourlyCheckedWith(t, cli, routed, []string{"CMD", "true"}, "sleep", "3600")
	unrouted := startHourlyChecked(t, cli, []string{"CMD", "true"}, "sleep", "3600")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.waitReady(ctx, []string{unrouted.ID, c.ID}, nil) }()
	var r report
	select {
	case r = <-reports:
	case err := <-done:
		t.Fatalf("waitReady ended before any report: %v", err)
	}
	want, _ := time.Parse(time.RFC3339Nano, c.State.StartedAt)
	if r.id != c.ID || !r.started.Equal(want) {
		t.Errorf("reported %s started %s, want %s started %s", r.id, r.started, c.ID, want)
	}
	cancel()
	if err := <-done; err == nil {
		t.Error("waitReady counted the exec pass as ready; it waits for Docker's verdict")
	}
	if n := len(rec.execsOf(unrouted.ID)); n > 0 {
		t.Errorf("the readiness wait ran %d exec check(s) in a container without a route", n)
	}
}
