// Command proxy benchmarks Slipway's preview proxy against Caddy's
// reverse_proxy and nginx, and measures how fast a new container's route
// goes live. See bench/README.md for what to install and how to run it.
//
// Throughput: one backend (a small Go HTTP server with fixed bodies, run as
// a labelled preview container so that the real `slipway serve` routes it)
// is measured directly and through each proxy with wrk, for every body size
// and connection count, alternating the targets in rotating order for
// several rounds; the median of the rounds is printed. Every target is
// checked to return the backend's own body.
//
// Route-live latency: against the real Docker engine, busybox httpd
// containers with a healthcheck are started one after another; for each,
// the time from Docker's health_status: healthy event to the route in the
// table and to the first 200 through the proxy is recorded.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/access"
	"github.com/slipwayhq/slipway/bench/internal/benchkit"
)

type config struct {
	duration   time.Duration
	rounds     int
	conns      []int
	sizes      []int
	threads    int
	liveRuns   int
	targets    []string
	backend    string
	slipway    string
	baseline   string
	jsonOut    string
	cpuProfile string
	hold       bool
	pacedRate  int
	pacedConns int
}

// The targets: the backend itself, the proxies, and Slipway three ways.
const (
	targetDirect   = "direct"
	targetSlipway  = "slipway"        // the real binary: `slipway serve` in local mode
	targetInproc   = "slipway-inproc" // proxy.Handler behind proxy.Server in this process
	targetBaseline = "slipway-base"   // another slipway binary (-baseline), e.g. main's
	targetCaddy    = "caddy"
	targetNginx    = "nginx"
)

func main() {
	var (
		cfg        config
		conns      = flag.String("conns", "64,256", "keep-alive connections per run, comma-separated")
		sizes      = flag.String("sizes", "1024,65536", "response body sizes in bytes, comma-separated")
		targets    = flag.String("targets", "direct,slipway,slipway-inproc,caddy,nginx", "targets to measure (also slipway-base with -baseline; access-public,access-github compare the access gate)")
		backendArg = flag.String("serve-backend", "", "internal: run as the backend process with these body sizes")
		listenArg  = flag.String("backend-listen", "127.0.0.1:0", "internal: the backend's listen address")
		nonceArg   = flag.String("backend-nonce", "", "internal: the run's nonce in the backend's bodies")
	)
	flag.DurationVar(&cfg.duration, "duration", 5*time.Second, "length of each wrk run (whole seconds)")
	flag.IntVar(&cfg.rounds, "rounds", 3, "rounds of alternating runs; the median is reported")
	flag.IntVar(&cfg.threads, "threads", 2, "wrk threads")
	flag.IntVar(&cfg.liveRuns, "live-runs", 10, "route-live measurements (0 skips them; they need Docker)")
	flag.StringVar(&cfg.backend, "backend", "container", "where the backend runs: container (a labelled preview container; needed by slipway) or process (on loopback)")
	flag.StringVar(&cfg.slipway, "slipway", "", "slipway binary for the slipway target (default: go build ./cmd/slipway)")
	flag.StringVar(&cfg.baseline, "baseline", "", "another slipway binary, measured as target slipway-base")
	flag.StringVar(&cfg.jsonOut, "json", "", "also write the results as JSON to this file")
	flag.IntVar(&cfg.pacedRate, "paced-rate", 1000, "offered requests/s of the paced latency runs (0 skips them)")
	flag.IntVar(&cfg.pacedConns, "paced-conns", 64, "connections of the paced latency runs")
	flag.BoolVar(&cfg.hold, "hold", false, "start the backend and the targets, print their addresses, and wait for Ctrl-C (to profile one with perf or pprof)")
	flag.StringVar(&cfg.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (where slipway-inproc runs) to this file")
	flag.Parse()

	if *backendArg != "" {
		if err := serveBackend(*listenArg, *nonceArg, mustInts(*backendArg)); err != nil {
			fmt.Fprintln(os.Stderr, "backend:", err)
			os.Exit(1)
		}
		return
	}
	cfg.conns, cfg.sizes = mustInts(*conns), mustInts(*sizes)
	cfg.targets = strings.Split(*targets, ",")
	if cfg.baseline != "" && !slices.Contains(cfg.targets, targetBaseline) {
		cfg.targets = append(cfg.targets, targetBaseline)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, cfg); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func mustInts(s string) []int {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			fmt.Fprintf(os.Stderr, "bad number %q\n", f)
			os.Exit(2)
		}
		out = append(out, n)
	}
	return out
}

