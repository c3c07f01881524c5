package stack

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/controller/stack/policy"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

func TestSplitAndMatchIPTablesRules(t *testing.T) {
	tests := []struct {
		line, chain, bridge string
		want                bool
		spec                string
	}{
		{`-A SLIPWAY-INPUT -i br-0123456789ab -m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment "slipway:acme-shop-pr-1" -j DROP`, Chain, "br-0123456789ab", true,
			`-i|br-0123456789ab|-m|conntrack|!|--ctstate|RELATED,ESTABLISHED|-m|comment|--comment|slipway:acme-shop-pr-1|-j|DROP`},
		{`-A DOCKER-USER -d 169.254.169.254/32 -i br-0123456789ab -m comment --comment slipway:p -j DROP`, "DOCKER-USER", "br-0123456789ab", true,
			`-d|169.254.169.254/32|-i|br-0123456789ab|-m|comment|--comment|slipway:p|-j|DROP`},
		{`-A SLIPWAY-INPUT -i br-other -m comment --comment slipway:p -j DROP`, Chain, "br-0123456789ab", false, ""},
		{`-A DOCKER-USER -i br-0123456789ab -j RETURN`, "DOCKER-USER", "br-0123456789ab", false, ""},
		{`-N SLIPWAY-INPUT`, Chain, "br-0123456789ab", false, ""},
		{`-A DOCKER-USER -j RETURN`, "DOCKER-USER", "br-x", false, ""},
	}
	for _, tt := range tests {
		spec, ok := ruleOf(tt.line, tt.chain, tt.bridge)
		if ok != tt.want {
			t.Errorf("ruleOf(%q) ok=%v, want %v", tt.line, ok, tt.want)
		}
		if ok && strings.Join(spec, "|") != tt.spec {
			t.Errorf("ruleOf(%q) spec %q, want %q", tt.line, strings.Join(spec, "|"), tt.spec)
		}
	}
	if got := bridgeName("0123456789abcdef", nil); got != "br-0123456789ab" {
		t.Errorf("bridgeName = %q", got)
	}
	if got := bridgeName("x", map[string]string{"com.docker.network.bridge.name": "custom0"}); got != "custom0" {
		t.Errorf("bridgeName with option = %q", got)
	}
}

// The hardening is checked on the containers the engine made, not on the plan.
func TestCreatedContainersAreHardened(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	base := policy.BaseCapabilities()
	for _, svc := range []string{"web", "api", "migrate", "db"} {
		ins := inspectService(t, cli, p.Name, svc)
		h := ins.HostConfig
		if h.Privileged {
			t.Errorf("%s is privileged", svc)
		}
		if !slices.Equal(h.CapDrop, []string{"ALL"}) {
			t.Errorf("%s drops %v, want ALL", svc, h.CapDrop)
		}
		for _, c := range h.CapAdd {
			c = strings.TrimPrefix(c, "CAP_") // the engine reports them prefixed
			if !slices.Contains(base, c) {
				t.Errorf("%s has capability %s outside the base set", svc, c)
			}
		}
		if slices.Contains(h.CapAdd, "NET_RAW") || slices.Contains(h.CapAdd, "CAP_NET_RAW") {
			t.Errorf("%s keeps NET_RAW", svc)
		}
		if !slices.Contains(h.SecurityOpt, "no-new-privileges:true") {
			t.Errorf("%s security options %v lack no-new-privileges", svc, h.SecurityOpt)
		}
		if h.Memory <= 0 || h.NanoCPUs <= 0 || h.PidsLimit == nil || *h.PidsLimit <= 0 {
			t.Errorf("%s limits: memory %d, cpus %d, pids %v", svc, h.Memory, h.NanoCPUs, h.PidsLimit)
		}
		if h.LogConfig.Type != "json-file" || h.LogConfig.Config["max-size"] == "" {
			t.Errorf("%s log config %+v has no size cap", svc, h.LogConfig)
		}
		if len(h.Binds) > 0 {
			t.Errorf("%s has binds %v", svc, h.Binds)
		}
		for _, m := range ins.Mounts {
			if m.Type == "bind" {
				t.Errorf("%s has a bind mount of %s", svc, m.Source)
			}
		}
		if string(h.NetworkMode) != contract.ResourceName(p.Name, "default") {
			t.Errorf("%s network mode %q, want the project network", svc, h.NetworkMode)
		}
		if len(h.PortBindings) > 0 {
			t.Errorf("%s binds host ports %v", svc, h.PortBindings)
		}
	}
}

