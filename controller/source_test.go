package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/internal/contract"
)

// A container that mounts the checkout read-write can rewrite it; the next
// deploy of the same SHA must not mount what it wrote.
func TestRedeployNeverMountsATamperedCheckout(t *testing.T) {
	t.Parallel()
	redeployFromAFreshCopy(t, `  writer:
    image: slipway-test/busybox:1
    init: true
    volumes: [".:/src"]
    command: ["sh", "-c", "echo boot >> /src/BOOTS; exec sleep 3600"]
`)
}

// The same through a volume that binds the checkout: whatever the mount
// type, a writable mount makes the copy single-use.
func TestRedeployNeverMountsACheckoutTamperedThroughABindVolume(t *testing.T) {
	t.Parallel()
	redeployFromAFreshCopy(t, `  writer:
    image: slipway-test/busybox:1
    init: true
    volumes: ["checkout:/src"]
    command: ["sh", "-c", "echo boot >> /src/BOOTS; exec sleep 3600"]
volumes:
  checkout:
    driver: local
    driver_opts: {type: none, o: bind, device: .}
`)
}

// redeployFromAFreshCopy deploys the test app plus writerYAML (appended to
// its compose file: a writer service that appends "boot" to BOOTS in the
// checkout), makes the controller re-converge at the same SHA, and checks
// the second deploy runs from a fresh copy that holds only its own boot.
func redeployFromAFreshCopy(t *testing.T, writerYAML string) {
	h := newHarness(t, harnessOptions{})
	files := app("mounted")
	files["compose.yaml"] += writerYAML
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: files})
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	h.waitServes(n, "version mounted")
	h.waitReady(n)
	ctx := context.Background()
	writer := contract.ContainerName(h.project(n), "writer", 1)
	ins, err := h.cli.ContainerInspect(ctx, writer)
	if err != nil {
		t.Fatal(err)
	}
	first := ins.Config.Labels[contract.LabelWorkingDir]
	if _, err := os.Stat(filepath.Join(first, "BOOTS")); err != nil {
		t.Fatalf("the writer did not write into its checkout (%v): the test would prove nothing", err)
	}
	// Heal: a removed container makes the controller re-converge at the same SHA.
	web, _ := h.cli.ContainerInspect(ctx, contract.ContainerName(h.project(n), "web", 1))
	if err := h.cli.ContainerRemove(ctx, web.ID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	h.ctrl.Enqueue(keyOf(h, n))
	eventually(t, 60*1e9, "the environment to be re-converged from a fresh copy", func() (bool, string) {
		ins, err := h.cli.ContainerInspect(ctx, contract.ContainerName(h.project(n), "web", 1))
		if err != nil {
			return false, err.Error()
		}
		return ins.Config.Labels[contract.LabelWorkingDir] != first, ins.Config.Labels[contract.LabelWorkingDir]
	})
	ins, _ = h.cli.ContainerInspect(ctx, contract.ContainerName(h.project(n), "web", 1))
	second := ins.Config.Labels[contract.LabelWorkingDir]
	// The recreated writer booted once in the new copy; a reused copy would
	// hold the first boot too.
	eventually(t, 30*1e9, "the writer's boot in the new copy", func() (bool, string) {
		b, err := os.ReadFile(filepath.Join(second, "BOOTS"))
		return err == nil && strings.Count(string(b), "boot") >= 1, string(b)
	})
	if b, _ := os.ReadFile(filepath.Join(second, "BOOTS")); strings.Count(string(b), "boot") != 1 {
		t.Errorf("the new copy's BOOTS %q: it carries what the old container wrote", b)
	}
	eventually(t, 30*1e9, "the tampered copy to be removed", func() (bool, string) {
		_, err := os.Stat(first)
		return os.IsNotExist(err), first
	})
}
