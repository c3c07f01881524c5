package stack

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"

	"github.com/slipwayhq/slipway/internal/contract"
)

// A compose file's top-level name (real projects carry one) is ignored
// with a note: the project keeps the name Slipway gives it, and so do its
// networks and volumes.
func TestTopLevelNameIsIgnoredWithANote(t *testing.T) {
	for _, tc := range []struct {
		name, compose, note string
	}{
		{"plain", "name: react-rust-postgres\n", `compose.yaml: top-level name: "react-rust-postgres" ignored; the preview's project is acme-shop-pr-4`},
		{"another preview's project", "name: acme-shop-pr-8\n", `top-level name: "acme-shop-pr-8" ignored`},
		{"interpolated", "name: ${SLIPWAY_REPO}\n", `top-level name: "${SLIPWAY_REPO}" ignored`},
		{"through an anchor", "x-name: &n other\nname: *n\n", `top-level name: "other" ignored`},
		{"none", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFixture(t, map[string]string{"compose.yaml": tc.compose +
				"services:\n  web:\n    image: busybox\n    networks: [front]\n    volumes: [data:/data]\nnetworks:\n  front: {}\nvolumes:\n  data: {}\n"})
			p, err := Load(context.Background(), Source{Dir: dir, Owner: "acme", Repo: "shop", PR: 4, SHA: sha1}, LoadOptions{})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			if p.Name != "acme-shop-pr-4" || p.Project.Name != "acme-shop-pr-4" {
				t.Errorf("project named %q / %q, want acme-shop-pr-4", p.Name, p.Project.Name)
			}
			if n := p.Project.Networks["front"].Name; n != "acme-shop-pr-4_front" {
				t.Errorf("network named %q", n)
			}
			if n := p.Project.Volumes["data"].Name; n != "acme-shop-pr-4_data" {
				t.Errorf("volume named %q", n)
			}
			switch {
			case tc.note == "" && len(p.Notes) != 0:
				t.Errorf("notes %q, want none", p.Notes)
			case tc.note != "" && (len(p.Notes) != 1 || !strings.Contains(p.Notes[0], tc.note)):
				t.Errorf("notes %q, want one saying %q", p.Notes, tc.note)
			}
		})
	}
}

// On the engine, a file naming itself after another preview converges
// under its own project: every container, network and volume carries
// Slipway's name, nothing carries the file's, and the build log says the
// name was ignored.
func TestTopLevelNameNeverRenamesTheEnvironment(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, "", 1, 2)
	other := contract.ProjectName(src.Owner, src.Repo, 2)
	src.Dir = writeFixture(t, map[string]string{
		"compose.yaml": "name: " + other + "\nservices:\n  web:\n    image: slipway-test/busybox:1\n    init: true\n    stop_grace_period: 1s\n    command: [\"sleep\", \"3600\"]\n    networks: [front]\n    volumes: [data:/data]\n" +
			"networks:\n  front: {}\nvolumes:\n  data: {}\n",
	})
	p := mustLoad(t, src)
	var log bytes.Buffer
	res, err := e.Up(context.Background(), p, UpOptions{BuildLog: &log})
	if err != nil {
		t.Fatalf("up: %v\n%s", err, log.String())
	}
	want := "note: compose.yaml: top-level name: \"" + other + "\" ignored; the preview's project is " + p.Name + "\n"
	if !strings.HasPrefix(log.String(), want) {
		t.Errorf("the build log does not start with the note %q:\n%s", want, log.String())
	}
	if !slices.Equal(res.Created, []string{contract.ContainerName(p.Name, "web", 1)}) {
		t.Errorf("created %v", res.Created)
	}
	ctx := context.Background()
	ins := inspectService(t, cli, p.Name, "web")
	if got := ins.Config.Labels[contract.LabelProject]; got != p.Name {
		t.Errorf("container's project label %q, want %q", got, p.Name)
	}
	for n := range ins.NetworkSettings.Networks {
		if n != contract.ResourceName(p.Name, "front") {
			t.Errorf("container on network %q, want only %s", n, contract.ResourceName(p.Name, "front"))
		}
	}
	for _, m := range ins.Mounts {
		if m.Type == "volume" && m.Name != contract.ResourceName(p.Name, "data") {
			t.Errorf("container mounts volume %q", m.Name)
		}
	}
	if _, err := cli.NetworkInspect(ctx, contract.ResourceName(p.Name, "front"), network.InspectOptions{}); err != nil {
		t.Errorf("network of the project: %v", err)
	}
	if _, err := cli.VolumeInspect(ctx, contract.ResourceName(p.Name, "data")); err != nil {
		t.Errorf("volume of the project: %v", err)
	}
	// Nothing is named or labelled after the file's name.
	byLabel := filters.NewArgs(filters.Arg("label", contract.LabelProject+"="+other))
	byName := filters.NewArgs(filters.Arg("name", other))
	cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: byLabel})
	if err != nil {
		t.Fatal(err)
	}
	cs2, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: byName})
	if err != nil {
		t.Fatal(err)
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: byName})
	if err != nil {
		t.Fatal(err)
	}
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: byName})
	if err != nil {
		t.Fatal(err)
	}
	if len(cs)+len(cs2)+len(nets)+len(vols.Volumes) > 0 {
		t.Errorf("objects carry the file's name %s: %d containers by label, %d by name, %d networks, %d volumes", other, len(cs), len(cs2), len(nets), len(vols.Volumes))
	}
	// And it converges: a second Up keeps the container.
	_, res = up(t, e, src)
	if res.Changed() {
		t.Errorf("re-up changed things: %v", summary(res.Convergence))
	}
}
