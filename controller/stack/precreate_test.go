package stack

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

func TestPrecreatable(t *testing.T) {
	plain := func() *containerSpec {
		return &containerSpec{Name: "p-web-1", Host: &container.HostConfig{}, Networks: []networkAttachment{{Network: "p_default", Aliases: []string{"web"}}}}
	}
	create := ContainerAction{Action: ActionCreate, Reason: ReasonNoContainer, Service: "web", Number: 1}
	cases := map[string]struct {
		a    ContainerAction
		spec func() *containerSpec
		want bool
	}{
		"a new container":      {create, plain, true},
		"no network":           {create, func() *containerSpec { s := plain(); s.Networks = nil; return s }, true},
		"a recreate":           {ContainerAction{Action: ActionRecreate, Reason: ReasonImageChanged}, plain, false},
		"a start":              {ContainerAction{Action: ActionStart, Reason: ReasonNotRunning}, plain, false},
		"a keep":               {ContainerAction{Action: ActionKeep, Reason: ReasonUpToDate}, plain, false},
		"network_mode service": {create, func() *containerSpec { s := plain(); s.NetworkModeService = "api"; return s }, false},
		"volumes_from":         {create, func() *containerSpec { s := plain(); s.Host.VolumesFrom = []string{"p-api-1"}; return s }, false},
		"host links":           {create, func() *containerSpec { s := plain(); s.Host.Links = []string{"p-api-1:api"}; return s }, false},
		"network links":        {create, func() *containerSpec { s := plain(); s.Networks[0].Links = []string{"api:db"}; return s }, false},
		"no spec":              {create, func() *containerSpec { return nil }, false},
	}
	for name, tc := range cases {
		if got := precreatable(tc.a, tc.spec()); got != tc.want {
			t.Errorf("%s: precreatable = %t, want %t", name, got, tc.want)
		}
	}
}

// serviceContainer returns the container of one service of project, if
// it exists.
func serviceContainer(t *testing.T, project, service string) (container.Summary, bool) {
	t.Helper()
	cli := dockertest.Client(t)
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", contract.LabelProject+"="+project), filters.Arg("label", contract.LabelService+"="+service))})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) == 0 {
		return container.Summary{}, false
	}
	return list[0], true
}

// Up creates a new dependent's container while it waits for its
// dependency's condition, and starts it only once the condition is met:
// web exists, not started, while api cannot be healthy yet; once api is,
// Up ends with web running.
func TestUpCreatesADependentBeforeItsDependencyIsHealthy(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": `services:
  api:
    image: ` + dockertest.BusyboxImage + `
    command: ["sh", "-c", "exec sleep 3600"]
    init: true
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 1s
      retries: 120
  web:
    image: ` + dockertest.BusyboxImage + `
    command: ["sh", "-c", "exec sleep 3600"]
    init: true
    stop_grace_period: 1s
    depends_on:
      api:
        condition: service_healthy
`})
	src := newSource(t, e, cli, dir)
	p := mustLoad(t, src)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	var log bytes.Buffer
	var upErr error
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		_, upErr = e.Up(ctx, p, UpOptions{BuildLog: &log})
	}()
	// Before newSource's cleanup removes the project: an Up still running
	// would create behind it.
	t.Cleanup(func() { cancel(); <-finished })

	var web, api container.Summary
	for {
		select {
		case <-finished:
			t.Fatalf("up ended (%v) before api could be healthy; log:\n%s", upErr, log.String())
		case <-time.After(50 * time.Millisecond):
		}
		var okWeb, okAPI bool
		web, okWeb = serviceContainer(t, p.Name, "web")
		api, okAPI = serviceContainer(t, p.Name, "api")
		if okWeb && okAPI && api.State == container.StateRunning {
			break
		}
	}
	if web.State != container.StateCreated {
		t.Errorf("web is %s while api cannot be healthy, want created (not started)", web.State)
	}
	if strings.Contains(api.Status, "(healthy)") {
		t.Fatalf("api is %s before its check can pass", api.Status)
	}
	execIn(t, cli, api.ID, "touch", "/tmp/ready")
	<-finished
	if upErr != nil {
		t.Fatalf("up: %v\nlog:\n%s", upErr, log.String())
	}
	web, _ = serviceContainer(t, p.Name, "web")
	if web.State != container.StateRunning {
		t.Errorf("web is %s after up, want running", web.State)
	}
	if !strings.Contains(log.String(), "waiting for api (service_healthy)") {
		t.Errorf("web did not wait for api:\n%s", log.String())
	}
}

// A new environment whose dependency fails is removed entirely, the
// containers created ahead of their turn included.
func TestFailedDependencyRemovesTheContainersCreatedAhead(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": `services:
  migrate:
    image: ` + dockertest.BusyboxImage + `
    command: ["sh", "-c", "exit 3"]
  web:
    image: ` + dockertest.BusyboxImage + `
    command: ["sh", "-c", "exec sleep 3600"]
    init: true
    stop_grace_period: 1s
    depends_on:
      migrate:
        condition: service_completed_successfully
`})
	src := newSource(t, e, cli, dir)
	p := mustLoad(t, src)
	var log bytes.Buffer
	_, err := e.Up(context.Background(), p, UpOptions{BuildLog: &log})
	if err == nil {
		t.Fatalf("up succeeded; log:\n%s", log.String())
	}
	left, lerr := dockertest.Leftovers(context.Background(), cli, contract.LabelProject+"="+p.Name)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(left) > 0 {
		t.Errorf("a failed new environment left %v (err %v)", left, err)
	}
}
