package main

import (
	"context"
	"errors"
	"strings"
	"testing"

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
