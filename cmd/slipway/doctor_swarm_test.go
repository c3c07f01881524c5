package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

func TestJudgeSwarmChecks(t *testing.T) {
	for _, tc := range []struct {
		got    checkResult
		status checkStatus
		detail string
	}{
		{judgeSwarmManager(nil), statusOK, "swarm manager"},
		{judgeSwarmManager(errors.New("the engine is a swarm worker")), statusFail, "worker"},
		{judgeRegistryPush("r:5000", nil), statusOK, "r:5000 accepted a push"},
		{judgeRegistryPush("r:5000", errors.New("push r:5000/x: denied")), statusFail, "denied"},
		{judgeRegistryAuth(""), statusWarn, "can pull every preview's images"},
		{judgeRegistryAuth("slipway"), statusOK, "as slipway"},
		{judgeOverlay(nil), statusOK, "overlay"},
		{judgeOverlay(errors.New("driver not found")), statusFail, "driver not found"},
	} {
		if tc.got.Status != tc.status || !strings.Contains(tc.got.Detail, tc.detail) {
			t.Errorf("%+v: want %s with %q", tc.got, tc.status, tc.detail)
		}
		if tc.status != statusOK && tc.got.Fix == "" {
			t.Errorf("%s fails without saying what to fix", tc.got.Name)
		}
	}
}

// Without an engine answering, the swarm checks are skipped, not failed
// twice; the registry's login is judged from the configuration alone.
func TestCheckSwarmWithoutEngine(t *testing.T) {
	d := &doctor{}
	out := d.checkSwarm(context.Background(), &config.Controller{Engine: config.EngineSwarm}, nil)
	if len(out) != 4 || out[0].Name != "registry-auth" || out[0].Status != statusWarn {
		t.Fatalf("%+v", out)
	}
	for _, r := range out[1:] {
		if r.Status != statusSkip {
			t.Errorf("%+v", r)
		}
	}
}

// On an engine that is not in a swarm (every test but the swarm step sees
// one), engine: swarm fails the swarm check and the registry check, and
// skips the overlay check.
func TestDoctorSwarmModeOnAPlainEngine(t *testing.T) {
	dockertest.Client(t)
	d := newDoctor()
	defer d.close()
	ctx := context.Background()
	info, err := d.docker.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Swarm.LocalNodeState != "inactive" {
		dockertest.Unavailable(t, "the engine is in a swarm (%s); this test needs a plain engine", info.Swarm.LocalNodeState)
	}
	cfg := &config.Controller{Engine: config.EngineSwarm, Registry: config.Registry{Address: "127.0.0.1:1"}}
	got := map[string]checkStatus{}
	for _, r := range d.checkSwarm(ctx, cfg, &info) {
		got[r.Name] = r.Status
	}
	if got["swarm"] != statusFail || got["registry"] != statusFail || got["overlay"] != statusSkip {
		t.Errorf("%v", got)
	}
}
