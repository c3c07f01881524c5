// Command stack benchmarks Slipway's stack engine against docker-compose v1
// on the real local Docker Engine. See bench/README.md for how to run it and
// how to read its figures.
//
// The fixture is controller/stack/testdata/shop copied into a temporary
// directory (a web service with a healthcheck that reaches an api by service
// name, a migration job gating the api through
// service_completed_successfully, an image-only db, two named volumes),
// with web's host port binding turned into an expose so that both tools do
// the same work and nothing binds a host port.
//
// For each cache mode, each tool brings the fixture up and down -runs
// times, alternating which tool goes first. Each cycle starts from a clean
// engine state: `slipway up` / `docker-compose up -d --build`, then (not
// timed with the up) `slipway down` / `docker-compose down -v --rmi local`,
// then a check that nothing with the project's label or image name is
// left. While an up runs, a probe polls the web container's IP until it
// answers 200, and Docker's events of the project are recorded, so every
// run also has a breakdown (images built, each service started, healthy).
//
// A last phase times no-change re-ups: `slipway up` again with the same SHA
// (and, for reference, `docker-compose up -d --build` again).
//
// Whatever happens — a failed run, a timeout, Ctrl-C — everything the
// benchmark created is removed before it exits, and it says so.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
)

// Tool names, as used in flags and results.
const (
	toolSlipway = "slipway"
	toolCompose = "compose"
)

// Cache modes.
const (
	cacheWarm = "warm" // every Dockerfile step is in the layer cache
	cacheCold = "cold" // only the base image is present
)

// Phases.
const (
	phaseCycles = "cycles"
	phaseReup   = "reup"
)

type config struct {
	runs         int
	reups        int
	tools        []string
	caches       []string
	phases       []string
	keepGoing    bool
	cmdTimeout   time.Duration
	serveTimeout time.Duration
	maxDuration  time.Duration
	root         string
	fixture      string
	slipwayBin   string
	composeBin   string
	slipwayEnv   []string
	jsonOut      string
	logDir       string
	verbose      bool
	trace        bool
}

func main() {
	var cfg config
	var tools, caches, phases, slipwayEnv string
	flag.IntVar(&cfg.runs, "runs", 5, "timed up/down cycles per tool and cache mode")
	flag.IntVar(&cfg.reups, "reups", 5, "timed no-change re-ups per tool")
	flag.StringVar(&tools, "tools", "slipway,compose", "tools to measure: slipway, compose (docker-compose v1)")
	flag.StringVar(&caches, "cache", "warm", "build cache state at each timed up: warm, cold, or warm,cold")
	flag.StringVar(&phases, "phases", "cycles,reup", "what to measure: cycles (up, until serving, down), reup (no-change re-up)")
	flag.BoolVar(&cfg.keepGoing, "keep-going", false, "record a failed run and go on, instead of stopping")
	flag.DurationVar(&cfg.cmdTimeout, "cmd-timeout", 3*time.Minute, "limit for one up or down command")
	flag.DurationVar(&cfg.serveTimeout, "serve-timeout", 2*time.Minute, "limit for the web to answer 200 after an up starts")
	flag.DurationVar(&cfg.maxDuration, "max-duration", 45*time.Minute, "limit for the whole benchmark (cleanup runs after it)")
	flag.StringVar(&cfg.root, "root", ".", "the slipway module's root (holds go.mod)")
	flag.StringVar(&cfg.fixture, "fixture", "controller/stack/testdata/shop", "compose project to copy, relative to -root")
	flag.StringVar(&cfg.slipwayBin, "slipway", "", "slipway binary to use (default: go build ./cmd/slipway into a temporary directory)")
	flag.StringVar(&cfg.composeBin, "compose", "docker-compose", "docker-compose v1 binary")
	flag.StringVar(&slipwayEnv, "slipway-env", "", "extra environment for the slipway commands, KEY=VALUE,... (e.g. SLIPWAY_LIMITS_BUILDS=3)")
	flag.StringVar(&cfg.jsonOut, "json", "", "also write every run (with its event timeline) as JSON to this file")
	flag.StringVar(&cfg.logDir, "logs", "", "keep each command's output in this directory")
	flag.BoolVar(&cfg.verbose, "v", false, "stream the tools' output")
	flag.BoolVar(&cfg.trace, "trace", false, "print each run's timeline (events and the tools' output lines)")
	flag.Parse()

	cfg.tools = benchkit.SplitList(tools)
	cfg.caches = benchkit.SplitList(caches)
	cfg.phases = benchkit.SplitList(phases)
	cfg.slipwayEnv = benchkit.SplitList(slipwayEnv)
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}

	benchkit.Main(cfg.maxDuration, func(ctx context.Context) error { return run(ctx, cfg) })
}

