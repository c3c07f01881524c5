// Command loop benchmarks Slipway's pull-request loop end to end: the real
// `slipway serve` binary, against an in-process fake GitHub and the real
// local Docker Engine. See bench/README.md for how to run it and how to read
// its figures.
//
// It measures what issue 4 sets targets for:
//
//   - open-to-live: from sending a signed `opened` delivery to the first 200
//     with the pull request's content through the preview host on serve's
//     proxy, with the image's layers cold (a unique file in an early layer)
//     and warm (the same content as a pull request already built);
//   - close-to-clean: from sending a signed `closed` delivery to zero
//     containers, networks, volumes and images with the project's label;
//   - webhook acknowledgement latency: bursts of concurrent signed
//     deliveries (synchronize for pull requests whose builds are running,
//     opened for new ones, duplicates) while builds run, each timed from the
//     request to its response.
//
// serve runs exactly as an operator runs it (its defaults: a 1 s debounce,
// two build slots, four workers), so the figures include everything serve
// wires between the socket and the engine. The breakdowns come from the
// history database serve keeps (phases with timestamps, read after serve has
// stopped), Docker's events, and serve's /metrics.
//
// Whatever happens — a failed run, a timeout, Ctrl-C — serve is stopped and
// every object the benchmark made (environments, build layers, temporary
// files) is removed before it exits, and it says whether anything is left.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
)

// Parts of the benchmark (-phases).
const (
	partOpen = "open" // open-to-live and close-to-clean
	partAck  = "ack"  // webhook acknowledgement latency under load
	partWake = "wake" // a sleeping preview's first request to its page
)

// config is the benchmark's flags.
type config struct {
	runs          int
	parts         []string
	burst         int
	bursts        int
	busy          int
	newPRs        int
	dups          int
	paced         int
	pace          time.Duration
	ghLatency     time.Duration
	delayReports  bool
	liveTimeout   time.Duration
	cleanTimeout  time.Duration
	maxDuration   time.Duration
	root          string
	stateParent   string
	slipwayBin    string
	slipwayEnv    []string
	jsonOut       string
	logDir        string
	verbose       bool
	trace         bool
	pollInterval  time.Duration
	settleBetween time.Duration
	wakeRuns      int
	wakeModes     []string
	wakeBaseline  string
	engine        string
}

