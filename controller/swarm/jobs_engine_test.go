package swarm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// A migration others wait for runs once as a replicated job before them,
// and after_deploy jobs run once the stack is ready, then go away.
func TestJobsRunOnceInOrder(t *testing.T) {
	e, cli, reg := testEngine(t)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": `
services:
  migrate:
    image: slipway-test/busybox:1
    command: ["sh", "-c", "echo migrated >> /data/log"]
    volumes: [data:/data]
  api:
    image: slipway-test/busybox:1
    init: true
    stop_grace_period: 1s
    command: ["sh", "-c", "cat /data/log > /data/seen-by-api && exec sleep 86400"]
    volumes: [data:/data]
    depends_on:
      migrate: {condition: service_completed_successfully}
volumes:
  data: {}
x-slipway:
  after_deploy:
    - service: api
      command: ["sh", "-c", "echo seeded >> /data/log"]
`})
	src := stack.Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("jobs"), PR: 2, SHA: strings.Repeat("3", 40)}
	project := src.Project()
	downAtCleanup(t, e, cli, reg, project)
	ctx := context.Background()
	up(t, e, load(t, src))

	svc, _, err := cli.ServiceInspectWithRaw(ctx, ServiceName(project, "migrate"), swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if svc.Spec.Mode.ReplicatedJob == nil {
		t.Errorf("migrate runs as %+v, want a replicated job", svc.Spec.Mode)
	}
	if _, _, err := cli.ServiceInspectWithRaw(ctx, ServiceName(project, "api-after-deploy-0"), swarm.ServiceInspectOptions{}); err == nil {
		t.Error("the after_deploy job's service is still there")
	}
	env, err := e.Inspect(ctx, project)
	if err != nil || env.Phase() != "running" {
		t.Fatalf("inspect: %+v %v", env, err)
	}
	got := readVolume(t, cli, contract.ResourceName(project, "data"), "cat /data/log; echo ---; cat /data/seen-by-api")
	if got != "migrated\nseeded\n---\nmigrated\n" {
		t.Errorf("volume holds %q: want the migration before api started, and the after_deploy job after", got)
	}
}

// readVolume runs script in a container that mounts volume at /data.
func readVolume(t *testing.T, cli *client.Client, volume, script string) string {
	t.Helper()
	return run(t, cli, &container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: volume, Target: "/data"}}}, script)
}

// A new environment whose service fails is removed entirely, and the
// failure names the service and is terminal (the PR's own).
func TestFailedUpOfANewEnvironmentLeavesNothing(t *testing.T) {
	e, cli, reg := testEngine(t)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": `
services:
  ok:
    image: slipway-test/busybox:1
    command: ["sleep", "86400"]
    init: true
    stop_grace_period: 1s
  broken:
    image: slipway-test/busybox:1
    restart: "no"
    command: ["sh", "-c", "echo boom; exit 3"]
    volumes: [data:/data]
volumes:
  data: {}
`})
	src := stack.Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("broken"), PR: 3, SHA: strings.Repeat("4", 40)}
	project := src.Project()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		_ = e.Down(ctx, project)
	})
	_, err := e.Up(context.Background(), load(t, src), stack.UpOptions{})
	if err == nil {
		t.Fatal("up of a stack whose service exits 3 succeeded")
	}
	var f contract.Failure
	if !errors.As(err, &f) || f.FailedService() != "broken" || !f.Terminal() || !strings.Contains(err.Error(), "exit") {
		t.Errorf("err %v: want a terminal failure of service broken saying it exited", err)
	}
	if left := leftovers(t, cli, reg, project); len(left) > 0 {
		t.Errorf("a failed new environment left: %v (up: %v)", left, err)
	}
}