func (c *config) validate() error {
	var errs []error
	if c.runs < 1 {
		errs = append(errs, fmt.Errorf("-runs %d: want at least 1", c.runs))
	}
	if c.reups < 0 {
		errs = append(errs, fmt.Errorf("-reups %d: want 0 or more", c.reups))
	}
	check := func(flagName string, got, allowed []string) {
		if len(got) == 0 {
			errs = append(errs, fmt.Errorf("-%s: empty", flagName))
		}
		for _, g := range got {
			if !slices.Contains(allowed, g) {
				errs = append(errs, fmt.Errorf("-%s: unknown %q (want %s)", flagName, g, strings.Join(allowed, ", ")))
			}
		}
	}
	check("tools", c.tools, []string{toolSlipway, toolCompose})
	check("cache", c.caches, []string{cacheWarm, cacheCold})
	check("phases", c.phases, []string{phaseCycles, phaseReup})
	for _, kv := range c.slipwayEnv {
		if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
			errs = append(errs, fmt.Errorf("-slipway-env %q: want KEY=VALUE", kv))
		}
	}
	for name, d := range map[string]time.Duration{"cmd-timeout": c.cmdTimeout, "serve-timeout": c.serveTimeout, "max-duration": c.maxDuration} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("-%s %s: want a positive duration", name, d))
		}
	}
	// Cold before warm: warm mode leaves cache anchors until its end, which
	// would make a later cold run warm.
	slices.Sort(c.caches) // "cold" < "warm"
	c.caches = slices.Compact(c.caches)
	return errors.Join(errs...)
}

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
	fmt.Printf("stack benchmark: fixture %s (web ← api ← migrate, db, 2 volumes); %d run(s) per tool; cache %s; tools %s\n",
		cfg.fixture, cfg.runs, strings.Join(cfg.caches, ","), strings.Join(cfg.tools, ","))
	if len(cfg.slipwayEnv) > 0 {
		fmt.Printf("slipway environment: %s\n", strings.Join(cfg.slipwayEnv, " "))
	}
	fmt.Printf("machine: %d CPUs, load average at start %s (shared: figures are noisy)\n", numCPU(), loadAvg())

	var results []runResult
	var reups map[string][]time.Duration
	var runErr error
	if slices.Contains(cfg.phases, phaseCycles) {
		results, runErr = b.cycles(ctx)
	}
	if runErr == nil && slices.Contains(cfg.phases, phaseReup) && cfg.reups > 0 {
		reups, runErr = b.reups(ctx)
	}
	fmt.Printf("load average at end %s\n\n", loadAvg())
	report(os.Stdout, cfg, results, reups)
	if cfg.jsonOut != "" {
		if err := writeJSON(cfg.jsonOut, results, reups); err != nil {
			runErr = errors.Join(runErr, err)
		}
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("stopped (%w): %v", context.Cause(ctx), runErr)
		}
		return runErr
	}
	for _, r := range results {
		if r.Err != "" {
			return fmt.Errorf("%s run %d (%s cache) failed: %s", r.Tool, r.Run, r.Cache, r.Err)
		}
	}
	return nil
}

func writeJSON(path string, results []runResult, reups map[string][]time.Duration) error {
	b, err := json.MarshalIndent(struct {
		Runs  []runResult                `json:"runs"`
		Reups map[string][]time.Duration `json:"reups,omitempty"`
	}{results, reups}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
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
