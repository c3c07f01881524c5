package main

import (
	"io"
	"testing"

	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/swarm"
)

func TestNewPreviewEngineFollowsTheConfiguration(t *testing.T) {
	cli, err := client.NewClientWithOpts(client.WithHost("unix:///nonexistent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	if _, ok := newPreviewEngine(nil, cli, nil, stack.EngineOptions{}, nil).(*stack.Engine); !ok {
		t.Error("no configuration: not the Docker host's engine")
	}
	if _, ok := newPreviewEngine(&config.Controller{Engine: config.EngineDocker}, cli, nil, stack.EngineOptions{}, nil).(*stack.Engine); !ok {
		t.Error("engine: docker: not the Docker host's engine")
	}
	sw := &config.Controller{Engine: config.EngineSwarm, Registry: config.Registry{Address: "registry.example.com:5000"}}
	if _, ok := newPreviewEngine(sw, cli, nil, stack.EngineOptions{}, nil).(*swarm.Engine); !ok {
		t.Error("engine: swarm: not the swarm engine")
	}
}

func TestLocalCommandsTakeTheEngineFromConfig(t *testing.T) {
	root := newRoot(io.Discard, io.Discard)
	for _, cmd := range []string{"up", "down", "ls", "logs"} {
		var found bool
		for _, c := range root.Commands() {
			if c.Name() == cmd {
				found = c.Flags().Lookup("config") != nil
			}
		}
		if !found {
			t.Errorf("slipway %s has no --config", cmd)
		}
	}
}
