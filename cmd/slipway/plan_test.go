package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut syncBuffer
	root := newRoot(&out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// plan needs no engine: it prints the namespaced plan, and exits 1 listing
// every violation when the policy rejects the project.
func TestPlan(t *testing.T) {
	ok := t.TempDir()
	dockertest.WriteFiles(t, ok, map[string]string{
		"compose.yaml": "services:\n  web:\n    image: nginx\n    ports: [\"80:80\"]\n  db:\n    image: postgres:16\n    volumes: [data:/var/lib/postgresql/data]\nvolumes:\n  data: {}\n",
	})
	out, _, err := runCLI(t, "plan", "--dir", ok, "--pr", "4", "--repo", "acme/shop", "--sha", strings.Repeat("a", 40))
	if err != nil {
		t.Fatalf("plan of a benign project: %v\n%s", err, out)
	}
	for _, want := range []string{"acme-shop-pr-4", "acme-shop-pr-4-web-1", "acme-shop-pr-4_data", "http://pr-4.localhost → web:80 (primary)", "OK: no policy violations"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}

	bad := t.TempDir()
	dockertest.WriteFiles(t, bad, map[string]string{
		"compose.yaml": "services:\n  web:\n    image: nginx\n    privileged: true\n    volumes: [/var/run/docker.sock:/var/run/docker.sock]\n    network_mode: host\n",
	})
	out, _, err = runCLI(t, "plan", "--dir", bad, "--sha", strings.Repeat("b", 40))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 {
		t.Fatalf("plan of a hostile project: err %v, want exit code 1", err)
	}
	for _, want := range []string{"REJECTED: 3 policy violation(s)", "privileged", "docker.sock", "network_mode"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
}

// Without an engine, plan still prints the namespaced plan (with the
// notes of what Slipway ignores) and judges the policy, says the
// convergence plan could not be computed, and exits as the policy says.
func TestPlanWithoutEngine(t *testing.T) {
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "no-engine.sock"))
	ok := t.TempDir()
	dockertest.WriteFiles(t, ok, map[string]string{"compose.yaml": "name: my-app\nservices:\n  web:\n    image: nginx\n    ports: [\"80:80\"]\n"})
	out, _, err := runCLI(t, "plan", "--dir", ok, "--pr", "4", "--repo", "acme/shop", "--sha", strings.Repeat("a", 40))
	if err != nil {
		t.Fatalf("plan without an engine: %v\n%s", err, out)
	}
	for _, want := range []string{"acme-shop-pr-4-web-1", `note     compose.yaml: top-level name: "my-app" ignored; the preview's project is acme-shop-pr-4`, "convergence (against what runs now):\n  could not be computed: cannot reach the Docker Engine", "OK: no policy violations"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}

	bad := t.TempDir()
	dockertest.WriteFiles(t, bad, map[string]string{"compose.yaml": "services:\n  web:\n    image: nginx\n    privileged: true\n"})
	out, _, err = runCLI(t, "plan", "--dir", bad, "--sha", strings.Repeat("b", 40))
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(out, "REJECTED: 1 policy violation(s)") {
		t.Errorf("plan of a hostile project without an engine: err %v, want exit code 1\n%s", err, out)
	}
}

// With the engine, plan prints what up would do to what runs, and why.
func TestPlanConvergence(t *testing.T) {
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	ctx := context.Background()
	dir := t.TempDir()
	service := func(command string) string {
		return "    image: slipway-test/busybox:1\n    init: true\n    stop_grace_period: 1s\n    command: [\"sh\", \"-c\", \"" + command + "\"]\n"
	}
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": "services:\n  web:\n" + service("sleep 3600") + "  cache:\n" + service("sleep 3600")})
	repo := dockertest.UniqueName("plan")
	sha := strings.Repeat("c", 40)
	project := contract.ProjectName("acme", repo, 5)
	engine := stack.NewEngine(cli, nil, stack.EngineOptions{StopTimeout: time.Second})
	t.Cleanup(func() {
		if err := engine.Down(context.WithoutCancel(ctx), project); err != nil {
			t.Errorf("down %s: %v", project, err)
		}
	})
	plan, err := stack.Load(ctx, stack.Source{Dir: dir, Owner: "acme", Repo: repo, PR: 5, SHA: sha}, stack.LoadOptions{Limits: config.Defaults().Limits})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Up(ctx, plan, stack.UpOptions{}); err != nil {
		t.Fatal(err)
	}

	// web's command changes, cache goes, worker comes.
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services:\n  web:\n"+service("sleep 3601")+"  worker:\n"+service("sleep 3600")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, "plan", "--dir", dir, "--pr", "5", "--repo", "acme/"+repo, "--sha", sha)
	if err != nil {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	for _, want := range []string{
		"recreate  " + project + "-web-1     config hash changed",
		"create    " + project + "-worker-1  no container yet",
		"remove    " + project + "-cache-1   orphan service (cache is not in the compose project)",
		"1 to create, 1 to recreate, 0 to start, 0 to keep, 1 to remove",
		"OK: no policy violations",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	env, err := engine.Inspect(ctx, project)
	if err != nil || env == nil || len(env.Services) != 2 {
		t.Errorf("plan changed what runs: %+v, %v", env, err)
	}
}
