package stack

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// plans runs ConvergencePlan and fails the test on an error.
func plans(t *testing.T, e *Engine, p *Plan, opts ConvergeOptions) *Convergence {
	t.Helper()
	conv, err := e.ConvergencePlan(context.Background(), p, opts)
	if err != nil {
		t.Fatalf("convergence plan of %s: %v", p.Name, err)
	}
	return conv
}

// summary lists "<action> <service>-<n> <reason>" of a plan, in order.
func summary(conv *Convergence) []string {
	var out []string
	for _, a := range conv.Actions {
		out = append(out, string(a.Action)+" "+a.Service+"-"+strconv.Itoa(a.Number)+" "+string(a.Reason))
	}
	return out
}

func expectPlan(t *testing.T, what string, conv *Convergence, want ...string) {
	t.Helper()
	if got := summary(conv); !slices.Equal(got, want) {
		t.Errorf("%s:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

// What ConvergencePlan says before an Up is what that Up then does (but
// for images the build makes, which it can only announce), and saying it
// changes nothing on the engine.
func TestConvergencePlanPredictsUp(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p := mustLoad(t, src)

	expectPlan(t, "plan of a new environment", plans(t, e, p, ConvergeOptions{}),
		"create api-1 no container yet", "create db-1 no container yet", "create migrate-1 no container yet", "create web-1 no container yet")
	if env, err := e.Inspect(context.Background(), p.Name); err != nil || env != nil {
		t.Fatalf("planning created something: %+v, %v", env, err)
	}
	if projects, err := e.Projects(context.Background()); err != nil || projects[p.Name] != (ProjectRef{}) {
		t.Fatalf("planning left a network or container: %v, %v", projects[p.Name], err)
	}

	_, res := up(t, e, src)
	expectPlan(t, "Up's plan of a new environment", res.Convergence,
		"create api-1 no container yet", "create db-1 no container yet", "create migrate-1 no container yet", "create web-1 no container yet")
	before := containerIDs(t, e, p.Name)

	// Same SHA: everything kept, the migration not run again.
	same := plans(t, e, mustLoad(t, src), ConvergeOptions{})
	expectPlan(t, "plan of the same SHA", same,
		"keep api-1 up to date", "keep db-1 up to date", "keep migrate-1 completed", "keep web-1 up to date")
	if same.Changed() {
		t.Error("a plan that keeps everything says it changes something")
	}
	_, res = up(t, e, src)
	if !slices.Equal(summary(res.Convergence), summary(same)) || res.Changed() {
		t.Errorf("Up did %v (created %v), the plan said %v", summary(res.Convergence), res.Created, summary(same))
	}

	// A stopped service is started, not recreated.
	db := contract.ContainerName(p.Name, "db", 1)
	if err := cli.ContainerStop(context.Background(), db, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	stopped := plans(t, e, mustLoad(t, src), ConvergeOptions{})
	expectPlan(t, "plan with the db stopped", stopped,
		"keep api-1 up to date", "start db-1 not running", "keep migrate-1 completed", "keep web-1 up to date")
	_, res = up(t, e, src)
	if !slices.Equal(summary(res.Convergence), summary(stopped)) {
		t.Errorf("Up did %v, the plan said %v", summary(res.Convergence), summary(stopped))
	}
	if ins := inspectService(t, cli, p.Name, "db"); !ins.State.Running || ins.ID != before[db] {
		t.Errorf("db running %t, same container %t: want the same container started", ins.State.Running, ins.ID == before[db])
	}

	// A redeploy recreates everything.
	expectPlan(t, "plan of a redeploy", plans(t, e, mustLoad(t, src), ConvergeOptions{ForceRecreate: true}),
		"recreate api-1 forced", "recreate db-1 forced", "recreate migrate-1 forced", "recreate web-1 forced")

	// A push: the built services wait for their images, the db is kept.
	src.SHA = sha2
	p2 := mustLoad(t, src)
	pushed := plans(t, e, p2, ConvergeOptions{})
	expectPlan(t, "plan of a push", pushed,
		"recreate api-1 image not built or pulled yet", "keep db-1 up to date", "recreate migrate-1 image not built or pulled yet", "recreate web-1 image not built or pulled yet")
	if after := containerIDs(t, e, p.Name); !equalMaps(before, after) {
		t.Errorf("planning changed containers:\nbefore %v\nafter  %v", before, after)
	}
	var log bytes.Buffer
	res, err := e.Up(context.Background(), p2, UpOptions{BuildLog: &log})
	if err != nil {
		t.Fatalf("up: %v\n%s", err, log.String())
	}
	expectPlan(t, "Up's plan of the push", res.Convergence,
		"recreate api-1 image changed", "keep db-1 up to date", "recreate migrate-1 image changed", "recreate web-1 image changed")
	if !strings.Contains(log.String(), "web | plan: recreate "+contract.ContainerName(p.Name, "web", 1)+": image changed") {
		t.Errorf("the build log does not show the plan:\n%s", log.String())
	}
	// Built now: a plan of the same push knows the images.
	expectPlan(t, "plan after the push", plans(t, e, p2, ConvergeOptions{}),
		"keep api-1 up to date", "keep db-1 up to date", "keep migrate-1 completed", "keep web-1 up to date")
}

// Scale-down and orphans, planned and then done.
func TestConvergencePlanRemovesWhatTheProjectNoLongerWants(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	svc := "    image: slipway-test/busybox:1\n    init: true\n    stop_grace_period: 1s\n    command: [\"sleep\", \"3600\"]\n"
	dir := writeFixture(t, map[string]string{
		"compose.yaml": "services:\n  worker:\n" + svc + "    scale: 3\n  cache:\n" + svc,
	})
	src := newSource(t, e, cli, dir)
	p, _ := up(t, e, src)
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  worker:\n"+svc), 0o644); err != nil {
		t.Fatal(err)
	}
	conv := plans(t, e, mustLoad(t, src), ConvergeOptions{})
	expectPlan(t, "plan after scaling down and dropping a service", conv,
		"keep worker-1 up to date", "remove worker-2 scale down", "remove worker-3 scale down", "remove cache-1 orphan service")
	_, res := up(t, e, src)
	if !slices.Equal(summary(res.Convergence), summary(conv)) {
		t.Errorf("Up did %v, the plan said %v", summary(res.Convergence), summary(conv))
	}
	removed := slices.Sorted(slices.Values(res.Removed))
	want := []string{contract.ContainerName(p.Name, "cache", 1), contract.ContainerName(p.Name, "worker", 2), contract.ContainerName(p.Name, "worker", 3)}
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v, want %v", removed, want)
	}
	if ids := containerIDs(t, e, p.Name); len(ids) != 1 {
		t.Errorf("containers left: %v, want only worker-1", ids)
	}
}

// An Up that fails says where, as the controller reports it.
func TestUpFailureNamesStepAndService(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	for _, tc := range []struct {
		name, compose, dockerfile, step, service string
	}{
		{"build", "services:\n  web:\n    build: .\n", "FROM slipway-test/busybox:1\nRUN false\n", "build", "web"},
		{"deploy", "services:\n  web:\n    image: slipway-test/busybox:1\n    command: [\"sh\", \"-c\", \"exit 3\"]\n    restart: \"no\"\n  front:\n    image: slipway-test/busybox:1\n    command: [\"sleep\", \"3600\"]\n    depends_on:\n      web:\n        condition: service_healthy\n", "", "deploy", "web"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"compose.yaml": tc.compose}
			if tc.dockerfile != "" {
				files["Dockerfile"] = tc.dockerfile
			}
			src := newSource(t, e, cli, writeFixture(t, files))
			_, err := e.Up(context.Background(), mustLoad(t, src), UpOptions{})
			var f contract.Failure
			if !errors.As(err, &f) {
				t.Fatalf("Up: %v, want a contract.Failure", err)
			}
			if f.FailedStep() != tc.step || f.FailedService() != tc.service || !f.Terminal() {
				t.Errorf("step %q service %q terminal %t, want %q %q terminal (%v)", f.FailedStep(), f.FailedService(), f.Terminal(), tc.step, tc.service, err)
			}
		})
	}
}

