package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/stack/loader"
	"github.com/slipwayhq/slipway/examples"
	"github.com/slipwayhq/slipway/internal/contract"
)

// The demo's two pull requests: the sample app, and a change to it.
var demoPRs = []struct {
	pr       int
	greeting string
}{
	{1, "Hello from Slipway!\n#5b8def\n"},
	{2, "Hello from pull request 2: a new colour!\n#e0719b\n"},
}

const (
	demoOwner = "demo"
	demoRepo  = "shop"
)

func newDemoCmd(g *globals) *cobra.Command {
	var listen string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Deploy two previews of a sample app on this machine and serve them",
		Long: `Deploy two previews of the sample app in examples/demo — a web front end
calling an API by service name, with a healthcheck and a volume — as pull
requests 1 and 2 (two versions), serve them at http://pr-1.localhost:8080 and
http://pr-2.localhost:8080, and remove everything on Ctrl-C.

It needs only a Docker Engine: no registry, no internet, no GitHub. With a Go
toolchain on the PATH the sample's static binaries are built on this machine
into FROM scratch images; without one they are built in Docker from
golang:1.26-alpine, which needs a registry.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("log-level") {
				g.logLevel = "warn"
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			return runDemo(cmd.Context(), g, log, listen, verbose)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", ":8080", "address the preview proxy listens on")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show the build output")
	return cmd
}

func runDemo(ctx context.Context, g *globals, log *slog.Logger, listen string, verbose bool) (err error) {
	out := g.stdout
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return fmt.Errorf("listen on %s (is another program using it? pass --listen :8081): %w", listen, err)
	}
	port := portOf("", ln)
	fmt.Fprintf(out, "Slipway demo: two pull requests of a sample app, built and served on this machine.\n\n")

	work, err := os.MkdirTemp("", "slipway-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	fw, err := firewallFor(ctx, config.FirewallAuto, log)
	if err != nil {
		return err
	}
	engine := stack.NewEngine(cli, log, stack.EngineOptions{Firewall: fw})
	projects := []string{}
	// Whatever happens from here on, everything the demo made goes.
	defer func() {
		if cerr := demoTeardown(cli, engine, projects, out); cerr != nil && err == nil {
			err = cerr
		}
	}()

	arch, err := engineArch(ctx, cli)
	if err != nil {
		return err
	}
	useGo := hasGo()
	if useGo {
		fmt.Fprintf(out, "• building the sample's static Go binaries on this machine (CGO_ENABLED=0, linux/%s)\n", arch)
	} else {
		fmt.Fprintf(out, "• no Go toolchain found: building the sample inside Docker from golang:1.26-alpine (needs a registry)\n")
	}

	cfg := config.Defaults()
	cfg.Domain = "localhost"
	if err := cfg.Validate(); err != nil {
		return err
	}
	sctx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	served := make(chan error, 1)
	go func() { served <- serve(sctx, &cfg, log, serveOptions{httpListener: ln}) }()
	defer func() {
		stopServe()
		if serr := <-served; serr != nil && err == nil {
			err = serr
		}
	}()

	// The demo loads its own bundled example, not a pull request's files:
	// it runs confined where the kernel can confine it, and still runs where
	// it cannot (a laptop without Landlock).
	demoLoader, err := loader.New(loader.Options{Confinement: loader.ConfineAuto, Log: log})
	if err != nil {
		return err
	}
	var urls []string
	for _, d := range demoPRs {
		dir := filepath.Join(work, fmt.Sprintf("pr-%d", d.pr))
		if err := extractDemo(dir, d.greeting); err != nil {
			return err
		}
		if useGo {
			if err := buildDemoBinaries(ctx, dir, arch); err != nil {
				return err
			}
		} else if err := os.WriteFile(filepath.Join(dir, ".env"), []byte("DEMO_DOCKERFILE=Dockerfile.source\n"), 0o644); err != nil {
			return err
		}
		sha, err := contentHash(dir)
		if err != nil {
			return err
		}
		plan, err := stack.Load(ctx, stack.Source{Dir: dir, Owner: demoOwner, Repo: demoRepo, PR: d.pr, SHA: sha},
			stack.LoadOptions{Hosts: stack.HostOptions{Domain: "localhost", Port: port}, Limits: cfg.Limits, Loader: demoLoader})
		if err != nil {
			return err
		}
		projects = append(projects, plan.Name)
		fmt.Fprintf(out, "• pull request #%d: building and starting %s (commit %s)\n", d.pr, plan.Name, contract.ShortSHA(sha))
		var buildLog bytes.Buffer
		var w io.Writer = &buildLog
		if verbose {
			w = g.stderr
		}
		start := time.Now()
		if _, err := engine.Up(ctx, plan, stack.UpOptions{BuildLog: w}); err != nil {
			if !verbose {
				fmt.Fprint(g.stderr, buildLog.String())
			}
			return fmt.Errorf("pull request #%d: %w", d.pr, err)
		}
		r, _ := plan.Primary()
		urls = append(urls, r.URL)
		fmt.Fprintf(out, "  ready in %s\n", time.Since(start).Round(100*time.Millisecond))
	}
	fmt.Fprintf(out, "\nThe previews are live:\n\n")
	for _, u := range urls {
		fmt.Fprintf(out, "    %s\n", u)
	}
	fmt.Fprintf(out, "\nOpen them in a browser (every *.localhost name is this machine), or:\n    curl -H 'Host: pr-1.localhost' http://127.0.0.1:%d/\n\nPress Ctrl-C to remove everything.\n", port)

	select {
	case <-ctx.Done():
		fmt.Fprintf(out, "\nRemoving the previews…\n")
		return nil
	case err := <-served:
		served <- err // for the deferred wait
		if err != nil {
			return fmt.Errorf("proxy stopped: %w", err)
		}
		return nil
	}
}

// demoTeardown removes every demo project and checks nothing is left.
func demoTeardown(cli *client.Client, engine *stack.Engine, projects []string, out io.Writer) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// A crashed earlier run may have left projects this one never created.
	if all, err := engine.Projects(ctx); err == nil {
		for p, ref := range all {
			if ref.Repo == demoOwner+"/"+demoRepo && !contains(projects, p) {
				projects = append(projects, p)
			}
		}
	}
	var errs []error
	for _, p := range projects {
		if err := engine.Down(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(projects) > 0 && len(errs) == 0 {
		fmt.Fprintf(out, "Removed %s: no containers, networks, volumes or images of the demo are left.\n", strings.Join(projects, " and "))
	}
	return errors.Join(errs...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// extractDemo writes examples/demo into dir with the PR's greeting.
func extractDemo(dir, greeting string) error {
	err := fs.WalkDir(examples.Demo, "demo", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("demo", p)
		target := filepath.Join(dir, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := examples.Demo.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		return fmt.Errorf("write the sample app: %w", err)
	}
	for _, svc := range []string{"web", "api"} {
		mod := fmt.Sprintf("module example.com/demo/%s\n\ngo 1.22\n", svc)
		if err := os.WriteFile(filepath.Join(dir, svc, "go.mod"), []byte(mod), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, "web", "greeting.txt"), []byte(greeting), 0o644)
}

// buildDemoBinaries compiles web and api as static Linux binaries for the
// engine's architecture.
func buildDemoBinaries(ctx context.Context, dir, arch string) error {
	for _, svc := range []string{"web", "api"} {
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", svc, ".")
		cmd.Dir = filepath.Join(dir, svc)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch, "GOFLAGS=-mod=mod", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build the sample's %s binary: %w\n%s", svc, err, out)
		}
	}
	return nil
}

func hasGo() bool {
	_, err := exec.LookPath("go")
	return err == nil
}

// engineArch is the engine's architecture in GOARCH terms.
func engineArch(ctx context.Context, cli *client.Client) (string, error) {
	info, err := cli.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("docker info: %w", err)
	}
	switch info.Architecture {
	case "x86_64", "amd64":
		return "amd64", nil
	case "aarch64", "arm64":
		return "arm64", nil
	case "armv7l":
		return "arm", nil
	case "":
		return runtime.GOARCH, nil
	}
	return info.Architecture, nil
}