// execRC runs cmd in a container and returns its exit code and output.
func execRC(t *testing.T, cli *client.Client, name string, cmd ...string) (int, string) {
	t.Helper()
	ctx := context.Background()
	ex, err := cli.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(att.Reader)
	att.Close()
	ins, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	return ins.ExitCode, string(b)
}

// From a container of one preview: another preview (by IP and by name),
// the host's services (the controller's ports among them), the engine and
// the metadata address are all out of reach within 2 seconds.
func TestPreviewsAreIsolated(t *testing.T) {
	t.Parallel()
	fw := testFirewall(t)
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	e := NewEngine(cli, nil, EngineOptions{ReadyTimeout: time.Minute, StopTimeout: 2 * time.Second, Firewall: fw})
	dir := copyFixture(t, "shop")
	src1 := newSource(t, e, cli, dir, 1, 2)
	src2 := src1
	src2.PR = 2
	p1, _ := up(t, e, src1)
	p2, _ := up(t, e, src2)

	// A host service on every address, as the controller's listeners are.
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "host service") })}
	go srv.Serve(ln)
	defer srv.Close()
	hostPort := ln.Addr().(*net.TCPAddr).Port

	net1, err := cli.NetworkInspect(context.Background(), contract.ResourceName(p1.Name, "default"), network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gateway := net1.IPAM.Config[0].Gateway
	hostURL := fmt.Sprintf("http://%s:%d/", gateway, hostPort)

	// The control: the same request from a container on a network Slipway
	// does not manage reaches the host service, so the test can fail.
	ctl := dockertest.UniqueName("slipway-isolation-control")
	ctlNet, err := cli.NetworkCreate(context.Background(), ctl, network.CreateOptions{Driver: "bridge"})
	if err != nil {
		t.Fatalf("control network: %v", err)
	}
	defer cli.NetworkRemove(context.Background(), ctlNet.ID)
	ctlIns, _ := cli.NetworkInspect(context.Background(), ctlNet.ID, network.InspectOptions{})
	ctlURL := fmt.Sprintf("http://%s:%d/", ctlIns.IPAM.Config[0].Gateway, hostPort)
	if out := runOnce(t, cli, ctl, "timeout", "5", "wget", "-q", "-O", "-", ctlURL); !strings.Contains(out, "host service") {
		t.Fatalf("control: an unmanaged container cannot reach the host service (%q); the test would prove nothing", out)
	}

	web1 := contract.ContainerName(p1.Name, "web", 1)
	web2 := contract.ContainerName(p2.Name, "web", 1)
	ip2 := serviceIP(t, e, p2.Name, "web")
	attempts := map[string][]string{
		"another preview by IP":           {"timeout", "2", "wget", "-q", "-O", "-", "http://" + ip2 + ":8080/"},
		"another preview by name":         {"timeout", "2", "wget", "-q", "-O", "-", "http://" + web2 + ":8080/"},
		"the host's services":             {"timeout", "2", "wget", "-q", "-O", "-", hostURL},
		"the engine over TCP":             {"timeout", "2", "nc", gateway, "2375"},
		"the engine socket":               {"ls", "/var/run/docker.sock", "/run/docker.sock"},
		"the cloud metadata address":      {"timeout", "2", "wget", "-q", "-O", "-", "http://" + MetadataAddress + "/"},
		"another preview's service alias": {"timeout", "2", "wget", "-q", "-O", "-", "http://" + p2.Name + "-api-1:8081/"},
	}
	for what, cmd := range attempts {
		start := time.Now()
		rc, out := execRC(t, cli, web1, cmd...)
		if rc == 0 {
			t.Errorf("PR 1 reached %s: %s", what, out)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("reaching %s took %s to fail, want within 2s", what, d)
		}
	}
	// Its own stack still works: the web reaches its api by name.
	if rc, out := execRC(t, cli, web1, "timeout", "2", "wget", "-q", "-O", "-", "http://api:8081/"); rc != 0 || !strings.Contains(out, "api for PR 1") {
		t.Errorf("PR 1 cannot reach its own api: %d %s", rc, out)
	}
	// The host (the proxy's position) still reaches the preview.
	if page := get(t, "http://"+serviceIP(t, e, p1.Name, "web")+":8080/"); !strings.Contains(page, "PR=1") {
		t.Errorf("the host cannot reach the preview: %q", page)
	}

	// Down releases the rules.
	for _, p := range []*Plan{p1, p2} {
		if err := e.Down(context.Background(), p.Name); err != nil {
			t.Fatal(err)
		}
	}
	rules, _ := exec.Command("iptables", "-S", Chain).CombinedOutput()
	for _, p := range []*Plan{p1, p2} {
		if strings.Contains(string(rules), "slipway:"+p.Name) {
			t.Errorf("rules of %s survived its teardown:\n%s", p.Name, rules)
		}
	}
}

