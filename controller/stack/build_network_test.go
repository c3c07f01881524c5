package stack

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

func TestBuildNetworkMode(t *testing.T) {
	const onBuildNetwork = "<build network>"
	tests := []struct {
		requested, mode string
		firewalled      bool
		want            string
	}{
		{"", BuildNetworkAuto, true, onBuildNetwork},
		{"default", "", true, onBuildNetwork},
		{"", BuildNetworkAuto, false, "none"}, // never the unfirewalled default bridge
		{"default", "", false, "none"},
		{"", BuildNetworkBridge, false, onBuildNetwork}, // the operator's opt-in
		{"", BuildNetworkBridge, true, onBuildNetwork},
		{"", BuildNetworkNone, true, "none"},
		{"none", BuildNetworkBridge, true, "none"}, // the compose file's none wins
		{"none", BuildNetworkAuto, false, "none"},
		{"host", BuildNetworkAuto, true, "host"}, // only reaches here when the operator allowed SW-BLD-002
	}
	for _, tt := range tests {
		mode, on := buildNetworkMode(tt.requested, tt.mode, tt.firewalled)
		got := mode
		if on {
			got = onBuildNetwork
		}
		if got != tt.want || (on && mode != "") {
			t.Errorf("buildNetworkMode(%q, %q, firewalled=%v) = %q, %v; want %q", tt.requested, tt.mode, tt.firewalled, mode, on, tt.want)
		}
	}
}

// recordingFirewall records what the engine asks of a real firewall, and
// the rules in place right after each Isolate.
type recordingFirewall struct {
	Firewall
	mu       sync.Mutex
	isolated []string
	released []string
	rules    map[string]string // bridge → its rules right after Isolate
}

func (r *recordingFirewall) Isolate(ctx context.Context, project, bridge string) error {
	err := r.Firewall.Isolate(ctx, project, bridge)
	rules := rulesOf(bridge)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.isolated = append(r.isolated, bridge)
	if r.rules == nil {
		r.rules = map[string]string{}
	}
	r.rules[bridge] = rules
	return err
}

func (r *recordingFirewall) Release(ctx context.Context, bridge string) error {
	r.mu.Lock()
	r.released = append(r.released, bridge)
	r.mu.Unlock()
	return r.Firewall.Release(ctx, bridge)
}

// rulesOf returns the lines of Slipway's chain and DOCKER-USER that name bridge.
func rulesOf(bridge string) string {
	var out []string
	for _, chain := range []string{Chain, "DOCKER-USER"} {
		b, _ := exec.Command("iptables", "-S", chain).CombinedOutput()
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, " "+bridge+" ") {
				out = append(out, l)
			}
		}
	}
	return strings.Join(out, "\n")
}

