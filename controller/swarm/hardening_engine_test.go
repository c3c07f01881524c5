package swarm

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// The hardening a task runs with on this engine, read from its container
// and from inside it: capabilities dropped to the base set (less the
// compose file's cap_drop), a read-only
// root, memory and pids limits; and no-new-privileges exactly where the
// engine applies it, with Up's note saying so where it does not.
func TestTaskHardening(t *testing.T) {
	e, cli, reg := testEngine(t)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": `
services:
  app:
    image: slipway-test/busybox:1
    init: true
    read_only: true
    cap_drop: [CHOWN]
    stop_grace_period: 1s
    command: ["sh", "-c", "grep -E '^(CapEff|NoNewPrivs):' /proc/self/status; if touch /x 2>/dev/null; then echo root=writable; else echo root=readonly; fi; exec sleep 86400"]
    deploy:
      resources:
        limits: {memory: 64M, pids: 100}
`})
	src := stack.Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("hard"), PR: 7, SHA: strings.Repeat("7", 40)}
	project := src.Project()
	downAtCleanup(t, e, cli, reg, project)
	ctx := context.Background()
	var buildLog bytes.Buffer
	if _, err := e.Up(ctx, load(t, src), stack.UpOptions{BuildLog: &buildLog}); err != nil {
		t.Fatalf("up: %v\n%s", err, buildLog.String())
	}
	list, err := cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.name="+ServiceName(project, "app")))})
	if err != nil || len(list) != 1 {
		t.Fatalf("task containers %d %v", len(list), err)
	}
	ins, err := cli.ContainerInspect(ctx, list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	hc := ins.HostConfig
	if !hc.ReadonlyRootfs || hc.Memory != 64<<20 || hc.PidsLimit == nil || *hc.PidsLimit != 100 {
		t.Errorf("read-only %v memory %d pids %v", hc.ReadonlyRootfs, hc.Memory, hc.PidsLimit)
	}

	// What the process itself sees.
	var out string
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(out, "root=") {
		var logs strings.Builder
		if err := e.Logs(ctx, project, stack.LogOptions{Service: "app"}, &logs); err != nil {
			t.Fatal(err)
		}
		out = logs.String()
		if time.Now().After(deadline) {
			t.Fatalf("the task wrote no report: %q", out)
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !strings.Contains(out, "root=readonly") {
		t.Errorf("the root filesystem is writable: %q", out)
	}
	m := regexp.MustCompile(`CapEff:\s+([0-9a-f]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no CapEff in %q", out)
	}
	caps, err := strconv.ParseUint(m[1], 16, 64)
	if err != nil {
		t.Fatal(err)
	}
	const chown, kill, netRaw, sysAdmin = 0, 5, 13, 21
	if caps&(1<<chown) != 0 || caps&(1<<netRaw) != 0 || caps&(1<<sysAdmin) != 0 || caps&(1<<kill) == 0 {
		t.Errorf("effective capabilities %#x: want KILL, and not CHOWN, NET_RAW or SYS_ADMIN", caps)
	}
	applied := strings.Contains(out, "NoNewPrivs:\t1")
	noted := strings.Contains(buildLog.String(), "does not apply no-new-privileges")
	if applied == noted {
		t.Errorf("no-new-privileges applied %v, yet Up's note about it shown %v (API %s): the note must say exactly when it is missing\nlog:\n%s\ntask:\n%s",
			applied, noted, e.apiVersion(ctx), buildLog.String(), out)
	}
}
