package swarm

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"
)

func TestCheckManager(t *testing.T) {
	for _, tc := range []struct {
		state   swarm.LocalNodeState
		manager bool
		want    string
	}{
		{swarm.LocalNodeStateActive, true, ""},
		{swarm.LocalNodeStateActive, false, "a swarm worker"},
		{swarm.LocalNodeStateInactive, false, "not in a swarm"},
		{swarm.LocalNodeStatePending, false, "not in a swarm"},
	} {
		var info system.Info
		info.Swarm.LocalNodeState, info.Swarm.ControlAvailable = tc.state, tc.manager
		err := CheckManager(info)
		if (err == nil) != (tc.want == "") || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s manager=%v: %v, want %q", tc.state, tc.manager, err, tc.want)
		}
	}
}

// The doctor's probes against the real swarm and registry: they pass, and
// leave nothing behind; a registry that does not answer fails the check.
func TestProbes(t *testing.T) {
	e, cli, reg := testEngine(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	info, err := cli.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckManager(info); err != nil {
		t.Fatalf("the test swarm: %v", err)
	}
	if err := e.CheckOverlay(ctx); err != nil {
		t.Errorf("overlay: %v", err)
	}
	if err := e.CheckRegistryPush(ctx); err != nil {
		t.Errorf("registry push: %v", err)
	}
	repos, err := reg.repositories(ctx, "slipway-doctor")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range repos {
		var tags struct{ Tags []string }
		if _, err := reg.getJSON(ctx, "/v2/"+r+"/tags/list", nil, &tags); err == nil && len(tags.Tags) > 0 {
			t.Errorf("the probe left %s:%v in the registry", r, tags.Tags)
		}
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		if strings.HasPrefix(n.Name, "slipway-doctor-") {
			t.Errorf("the probe left network %s", n.Name)
		}
	}
	imgs, err := cli.ImageList(ctx, imageListAll())
	if err != nil {
		t.Fatal(err)
	}
	for _, img := range imgs {
		for _, tag := range img.RepoTags {
			if strings.Contains(tag, "slipway-doctor-probe") {
				t.Errorf("the probe left image %s", tag)
			}
		}
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := l.Addr().String()
	l.Close()
	gone := NewEngine(cli, nil, Options{Registry: &Registry{Address: dead}})
	if err := gone.CheckRegistryPush(ctx); err == nil || !strings.Contains(err.Error(), dead) {
		t.Errorf("a registry that does not answer: %v", err)
	}
}

func imageListAll() image.ListOptions { return image.ListOptions{All: true} }
