package main

import (
	"context"
	"io"
	"log/slog"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/swarm"
)

// previewEngine is every verb serve and the local commands use, which
// both engines have: the Docker host's (controller/stack) and the swarm's
// (controller/swarm).
type previewEngine interface {
	controller.Engine
	List(ctx context.Context) ([]stack.Environment, error)
	Logs(ctx context.Context, project string, o stack.LogOptions, w io.Writer) error
}

// newPreviewEngine returns the engine slipway.yaml's engine key names, over
// cli. opts tune the Docker host's engine, and the swarm engine's builds;
// proxy, when not nil, is the swarm engine's Proxy.
func newPreviewEngine(cfg *config.Controller, cli *client.Client, log *slog.Logger, opts stack.EngineOptions, proxy swarm.ProxyNetworks) previewEngine {
	if cfg != nil && cfg.Engine == config.EngineSwarm {
		r := cfg.Registry
		return swarm.NewEngine(cli, log, swarm.Options{
			Registry:     &swarm.Registry{Address: r.Address, API: r.API, User: r.User, Password: r.Password},
			ReadyTimeout: opts.ReadyTimeout,
			Build:        opts,
			// The firewall that guards build networks also guards the
			// manager's docker_gwbridge, through which tasks leave.
			Firewall: opts.Firewall,
			Proxy:    proxy,
		})
	}
	return stack.NewEngine(cli, log, opts)
}

// localPreviewEngine is localEngine for the engine cfg names (nil: the
// Docker host's).
func (g *globals) localPreviewEngine(ctx context.Context, cfg *config.Controller, opts stack.EngineOptions) (engine previewEngine, log *slog.Logger, close func(), err error) {
	if log, err = g.logger(); err != nil {
		return nil, nil, nil, err
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return newPreviewEngine(cfg, cli, log, opts, nil), log, func() { cli.Close() }, nil
}

// addEngineConfigFlag gives a local command --config, for the engine (and
// the registry) slipway.yaml names, as serve takes them.
func addEngineConfigFlag(cmd *cobra.Command, path *string) {
	cmd.Flags().StringVar(path, "config", "", "slipway.yaml to take the engine (docker or swarm) and registry from")
}

// attachedProxy is the swarm engine's Proxy in serve: the attacher of the
// parts, made after the engine (by buildProxy), and nil unless Slipway
// runs in a container, when there is nothing to hold or keep off.
type attachedProxy struct{ p *parts }

func (a attachedProxy) Hold(ctx context.Context, networks []string) (release func()) {
	if a.p.attacher == nil {
		return func() {}
	}
	return a.p.attacher.Hold(ctx, networks)
}

func (a attachedProxy) Exclude(ctx context.Context, networks []string) (done func()) {
	if a.p.attacher == nil {
		return func() {}
	}
	return a.p.attacher.Exclude(ctx, networks)
}
