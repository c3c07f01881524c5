package main

import (
	"encoding/json"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/dashboard"
	"github.com/slipwayhq/slipway/internal/contract"
)

func newDownCmd(g *globals) *cobra.Command {
	var t target
	var configPath string
	cmd := &cobra.Command{
		Use:   "down --pr N [--repo OWNER/REPO] [--dir DIR]",
		Short: "Remove a preview environment: containers, networks, volumes and built images",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			project, err := t.project()
			if err != nil {
				return err
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			// The rules up added for the project's networks go with them
			// (where there can be any: as root, beside the engine's bridges).
			var fw stack.Firewall
			if bridgesHere() {
				if ipt, err := stack.NewIPTables(ctx, log); err == nil {
					fw = ipt
				}
			}
			cfg, err := localConfig(configPath)
			if err != nil {
				return err
			}
			engine, _, closeEngine, err := g.localPreviewEngine(ctx, cfg, stack.EngineOptions{Firewall: fw})
			if err != nil {
				return err
			}
			defer closeEngine()
			if err := engine.Down(ctx, project); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "removed %s\n", project)
			return nil
		},
	}
	t.addFlags(cmd, "directory of the project (names the repo when --repo is not given)")
	addEngineConfigFlag(cmd, &configPath)
	return cmd
}

// remote is the --server and --token flags of ls and logs.
type remote struct {
	server, token string
}

func (r *remote) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&r.server, "server", "", "a running Slipway's URL: use its API instead of the local engine")
	cmd.Flags().StringVar(&r.token, "token", os.Getenv("SLIPWAY_TOKEN"), "the dashboard token for --server (default $SLIPWAY_TOKEN)")
}

func (r *remote) client() *dashboard.Client {
	return &dashboard.Client{BaseURL: r.server, Token: r.token}
}

func newLsCmd(g *globals) *cobra.Command {
	var asJSON bool
	var configPath string
	var rem remote
	cmd := &cobra.Command{
		Use:   "ls [--json] [--server URL]",
		Short: "List the preview environments on the engine (or on a Slipway server)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if rem.server != "" {
				envs, err := rem.client().Environments(ctx)
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(g.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(envs)
				}
				tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "PROJECT\tREPO\tPR\tSHA\tPHASE\tURL\tTITLE")
				for _, e := range envs {
					url := e.URL
					if url == "" {
						url = "-"
					}
					fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", e.Project, e.Repo, e.PR, contract.ShortSHA(e.SHA), e.Phase, url, e.Title)
				}
				return tw.Flush()
			}
			cfg, err := localConfig(configPath)
			if err != nil {
				return err
			}
			engine, _, closeEngine, err := g.localPreviewEngine(ctx, cfg, stack.EngineOptions{})
			if err != nil {
				return err
			}
			defer closeEngine()
			envs, err := engine.List(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				type row struct {
					stack.Environment
					Phase string `json:"phase"`
				}
				rows := make([]row, 0, len(envs))
				for _, e := range envs {
					rows = append(rows, row{e, e.Phase()})
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PROJECT\tREPO\tPR\tSHA\tPHASE\tSERVICES\tURL\tAGE")
			for _, e := range envs {
				url := "-"
				if len(e.Routes) > 0 {
					url = "http://" + e.Routes[0].Host
				}
				n := 0
				for _, s := range e.Services {
					n += len(s.Containers)
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%d\t%s\t%s\n", e.Project, e.Repo, e.PR, contract.ShortSHA(e.SHA), e.Phase(), n, url, age(e.Created))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	rem.addFlags(cmd)
	addEngineConfigFlag(cmd, &configPath)
	return cmd
}

func age(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := time.Since(t)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func newLogsCmd(g *globals) *cobra.Command {
	var t target
	var service, tail string
	var follow, timestamps bool
	var rem remote
	var configPath string
	cmd := &cobra.Command{
		Use:   "logs --pr N [--service S] [-f] [--repo OWNER/REPO] [--dir DIR] [--server URL]",
		Short: "Print the logs of a preview environment's services",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			project, err := t.project()
			if err != nil {
				return err
			}
			if rem.server != "" {
				err := rem.client().Logs(ctx, project, service, follow, g.stdout)
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			cfg, err := localConfig(configPath)
			if err != nil {
				return err
			}
			engine, _, closeEngine, err := g.localPreviewEngine(ctx, cfg, stack.EngineOptions{})
			if err != nil {
				return err
			}
			defer closeEngine()
			err = engine.Logs(ctx, project, stack.LogOptions{Service: service, Follow: follow, Tail: tail, Timestamps: timestamps}, g.stdout)
			if ctx.Err() != nil {
				return nil // Ctrl-C ends a follow
			}
			return err
		},
	}
	t.addFlags(cmd, "directory of the project (names the repo when --repo is not given)")
	cmd.Flags().StringVar(&service, "service", "", "only this service")
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep streaming new lines")
	cmd.Flags().StringVar(&tail, "tail", "all", "lines of history per container")
	cmd.Flags().BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	rem.addFlags(cmd)
	addEngineConfigFlag(cmd, &configPath)
	return cmd
}
