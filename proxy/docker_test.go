package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// upgradeScript answers one HTTP upgrade to the "echo" protocol, then
// echoes bytes back: enough of a websocket-like backend for busybox.
const upgradeScript = `#!/bin/sh
while IFS= read -r line; do
  line=$(printf '%s' "$line" | tr -d '\r')
  [ -z "$line" ] && break
done
printf 'HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n'
exec cat
`

// runLabeled creates and starts a container of project/service on net with
// the route labels, removing it at cleanup.
// projectHosts are the host templates of these tests: the repository
// local/<project> owns <project>.localhost and <service>-<project>.localhost.
var projectHosts = contract.HostTemplates{Domain: "localhost", Primary: "{{.Repo}}.{{.Domain}}", Service: "{{.Service}}-{{.Repo}}.{{.Domain}}"}

func runLabeled(t *testing.T, cli *client.Client, img, project, service, netName, host, port string, cmd []string, env []string, hc *container.HealthConfig) string {
	t.Helper()
	ctx := context.Background()
	name := contract.ContainerName(project, service, 1)
	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image: img,
		Cmd:   cmd,
		Env:   env,
		Labels: map[string]string{
			contract.LabelManaged:   "true",
			contract.LabelProject:   project,
			contract.LabelService:   service,
			contract.LabelNumber:    "1",
			contract.LabelOneoff:    "False",
			contract.LabelRepo:      contract.LocalOwner + "/" + project,
			contract.LabelPR:        "1",
			contract.LabelSHA:       "0000000000000000000000000000000000000000",
			contract.LabelRouteHost: host,
			contract.LabelRoutePort: port,
		},
		Healthcheck: hc,
	}, &container.HostConfig{}, &network.NetworkingConfig{
		EndpointsConfig: map[string]*network.EndpointSettings{netName: {}},
	}, nil, name)
	if err != nil {
		t.Fatalf("create container %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start container %s: %v", name, err)
	}
	return resp.ID
}

// waitFor polls fn until it returns true or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, fn func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := fn()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; last: %s", what, last)
}

