package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	swarmengine "github.com/slipwayhq/slipway/controller/swarm"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// With engine: swarm in slipway.yaml, up, ls, logs and down work on a swarm
// through the CLI, as they do on one host. Run in .ci/run's swarm step.
func TestSwarmCLIUpLsLogsDown(t *testing.T) {
	dockertest.NeedSwarmTests(t)
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	ctx := context.Background()
	dockertest.UseSwarm(t, cli)
	reg := dockertest.StartRegistry(t)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "slipway.yaml")
	if err := os.WriteFile(cfgFile, []byte("engine: swarm\nregistry: {address: '"+reg+"'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "src")
	dockertest.WriteFiles(t, src, map[string]string{
		"compose.yaml": "services:\n  web:\n    build: .\n    ports: ['8080:8080']\n    init: true\n    stop_grace_period: 1s\n" +
			"    command: [sh, -c, 'echo web says hello; exec httpd -f -p 8080 -h /www']\n",
		"Dockerfile": "FROM slipway-test/busybox:1\nRUN echo hi > /www/index.html\n",
	})
	repo := dockertest.UniqueName("cli")
	project := contract.ProjectName("acme", repo, 3)
	cfg, err := config.LoadController(cfgFile, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	engine := newPreviewEngine(cfg, cli, nil, stack.EngineOptions{}, nil)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := engine.Down(ctx, project); err != nil {
			t.Errorf("cleanup down: %v", err)
		}
	})
	target := []string{"--pr", "3", "--repo", "acme/" + repo, "--config", cfgFile}

	out, errOut, err := runCLI(t, append([]string{"up", "--dir", src, "--sha", strings.Repeat("d", 40)}, target...)...)
	if err != nil {
		t.Fatalf("up: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "pushed "+reg+"/"+project+"-web:dddddddddddd@sha256:") || !strings.Contains(out, "web") {
		t.Errorf("up did not push to the registry, or print the service:\n%s\n%s", out, errOut)
	}
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmengine.LabelNamespace+"="+project))})
	if err != nil || len(svcs) != 1 {
		t.Fatalf("services of %s: %v %v", project, svcs, err)
	}
	out, errOut, err = runCLI(t, "ls", "--config", cfgFile)
	if err != nil || !strings.Contains(out, project) || !strings.Contains(out, "running") {
		t.Errorf("ls: %v\n%s\n%s", err, out, errOut)
	}
	out, errOut, err = runCLI(t, append([]string{"logs", "--service", "web"}, target...)...)
	if err != nil || !strings.Contains(out, "web | web says hello") {
		t.Errorf("logs: %v\n%s\n%s", err, out, errOut)
	}
	out, errOut, err = runCLI(t, append([]string{"down"}, target...)...)
	if err != nil || !strings.Contains(out, "removed "+project) {
		t.Errorf("down: %v\n%s\n%s", err, out, errOut)
	}
	svcs, err = cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmengine.LabelNamespace+"="+project))})
	if err != nil || len(svcs) != 0 {
		t.Errorf("services left after down: %v %v", svcs, err)
	}
}