func main() {
	var cfg config
	var parts, slipwayEnv, wakeModes string
	flag.IntVar(&cfg.runs, "runs", 5, "open-to-live runs per cache mode (cold, warm), each followed by a close")
	flag.StringVar(&parts, "phases", "open,ack", "what to measure: open (open-to-live, close-to-clean), ack (webhook acknowledgement under load), wake (a sleeping preview's first request to its page)")
	flag.IntVar(&cfg.wakeRuns, "wake-runs", 7, "wakes per mode")
	flag.StringVar(&wakeModes, "wake-modes", "hold,reload", "wake modes, alternating: hold (serve's default: the request is held until the preview answers), reload (serve restarted with wake_timeout 0: the waiting page, reloaded), baseline (the -wake-baseline binary)")
	flag.StringVar(&cfg.wakeBaseline, "wake-baseline", "", "slipway binary for the baseline wake mode (e.g. built from main); setting it adds the mode")
	flag.IntVar(&cfg.burst, "burst", 200, "deliveries fired at once in each burst")
	flag.IntVar(&cfg.bursts, "bursts", 3, "bursts, a few seconds apart")
	flag.IntVar(&cfg.busy, "busy", 3, "pull requests with slow builds (RUN sleep) kept building during the bursts")
	flag.IntVar(&cfg.newPRs, "new-prs", 20, "opened deliveries (new pull requests) per burst")
	flag.IntVar(&cfg.dups, "dups", 60, "duplicate deliveries per burst (half repeat an ID of the same burst, half one delivered before)")
	flag.BoolVar(&cfg.delayReports, "delay-reports", true, "with -github-latency, delay the reporting calls too (deployments, statuses, comments); false shows what reporting off the critical path would give")
	flag.IntVar(&cfg.paced, "paced", 100, "deliveries sent one at a time while builds run, before the bursts (0 skips)")
	flag.DurationVar(&cfg.pace, "pace", 100*time.Millisecond, "interval between paced deliveries")
	flag.DurationVar(&cfg.ghLatency, "github-latency", 0, "delay added to every GitHub API and archive request (real GitHub answers in 100-500 ms)")
	flag.DurationVar(&cfg.liveTimeout, "live-timeout", 2*time.Minute, "limit for a preview to serve after its opened delivery")
	flag.DurationVar(&cfg.cleanTimeout, "clean-timeout", time.Minute, "limit for a project to be gone after its closed delivery")
	flag.DurationVar(&cfg.maxDuration, "max-duration", 20*time.Minute, "limit for the whole benchmark (cleanup runs after it)")
	flag.DurationVar(&cfg.pollInterval, "poll", 20*time.Millisecond, "how often the preview host and the engine are polled")
	flag.DurationVar(&cfg.settleBetween, "settle", time.Second, "pause between runs")
	flag.StringVar(&cfg.stateParent, "state-parent", "", "make serve's state_dir (history database, extracted sources) in this directory, e.g. /dev/shm to take disk syncs out of the figures (default: the benchmark's temporary directory)")
	flag.StringVar(&cfg.root, "root", ".", "the slipway module's root (holds go.mod)")
	flag.StringVar(&cfg.slipwayBin, "slipway", "", "slipway binary to run (default: go build ./cmd/slipway into a temporary directory)")
	flag.StringVar(&slipwayEnv, "slipway-env", "", "extra environment for serve, KEY=VALUE,... (e.g. SLIPWAY_LIMITS_BUILDS=3); inherited SLIPWAY_* variables are dropped")
	flag.StringVar(&cfg.jsonOut, "json", "", "also write every figure as JSON to this file")
	flag.StringVar(&cfg.logDir, "logs", "", "keep serve's log and the history database in this directory")
	flag.BoolVar(&cfg.verbose, "v", false, "stream serve's log to stderr")
	flag.BoolVar(&cfg.trace, "trace", false, "print each run's timeline")
	flag.StringVar(&cfg.engine, "engine", engineDocker, "docker: serve as a host process with engine docker (every phase); swarm: warm open-to-live and close-to-clean with engine docker and engine swarm side by side, Slipway in its container (-runs rounds; other phases ignored)")
	flag.Parse()
	cfg.parts = benchkit.SplitList(parts)
	cfg.slipwayEnv = benchkit.SplitList(slipwayEnv)
	cfg.wakeModes = benchkit.SplitList(wakeModes)
	if cfg.wakeBaseline != "" && !slices.Contains(cfg.wakeModes, "baseline") {
		cfg.wakeModes = append(cfg.wakeModes, "baseline")
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}

	if cfg.engine == engineSwarm {
		benchkit.Main(cfg.maxDuration, func(ctx context.Context) error { return sideBySide(ctx, cfg) })
		return
	}
	benchkit.Main(cfg.maxDuration, func(ctx context.Context) error { return run(ctx, cfg) })
}

