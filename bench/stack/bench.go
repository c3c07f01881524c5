package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"

	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// benchPR is the pull request number the slipway environment is made for.
const benchPR = 4242

// tool is one of the two things measured, with the commands that bring the
// fixture up and down and the names its objects get.
type tool struct {
	name    string
	label   string // for output: "slipway", "docker-compose"
	project string // value of com.docker.compose.project
	// sep joins project, service and number in container names, and
	// project and service in built image names.
	sep  string
	bin  string
	up   func(sha string) []string
	down []string
	env  func(sha string) []string
}

// isServiceContainer tells a service's container from the builder's
// intermediate containers, which may carry the same labels.
func (t *tool) isServiceContainer(name, service string) bool {
	return strings.HasPrefix(strings.TrimPrefix(name, "/"), t.project+t.sep+service+t.sep)
}

// isBuiltImage reports whether an image tag names one of t's built images.
func (t *tool) isBuiltImage(tag string) bool {
	return strings.HasPrefix(tag, t.project+t.sep)
}

// bench holds what one benchmark run set up, and removes it in close.
type bench struct {
	cfg        config
	cli        *client.Client
	dir        string // temporary directory: fixture, binary, logs
	fixture    string
	tools      []*tool
	anchorRepo string // repository of the warm-cache anchor tags
	// imageLabel (key=value) is on every layer the fixture's Dockerfiles
	// build in this run: see prepareFixture.
	imageLabel string
	out        io.Writer
}

func newBench(ctx context.Context, cfg config) (*bench, error) {
	root, err := moduleRoot(cfg.root)
	if err != nil {
		return nil, err
	}
	if _, err := exec.LookPath(cfg.composeBin); err != nil && slices.Contains(cfg.tools, toolCompose) {
		return nil, fmt.Errorf("docker-compose v1 not found as %q (apt-get install -y docker-compose): %w", cfg.composeBin, err)
	}
	cli, err := benchkit.Docker(ctx)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "slipway-bench-stack-")
	if err != nil {
		cli.Close()
		return nil, err
	}
	suffix := benchkit.RandomHex(4)
	b := &bench{cfg: cfg, cli: cli, dir: dir, out: os.Stderr, anchorRepo: "slipway-bench-cache-" + suffix}
	if err := b.setup(ctx, root, suffix); err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func (b *bench) setup(ctx context.Context, root, suffix string) error {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := dockertest.EnsureBusybox(ictx, b.cli); err != nil {
		return fmt.Errorf("base image %s (needs Debian's busybox-static): %w", dockertest.BusyboxImage, err)
	}
	// The directory's basename is what docker-compose v1 would name the
	// project after; -p overrides it, but keep it neutral.
	b.fixture = filepath.Join(b.dir, "shop")
	b.imageLabel = benchImageLabel + "=" + suffix
	if err := prepareFixture(filepath.Join(root, b.cfg.fixture), b.fixture, suffix); err != nil {
		return err
	}
	slipwayBin := b.cfg.slipwayBin
	if slipwayBin == "" {
		slipwayBin = filepath.Join(b.dir, "slipway")
		fmt.Fprintf(b.out, "building %s from %s/cmd/slipway\n", slipwayBin, root)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", slipwayBin, "./cmd/slipway")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build ./cmd/slipway: %w\n%s", err, out)
		}
	}
	repo := "stack-" + suffix
	compose := []string{"-p", "bench-compose-" + suffix, "-f", filepath.Join(b.fixture, "compose.yaml"), "--project-directory", b.fixture, "--ansi", "never"}
	for _, name := range b.cfg.tools {
		switch name {
		case toolSlipway:
			b.tools = append(b.tools, &tool{
				name: toolSlipway, label: "slipway", sep: "-",
				project: contract.ProjectName("bench", repo, benchPR),
				bin:     slipwayBin,
				up: func(sha string) []string {
					return []string{"up", "--dir", b.fixture, "--pr", strconv.Itoa(benchPR), "--repo", "bench/" + repo, "--sha", sha, "--log-format", "text"}
				},
				down: []string{"down", "--pr", strconv.Itoa(benchPR), "--repo", "bench/" + repo},
				env:  func(string) []string { return append(os.Environ(), b.cfg.slipwayEnv...) },
			})
		case toolCompose:
			b.tools = append(b.tools, &tool{
				name: toolCompose, label: "docker-compose", sep: "_",
				project: "bench-compose-" + suffix,
				bin:     b.cfg.composeBin,
				up:      func(string) []string { return append(slices.Clone(compose), "up", "-d", "--build") },
				down:    append(slices.Clone(compose), "down", "-v", "--rmi", "local"),
				env: func(sha string) []string {
					// The classic builder, as slipway uses; the SLIPWAY_*
					// variables the fixture interpolates, as slipway sets them.
					return append(os.Environ(), "COMPOSE_DOCKER_CLI_BUILD=0", "DOCKER_BUILDKIT=0",
						"SLIPWAY_PR="+strconv.Itoa(benchPR), "SLIPWAY_SHA="+sha)
				},
			})
		}
	}
	// A project left by an earlier, killed benchmark has another suffix;
	// ours must start clean.
	for _, t := range b.tools {
		if left, err := b.leftovers(ctx, t); err != nil {
			return err
		} else if len(left) > 0 {
			return fmt.Errorf("project %s is not clean before the start: %s", t.project, strings.Join(left, "; "))
		}
	}
	return nil
}