// serveOn answers every HTTP request on addr with body, until the test ends.
func serveOn(t *testing.T, addr, body string) int {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// interfaceIPv4 returns the first IPv4 address of a host interface.
func interfaceIPv4(t *testing.T, name string) string {
	t.Helper()
	iface, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatalf("interface %s: %v", name, err)
	}
	addrs, err := iface.Addrs()
	if err != nil {
		t.Fatalf("addresses of %s: %v", name, err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Fatalf("%s has no IPv4 address", name)
	return ""
}

// probeDockerfile's RUN step tries each target and prints one line per
// target: "probe <name> REACHED: <answer>" or "probe <name> BLOCKED: <error>".
// The timeout is generous: on the unfirewalled network the listeners answer
// at once, and the firewall refuses at once (ICMP admin-prohibited), so no
// outcome depends on it.
const probeDockerfile = `FROM ` + dockertest.BusyboxImage + `
ARG HOST_URL
ARG CONTROL_PORT
ARG PROBE_METADATA
RUN gw="$(ip route | awk '/^default/ {print $3}')"; \
    probe() { if out="$(timeout 120 wget -q -O - "$2" 2>&1)"; then echo "probe $1 REACHED: $out"; else echo "probe $1 BLOCKED: $out"; fi; }; \
    probe host "$HOST_URL"; \
    probe control "http://$gw:$CONTROL_PORT/"; \
    if [ -n "$PROBE_METADATA" ]; then probe metadata "http://` + MetadataAddress + `:$CONTROL_PORT/"; fi
`

// probeBuild builds the probe image for one PR of src and returns what each
// probe printed, and the whole build log.
func probeBuild(t *testing.T, e *Engine, src Source, pr int, hostURL string, controlPort int, probeMetadata bool) (map[string]string, string) {
	t.Helper()
	metadata := ""
	if probeMetadata {
		metadata = "yes"
	}
	dockertest.WriteFiles(t, src.Dir, map[string]string{
		"Dockerfile": probeDockerfile,
		"compose.yaml": fmt.Sprintf(`services:
  app:
    build:
      context: .
      no_cache: true
      args:
        HOST_URL: %q
        CONTROL_PORT: "%d"
        PROBE_METADATA: %q
`, hostURL, controlPort, metadata),
	})
	src.PR = pr
	p := mustLoad(t, src)
	var log bytes.Buffer
	if _, err := e.Build(context.Background(), p, &log); err != nil {
		t.Fatalf("build %s: %v\n%s", p.Name, err, log.String())
	}
	probes := map[string]string{}
	for _, l := range strings.Split(log.String(), "\n") {
		_, rest, ok := strings.Cut(l, "| probe ")
		if !ok {
			continue
		}
		name, result, _ := strings.Cut(rest, " ")
		probes[name] = result
	}
	t.Logf("PR %d: probes %q", pr, probes)
	return probes, log.String()
}

// A RUN step of a PR's build reaches neither a service on the host, nor
// Slipway's control surface, nor the metadata address: the build runs on a
// network of the project's own that the firewall isolates, and that is gone
// (rules included) when the build is. The same RUN step on that network
// without the firewall does reach the host's listeners, so the test can
// fail; with the firewall off and no opt-in, builds get no network at all.
func TestBuildRunStepsAreConfined(t *testing.T) {
	t.Parallel()
	ipt := testFirewall(t)
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	ctx := context.Background()

	// A host service on the docker0 gateway, the address the classic
	// builder's RUN steps used to see as their gateway, and a listener on
	// every address standing for Slipway's control surface.
	docker0 := interfaceIPv4(t, "docker0")
	hostURL := fmt.Sprintf("http://%s/", net.JoinHostPort(docker0, fmt.Sprint(serveOn(t, net.JoinHostPort(docker0, "0"), "host service"))))
	controlPort := serveOn(t, "0.0.0.0:0", "control surface")

	src := newSource(t, NewEngine(cli, nil, EngineOptions{}), cli, t.TempDir(), 1, 2, 3)

	// The control: on the project's build network without the firewall, the
	// RUN step reaches both listeners.
	open := NewEngine(cli, nil, EngineOptions{BuildNetwork: BuildNetworkBridge})
	probes, log := probeBuild(t, open, src, 1, hostURL, controlPort, false)
	for _, what := range []string{"host", "control"} {
		if !strings.HasPrefix(probes[what], "REACHED:") {
			t.Fatalf("control: an unfirewalled build did not reach the %s listener (%q); the test would prove nothing\n%s", what, probes[what], log)
		}
	}

	// Confined: the firewall refuses every probe, metadata address included.
	fw := &recordingFirewall{Firewall: ipt}
	confined := NewEngine(cli, nil, EngineOptions{Firewall: fw})
	probes, log = probeBuild(t, confined, src, 2, hostURL, controlPort, true)
	for _, what := range []string{"host", "control", "metadata"} {
		got, ok := probes[what]
		switch {
		case !ok:
			t.Errorf("the %s probe did not run\n%s", what, log)
		case !strings.HasPrefix(got, "BLOCKED:"):
			t.Errorf("a RUN step reached the %s listener: %s", what, got)
		case !strings.Contains(got, "No route to host"):
			// Refused by the firewall's REJECT (ICMP admin-prohibited), not
			// by something that merely did not answer.
			t.Errorf("the %s probe failed, but not by the firewall's refusal: %s", what, got)
		}
	}
	project := contract.ProjectName(src.Owner, src.Repo, 2)
	fw.mu.Lock()
	isolated, released, rules := fw.isolated, fw.released, fw.rules
	fw.mu.Unlock()
	if len(isolated) != 1 {
		t.Fatalf("the build isolated bridges %v, want its build network's", isolated)
	}
	br := isolated[0]
	for _, want := range []string{
		"-A " + Chain + " -i " + br,
		"-A DOCKER-USER -d " + MetadataAddress + "/32 -i " + br,
	} {
		if !strings.Contains(rules[br], want) || !strings.Contains(rules[br], "slipway:"+project) {
			t.Errorf("rules of the build network's bridge lack %q:\n%s", want, rules[br])
		}
	}
	if len(released) != 1 || released[0] != br {
		t.Errorf("released %v, want the build network's bridge %s", released, br)
	}
	if left := rulesOf(br); left != "" {
		t.Errorf("rules of the build network outlived the build:\n%s", left)
	}
	if _, err := cli.NetworkInspect(ctx, buildNetworkName(project), network.InspectOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("the build network outlived the build: %v", err)
	}

	// Firewall off and no opt-in: RUN steps get no network at all.
	probes, log = probeBuild(t, NewEngine(cli, nil, EngineOptions{}), src, 3, hostURL, controlPort, false)
	for _, what := range []string{"host", "control"} {
		if !strings.HasPrefix(probes[what], "BLOCKED:") {
			t.Errorf("without the firewall, a RUN step reached the %s listener: %q", what, probes[what])
		}
	}
	if !strings.Contains(log, "RUN steps have no network") {
		t.Errorf("the build log does not say why RUN steps have no network:\n%s", log)
	}
}

// A build network an interrupted build left behind goes with Down, rules
// and all.
func TestDownRemovesALeftoverBuildNetwork(t *testing.T) {
	t.Parallel()
	ipt := testFirewall(t)
	cli := dockertest.Client(t)
	ctx := context.Background()
	e := NewEngine(cli, nil, EngineOptions{Firewall: ipt})
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		"Dockerfile":   "FROM " + dockertest.BusyboxImage + "\n",
		"compose.yaml": "services:\n  app:\n    build: .\n",
	})
	p := mustLoad(t, newSource(t, e, cli, dir))
	// As a killed controller leaves it: made, firewalled, never removed.
	name, err := (&buildNetwork{engine: e, plan: p}).use(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ins, err := cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	br := bridgeName(ins.ID, ins.Options)
	if rulesOf(br) == "" {
		t.Fatalf("the build network %s is not firewalled", name)
	}
	if err := e.Down(ctx, p.Name); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.NetworkInspect(ctx, name, network.InspectOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("Down left the build network: %v", err)
	}
	if left := rulesOf(br); left != "" {
		t.Errorf("Down left the build network's rules:\n%s", left)
	}
}

// stepWatcher closes started once the build log shows the RUN step running.
type stepWatcher struct {
	mu      sync.Mutex
	log     bytes.Buffer
	step    string
	started chan struct{}
	once    sync.Once
}

func (w *stepWatcher) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log.Write(b)
	if _, after, ok := strings.Cut(w.log.String(), w.step); ok && strings.Contains(after, "Running in") {
		w.once.Do(func() { close(w.started) })
	}
	return len(b), nil
}

