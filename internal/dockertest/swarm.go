package dockertest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
)

// SwarmTestsEnv enables the tests that need a swarm. They run as their own
// step of .ci/run, after every other test: no other test may see the
// engine in a swarm.
const SwarmTestsEnv = "SLIPWAY_SWARM_TESTS"

// SwarmTestsEnabled reports whether SLIPWAY_SWARM_TESTS=1.
func SwarmTestsEnabled() bool { return os.Getenv(SwarmTestsEnv) == "1" }

// NeedSwarmTests skips the test unless the swarm tests are enabled.
func NeedSwarmTests(t testing.TB) {
	t.Helper()
	if !SwarmTestsEnabled() {
		t.Skipf("swarm tests run only with %s=1 (their own step of .ci/run)", SwarmTestsEnv)
	}
}

// EnsureSwarm makes the engine a single-node swarm manager, advertising
// 127.0.0.1, unless it already is in a swarm. It reports whether it
// created the swarm: only then should the caller leave it (LeaveSwarm).
func EnsureSwarm(ctx context.Context, cli client.APIClient) (created bool, err error) {
	info, err := cli.Info(ctx)
	if err != nil {
		return false, fmt.Errorf("docker info: %w", err)
	}
	switch info.Swarm.LocalNodeState {
	case swarm.LocalNodeStateActive:
		if !info.Swarm.ControlAvailable {
			return false, fmt.Errorf("the engine is in a swarm but not a manager")
		}
		return false, nil
	case swarm.LocalNodeStateInactive:
	default:
		return false, fmt.Errorf("the engine's swarm state is %q", info.Swarm.LocalNodeState)
	}
	if _, err := cli.SwarmInit(ctx, swarm.InitRequest{ListenAddr: "127.0.0.1:2377", AdvertiseAddr: "127.0.0.1"}); err != nil {
		return false, fmt.Errorf("swarm init: %w", err)
	}
	return true, nil
}

// UseSwarm makes the engine a single-node swarm for one test (run in
// .ci/run's swarm step: it needs SLIPWAY_SWARM_TESTS=1) and leaves it at
// the test's end if the test made it.
func UseSwarm(t testing.TB, cli client.APIClient) {
	t.Helper()
	NeedSwarmTests(t)
	created, err := EnsureSwarm(context.Background(), cli)
	if err != nil {
		t.Fatal(err)
	}
	if created {
		t.Cleanup(func() {
			if err := LeaveSwarm(context.Background(), cli); err != nil {
				t.Error(err)
			}
		})
	}
}

