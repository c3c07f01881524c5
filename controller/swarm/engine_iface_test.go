package swarm_test

import (
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/controller"
	"github.com/slipwayhq/slipway/controller/swarm"
)

// The swarm engine plugs in behind the controller's verbs, over the real client.
var (
	_ controller.Engine = (*swarm.Engine)(nil)
	_ swarm.Docker      = (*client.Client)(nil)
)
