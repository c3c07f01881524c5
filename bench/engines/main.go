// Command engines benchmarks the swarm engine against the Docker host's
// engine, side by side on the same fixture and the same machine: the time
// of Up (build with a warm cache, for swarm also the push to a registry,
// then every service running and healthy) and of Down (to nothing left).
//
// The fixture is controller/swarm/testdata/pair: web (built) calls api (an
// image-only service with a named volume, a secret and a config) by
// service name. Before the first timed run each engine brings it up once,
// so every Dockerfile step is in the layer cache ("warm"). Runs alternate
// which engine goes first. After every Up, a probe container on the
// project's network fetches web's page and web's call to api, and the run
// counts only when both answer with the fixture's own content.
//
// The engine becomes a single-node swarm for the run when it is not in one
// (and leaves it afterwards only then); a distribution registry (`registry`
// on PATH or in $GOPATH/bin) runs on 127.0.0.1 for the run. Whatever
// happens, everything the benchmark made is removed before it exits.
//
// This measures the engines only: there is no proxy in the loop (the proxy
// does not route to swarm tasks yet), so it is not the open-to-live figure
// of bench/loop.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/swarm"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// engine is what the benchmark drives of either engine.
type engine interface {
	Up(ctx context.Context, p *stack.Plan, opts stack.UpOptions) (*stack.UpResult, error)
	Down(ctx context.Context, project string) error
}

func main() {
	runs := flag.Int("runs", 5, "timed up/down cycles per engine")
	flag.BoolVar(&trace, "trace", false, "print each timed Up's log with the time since Up began, to see where it spends its time")
	flag.Parse()
	benchkit.Main(30*time.Minute, func(ctx context.Context) error { return run(ctx, *runs) })
}

// trace prints every Up's log, each line stamped with the time since Up began.
var trace bool

func run(ctx context.Context, runs int) (err error) {
	cli, err := benchkit.Docker(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	if err := dockertest.EnsureBusybox(ctx, cli); err != nil {
		return fmt.Errorf("busybox base image: %w", err)
	}
	created, err := dockertest.EnsureSwarm(ctx, cli)
	if err != nil {
		return err
	}
	if created {
		defer func() {
			if lerr := dockertest.LeaveSwarm(context.WithoutCancel(ctx), cli); lerr != nil {
				err = errors.Join(err, lerr)
			}
		}()
	}
	reg, stopRegistry, err := startRegistry(ctx)
	if err != nil {
		return err
	}
	defer stopRegistry()

	dir, err := os.MkdirTemp("", "slipway-bench-engines-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := dockertest.CopyTree(filepath.Join("controller", "swarm", "testdata", "pair"), dir); err != nil {
		return fmt.Errorf("copy the fixture (run from the repository root): %w", err)
	}
	engines := map[string]engine{
		"docker": stack.NewEngine(cli, nil, stack.EngineOptions{StopTimeout: 2 * time.Second}),
		"swarm":  swarm.NewEngine(cli, nil, swarm.Options{Registry: &swarm.Registry{Address: reg}, Build: stack.EngineOptions{StopTimeout: 2 * time.Second}}),
	}
	order := []string{"docker", "swarm"}
	repo := "bench" + benchkit.RandomHex(4)
	src := stack.Source{Dir: dir, Owner: "bench", Repo: repo, SHA: strings.Repeat("b", 40)}
	cleanup := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 3*time.Minute)
		defer cancel()
		for i, name := range order {
			s := src
			s.PR = i + 1
			if err := engines[name].Down(cctx, s.Project()); err != nil {
				fmt.Fprintf(os.Stderr, "cleanup %s: %v\n", s.Project(), err)
			}
		}
	}
	defer cleanup()

	ups := map[string][]time.Duration{}
	downs := map[string][]time.Duration{}
	// One untimed cycle each warms the layer cache.
	for round := -1; round < runs; round++ {
		names := order
		if round%2 == 1 {
			names = []string{order[1], order[0]}
		}
		for _, name := range names {
			s := src
			s.PR = indexOf(order, name) + 1
			up, down, err := cycle(ctx, cli, engines[name], s)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			if round >= 0 {
				ups[name] = append(ups[name], up)
				downs[name] = append(downs[name], down)
				fmt.Fprintf(os.Stderr, "run %d %-6s up %s down %s\n", round+1, name, benchkit.FmtDur(up), benchkit.FmtDur(down))
			}
		}
	}
	fmt.Printf("\nengines: warm up-to-ready and down-to-clean, %d runs each (median, spread)\n\n", runs)
	fmt.Printf("%-8s %-22s %-22s\n", "engine", "up", "down")
	for _, name := range order {
		fmt.Printf("%-8s %-22s %-22s\n", name,
			benchkit.FmtDur(benchkit.Median(ups[name]))+" "+benchkit.Spread(ups[name]),
			benchkit.FmtDur(benchkit.Median(downs[name]))+" "+benchkit.Spread(downs[name]))
	}
	// The ratio is the median of each round's paired ratio: load on a
	// shared machine drifts over minutes, and both engines of a round see
	// about the same.
	ratio := func(m map[string][]time.Duration) float64 {
		var rs []float64
		for i := range m["swarm"] {
			rs = append(rs, float64(m["swarm"][i])/float64(m["docker"][i]))
		}
		slices.Sort(rs)
		if len(rs)%2 == 1 {
			return rs[len(rs)/2]
		}
		return (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
	}
	fmt.Printf("\nswarm/docker (median of paired ratios): up %.2f×, down %.2f× (issue 13's target, for open-to-live and close-to-clean through the proxy: ≤ 1.5×)\n", ratio(ups), ratio(downs))
	return nil
}

