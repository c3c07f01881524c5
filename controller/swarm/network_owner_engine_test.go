package swarm

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// A network with the name a preview's network would have, made by someone
// else, is not taken over: Up fails naming it, and leaves it as it was.
func TestUpRefusesANetworkItDidNotMake(t *testing.T) {
	e, cli, _ := testEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	src := stack.Source{Dir: copyFixture(t, "pair"), Owner: "test", Repo: dockertest.UniqueName("owner"), PR: 2, SHA: strings.Repeat("2", 40)}
	project := src.Project()
	netName := contract.ResourceName(project, "default")
	// Managed, even, but another project's.
	created, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{Driver: "overlay", Attachable: true,
		Labels: map[string]string{contract.LabelManaged: "true", LabelNamespace: "someone-else"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.NetworkRemove(context.Background(), created.ID) })
	t.Cleanup(func() {
		if err := e.Down(context.Background(), project); err != nil {
			t.Errorf("cleanup down: %v", err)
		}
	})

	_, err = e.Up(ctx, load(t, src), stack.UpOptions{})
	if err == nil || !strings.Contains(err.Error(), netName) || !strings.Contains(err.Error(), "not one Slipway made") {
		t.Fatalf("Up over another's network %s: %v, want a refusal naming it", netName, err)
	}
	ins, err := cli.NetworkInspect(ctx, created.ID, network.InspectOptions{})
	if err != nil {
		t.Fatalf("the other network is gone: %v", err)
	}
	if ins.Labels[LabelNamespace] != "someone-else" {
		t.Errorf("the other network's labels changed: %v", ins.Labels)
	}
	if svcs, err := e.services(ctx, project); err != nil || len(svcs) != 0 {
		t.Errorf("services of %s after the refusal: %v %v", project, svcs, err)
	}
}