// cell is one (size, conns, target) measurement over all rounds.
type cell struct {
	Size, Conns int
	Target      string
	Runs        []wrkResult
}

// median is the run with the median requests/s, with the median p99 and
// CPU per request of all runs and the errors of all runs.
func (c *cell) median() wrkResult {
	rs := append([]wrkResult(nil), c.Runs...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].RPS < rs[j].RPS })
	m := rs[len(rs)/2]
	m.P99 = medianOf(c.Runs, func(r wrkResult) time.Duration { return r.P99 })
	m.CPUPerRequest = medianOf(c.Runs, func(r wrkResult) time.Duration { return r.CPUPerRequest })
	m.Errors = 0
	for _, r := range c.Runs {
		m.Errors += r.Errors
	}
	return m
}

func medianOf(rs []wrkResult, f func(wrkResult) time.Duration) time.Duration {
	ds := make([]time.Duration, len(rs))
	for i, r := range rs {
		ds[i] = f(r)
	}
	return benchkit.Median(ds)
}

// pairedRatio is the median over rounds of c's requests/s divided by
// other's in the same round (the two ran back to back, so load that
// drifts over minutes cancels), with the lowest and highest round.
func pairedRatio(c, other *cell) (med, lo, hi float64) {
	var rs []float64
	for i := range min(len(c.Runs), len(other.Runs)) {
		if other.Runs[i].RPS > 0 {
			rs = append(rs, c.Runs[i].RPS/other.Runs[i].RPS)
		}
	}
	if len(rs) == 0 {
		return 0, 0, 0
	}
	sort.Float64s(rs)
	med = rs[len(rs)/2]
	if len(rs)%2 == 0 {
		med = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	return med, rs[0], rs[len(rs)-1]
}

func run(ctx context.Context, cfg config) error {
	if _, err := exec.LookPath("wrk"); err != nil {
		return fmt.Errorf("wrk not found (see bench/README.md): %w", err)
	}
	dir, err := os.MkdirTemp("", "slipway-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	nonce := benchkit.RandomHex(6)
	domain := "bench" + nonce + ".localhost"
	var backend *backendContainer
	switch cfg.backend {
	case "container":
		cli, err := benchkit.Docker(ctx)
		if err != nil {
			return err
		}
		defer cli.Close()
		var stopBackend func()
		backend, stopBackend, err = startBackendContainer(ctx, cli, dir, domain, nonce, cfg.sizes)
		if err != nil {
			return err
		}
		defer stopBackend()
	case "process":
		for _, t := range cfg.targets {
			if t == targetSlipway || t == targetBaseline {
				return fmt.Errorf("target %s routes Docker containers: it needs -backend container", t)
			}
		}
		addr, pid, stopBackend, err := startBackendProcess(ctx, nonce, cfg.sizes)
		if err != nil {
			return err
		}
		defer stopBackend()
		backend = &backendContainer{addr: addr, pid: pid, project: "local-bench-pr-1", repo: "local/bench", host: "pr-1." + domain}
	default:
		return fmt.Errorf("-backend %q: want container or process", cfg.backend)
	}
	fmt.Printf("backend: %s (%s)\n", backend.addr, cfg.backend)

	firstPath := "/" + strconv.Itoa(cfg.sizes[0])
	firstBody := backendBody(cfg.sizes[0], nonce)
	addrs := map[string]string{targetDirect: backend.addr}
	pids := map[string]int{targetDirect: backend.pid} // whose CPU time counts for the target
	headers := map[string][]string{}                  // what a client of the target sends besides Host
	for _, t := range cfg.targets {
		var addr string
		var pid int
		var stopT func()
		var err error
		switch t {
		case targetDirect:
			continue
		case targetSlipway, targetBaseline:
			bin := cfg.slipway
			if t == targetBaseline {
				bin = cfg.baseline
			}
			if bin == "" && t == targetBaseline {
				return fmt.Errorf("target %s needs -baseline", t)
			}
			if bin == "" {
				if bin, err = buildSlipway(ctx, dir); err != nil {
					return err
				}
			}
			d := filepath.Join(dir, t)
			addr, pid, stopT, err = startServe(ctx, bin, d, domain, backend.host, firstPath, firstBody)
			if err == nil {
				fmt.Printf("%s: slipway serve (pid %d, %s), log %s\n", t, pid, bin, filepath.Join(d, "serve.log"))
			}
		case targetInproc:
			addr, stopT, err = startInproc(ctx, backend.addr, domain, backend.host, backend.repo, backend.project)
			pid = os.Getpid()
		case targetPublic, targetGitHub:
			addr, headers[t], stopT, err = startGated(ctx, access.Mode(strings.TrimPrefix(t, "access-")), backend.addr, domain, backend.host, backend.repo, backend.project)
			pid = os.Getpid()
		case targetCaddy:
			d := filepath.Join(dir, "caddy")
			os.MkdirAll(d, 0o755)
			addr, pid, stopT, err = startCaddy(ctx, d, backend.addr)
		case targetNginx:
			d := filepath.Join(dir, "nginx")
			os.MkdirAll(d, 0o755)
			addr, pid, stopT, err = startNginx(ctx, d, backend.addr)
		default:
			return fmt.Errorf("unknown target %q", t)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", t, err)
		}
		defer stopT()
		addrs[t], pids[t] = addr, pid
	}
	// Every target must answer with the backend's own body, byte for byte.
	checkAll := func(when string) error {
		for _, t := range cfg.targets {
			for _, size := range cfg.sizes {
				if err := checkBody(ctx, addrs[t], backend.host, "/"+strconv.Itoa(size), backendBody(size, nonce), headers[t]...); err != nil {
					return fmt.Errorf("%s: target %s does not return the backend's body: %w", when, t, err)
				}
			}
		}
		return nil
	}
	if err := checkAll("before the runs"); err != nil {
		return err
	}
	if cfg.hold {
		for _, t := range cfg.targets {
			fmt.Printf("%-15s http://%s  (Host: %s)\n", t, addrs[t], backend.host)
		}
		fmt.Println("holding; Ctrl-C ends")
		<-ctx.Done()
		return nil
	}

	if cfg.cpuProfile != "" {
		f, err := os.Create(cfg.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Printf("proxy benchmark: %d round(s) × %s per run, wrk -t%d, targets %s, load average %s\n",
		cfg.rounds, cfg.duration, cfg.threads, strings.Join(cfg.targets, ", "), loadAverage())
	// Warm every target up once (connections, caches, lazy paths).
	for _, t := range cfg.targets {
		if _, err := runWrk(ctx, "http://"+addrs[t]+firstPath, backend.host, 16, 1, time.Second, headers[t]...); err != nil {
			return fmt.Errorf("warm up %s: %w", t, err)
		}
	}

	var cells []*cell
	byKey := map[string]*cell{}
	for round := 0; round < cfg.rounds; round++ {
		for _, size := range cfg.sizes {
			for _, conns := range cfg.conns {
				// Rotate the order each round so no target always runs first.
				for i := range cfg.targets {
					t := cfg.targets[(i+round)%len(cfg.targets)]
					key := fmt.Sprintf("%d/%d/%s", size, conns, t)
					c := byKey[key]
					if c == nil {
						c = &cell{Size: size, Conns: conns, Target: t}
						byKey[key] = c
						cells = append(cells, c)
					}
					cpu0 := treeCPU(pids[t])
					r, err := runWrk(ctx, "http://"+addrs[t]+"/"+strconv.Itoa(size), backend.host, conns, cfg.threads, cfg.duration, headers[t]...)
					if err != nil {
						return err
					}
					if cpu1 := treeCPU(pids[t]); cpu0 > 0 && r.Requests > 0 {
						r.CPUPerRequest = (cpu1 - cpu0) / time.Duration(r.Requests)
					}
					// An answer without the body (an empty 200) would count
					// as a fast request: wrk must have read at least the body
					// for every response (give or take wrk's rounding: it
					// prints "0.93GB read").
					if r.BytesPerRequest < 0.95*float64(size) {
						return fmt.Errorf("target %s: %.0f bytes read per response, less than the %d-byte body", t, r.BytesPerRequest, size)
					}
					c.Runs = append(c.Runs, r)
					fmt.Fprintf(os.Stderr, "  round %d %6s %4d conns %-15s %9.0f req/s p99 %-10v CPU/request %v\n", round+1, sizeName(size), conns, t, r.RPS, r.P99, r.CPUPerRequest)
				}
			}
		}
	}
	var paced []*cell
	if cfg.pacedRate > 0 {
		if paced, err = runPaced(ctx, cfg, dir, addrs, pids, backend.host, headers); err != nil {
			return err
		}
	}
	if err := checkAll("after the runs"); err != nil {
		return err
	}
	fmt.Printf("load average at the end: %s\n", loadAverage())
	printThroughput(cfg, cells, byKey)
	if len(paced) > 0 {
		printPaced(cfg, paced)
	}
	printAccessRatios(cfg, byKey)

	var live []routeLiveRun
	if cfg.liveRuns > 0 {
		fmt.Printf("\nroute-live latency (%d runs against the Docker engine)\n", cfg.liveRuns)
		live, err = measureRouteLive(ctx, cfg.liveRuns)
		if err != nil {
			return fmt.Errorf("route-live: %w", err)
		}
		printLive(live)
	}
	if cfg.jsonOut != "" {
		b, _ := json.MarshalIndent(map[string]any{"throughput": cells, "paced": paced, "route_live": live}, "", "  ")
		if err := os.WriteFile(cfg.jsonOut, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
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

func sizeName(n int) string {
	if n%1024 == 0 {
		return strconv.Itoa(n/1024) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/1e6) }

func printThroughput(cfg config, cells []*cell, byKey map[string]*cell) {
	fmt.Printf("\nmedians of %d rounds; CPU/req is the target's own CPU time (user+system, all its processes) per request\n", cfg.rounds)
	fmt.Printf("%-7s %-6s %-15s %10s %10s %10s %10s %7s\n", "size", "conns", "target", "req/s", "p50", "p99", "CPU/req", "errors")
	for _, c := range cells {
		m := c.median()
		fmt.Printf("%-7s %-6d %-15s %10.0f %10s %10s %10s %7d\n", sizeName(c.Size), c.Conns, c.Target, m.RPS, ms(m.P50), ms(m.P99), us(m.CPUPerRequest), m.Errors)
	}
	get := func(size, conns int, t string) *cell { return byKey[fmt.Sprintf("%d/%d/%s", size, conns, t)] }
	fmt.Printf("\nrequests/s ratios: median of the rounds' ratios (lowest–highest round)\n")
	fmt.Printf("%-7s %-6s %-15s %20s %20s %20s\n", "size", "conns", "target", "/caddy", "/nginx", "added p99 vs direct")
	for _, size := range cfg.sizes {
		for _, conns := range cfg.conns {
			for _, t := range []string{targetSlipway, targetInproc, targetBaseline, targetCaddy, targetNginx} {
				c := get(size, conns, t)
				if c == nil {
					continue
				}
				ratio := func(peer string) string {
					o := get(size, conns, peer)
					if o == nil || peer == t {
						return "-"
					}
					med, lo, hi := pairedRatio(c, o)
					return fmt.Sprintf("%.2f× (%.2f–%.2f)", med, lo, hi)
				}
				added := "-"
				if d := get(size, conns, targetDirect); d != nil {
					added = fmt.Sprintf("%+.2fms", float64(c.median().P99-d.median().P99)/1e6)
				}
				fmt.Printf("%-7s %-6d %-15s %20s %20s %20s\n", sizeName(size), conns, t, ratio(targetCaddy), ratio(targetNginx), added)
			}
		}
	}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/1e3) }

func printLive(runs []routeLiveRun) {
	var table, first []time.Duration
	for i, r := range runs {
		table = append(table, r.ToTable)
		first = append(first, r.To200)
		fmt.Fprintf(os.Stderr, "  run %2d: healthy→table %s, healthy→first 200 %s\n", i+1, ms(r.ToTable), ms(r.To200))
	}
	lo, med, p90, hi := durationStats(table)
	fmt.Printf("%-26s min %s  median %s  p90 %s  max %s\n", "healthy event → table", ms(lo), ms(med), ms(p90), ms(hi))
	lo, med, p90, hi = durationStats(first)
	fmt.Printf("%-26s min %s  median %s  p90 %s  max %s\n", "healthy event → first 200", ms(lo), ms(med), ms(p90), ms(hi))
}

// runPaced measures latency below saturation: every connection waits
// after each answer so that all of them together offer cfg.pacedRate
// requests/s, well under what every target can serve. Saturated (as in the
// throughput runs) each connection's latency is the connection count over
// the requests/s a target reaches (Little's law), whatever the target adds
// by itself; paced, a proxy's added p99 is what it adds to one request.
func runPaced(ctx context.Context, cfg config, dir string, addrs map[string]string, pids map[string]int, host string, headers map[string][]string) ([]*cell, error) {
	pause := time.Duration(cfg.pacedConns) * time.Second / time.Duration(cfg.pacedRate)
	script, err := pacedScript(dir, pause)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "paced: %d connections, each waiting %v after every answer (about %d requests/s offered)\n", cfg.pacedConns, pause, cfg.pacedRate)
	var cells []*cell
	byKey := map[string]*cell{}
	for round := 0; round < cfg.rounds; round++ {
		for _, size := range cfg.sizes {
			for i := range cfg.targets {
				t := cfg.targets[(i+round)%len(cfg.targets)]
				key := fmt.Sprintf("%d/%s", size, t)
				c := byKey[key]
				if c == nil {
					c = &cell{Size: size, Conns: cfg.pacedConns, Target: t}
					byKey[key] = c
					cells = append(cells, c)
				}
				cpu0 := treeCPU(pids[t])
				r, err := runWrkScript(ctx, "http://"+addrs[t]+"/"+strconv.Itoa(size), host, cfg.pacedConns, cfg.threads, cfg.duration, script, headers[t]...)
				if err != nil {
					return nil, err
				}
				if cpu1 := treeCPU(pids[t]); cpu0 > 0 && r.Requests > 0 {
					r.CPUPerRequest = (cpu1 - cpu0) / time.Duration(r.Requests)
				}
				if r.BytesPerRequest < 0.95*float64(size) {
					return nil, fmt.Errorf("target %s: %.0f bytes read per response, less than the %d-byte body", t, r.BytesPerRequest, size)
				}
				c.Runs = append(c.Runs, r)
				fmt.Fprintf(os.Stderr, "  paced round %d %6s %-15s %9.0f req/s p50 %-10v p99 %-10v CPU/request %v\n", round+1, sizeName(size), t, r.RPS, r.P50, r.P99, r.CPUPerRequest)
			}
		}
	}
	return cells, nil
}

// printPaced prints the paced runs with each target's added p99: the
// median over rounds of its p99 minus the direct p99 of the same round.
func printPaced(cfg config, cells []*cell) {
	fmt.Printf("\npaced latency: %d connections offering about %d requests/s in all; medians of %d rounds\n", cfg.pacedConns, cfg.pacedRate, cfg.rounds)
	fmt.Printf("%-7s %-6s %-15s %10s %10s %10s %10s %26s\n", "size", "conns", "target", "req/s", "p50", "p99", "CPU/req", "added p99 (lo–hi)")
	direct := map[int]*cell{}
	for _, c := range cells {
		if c.Target == targetDirect {
			direct[c.Size] = c
		}
	}
	for _, c := range cells {
		m := c.median()
		added := "-"
		if d := direct[c.Size]; d != nil && c != d {
			var ds []time.Duration
			for i := range min(len(c.Runs), len(d.Runs)) {
				ds = append(ds, c.Runs[i].P99-d.Runs[i].P99)
			}
			slices.Sort(ds)
			added = fmt.Sprintf("%+.2fms (%+.2f–%+.2f)", float64(benchkit.Median(ds))/1e6, float64(ds[0])/1e6, float64(ds[len(ds)-1])/1e6)
		}
		fmt.Printf("%-7s %-6d %-15s %10.0f %10s %10s %10s %26s\n", sizeName(c.Size), c.Conns, c.Target, m.RPS, ms(m.P50), ms(m.P99), us(m.CPUPerRequest), added)
	}
}