// cycle brings the fixture up, checks that it answers, and takes it down.
func cycle(ctx context.Context, cli *client.Client, e engine, src stack.Source) (up, down time.Duration, err error) {
	p, err := stack.Load(ctx, src, stack.LoadOptions{Limits: config.Defaults().Limits})
	if err != nil {
		return 0, 0, err
	}
	var log bytes.Buffer
	start := time.Now()
	var w io.Writer = &log
	if trace {
		w = &stamped{w: &log, start: start}
	}
	if _, err := e.Up(ctx, p, stack.UpOptions{BuildLog: w}); err != nil {
		return 0, 0, fmt.Errorf("up: %w\n%s", err, log.String())
	}
	up = time.Since(start)
	if trace {
		fmt.Fprintf(os.Stderr, "--- %s up in %s:\n%s", p.Name, benchkit.FmtDur(up), log.String())
	}
	out, err := probe(ctx, cli, contract.ResourceName(p.Name, "default"), "wget -q -O - http://web:8080/ && wget -q -O - http://web:8080/cgi-bin/api")
	if err != nil {
		return 0, 0, err
	}
	if !strings.Contains(out, "web v1") || !strings.Contains(out, "token-ok") {
		return 0, 0, fmt.Errorf("the environment does not answer with the fixture's content: %q", out)
	}
	start = time.Now()
	if err := e.Down(ctx, p.Name); err != nil {
		return 0, 0, fmt.Errorf("down: %w", err)
	}
	return up, time.Since(start), nil
}

// probe runs script in a busybox container on network and returns its output.
func probe(ctx context.Context, cli *client.Client, network, script string) (string, error) {
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: dockertest.BusyboxImage, Cmd: []string{"sh", "-c", script}},
		&container.HostConfig{NetworkMode: container.NetworkMode(network)}, nil, nil, "slipway-bench-probe-"+benchkit.RandomHex(4))
	if err != nil {
		return "", fmt.Errorf("create probe: %w", err)
	}
	defer cli.ContainerRemove(context.WithoutCancel(ctx), resp.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return "", fmt.Errorf("start probe: %w", err)
	}
	waitC, errC := cli.ContainerWait(ctx, resp.ID, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		return "", fmt.Errorf("wait probe: %w", err)
	}
	rc, err := cli.ContainerLogs(ctx, resp.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return "", err
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return out.String(), nil
}

// startRegistry runs a distribution registry on a free loopback port with
// deletes enabled, and returns its address and how to stop it.
func startRegistry(ctx context.Context) (string, func(), error) {
	bin, err := dockertest.RegistryBinary()
	if err != nil {
		return "", nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	addr := l.Addr().String()
	l.Close()
	dir, err := os.MkdirTemp("", "slipway-bench-registry-")
	if err != nil {
		return "", nil, err
	}
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte("version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\nstorage:\n  filesystem: {rootdirectory: "+
		filepath.Join(dir, "data")+"}\n  delete: {enabled: true}\nhttp: {addr: "+addr+"}\n"), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "serve", cfg)
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start registry: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-done
		os.RemoveAll(dir)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr, stop, nil
			}
		}
		select {
		case <-done:
			stop()
			return "", nil, errors.New("the registry exited")
		case <-ctx.Done():
			stop()
			return "", nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return "", nil, fmt.Errorf("the registry did not answer on %s", addr)
		}
	}
}

// stamped prefixes every line written to w with the time since start.
type stamped struct {
	w     io.Writer
	start time.Time
	mid   bool // within a line
}

func (s *stamped) Write(b []byte) (int, error) {
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !s.mid {
			fmt.Fprintf(s.w, "%7.3fs ", time.Since(s.start).Seconds())
		}
		if _, err := s.w.Write(line); err != nil {
			return 0, err
		}
		s.mid = line[len(line)-1] != '\n'
	}
	return len(b), nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}
