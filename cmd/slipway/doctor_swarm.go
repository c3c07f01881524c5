package main

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/system"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/swarm"
)

// checkSwarm runs the checks of engine: swarm: the registry needs a login,
// the engine is a manager, the registry accepts a push (and a delete), the
// overlay driver works.
func (d *doctor) checkSwarm(ctx context.Context, cfg *config.Controller, info *system.Info) []checkResult {
	auth := judgeRegistryAuth(cfg.Registry.User)
	names := []string{"swarm", "registry", "overlay"}
	if info == nil {
		out := []checkResult{auth}
		for _, n := range names {
			out = append(out, checkSkip(n, "the engine did not answer"))
		}
		return out
	}
	manager := swarm.CheckManager(*info)
	out := []checkResult{auth, judgeSwarmManager(manager)}
	cli, ok := d.docker.(swarm.Docker)
	if !ok {
		return append(out, checkSkip("registry", "no engine client"), checkSkip("overlay", "no engine client"))
	}
	r := cfg.Registry
	e := swarm.NewEngine(cli, nil, swarm.Options{Registry: &swarm.Registry{Address: r.Address, API: r.API, User: r.User, Password: r.Password}})
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out = append(out, judgeRegistryPush(r.Address, e.CheckRegistryPush(ctx)))
	if manager != nil {
		return append(out, checkSkip("overlay", "the engine is not a swarm manager"))
	}
	return append(out, judgeOverlay(e.CheckOverlay(ctx)))
}

func judgeSwarmManager(err error) checkResult {
	if err != nil {
		return checkFail("swarm", "engine: swarm needs Slipway to talk to a swarm manager (docker swarm init, or DOCKER_HOST at a manager)", "%v", err)
	}
	return checkOK("swarm", "the engine is a swarm manager")
}

// judgeRegistryAuth warns of a registry without a login: whatever reaches
// it pulls every preview's images, and a built image holds its pull
// request's code (another, private pull request's, for a preview that
// reaches it).
func judgeRegistryAuth(user string) checkResult {
	if user == "" {
		return checkWarn("registry-auth", "give the registry a login (registry.user and registry.password_file) or keep it where previews' containers cannot reach it (docs/swarm.md)",
			"registry.user is not set: anything that reaches the registry, a preview's container among them, can pull every preview's images and the code built into them")
	}
	return checkOK("registry-auth", "Slipway logs in to the registry as %s", user)
}

func judgeRegistryPush(addr string, err error) checkResult {
	if err != nil {
		return checkFail("registry", "every node pulls preview images from registry.address: check that it runs, that the Docker daemons trust it (TLS, or insecure-registries), that registry.user and its password are right, and that it allows deletes (docs/swarm.md)",
			"%s: %v", addr, err)
	}
	return checkOK("registry", "%s accepted a push and a delete", addr)
}

func judgeOverlay(err error) checkResult {
	if err != nil {
		return checkFail("overlay", "previews run on attachable overlay networks: check the swarm's ports (2377/tcp, 7946/tcp+udp, 4789/udp) and the overlay driver", "%v", err)
	}
	return checkOK("overlay", "an attachable overlay network could be created and removed")
}