// moduleRoot checks that dir holds the slipway module.
func moduleRoot(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	mod, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil || !bytes.Contains(mod, []byte("module github.com/slipwayhq/slipway\n")) {
		return "", fmt.Errorf("%s is not the slipway module's root (run from the repository root, or pass -root)", abs)
	}
	return abs, nil
}

// close removes everything the benchmark created — both projects, the
// warm-cache anchors, the temporary directory — and checks that nothing is
// left. It runs with its own time limit, after a cancelled context too.
func (b *bench) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var errs []error
	for _, t := range b.tools {
		if err := b.sweep(ctx, t); err != nil {
			errs = append(errs, err)
		}
	}
	if err := b.removeAnchors(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := b.removeRunLayers(ctx); err != nil {
		errs = append(errs, err)
	}
	// A create or build step that was in flight when a tool was stopped
	// may land late: look again after a moment.
	time.Sleep(settleTime)
	var left []string
	for _, t := range b.tools {
		if err := b.sweep(ctx, t); err != nil {
			errs = append(errs, err)
		}
		l, err := b.leftovers(ctx, t)
		if err != nil {
			errs = append(errs, err)
		}
		left = append(left, l...)
	}
	anchors, err := b.anchorTags(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	left = append(left, anchors...)
	if len(left) > 0 {
		errs = append(errs, fmt.Errorf("cleanup left: %s", strings.Join(left, "; ")))
	} else if len(errs) == 0 {
		fmt.Fprintln(b.out, "cleanup: no container, network, volume or image of the benchmark is left")
	}
	if err := os.RemoveAll(b.dir); err != nil {
		errs = append(errs, err)
	}
	b.cli.Close()
	return errors.Join(errs...)
}

// settleTime is how long the daemon may take to finish what an
// interrupted tool had in flight: a build step's commit lands after the
// client is gone (seen with slipway: labelled images appearing seconds
// after its rollback).
const settleTime = 3 * time.Second

// settleAndSweep sweeps t's project, waits for late objects, and sweeps
// again.
func (b *bench) settleAndSweep(ctx context.Context, t *tool) error {
	err := b.sweep(ctx, t)
	time.Sleep(settleTime)
	return errors.Join(err, b.sweep(ctx, t))
}

// command runs one tool command with the per-command time limit, and
// returns its wall time and output. Output lines are timestamped into rec
// (when tracing) relative to t0. On cancellation the tool gets SIGINT (both
// tools roll back or stop on it), then SIGKILL after a grace period.
func (b *bench) command(ctx context.Context, t *tool, logName string, args, env []string, rec *recorder) (time.Duration, string, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, t.bin, args...)
	cmd.Env = env
	cmd.Dir = b.fixture
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // our Ctrl-C handling, not the terminal's, signals it
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 30 * time.Second
	var all bytes.Buffer
	sinks := []io.Writer{&all}
	if b.cfg.verbose {
		sinks = append(sinks, prefixWriter(b.out, t.name+": "))
	}
	if b.cfg.logDir != "" {
		if err := os.MkdirAll(b.cfg.logDir, 0o755); err != nil {
			return 0, "", err
		}
		f, err := os.Create(filepath.Join(b.cfg.logDir, logName+".log"))
		if err != nil {
			return 0, "", err
		}
		defer f.Close()
		sinks = append(sinks, f)
	}
	lw := &lineStamper{w: io.MultiWriter(sinks...), rec: rec, trace: b.cfg.trace}
	cmd.Stdout, cmd.Stderr = lw, lw
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	lw.flush()
	if err != nil {
		if ctx.Err() == context.DeadlineExceeded {
			err = fmt.Errorf("%s: no result after %s: %w", t.label, b.cfg.cmdTimeout, err)
		} else {
			err = fmt.Errorf("%s: %w", t.label, err)
		}
	}
	return d, all.String(), err
}

