package main

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
)

func newUpCmd(g *globals) *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "up --dir DIR --pr N [--repo OWNER/REPO] [--sha SHA] [--domain DOMAIN]",
		Short: "Build and start a preview environment from a local checkout",
		Long: `Build and start the compose project in --dir as the preview environment of
pull request N, straight against the local Docker Engine (DOCKER_HOST is
honoured). Running it again converges: unchanged services keep running.

Without --sha the environment is labelled with the git HEAD of --dir when it
is a clean checkout, else with a hash of its content.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if f.pr <= 0 {
				return errors.New("--pr is required (a positive pull request number)")
			}
			plan, cfg, err := f.load(cmd)
			if err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			fw, err := firewallFor(ctx, cfg.Firewall, log)
			if err != nil {
				return err
			}
			engine, _, closeEngine, err := g.localPreviewEngine(ctx, cfg, stack.EngineOptions{BuildParallelism: cfg.Limits.Builds, ReadyTimeout: cfg.ReadyTimeout.D(), Firewall: fw, BuildNetwork: buildNetworkFor(cfg.BuildNetwork, fw, log)})
			if err != nil {
				return err
			}
			defer closeEngine()
			fmt.Fprintf(g.stderr, "slipway: bringing up %s at %s\n", plan.Name, contract.ShortSHA(plan.Source.SHA))
			start := time.Now()
			res, err := engine.Up(ctx, plan, stack.UpOptions{BuildLog: g.stderr})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "slipway: %s is up in %s (%d created, %d unchanged, %d removed)\n",
				plan.Name, time.Since(start).Round(10*time.Millisecond), len(res.Created), len(res.Kept), len(res.Removed))
			env, err := engine.Inspect(ctx, plan.Name)
			if err != nil {
				return err
			}
			printAddresses(g.stdout, plan, env)
			return nil
		},
	}
	f.addFlags(cmd, "commit SHA to label the environment with (default: git HEAD, or a content hash)")
	cmd.Flags().IntVar(&f.port, "port", 8080, "port the proxy (slipway serve) listens on, shown in the URLs")
	return cmd
}

// printAddresses prints the project name, then each service's URL (when
// exposed) and container addresses.
func printAddresses(w io.Writer, plan *stack.Plan, env *stack.Environment) {
	fmt.Fprintf(w, "project %s\n", plan.Name)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tSTATE\tURL\tADDRESS")
	if env != nil {
		for _, s := range env.Services {
			url := "-"
			port := 0
			if r, ok := plan.RouteFor(s.Service); ok {
				url, port = r.URL, r.Port
			}
			for _, c := range s.Containers {
				addr := c.IP
				if addr != "" && port > 0 {
					addr += ":" + strconv.Itoa(port)
				}
				if addr == "" {
					addr = "-"
				}
				state := c.State
				if c.Health != "" {
					state += " (" + c.Health + ")"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, state, url, addr)
			}
		}
	}
	tw.Flush()
}