// A volume that binds a directory of the checkout is replaced when the
// checkout moves (a new copy): the plan says its users are recreated, and
// Up replaces them.
func TestConvergencePlanSeesAVolumeThatBindsAnOldCheckout(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	// checkout writes the project into a new directory whose site/ the
	// volume binds (a bind device must be an absolute path in the checkout).
	checkout := func() string {
		dir := t.TempDir()
		dockertest.WriteFiles(t, dir, map[string]string{
			"compose.yaml": "services:\n  web:\n    image: slipway-test/busybox:1\n    init: true\n    stop_grace_period: 1s\n    command: [\"sleep\", \"3600\"]\n    volumes: [\"site:/site:ro\"]\n" +
				"  other:\n    image: slipway-test/busybox:1\n    init: true\n    stop_grace_period: 1s\n    command: [\"sleep\", \"3600\"]\n" +
				"volumes:\n  site:\n    driver_opts: {type: none, o: bind, device: " + filepath.Join(dir, "site") + "}\n",
			"site/index.html": "v1\n",
		})
		return dir
	}
	src := newSource(t, e, cli, checkout())
	p, _ := up(t, e, src)
	before := containerIDs(t, e, p.Name)

	src.Dir = checkout() // the same source, checked out elsewhere
	moved := mustLoad(t, src)
	conv := plans(t, e, moved, ConvergeOptions{})
	expectPlan(t, "plan of a moved checkout", conv, "keep other-1 up to date", "recreate web-1 volume replaced")
	_, res := up(t, e, src)
	after := containerIDs(t, e, p.Name)
	web, other := contract.ContainerName(p.Name, "web", 1), contract.ContainerName(p.Name, "other", 1)
	if after[web] == before[web] || after[other] != before[other] {
		t.Errorf("web recreated %t, other kept %t: want web recreated, other kept (Up's plan %v)", after[web] != before[web], after[other] == before[other], summary(res.Convergence))
	}
}