// recorder collects the marks of one up, from several goroutines.
type recorder struct {
	t0 time.Time
	mu sync.Mutex
	ms []mark
}

func (r *recorder) add(at time.Duration, what string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ms = append(r.ms, mark{At: at, What: what})
}

func (r *recorder) has(what string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.ContainsFunc(r.ms, func(m mark) bool { return m.What == what })
}

func (r *recorder) marks() []mark {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := slices.Clone(r.ms)
	slices.SortStableFunc(out, func(a, b mark) int { return int(a.At - b.At) })
	return out
}

// lineStamper passes output through and, when tracing, records each line
// with the time it arrived.
type lineStamper struct {
	w       io.Writer
	rec     *recorder
	trace   bool
	mu      sync.Mutex
	partial []byte
}

func (l *lineStamper) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.trace && l.rec != nil {
		at := time.Since(l.rec.t0)
		l.partial = append(l.partial, p...)
		for {
			i := bytes.IndexByte(l.partial, '\n')
			if i < 0 {
				break
			}
			if line := strings.TrimSpace(string(l.partial[:i])); line != "" {
				l.rec.add(at, "| "+line)
			}
			l.partial = l.partial[i+1:]
		}
	}
	return l.w.Write(p)
}

func (l *lineStamper) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.partial) > 0 && l.rec != nil {
		l.rec.add(time.Since(l.rec.t0), "| "+strings.TrimSpace(string(l.partial)))
	}
	l.partial = nil
}

type prefixed struct {
	w      io.Writer
	prefix string
	mu     sync.Mutex
	start  bool
}

func prefixWriter(w io.Writer, prefix string) io.Writer {
	return &prefixed{w: w, prefix: prefix, start: true}
}

func (p *prefixed) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out bytes.Buffer
	for _, c := range b {
		if p.start {
			out.WriteString(p.prefix)
			p.start = false
		}
		out.WriteByte(c)
		if c == '\n' {
			p.start = true
		}
	}
	_, err := p.w.Write(out.Bytes())
	return len(b), err
}

// tail returns the last n lines of s, indented, for error messages.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

// newSHA is a fresh commit-like SHA: every timed up is a new push.
func newSHA() string { return benchkit.RandomHex(20) }

// benchImageLabel marks every layer the fixture's Dockerfiles build in
// one run of the benchmark.
const benchImageLabel = "slipway-bench.stack"

// prepareFixture copies src to dst and turns web's host port binding into
// an expose: slipway drops host ports anyway, and docker-compose must not
// bind one on a shared machine, so both do the same work. Every Dockerfile
// gets `LABEL slipway-bench.stack=<run>` after its first FROM: the run's
// layers are then its own, never shared with tests that build the same
// fixture on the same engine (their builder containers would hold them,
// and their layers would make a cold run warm), and can be found and
// removed.
func prepareFixture(src, dst, run string) error {
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		return fmt.Errorf("copy fixture %s: %w", src, err)
	}
	dockerfiles, err := filepath.Glob(filepath.Join(dst, "*", "Dockerfile"))
	if err != nil || len(dockerfiles) == 0 {
		return fmt.Errorf("fixture %s: no */Dockerfile (%v)", src, err)
	}
	for _, df := range dockerfiles {
		raw, err := os.ReadFile(df)
		if err != nil {
			return fmt.Errorf("fixture: %w", err)
		}
		from, rest, ok := bytes.Cut(raw, []byte("\n"))
		if !ok || !bytes.HasPrefix(from, []byte("FROM ")) {
			return fmt.Errorf("fixture %s: does not start with a FROM line; update bench/stack/bench.go", df)
		}
		raw = slices.Concat(from, []byte("\nLABEL "+benchImageLabel+"="+run+"\n"), rest)
		if err := os.WriteFile(df, raw, 0o644); err != nil {
			return err
		}
	}
	path := filepath.Join(dst, "compose.yaml")
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("fixture: %w", err)
	}
	const published = "    ports:\n      - \"8080:8080\"\n"
	if !bytes.Contains(raw, []byte(published)) {
		return fmt.Errorf("fixture %s: web no longer publishes \"8080:8080\"; update bench/stack/bench.go", path)
	}
	raw = bytes.Replace(raw, []byte(published), []byte("    expose:\n      - \"8080\"\n"), 1)
	if bytes.Contains(raw, []byte("ports:")) {
		return fmt.Errorf("fixture %s: another service publishes a host port; update bench/stack/bench.go", path)
	}
	return os.WriteFile(path, raw, 0o644)
}