func (w *stepWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

// A build cancelled while a RUN step runs on the build network (a newer
// push, a closed PR) leaves neither the network nor its rules.
func TestCancelledBuildLeavesNoBuildNetwork(t *testing.T) {
	t.Parallel()
	ipt := testFirewall(t)
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	fw := &recordingFirewall{Firewall: ipt}
	e := NewEngine(cli, nil, EngineOptions{Firewall: fw, ReadyTimeout: time.Minute, StopTimeout: 2 * time.Second})
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		"Dockerfile":   "FROM " + dockertest.BusyboxImage + "\nRUN sleep 600\n",
		"compose.yaml": "services:\n  app:\n    build: {context: ., no_cache: true}\n",
	})
	p := mustLoad(t, newSource(t, e, cli, dir))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	w := &stepWatcher{step: "RUN sleep 600", started: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		_, err := e.Up(ctx, p, UpOptions{BuildLog: w})
		done <- err
	}()
	select {
	case <-w.started:
	case err := <-done:
		t.Fatalf("up ended before its RUN step ran: %v\n%s", err, w.String())
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled up succeeded")
	}
	fw.mu.Lock()
	isolated := fw.isolated
	fw.mu.Unlock()
	// The build network's bridge, and the project network's, which Up
	// makes while the images build.
	if len(isolated) == 0 || len(isolated) > 2 {
		t.Fatalf("isolated %v, want the build network's bridge and at most the project network's", isolated)
	}
	if _, err := cli.NetworkInspect(context.Background(), buildNetworkName(p.Name), network.InspectOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("the build network outlived the cancelled build: %v", err)
	}
	if left, err := dockertest.Leftovers(context.Background(), cli, contract.LabelProject+"="+p.Name); err != nil || len(left) > 0 {
		t.Errorf("the cancelled up of a new project left %v (%v)", left, err)
	}
	for _, bridge := range isolated {
		if left := rulesOf(bridge); left != "" {
			t.Errorf("rules of %s outlived the cancelled build:\n%s", bridge, left)
		}
	}
}

// A network that merely has the build network's name (another project's,
// or anyone's) is never built on.
func TestBuildRefusesAForeignNetworkOfTheBuildNetworksName(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	e.opts.BuildNetwork = BuildNetworkBridge
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		"Dockerfile":   "FROM " + dockertest.BusyboxImage + "\nRUN true\n",
		"compose.yaml": "services:\n  app:\n    build: .\n",
	})
	p := mustLoad(t, newSource(t, e, cli, dir))
	ctx := context.Background()
	foreign, err := cli.NetworkCreate(ctx, buildNetworkName(p.Name), network.CreateOptions{Driver: "bridge"})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.NetworkRemove(context.Background(), foreign.ID)
	var log bytes.Buffer
	_, err = e.Build(ctx, p, &log)
	if err == nil || !strings.Contains(err.Error(), "is not "+p.Name+"'s build network") {
		t.Fatalf("build on a foreign network of the build network's name: %v\n%s", err, log.String())
	}
	if _, err := cli.NetworkInspect(ctx, foreign.ID, network.InspectOptions{}); err != nil {
		t.Errorf("the build removed a network that is not its own: %v", err)
	}
}