// runOnce runs cmd in a throwaway busybox container on net and returns its output.
func runOnce(t *testing.T, cli *client.Client, net string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: dockertest.BusyboxImage, Cmd: cmd}, &container.HostConfig{NetworkMode: container.NetworkMode(net)}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := cli.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		t.Fatal(err)
	}
	rc, err := cli.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return string(b)
}

// The firewall deletes its rules for bridges that are gone, whoever
// removed the network.
func TestFirewallSweepsRulesOfGoneBridges(t *testing.T) {
	rules := map[string][]string{
		Chain: {
			`-N SLIPWAY-INPUT`,
			`-A SLIPWAY-INPUT -i br-gone00000000 -m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment "slipway:old-pr-1" -j DROP`,
			`-A SLIPWAY-INPUT -i br-alive0000000 -m conntrack ! --ctstate RELATED,ESTABLISHED -m comment --comment "slipway:live-pr-2" -j DROP`,
		},
		"DOCKER-USER": {
			`-N DOCKER-USER`,
			`-A DOCKER-USER -d 169.254.169.254/32 -i br-gone00000000 -m comment --comment slipway:old-pr-1 -j DROP`,
			`-A DOCKER-USER -i br-gone00000000 -j DROP`,
			`-A DOCKER-USER -j RETURN`,
		},
	}
	var deleted []string
	f := &IPTables{
		log:    slogDiscard(),
		exists: func(iface string) bool { return iface == "br-alive0000000" },
		run: func(_ context.Context, args ...string) ([]byte, error) {
			switch args[0] {
			case "-S":
				return []byte(strings.Join(rules[args[1]], "\n")), nil
			case "-D":
				deleted = append(deleted, strings.Join(args[1:], " "))
			}
			return nil, nil
		},
	}
	f.sweep(context.Background())
	if len(deleted) != 2 {
		t.Fatalf("deleted %d rules, want the 2 of the gone bridge: %q", len(deleted), deleted)
	}
	for _, d := range deleted {
		if !strings.Contains(d, "br-gone00000000") || !strings.Contains(d, "slipway:old-pr-1") {
			t.Errorf("deleted %q", d)
		}
	}
}

func slogDiscard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testFirewall is the real iptables firewall; under CI=true a machine
// without it fails the test.
func testFirewall(t *testing.T) *IPTables {
	t.Helper()
	fw, err := NewIPTables(context.Background(), nil)
	if err != nil {
		dockertest.Unavailable(t, "firewall: %v", err)
	}
	return fw
}
