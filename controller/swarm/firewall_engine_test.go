package swarm

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// With a firewall, Up isolates the node's docker_gwbridge: a container on
// a preview's overlay (which leaves the node through that bridge, as its
// tasks do) reaches a service listening on the host's address before, and
// is refused after, as it is refused the metadata address.
func TestFirewallCoversTheGatewayBridge(t *testing.T) {
	e, cli, reg := testEngine(t)
	fw, err := stack.NewIPTables(context.Background(), nil)
	if err != nil {
		dockertest.Unavailable(t, "firewall: %v", err)
	}
	ctx := context.Background()
	t.Cleanup(func() {
		if err := fw.Release(context.Background(), GatewayBridge); err != nil {
			t.Errorf("release the firewall rules: %v", err)
		}
	})

	// A service on the host, on every address.
	l, err := net.Listen("tcp4", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprint(c, "host-service-answered\n")
			c.Close()
		}
	}()
	gw, err := cli.NetworkInspect(ctx, GatewayBridge, network.InspectOptions{})
	if err != nil || len(gw.IPAM.Config) == 0 {
		t.Fatalf("inspect %s: %v %+v", GatewayBridge, err, gw.IPAM)
	}
	host := gw.IPAM.Config[0].Gateway
	port := l.Addr().(*net.TCPAddr).Port

	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": `
services:
  app:
    image: slipway-test/busybox:1
    init: true
    stop_grace_period: 1s
    command: ["sleep", "86400"]
`})
	src := stack.Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("fw"), PR: 8, SHA: strings.Repeat("8", 40)}
	project := src.Project()
	downAtCleanup(t, e, cli, reg, project)
	script := fmt.Sprintf(`nc -w 5 %s %d </dev/null 2>&1; nc -w 5 %s 80 </dev/null 2>&1; echo done`, host, port, stack.MetadataAddress)
	netName := contract.ResourceName(project, "default")

	up(t, e, load(t, src))
	if out := probe(t, cli, netName, script); !strings.Contains(out, "host-service-answered") {
		t.Fatalf("without the firewall the host's service did not answer, so the test proves nothing: %q", out)
	}

	withFirewall := NewEngine(cli, nil, Options{Registry: reg, ReadyTimeout: 2 * time.Minute, PollInterval: 100 * time.Millisecond,
		Build: stack.EngineOptions{StopTimeout: 2 * time.Second}, Firewall: fw})
	up(t, withFirewall, load(t, src))
	out := probe(t, cli, netName, script)
	if strings.Contains(out, "host-service-answered") {
		t.Errorf("with the firewall a preview's overlay still reaches the host: %q", out)
	}
	if n := strings.Count(out, "No route to host"); n != 2 {
		t.Errorf("want the host and the metadata address refused (REJECT, 2 × No route to host), got %q", out)
	}
}
