package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// backendPort is the port the backend listens on inside its container.
const backendPort = "8080"

// backendBody is the body the backend answers at /<size>: a line naming
// the run, repeated and cut to size. Every proxy must hand it back byte for
// byte (Caddy, for one, answers an empty 200 for a host it does not serve).
func backendBody(size int, nonce string) []byte {
	line := []byte("slipway bench backend " + nonce + "\n")
	return bytes.Repeat(line, size/len(line)+1)[:size]
}

// serveBackend is the backend process: fixed bodies at /<bytes>, with
// Content-Length, keep-alive. It prints its address on stdout.
func serveBackend(listen, nonce string, sizes []int) error {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	bodies := map[string][]byte{}
	for _, n := range sizes {
		bodies["/"+strconv.Itoa(n)] = backendBody(n, nonce)
	}
	fmt.Println(ln.Addr().String())
	srv := &http.Server{
		ReadHeaderTimeout: 10 * time.Second,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, ok := bodies[r.URL.Path]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(b)))
			w.Write(b)
		}),
	}
	return srv.Serve(ln)
}

func sizesArg(sizes []int) string {
	ss := make([]string, len(sizes))
	for i, n := range sizes {
		ss[i] = strconv.Itoa(n)
	}
	return strings.Join(ss, ",")
}

// startBackendProcess runs this program again as the backend process on
// loopback.
func startBackendProcess(ctx context.Context, nonce string, sizes []int) (addr string, pid int, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.CommandContext(ctx, self, "-serve-backend", sizesArg(sizes), "-backend-listen", "127.0.0.1:0", "-backend-nonce", nonce)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", 0, nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", 0, nil, fmt.Errorf("start backend: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return "", 0, nil, fmt.Errorf("backend address: %w", err)
	}
	return strings.TrimSpace(line), cmd.Process.Pid, func() { cmd.Process.Kill(); cmd.Wait() }, nil
}

// backendContainer is the backend running as a preview's web container:
// labelled as Slipway labels what it creates, so that `slipway serve`
// routes pr-1.<domain> to it.
type backendContainer struct {
	addr    string // IP:port on its project network
	pid     int    // of the backend process
	project string
	repo    string
	host    string
}

// startBackendContainer builds this program statically, runs it as the
// backend in a busybox container (the binary bind-mounted) on its own
// project network, and returns its address. stop removes the container and
// the network.
func startBackendContainer(ctx context.Context, cli *client.Client, dir, domain, nonce string, sizes []int) (*backendContainer, func(), error) {
	if err := dockertest.EnsureBusybox(ctx, cli); err != nil {
		return nil, nil, fmt.Errorf("busybox image (install busybox-static): %w", err)
	}
	bin := filepath.Join(dir, "backend")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "./bench/proxy")
	build.Dir = moduleRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("go build ./bench/proxy (static backend): %w\n%s", err, out)
	}
	name := "bench" + benchkit.RandomHex(4)
	b := &backendContainer{
		project: contract.LocalOwner + "-" + name + "-pr-1",
		repo:    contract.LocalOwner + "/" + name,
		host:    "pr-1." + domain,
	}
	netName := contract.ResourceName(b.project, "default")
	labels := map[string]string{contract.LabelManaged: "true", contract.LabelProject: b.project, contract.LabelRepo: b.repo, contract.LabelPR: "1"}
	if _, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{Labels: labels}); err != nil {
		return nil, nil, fmt.Errorf("create network %s: %w", netName, err)
	}
	var id string
	stop := func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if id != "" {
			if err := cli.ContainerRemove(cctx, id, container.RemoveOptions{Force: true}); err != nil {
				fmt.Fprintln(os.Stderr, "remove backend container:", err)
			}
		}
		if err := cli.NetworkRemove(cctx, netName); err != nil {
			fmt.Fprintln(os.Stderr, "remove backend network:", err)
		}
	}
	clabels := map[string]string{
		contract.LabelService:   "web",
		contract.LabelNumber:    "1",
		contract.LabelOneoff:    "False",
		contract.LabelRouteHost: b.host,
		contract.LabelRoutePort: backendPort,
	}
	for k, v := range labels {
		clabels[k] = v
	}
	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image:  dockertest.BusyboxImage,
		Cmd:    []string{"/backend", "-serve-backend", sizesArg(sizes), "-backend-listen", ":" + backendPort, "-backend-nonce", nonce},
		Labels: clabels,
	}, &container.HostConfig{
		Binds: []string{bin + ":/backend:ro"},
	}, &network.NetworkingConfig{
		EndpointsConfig: map[string]*network.EndpointSettings{netName: {}},
	}, nil, contract.ContainerName(b.project, "web", 1))
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("create backend container: %w", err)
	}
	id = resp.ID
	if err := cli.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		stop()
		return nil, nil, fmt.Errorf("start backend container: %w", err)
	}
	ins, err := cli.ContainerInspect(ctx, id)
	if err != nil {
		stop()
		return nil, nil, fmt.Errorf("inspect backend container: %w", err)
	}
	ep := ins.NetworkSettings.Networks[netName]
	if ep == nil || ep.IPAddress == "" {
		stop()
		return nil, nil, fmt.Errorf("backend container has no address on %s", netName)
	}
	b.addr = net.JoinHostPort(ep.IPAddress, backendPort)
	if ins.State != nil {
		b.pid = ins.State.Pid
	}
	if err := waitListening(ctx, b.addr, 30*time.Second); err != nil {
		logs := containerLogs(cli, id)
		stop()
		return nil, nil, fmt.Errorf("backend container: %w\n%s", err, logs)
	}
	return b, stop, nil
}

func containerLogs(cli *client.Client, id string) string {
	rc, err := cli.ContainerLogs(context.Background(), id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return err.Error()
	}
	defer rc.Close()
	var buf bytes.Buffer
	buf.ReadFrom(rc)
	return buf.String()
}

// waitListening polls addr until it accepts a connection.
func waitListening(ctx context.Context, addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// moduleRoot is the directory of the module's go.mod (the benchmark runs
// from inside the repository).
func moduleRoot() string {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "."
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "."
	}
	return filepath.Dir(gomod)
}
