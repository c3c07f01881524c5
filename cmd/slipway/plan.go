package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
)

func newPlanCmd(g *globals) *cobra.Command {
	var f loadFlags
	cmd := &cobra.Command{
		Use:   "plan --dir DIR [--pr N] [--repo OWNER/REPO]",
		Short: "Check a compose project against the security policy and print its namespaced plan",
		Long: `Load the compose project in --dir exactly as Slipway would for a pull
request, check it against the security policy, and print the namespaced plan:
services, images, networks, volumes and routes. It exits 1, listing every
violation, when the policy rejects the project.

When the Docker Engine answers (DOCKER_HOST is honoured), it then prints the
convergence plan against what runs for the project: which containers ` + "`up`" + `
would create, recreate, start, keep or remove, and why. It changes nothing.
Without an engine it says the convergence plan could not be computed; the
exit code still depends on the policy only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := g.logger(); err != nil {
				return err
			}
			if f.pr == 0 {
				f.pr = 1
			}
			plan, _, err := f.load(cmd)
			var perr *stack.PolicyError
			if errors.As(err, &perr) {
				if plan != nil {
					printPlan(g.stdout, plan)
					fmt.Fprintln(g.stdout, "\nconvergence: not computed, the policy rejects the project")
				}
				fmt.Fprintf(g.stdout, "\nREJECTED: %d policy violation(s)\n", len(perr.Violations))
				for _, v := range perr.Violations {
					fmt.Fprintf(g.stdout, "  - %s\n", v)
				}
				return &exitError{code: 1, err: errors.New("the security policy rejects this compose project")}
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			printPlan(g.stdout, plan)
			conv, err := g.convergencePlan(cmd.Context(), plan)
			printConvergence(g.stdout, conv, err)
			fmt.Fprintln(g.stdout, "\nOK: no policy violations")
			return nil
		},
	}
	f.addFlags(cmd, "commit SHA (default: git HEAD, or a content hash)")
	return cmd
}

// engineWait bounds how long plan waits for the engine to answer.
const engineWait = 30 * time.Second

// convergencePlan asks the local engine what Up would do to plan's project.
func (g *globals) convergencePlan(ctx context.Context, plan *stack.Plan) (*stack.Convergence, error) {
	ctx, cancel := context.WithTimeout(ctx, engineWait)
	defer cancel()
	engine, _, closeEngine, err := g.localEngine(ctx, stack.EngineOptions{})
	if err != nil {
		return nil, err
	}
	defer closeEngine()
	return engine.ConvergencePlan(ctx, plan, stack.ConvergeOptions{})
}

// printConvergence prints what up would do to each container, or why that
// could not be computed.
func printConvergence(w io.Writer, conv *stack.Convergence, err error) {
	fmt.Fprintln(w, "\nconvergence (against what runs now):")
	if err != nil {
		fmt.Fprintf(w, "  could not be computed: %v\n", err)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, a := range conv.Actions {
		why := string(a.Reason)
		if a.Detail != "" {
			why += " (" + a.Detail + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", a.Action, a.Container, why)
	}
	tw.Flush()
	fmt.Fprintf(w, "  %d to create, %d to recreate, %d to start, %d to keep, %d to remove\n",
		conv.Count(stack.ActionCreate), conv.Count(stack.ActionRecreate), conv.Count(stack.ActionStart), conv.Count(stack.ActionKeep), conv.Count(stack.ActionRemove))
}

func printPlan(w io.Writer, p *stack.Plan) {
	fmt.Fprintf(w, "project  %s\nrepo     %s  PR %d  SHA %s\nfiles    %s\n", p.Name, p.Source.FullName(), p.Source.PR, p.Source.SHA, strings.Join(p.ConfigFiles, ", "))
	for _, n := range p.Notes {
		fmt.Fprintf(w, "note     %s\n", n)
	}
	fmt.Fprintln(w, "\nservices:")
	for _, name := range slices.Sorted(maps.Keys(p.Project.Services)) {
		svc := p.Project.Services[name]
		kind := "image"
		if p.IsBuilt(name) {
			kind = "build " + svc.Build.Context
		}
		fmt.Fprintf(w, "  %-16s %-40s %s  x%d\n", name, p.Image(name), kind, svc.GetScale())
		for i := 1; i <= svc.GetScale(); i++ {
			fmt.Fprintf(w, "    container %s\n", contract.ContainerName(p.Name, name, i))
		}
	}
	if len(p.Project.Networks) > 0 {
		fmt.Fprintln(w, "\nnetworks:")
		for _, k := range slices.Sorted(maps.Keys(p.Project.Networks)) {
			fmt.Fprintf(w, "  %s\n", p.Project.Networks[k].Name)
		}
	}
	if len(p.Project.Volumes) > 0 {
		fmt.Fprintln(w, "\nvolumes:")
		for _, k := range slices.Sorted(maps.Keys(p.Project.Volumes)) {
			fmt.Fprintf(w, "  %s\n", p.Project.Volumes[k].Name)
		}
	}
	fmt.Fprintln(w, "\nroutes:")
	if len(p.Routes) == 0 {
		fmt.Fprintln(w, "  (none: no service publishes or exposes a port)")
	}
	for _, r := range p.Routes {
		primary := ""
		if r.Primary {
			primary = " (primary)"
		}
		fmt.Fprintf(w, "  %s → %s:%d%s\n", r.URL, r.Service, r.Port, primary)
	}
	for _, j := range p.Repo.AfterDeploy {
		fmt.Fprintf(w, "after_deploy: %s: %s\n", j.Service, strings.Join(j.Command, " "))
	}
	if len(p.WithheldSecrets) > 0 {
		fmt.Fprintf(w, "withheld secrets (untrusted PR): %s\n", strings.Join(p.WithheldSecrets, ", "))
	}
}

func newVersionCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			c := commit
			if c == "" {
				c = "unknown"
			}
			fmt.Fprintf(g.stdout, "slipway %s (commit %s, %s, %s/%s)\n", version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		},
	}
}
