package swarm

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/internal/dockertest"
)

// TestMain makes the engine a single-node swarm for the engine tests, when
// they are enabled (SLIPWAY_SWARM_TESTS=1) and it is not in one, and
// leaves the swarm afterwards only if it created it.
func TestMain(m *testing.M) {
	if !dockertest.SwarmTestsEnabled() {
		os.Exit(m.Run())
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	created := false
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		created, err = dockertest.EnsureSwarm(ctx, cli)
		cancel()
	}
	if err != nil {
		// The tests themselves report a missing engine (a failure under
		// CI=true); a swarm that cannot be made is reported here.
		fmt.Fprintf(os.Stderr, "swarm tests: %v\n", err)
		if os.Getenv("CI") == "true" {
			os.Exit(1)
		}
	}
	code := m.Run()
	if created {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if err := dockertest.LeaveSwarm(ctx, cli); err != nil {
			fmt.Fprintf(os.Stderr, "swarm tests: %v\n", err)
			code = 1
		}
		cancel()
	}
	os.Exit(code)
}