// LeaveSwarm makes the engine leave the swarm (one EnsureSwarm created),
// and removes the docker_gwbridge network swarm init made, which leaving
// keeps. The ingress network's sandbox may still hold an endpoint on it
// after the leave (the engine lets it go by itself, or, on a busy 20.10,
// not at all): LeaveSwarm waits for it, and disconnects it, up to a minute.
func LeaveSwarm(ctx context.Context, cli client.APIClient) error {
	if err := cli.SwarmLeave(ctx, true); err != nil {
		return fmt.Errorf("swarm leave: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		err := cli.NetworkRemove(ctx, GatewayBridge)
		if err == nil || errdefs.IsNotFound(err) {
			return nil
		}
		if !strings.Contains(err.Error(), "active endpoints") {
			return fmt.Errorf("remove %s after leaving the swarm: %w", GatewayBridge, err)
		}
		if n, ierr := cli.NetworkInspect(ctx, GatewayBridge, network.InspectOptions{}); ierr == nil {
			for _, ep := range n.Containers {
				if ep.Name == ingressGatewayEndpoint {
					_ = cli.NetworkDisconnect(ctx, GatewayBridge, ep.Name, true)
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("remove %s after leaving the swarm: %w", GatewayBridge, err)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// GatewayBridge is the bridge swarm init makes for the node's tasks.
const GatewayBridge = "docker_gwbridge"

// ingressGatewayEndpoint is the ingress network sandbox's endpoint on the
// gateway bridge.
const ingressGatewayEndpoint = "gateway_ingress-sbox"

// RegistryBinary finds the distribution registry (.ci/run installs it with
// go install): on PATH, else in $GOBIN or $GOPATH/bin.
func RegistryBinary() (string, error) {
	if p, err := exec.LookPath("registry"); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = append(dirs, filepath.Join(string(trimNL(out)), "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "registry")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("the distribution registry is not installed (go install github.com/distribution/distribution/v3/cmd/registry@v3.0.0)")
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

// StartRegistry runs a registry on 127.0.0.1 (a loopback registry the
// Docker daemon pushes to over plain HTTP) with deletes enabled and its
// storage in a temporary directory, stops it when the test ends, and
// returns its address (host:port).
func StartRegistry(t testing.TB) string {
	t.Helper()
	return StartRegistryWith(t, "")
}

// StartRegistryWith is StartRegistry with extra top-level configuration
// (YAML, e.g. an auth section). The registry counts as up once /v2/
// answers 200, or 401 where extra configures authentication.
func StartRegistryWith(t testing.TB, extra string) string {
	t.Helper()
	bin, err := RegistryBinary()
	if err != nil {
		Unavailable(t, "%v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfg, []byte(`version: 0.1
log:
  level: warn
  accesslog: {disabled: true}
storage:
  filesystem:
    rootdirectory: `+strconv.Quote(filepath.Join(dir, "data"))+`
  delete:
    enabled: true
http:
  addr: `+addr+`
`+extra), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfg)
	out, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		out.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || (extra != "" && resp.StatusCode == http.StatusUnauthorized) {
				return addr
			}
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("registry exited: %v\n%s", waitErr, log)
		case <-ctx.Done():
			log, _ := os.ReadFile(out.Name())
			t.Fatalf("registry did not answer on %s\n%s", addr, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// BridgeGateway returns the host's address on the engine's default bridge
// (docker0): where a container reaches a server the test runs on the host,
// when that server listens there. The default bridge's IPAM often names no
// gateway, so the bridge interface's own IPv4 address is taken then.
func BridgeGateway(ctx context.Context, cli client.APIClient) (string, error) {
	n, err := cli.NetworkInspect(ctx, "bridge", network.InspectOptions{})
	if err != nil {
		return "", fmt.Errorf("inspect the default bridge network: %w", err)
	}
	for _, c := range n.IPAM.Config {
		if ip := net.ParseIP(c.Gateway); ip != nil && ip.To4() != nil {
			return c.Gateway, nil
		}
	}
	name := n.Options["com.docker.network.bridge.name"]
	if name == "" {
		name = "docker0"
	}
	iface, err := net.InterfaceByName(name)
	if err != nil {
		return "", fmt.Errorf("the default bridge's interface %s (the test must run on the engine's host): %w", name, err)
	}
	addrs, err := iface.Addrs()
	if err != nil {
		return "", fmt.Errorf("addresses of %s: %w", name, err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			return ipn.IP.String(), nil
		}
	}
	return "", fmt.Errorf("%s has no IPv4 address", name)
}

// Forward listens on ip (a port chosen by the system) and relays every
// connection to target (host:port), until the test ends. It returns the
// address it listens on. A server on the loopback (such as the registry
// the daemon pushes to as 127.0.0.1) is so reachable from containers too,
// without listening on every address of the host.
func Forward(t testing.TB, ip, target string) string {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("forward to %s: listen on %s: %v", target, ip, err)
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		l.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				relay(in, target, done)
			}()
		}
	}()
	return l.Addr().String()
}

// relay copies between in and a new connection to target, both ways,
// until either side is done or done is closed.
func relay(in net.Conn, target string, done <-chan struct{}) {
	defer in.Close()
	out, err := net.DialTimeout("tcp", target, 10*time.Second)
	if err != nil {
		return
	}
	defer out.Close()
	finished := make(chan struct{}, 2)
	go func() { io.Copy(out, in); out.(*net.TCPConn).CloseWrite(); finished <- struct{}{} }()
	go func() { io.Copy(in, out); in.(*net.TCPConn).CloseWrite(); finished <- struct{}{} }()
	for range 2 {
		select {
		case <-finished:
		case <-done:
			return // the deferred closes end both copies
		}
	}
}