func (c *config) validate() error {
	var errs []error
	if c.runs < 1 {
		errs = append(errs, fmt.Errorf("-runs %d: want at least 1", c.runs))
	}
	if c.engine != engineDocker && c.engine != engineSwarm {
		errs = append(errs, fmt.Errorf("-engine %q: want docker or swarm", c.engine))
	}
	if len(c.parts) == 0 {
		errs = append(errs, errors.New("-phases: empty"))
	}
	for _, p := range c.parts {
		if p != partOpen && p != partAck && p != partWake {
			errs = append(errs, fmt.Errorf("-phases: unknown %q (want open, ack, wake)", p))
		}
	}
	if c.has(partWake) {
		if c.wakeRuns < 1 {
			errs = append(errs, fmt.Errorf("-wake-runs %d: want at least 1", c.wakeRuns))
		}
		for _, m := range c.wakeModes {
			if m != wakeHold && m != wakeReload && m != wakeBaseline {
				errs = append(errs, fmt.Errorf("-wake-modes %q: want hold, reload, baseline", strings.Join(c.wakeModes, ",")))
				break
			}
		}
		if slices.Contains(c.wakeModes, wakeBaseline) && c.wakeBaseline == "" {
			errs = append(errs, errors.New("-wake-modes baseline needs -wake-baseline"))
		}
	}
	if c.bursts < 1 || c.burst < 1 {
		errs = append(errs, fmt.Errorf("-bursts %d, -burst %d: want at least 1 each", c.bursts, c.burst))
	}
	if c.busy < 1 {
		errs = append(errs, fmt.Errorf("-busy %d: want at least 1", c.busy))
	}
	if c.paced < 0 || c.pace <= 0 {
		errs = append(errs, errors.New("-paced: want 0 or more; -pace: want a positive duration"))
	}
	if c.newPRs < 0 || c.dups < 0 {
		errs = append(errs, errors.New("-new-prs and -dups: want 0 or more"))
	}
	if c.newPRs+c.dups >= c.burst {
		errs = append(errs, fmt.Errorf("-new-prs %d + -dups %d leave no synchronize deliveries in a burst of %d", c.newPRs, c.dups, c.burst))
	}
	if c.ghLatency < 0 {
		errs = append(errs, fmt.Errorf("-github-latency %s: want 0 or more", c.ghLatency))
	}
	for name, d := range map[string]time.Duration{"live-timeout": c.liveTimeout, "clean-timeout": c.cleanTimeout, "max-duration": c.maxDuration, "poll": c.pollInterval} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("-%s %s: want a positive duration", name, d))
		}
	}
	for _, kv := range c.slipwayEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || !strings.HasPrefix(k, "SLIPWAY_") {
			errs = append(errs, fmt.Errorf("-slipway-env %q: want SLIPWAY_KEY=VALUE", kv))
		}
	}
	return errors.Join(errs...)
}

func (c *config) has(part string) bool { return slices.Contains(c.parts, part) }

// run sets everything up, measures, and tears everything down.
func run(ctx context.Context, cfg config) (err error) {
	b, err := newBench(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := b.close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	fmt.Printf("loop benchmark: slipway serve %s against a fake GitHub (repo %s, domain %s)\n", b.serve.version, b.repo, b.domain)
	fmt.Printf("serve defaults in force: debounce 1s (not configurable), %d build slots, 4 workers; GitHub latency added: %s\n", b.buildSlots, cfg.ghLatency)
	if cfg.ghLatency > 0 && !cfg.delayReports {
		fmt.Println("what-if: the reporting calls (deployments, statuses, comments) are not delayed")
	}
	if len(cfg.slipwayEnv) > 0 {
		fmt.Printf("serve environment: %s\n", strings.Join(cfg.slipwayEnv, " "))
	}
	if cfg.stateParent != "" {
		fmt.Printf("serve's state_dir is under %s (not the default disk location)\n", cfg.stateParent)
	}
	fmt.Printf("machine: %d CPUs, load average at start %s (shared: figures are noisy)\n\n", numCPU(), loadAvg())

	res := &results{GitHubLatency: cfg.ghLatency, StateParent: cfg.stateParent}
	var runErr error
	if cfg.has(partOpen) {
		runErr = b.openClose(ctx, res)
	}
	if runErr == nil && cfg.has(partAck) {
		runErr = b.ack(ctx, res)
	}
	if runErr == nil && cfg.has(partWake) {
		runErr = b.wake(ctx, res)
	}
	fmt.Printf("\nload average at end %s\n", loadAvg())
	// The breakdown comes from serve's history database, readable once
	// serve has stopped.
	if err := b.serve.stop(); err != nil {
		runErr = errors.Join(runErr, err)
	}
	b.attachHistory(context.WithoutCancel(ctx), res)
	report(os.Stdout, cfg, res)
	if cfg.jsonOut != "" {
		if err := writeJSON(cfg.jsonOut, res); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	if runErr != nil && ctx.Err() != nil {
		return fmt.Errorf("stopped (%w): %v", context.Cause(ctx), runErr)
	}
	return runErr
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