func TestObserverRoutesRealContainers(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.Busybox(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	project := dockertest.UniqueName("slipway-proxytest-")
	webHost := project + ".localhost"
	echoHost := "echo-" + project + ".localhost"

	// The project's own bridge network, as compose names it.
	netName := contract.ResourceName(project, "default")
	if _, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{
		Labels: map[string]string{contract.LabelManaged: "true", contract.LabelProject: project, contract.LabelNetwork: "default"},
	}); err != nil {
		t.Fatalf("create network: %v", err)
	}
	t.Cleanup(func() { removeNetwork(cli, netName) })

	var wakeMu sync.Mutex
	var woken []string
	routes := NewRoutes(nil, projectHosts)
	obs := NewObserver(cli, routes, ObserverOptions{})
	obsDone := make(chan error, 1)
	go func() { obsDone <- obs.Run(ctx) }()
	select {
	case <-obs.Synced():
	case <-time.After(30 * time.Second):
		t.Fatal("observer never listed the containers")
	}
	h := NewHandler(routes, HandlerOptions{OnWake: func(p string) { wakeMu.Lock(); woken = append(woken, p); wakeMu.Unlock() }})
	defer h.Close()
	front := httptest.NewServer(h)
	defer front.Close()
	client := &http.Client{Timeout: 5 * time.Second}

	webID := runLabeled(t, cli, img, project, "web", netName, webHost, "8080",
		[]string{"sh", "-c", "mkdir -p /www && echo \"page of $PROJECT\" > /www/index.html && exec httpd -f -p 8080 -h /www"},
		[]string{"PROJECT=" + project},
		&container.HealthConfig{
			Test:     []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"},
			Interval: 200 * time.Millisecond,
			Timeout:  2 * time.Second,
			Retries:  10,
		})
	echoID := runLabeled(t, cli, img, project, "echo", netName, echoHost, "9090",
		[]string{"sh", "-c", `printf '%s' "$UP" > /up.sh && chmod +x /up.sh && exec nc -ll -p 9090 -e /up.sh`},
		[]string{"UP=" + upgradeScript}, nil)
	_ = echoID

	waitFor(t, 30*time.Second, "the web page through the proxy", func() (bool, string) {
		status, body, err := hostGet(t, client, front.URL+"/", webHost)
		if err != nil {
			return false, err.Error()
		}
		return status == 200 && strings.TrimSpace(body) == "page of "+project, body
	})
	r := routes.Lookup(webHost)
	if r == nil || r.Project != project || r.Service != "web" || len(r.Backends) != 1 {
		t.Fatalf("route: %+v", r)
	}

	// An upgraded connection through the proxy to the echo container.
	var up net.Conn
	var br *bufio.Reader
	waitFor(t, 30*time.Second, "an upgraded connection to the echo container", func() (bool, string) {
		c, err := net.Dial("tcp", strings.TrimPrefix(front.URL, "http://"))
		if err != nil {
			return false, err.Error()
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: "+echoHost+"\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n")
		rd := bufio.NewReader(c)
		resp, err := http.ReadResponse(rd, nil)
		if err != nil {
			c.Close()
			return false, err.Error()
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			c.Close()
			return false, resp.Status
		}
		up, br = c, rd
		return true, ""
	})
	defer up.Close()
	io.WriteString(up, "ping\n")
	if line, err := br.ReadString('\n'); err != nil || line != "ping\n" {
		t.Fatalf("echo over the upgraded connection: %q %v", line, err)
	}

	// Stopping the web container makes its host a sleeping one: the
	// request wakes it and gets the starting page.
	stopTimeout := 1
	if err := cli.ContainerStop(ctx, webID, container.StopOptions{Timeout: &stopTimeout}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the waking-up page", func() (bool, string) {
		status, body, err := hostGet(t, client, front.URL+"/", webHost)
		if err != nil {
			return false, err.Error()
		}
		return status == 503 && strings.Contains(body, "waking up"), body
	})
	wakeMu.Lock()
	if len(woken) == 0 || woken[0] != project {
		t.Errorf("OnWake calls %v, want %s", woken, project)
	}
	wakeMu.Unlock()

	// Removing the environment: both hosts go 404, the upgraded
	// connection is closed by the proxy.
	for _, id := range []string{webID, echoID} {
		if err := cli.ContainerRemove(ctx, id, container.RemoveOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	for _, host := range []string{webHost, echoHost} {
		waitFor(t, 30*time.Second, "404 for "+host, func() (bool, string) {
			status, body, err := hostGet(t, client, front.URL+"/", host)
			if err != nil {
				return false, err.Error()
			}
			return status == 404, body
		})
	}
	up.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := br.ReadString('\n')
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("upgraded connection still open after its container was removed: %v", err)
	}

	cancel()
	select {
	case err := <-obsDone:
		if err != nil {
			t.Fatalf("observer: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("observer did not stop with its context")
	}
}

// flakyEvents is the real Docker client whose events stream the test can
// break, and whose next subscription waits until the test allows it.
type flakyEvents struct {
	*client.Client
	mu      sync.Mutex
	calls   int
	breakCh chan error
	allow   chan struct{}
}

func (f *flakyEvents) Events(ctx context.Context, opts events.ListOptions) (<-chan events.Message, <-chan error) {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	if n == 2 {
		<-f.allow
	}
	msgs, errs := f.Client.Events(ctx, opts)
	if n != 1 {
		return msgs, errs
	}
	// The first stream ends with an error when the test says so.
	out := make(chan error, 1)
	go func() {
		select {
		case err := <-errs:
			out <- err
		case err := <-f.breakCh:
			out <- err
		}
	}()
	return msgs, out
}

func TestObserverRelistsAfterTheEventStreamBreaks(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.Busybox(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	project := dockertest.UniqueName("slipway-proxytest-")
	host := project + ".localhost"
	netName := contract.ResourceName(project, "default")
	if _, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{}); err != nil {
		t.Fatalf("create network: %v", err)
	}
	t.Cleanup(func() { removeNetwork(cli, netName) })

	flaky := &flakyEvents{Client: cli, breakCh: make(chan error, 1), allow: make(chan struct{})}
	routes := NewRoutes(nil, projectHosts)
	obs := NewObserver(flaky, routes, ObserverOptions{Resync: time.Hour})
	go obs.Run(ctx)
	<-obs.Synced()

	// Break the stream; while the observer is cut off, a container starts.
	flaky.breakCh <- errors.New("connection reset by test")
	runLabeled(t, cli, img, project, "web", netName, host, "8080",
		[]string{"sh", "-c", "exec httpd -f -p 8080 -h /"}, nil, nil)
	time.Sleep(300 * time.Millisecond)
	if routes.Lookup(host) != nil {
		t.Fatal("route appeared while the observer had no stream: the test proves nothing")
	}
	close(flaky.allow)
	waitFor(t, 30*time.Second, "the route after resubscribing", func() (bool, string) {
		r := routes.Lookup(host)
		if r == nil {
			return false, "no route"
		}
		return r.Phase == PhaseRunning, string(r.Phase)
	})
}

// removeNetwork force-disconnects whatever is still attached (another
// test's containerised proxy, say), then removes the network.
func removeNetwork(cli *client.Client, name string) {
	ctx := context.Background()
	if ins, err := cli.NetworkInspect(ctx, name, network.InspectOptions{}); err == nil {
		for id := range ins.Containers {
			_ = cli.NetworkDisconnect(ctx, ins.ID, id, true)
		}
	}
	_ = cli.NetworkRemove(ctx, name)
}
