package examples_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"

	"github.com/slipwayhq/slipway/config"
)

// examples/swarm is Slipway on a swarm manager: its slipway.yaml loads
// with engine: swarm and a registry, and its compose file runs one
// standalone container (which can join the previews' overlays) with the
// manager's socket, its state at the same path, and ports 80 and 443.
func TestSwarmExample(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "registry_password")
	if err := os.WriteFile(pw, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"SLIPWAY_GITHUB_TOKEN": "t", "SLIPWAY_GITHUB_WEBHOOK_SECRET": "w", "SLIPWAY_REGISTRY_PASSWORD_FILE": pw}
	cfg, err := config.LoadController("swarm/slipway.yaml", func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatalf("swarm/slipway.yaml: %v", err)
	}
	if cfg.Engine != config.EngineSwarm || cfg.Registry.Address == "" || cfg.Registry.Password != "s3cret" {
		t.Errorf("engine %q, registry %q (password read: %v)", cfg.Engine, cfg.Registry.Address, cfg.Registry.Password == "s3cret")
	}

	dir, err := filepath.Abs("swarm")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithResolvedPaths(true), cli.WithEnv([]string{"DOCKER_GID=999"}))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("swarm/docker-compose.yml: %v", err)
	}
	s, ok := p.Services["slipway"]
	if !ok || len(p.Services) != 1 {
		t.Fatalf("want one service, slipway; got %v", p.ServiceNames())
	}
	if s.Deploy != nil && s.Deploy.Mode != "" {
		t.Errorf("deploy.mode %q: Slipway runs as a standalone container, not a swarm service", s.Deploy.Mode)
	}
	var published []uint32
	for _, port := range s.Ports {
		if port.Published != "" {
			published = append(published, port.Target)
		}
	}
	if !slices.Contains(published, 80) || !slices.Contains(published, 443) {
		t.Errorf("ports 80 and 443 are not published: %v", s.Ports)
	}
	mounts := map[string]string{}
	for _, v := range s.Volumes {
		mounts[v.Target] = v.Source
	}
	if mounts["/var/run/docker.sock"] != "/var/run/docker.sock" {
		t.Errorf("the engine's socket is not mounted: %v", mounts)
	}
	if mounts["/var/lib/slipway"] != "/var/lib/slipway" || mounts["/etc/slipway/slipway.yaml"] != filepath.Join(dir, "slipway.yaml") {
		t.Errorf("state_dir or slipway.yaml not mounted as docs/swarm.md says: %v", mounts)
	}
	if !s.ReadOnly || !slices.Equal(s.CapDrop, []string{"ALL"}) {
		t.Errorf("not hardened: read_only %v cap_drop %v", s.ReadOnly, s.CapDrop)
	}
}
