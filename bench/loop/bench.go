package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"

	"github.com/docker/docker/client"

	slipwayconfig "github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// bench holds what one benchmark run set up, and removes it in close.
type bench struct {
	cfg        config
	cli        *client.Client
	dir        string // temporary directory: binary, config, state, log
	stateDir   string // serve's state_dir when outside dir (-state-parent)
	runID      string // unique to this run: names, delivery IDs, the bench label
	repo       string // owner/name of the fake repository
	owner      string
	name       string
	domain     string
	buildSlots int
	// bin, sc and serveState start serve again (wake's reload mode).
	bin        string
	sc         serveConfig
	serveState string

	gh      *gitHub
	hooks   *deliveries
	send    *sender
	serve   *serveProc
	events  *recorder
	preview *http.Client
	// history is every delivery sent, for redeliveries.
	history []delivery
	// openPRs are the pull requests open on the fake, closed at the end.
	openPRs map[int]bool
	// path is what the preview is fetched at ("" for /); isClean says
	// whether nothing of a project is left (nil: clean, the Docker host's
	// objects). -engine swarm sets both (engines.go).
	path    string
	isClean func(ctx context.Context, project string) (bool, []string, error)
}

func newBench(ctx context.Context, cfg config) (*bench, error) {
	cli, err := benchkit.Docker(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "slipway-bench-loop-")
	if err != nil {
		cli.Close()
		return nil, err
	}
	runID := benchkit.RandomHex(4)
	b := &bench{
		cfg: cfg, cli: cli, dir: dir, runID: runID,
		owner: "bench", name: "loop" + runID,
		domain:     "loop" + runID + ".localhost",
		buildSlots: slipwayconfig.Defaults().Limits.Builds,
		preview:    &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		openPRs:    map[int]bool{},
	}
	b.repo = b.owner + "/" + b.name
	if err := b.setup(ctx); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bench) setup(ctx context.Context) error {
	root, err := filepath.Abs(b.cfg.root)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("-root %s: no go.mod (run from the repository root): %w", root, err)
	}
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := dockertest.EnsureBusybox(ictx, b.cli); err != nil {
		return fmt.Errorf("base image %s (needs Debian's busybox-static): %w", dockertest.BusyboxImage, err)
	}
	bin := b.cfg.slipwayBin
	source := "binary " + bin
	if bin == "" {
		fmt.Fprintf(os.Stderr, "building slipway from %s/cmd/slipway\n", root)
		if bin, err = buildSlipway(ctx, root, b.dir); err != nil {
			return err
		}
		source = "built from " + gitDescribe(root)
	}
	b.events = newRecorder(contract.Sanitize(b.owner + "-" + b.name + "-pr-"))
	if err := b.events.start(ctx, b.cli); err != nil {
		return err
	}

	if b.gh, err = newGitHub(b.cfg.ghLatency, b.cfg.delayReports); err != nil {
		return err
	}
	b.gh.fake.AddRepo(b.repo, githubfake.RepoOptions{})
	b.gh.fake.SetPermission(b.repo, author, githubfake.Write)
	b.hooks = &deliveries{fake: b.gh.fake, repo: b.repo, prefix: "bench-" + b.runID}

	var sc serveConfig
	sc.Domain = b.domain
	sc.GitHub.APIURL = b.gh.apiURL
	sc.GitHub.Token = b.gh.fake.Token
	sc.GitHub.WebhookSecret = webhookSecret
	sc.Repos = append(sc.Repos, struct {
		Name string `yaml:"name"`
	}{b.repo})
	for _, kv := range b.cfg.slipwayEnv {
		if v, ok := strings.CutPrefix(kv, "SLIPWAY_LIMITS_BUILDS="); ok {
			fmt.Sscanf(v, "%d", &b.buildSlots)
		}
	}
	stateDir := filepath.Join(b.dir, "state")
	if b.cfg.stateParent != "" {
		if b.stateDir, err = os.MkdirTemp(b.cfg.stateParent, "slipway-bench-loop-state-"); err != nil {
			return fmt.Errorf("-state-parent: %w", err)
		}
		stateDir = b.stateDir
	}
	sc.Dashboard.Token = dashboardToken
	b.bin, b.sc, b.serveState = bin, sc, stateDir
	if b.serve, err = startServe(ctx, bin, b.dir, stateDir, sc, b.cfg.slipwayEnv, b.cfg.verbose); err != nil {
		return err
	}
	b.serve.version = source
	b.send = newSender(b.serve.addr)
	return b.waitReady(ctx)
}

// waitReady waits for serve's /readyz.
func (b *bench) waitReady(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		resp, err := b.preview.Get("http://" + b.serve.addr + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		} else {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("serve not ready after 30s: %s", last)
}

// project is the compose project of PR n.
func (b *bench) project(n int) string { return contract.ProjectName(b.owner, b.name, n) }

// host is the preview host of PR n.
func (b *bench) host(n int) string { return fmt.Sprintf("pr-%d.%s", n, b.domain) }

// close stops serve, removes everything the benchmark made and reports
// what could not be removed. It runs even when ctx was cancelled.
func (b *bench) close() error {
	var errs []error
	if b.serve != nil {
		if err := b.serve.stop(); err != nil {
			errs = append(errs, err)
		}
	}
	if b.events != nil {
		b.events.stop()
	}
	if b.gh != nil {
		b.gh.close()
	}
	if b.cli != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		removed, err := sweep(ctx, b.cli, b.repo, b.runID)
		cancel()
		if removed.layers > 0 {
			fmt.Printf("cleanup: removed %d untagged build layer(s) carrying %s=%s (build cache: teardown leaves parent layers by design, see controller/stack/down.go)\n", removed.layers, benchLabel, b.runID)
		}
		if removed.objects > 0 {
			fmt.Printf("cleanup: removed %d object(s) still labelled %s=%s\n", removed.objects, contract.LabelRepo, b.repo)
		}
		if err != nil {
			errs = append(errs, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
		left, lerr := leftovers(ctx, b.cli, b.repo, b.runID)
		cancel()
		switch {
		case lerr != nil:
			errs = append(errs, lerr)
		case len(left) > 0:
			errs = append(errs, fmt.Errorf("left behind after cleanup: %s", strings.Join(left, "; ")))
		default:
			fmt.Println("cleanup: nothing left on the engine")
		}
		b.cli.Close()
	}
	if b.cfg.logDir != "" && b.serve != nil {
		if err := keepLogs(b.cfg.logDir, b.serve); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Printf("serve's log and history database kept in %s\n", b.cfg.logDir)
		}
	}
	for _, d := range []string{b.dir, b.stateDir} {
		if d == "" {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			errs = append(errs, fmt.Errorf("remove %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}

// keepLogs copies serve's log and history database into dir.
func keepLogs(dir string, p *serveProc) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{p.logPath, p.dbPath} {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("keep %s: %w", f, err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			return fmt.Errorf("keep %s: %w", f, err)
		}
	}
	return nil
}

// gitDescribe names the source tree slipway was built from.
func gitDescribe(root string) string {
	out, err := exec.Command("git", "-C", root, "describe", "--always", "--dirty").Output()
	if err != nil {
		return "an unknown commit"
	}
	return "commit " + strings.TrimSpace(string(out))
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
