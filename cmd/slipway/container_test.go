package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// The non-root user of the image (Dockerfile).
const imageUser = "10001:10001"

// containerFixture is a one-service preview: busybox httpd behind a
// healthcheck, saying which PR it is.
var containerFixture = map[string]string{
	"compose.yaml": `services:
  web:
    image: slipway-test/busybox:1
    init: true
    stop_grace_period: 1s
    command: ["sh", "-c", "mkdir -p /www && echo \"hello from PR $$SLIPWAY_PR\" > /www/index.html && exec httpd -f -p 8080 -h /www"]
    expose: ["8080"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 300ms
      retries: 100
`,
}

// TestContainerImageServesPreviews builds the Slipway image with the
// Dockerfile's offline target (a static binary built here, no base image),
// runs it as docs/container.md says (socket mounted, non-root with the
// socket's group, read-only root, no capabilities), and serves a preview
// through it: the containerised proxy reaches the environment only because
// the attacher joined the project's network. After the environment is
// removed the proxy answers 404 and the network is gone.
func TestContainerImageServesPreviews(t *testing.T) {
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	socket, gid := engineSocket(t, cli)
	tag := "slipway-test/slipway:" + dockertest.UniqueName("img")
	buildOfflineImage(t, cli, tag)
	// From here on, once the image is built: on a fresh, loaded machine
	// the build alone can take minutes.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	domain := dockertest.UniqueName("ctr") + ".localhost"
	// state_dir from the host at the same path, as docs/container.md says
	// (previews' bind mounts of their checkout resolve on the host).
	stateDir := stateDirFor(t, 10001)
	cfgFile := filepath.Join(t.TempDir(), "slipway.yaml")
	writeFile(t, cfgFile, fmt.Sprintf("domain: %s\nlisten: {http: \":8080\"}\nstate_dir: %s\n", domain, stateDir), 0o644)

	run := runSlipwayContainer(t, ctx, cli, slipwayContainer{
		image: tag, socket: socket, groupAdd: []string{gid}, config: cfgFile, stateDir: stateDir,
		cmd: nil, // the image's CMD: serve --config /etc/slipway/slipway.yaml
	})
	base := fmt.Sprintf("http://127.0.0.1:%s", run.hostPort)
	waitHTTP(t, ctx, base+"/readyz", "", http.StatusOK, "ready", run)
	if logs := run.logs(t); !strings.Contains(logs, "joining project networks") {
		t.Fatalf("slipway did not find its own container:\n%s", logs)
	}
	published := run.publishedPort(t, ctx)

	// What was declared is what runs.
	ins, err := cli.ContainerInspect(ctx, run.id)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Config.User != imageUser {
		t.Errorf("image user %q, want %s", ins.Config.User, imageUser)
	}
	hc := ins.HostConfig
	if !hc.ReadonlyRootfs || !slices.Equal(hc.CapDrop, []string{"ALL"}) || len(hc.CapAdd) != 0 ||
		!slices.Contains(hc.SecurityOpt, "no-new-privileges:true") || !slices.Contains(hc.GroupAdd, gid) {
		t.Errorf("host config: read-only %v, cap_drop %v, cap_add %v, security_opt %v, group_add %v",
			hc.ReadonlyRootfs, hc.CapDrop, hc.CapAdd, hc.SecurityOpt, hc.GroupAdd)
	}
	top, err := cli.ContainerTop(ctx, run.id, []string{"-o", "pid,uid,gid,args"})
	if err != nil {
		t.Fatal(err)
	}
	served := false
	for _, p := range top.Processes {
		if len(p) == 4 && strings.Contains(p[3], "/slipway serve") {
			served = true
			if p[1] != "10001" || p[2] != "10001" {
				t.Errorf("slipway serve runs as uid %s gid %s, want 10001", p[1], p[2])
			}
		}
	}
	if !served {
		t.Errorf("no /slipway serve process in %v", top.Processes)
	}

	// An environment, made as `slipway up` makes it.
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, containerFixture)
	src := stack.Source{Dir: dir, Owner: contract.LocalOwner, Repo: dockertest.UniqueName("ctr"), PR: 7, SHA: strings.Repeat("c0ffee", 6) + "abcd"}
	project := src.Project()
	engine := stack.NewEngine(cli, nil, stack.EngineOptions{ReadyTimeout: time.Minute, StopTimeout: 2 * time.Second})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := engine.Down(ctx, project); err != nil {
			t.Errorf("cleanup down %s: %v", project, err)
		}
	})
	plan, err := stack.Load(ctx, src, stack.LoadOptions{Hosts: stack.HostOptions{Domain: domain}, Limits: config.Defaults().Limits})
	if err != nil {
		t.Fatal(err)
	}
	var buildLog strings.Builder
	if _, err := engine.Up(ctx, plan, stack.UpOptions{BuildLog: &buildLog}); err != nil {
		t.Fatalf("up: %v\n%s", err, buildLog.String())
	}
	projectNet := contract.ResourceName(project, "default")
	host := "pr-7." + domain
	waitHTTP(t, ctx, base+"/", host, http.StatusOK, "hello from PR 7", run)

	// The page came through the project's network, which the proxy's
	// container joined by itself.
	if ins, err = cli.ContainerInspect(ctx, run.id); err != nil {
		t.Fatal(err)
	}
	if ins.NetworkSettings.Networks[projectNet] == nil {
		t.Errorf("slipway's container is not on %s", projectNet)
	}
	if p := run.publishedPort(t, ctx); p != published {
		t.Errorf("joining %s moved the published port from %s to %s", projectNet, published, p)
	}
	if logs := run.logs(t); strings.Contains(logs, "sorts before Slipway's own network") {
		t.Errorf("gateway warning although Slipway's network sorts first:\n%s", logs)
	}

	// Removal: the proxy being attached does not keep the network alive.
	if err := engine.Down(ctx, project); err != nil {
		t.Fatalf("down with the proxy attached: %v", err)
	}
	if _, err := cli.NetworkInspect(ctx, projectNet, network.InspectOptions{}); err == nil {
		t.Errorf("network %s still exists after down", projectNet)
	}
	waitHTTP(t, ctx, base+"/", host, http.StatusNotFound, "", run)
	// It joined no other network: not the previews of other domains (other
	// tests' environments on this engine).
	if ins, err = cli.ContainerInspect(ctx, run.id); err != nil {
		t.Fatal(err)
	}
	for n := range ins.NetworkSettings.Networks {
		if n != run.network {
			t.Errorf("slipway's container is still on %s", n)
		}
	}
	left, err := dockertest.Leftovers(ctx, cli, contract.LabelProject+"="+project)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}

	// doctor inside the running container: engine through the socket as
	// uid 10001, state_dir writable and from the host at the same path, the
	// port held by serve.
	out, code := execInContainer(t, ctx, cli, run.id, "/slipway", "doctor", "--config", "/etc/slipway/slipway.yaml")
	if code != 0 {
		t.Errorf("doctor in the container exited %d:\n%s", code, out)
	}
	for _, want := range []string{"ok    engine", "ok    state_dir     " + stateDir, "ok    state mount", "in use by a running Slipway"} {
		if !strings.Contains(out, want) {
			t.Errorf("doctor in the container lacks %q:\n%s", want, out)
		}
	}

	// Without the socket's group the same image cannot use the engine, and
	// doctor says how to fix it.
	denied := runSlipwayContainer(t, ctx, cli, slipwayContainer{
		image: tag, socket: socket, config: cfgFile, stateDir: stateDirFor(t, 10001),
		cmd: []string{"doctor", "--config", "/etc/slipway/slipway.yaml"},
	})
	code = denied.wait(t, ctx)
	out = denied.logs(t)
	if code != 1 || !strings.Contains(out, "FAIL  engine") || !strings.Contains(out, "permission denied") || !strings.Contains(out, "--group-add") {
		t.Errorf("doctor without the socket's group: exit %d:\n%s", code, out)
	}
}

// stateDirFor makes a state directory owned by uid (world-writable when
// the test may not chown).
func stateDirFor(t *testing.T, uid int) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chown(dir, uid, uid); err != nil {
		if err := os.Chmod(dir, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// engineSocket returns the engine's unix socket path and its group ID.
func engineSocket(t *testing.T, cli *client.Client) (string, string) {
	t.Helper()
	path, ok := strings.CutPrefix(cli.DaemonHost(), "unix://")
	if !ok {
		dockertest.Unavailable(t, "the container test mounts the engine's unix socket; DOCKER_HOST is %s", cli.DaemonHost())
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("stat %s: no owner", path)
	}
	return path, fmt.Sprint(st.Gid)
}

// buildOfflineImage prepares dist/ as docs/container.md says (a static
// binary, the host's CA bundle, passwd and group) next to the repository's
// Dockerfile, and builds its offline target through the Engine API. The
// image is removed at cleanup. It has its own bound, far above a build's
// time: with a cold build cache, beside other packages' tests, compiling
// the binary and building the image took over 4 minutes.
func buildOfflineImage(t *testing.T, cli *client.Client, tag string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	bctx := t.TempDir()
	dockerfile, err := os.ReadFile(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bctx, "Dockerfile"), string(dockerfile), 0o644)
	rootfs := filepath.Join(bctx, "dist", "rootfs")
	dockertest.BuildStaticGo(t, ".", filepath.Join(rootfs, "slipway"))
	writeFile(t, filepath.Join(rootfs, "etc", "passwd"), "root:x:0:0:root:/root:/sbin/nologin\nslipway:x:10001:10001:Slipway:/var/lib/slipway:/sbin/nologin\n", 0o644)
	writeFile(t, filepath.Join(rootfs, "etc", "group"), "root:x:0:\nslipway:x:10001:\n", 0o644)
	if ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		writeFile(t, filepath.Join(rootfs, "etc", "ssl", "certs", "ca-certificates.crt"), string(ca), 0o644)
	}
	for _, d := range []string{filepath.Join(rootfs, "tmp"), filepath.Join(bctx, "dist", "state")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o777|fs.ModeSticky); err != nil {
		t.Fatal(err)
	}
	body, err := dockertest.TarDir(bctx)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := cli.ImageBuild(ctx, body, build.ImageBuildOptions{
		Tags: []string{tag}, Target: "offline", Remove: true, ForceRemove: true,
		Labels: map[string]string{"dev.slipway.test": tag},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true}); err != nil {
			t.Errorf("remove image %s: %v", tag, err)
		}
	})
	var log bytes.Buffer
	err = jsonmessage.DisplayJSONMessagesStream(resp.Body, &log, 0, false, nil)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("build %s: %v\n%s", tag, err, log.String())
	}
	ins, err := cli.ImageInspect(ctx, tag)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Config.User != imageUser || !slices.Equal(ins.Config.Entrypoint, []string{"/slipway"}) {
		t.Errorf("image config: user %q entrypoint %v", ins.Config.User, ins.Config.Entrypoint)
	}
	if _, ok := ins.Config.Volumes["/var/lib/slipway"]; !ok {
		t.Errorf("image declares no /var/lib/slipway volume: %v", ins.Config.Volumes)
	}
}

// slipwayContainer says how to run the image.
type slipwayContainer struct {
	image, socket, config, stateDir string
	groupAdd                        []string
	cmd                             []string
}

// runningSlipway is a started container of the image.
type runningSlipway struct {
	cli      *client.Client
	id       string
	hostPort string
	network  string // its own
}

// runSlipwayContainer runs the image hardened as docker-compose.yml runs it,
// on a network of its own, its port 8080 published on loopback. Container
// and network are removed at cleanup.
func runSlipwayContainer(t *testing.T, ctx context.Context, cli *client.Client, sc slipwayContainer) *runningSlipway {
	t.Helper()
	// "0-" sorts before every project network name: on engines before API
	// 1.48 the network that sorts first is the container's gateway, and its
	// published ports follow the gateway (docs/container.md).
	name := dockertest.UniqueName("0-slipway-ctr-")
	if _, err := cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := cli.NetworkRemove(context.Background(), name); err != nil {
			t.Errorf("remove network %s: %v", name, err)
		}
	})
	port := nat.Port("8080/tcp")
	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image:        sc.image,
		Cmd:          sc.cmd,
		ExposedPorts: nat.PortSet{port: {}},
		Labels:       map[string]string{"dev.slipway.test": name},
	}, &container.HostConfig{
		Binds: []string{
			sc.socket + ":/var/run/docker.sock",
			sc.config + ":/etc/slipway/slipway.yaml:ro",
			sc.stateDir + ":" + sc.stateDir,
		},
		GroupAdd:       sc.groupAdd,
		ReadonlyRootfs: true,
		Tmpfs:          map[string]string{"/tmp": ""},
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		Sysctls:        map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
		PortBindings:   nat.PortMap{port: {{HostIP: "127.0.0.1"}}},
		NetworkMode:    container.NetworkMode(name),
	}, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	r := &runningSlipway{cli: cli, id: resp.ID, network: name}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs of %s:\n%s", name, r.logs(t))
		}
		// RemoveVolumes: the anonymous volume of the image's VOLUME.
		if err := cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
			t.Errorf("remove container %s: %v", name, err)
		}
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	if sc.cmd != nil {
		return r // a one-off command: no port to wait for
	}
	r.hostPort = r.publishedPort(t, ctx)
	return r
}

// publishedPort returns the host port 8080 is published on.
func (r *runningSlipway) publishedPort(t *testing.T, ctx context.Context) string {
	t.Helper()
	ins, err := r.cli.ContainerInspect(ctx, r.id)
	if err != nil {
		t.Fatal(err)
	}
	if b := ins.NetworkSettings.Ports["8080/tcp"]; len(b) > 0 && b[0].HostPort != "" {
		return b[0].HostPort
	}
	t.Fatalf("port 8080 of %s is not published: %v", ins.Name, ins.NetworkSettings.Ports)
	return ""
}

// logs returns the container's output so far.
func (r *runningSlipway) logs(t *testing.T) string {
	rc, err := r.cli.ContainerLogs(context.Background(), r.id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return fmt.Sprintf("(logs: %v)", err)
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := stdcopy.StdCopy(&b, &b, rc); err != nil {
		fmt.Fprintf(&b, "(logs: %v)", err)
	}
	return b.String()
}

// wait waits for a one-off container to exit and returns its status.
func (r *runningSlipway) wait(t *testing.T, ctx context.Context) int {
	t.Helper()
	waitC, errC := r.cli.ContainerWait(ctx, r.id, container.WaitConditionNotRunning)
	select {
	case res := <-waitC:
		return int(res.StatusCode)
	case err := <-errC:
		t.Fatal(err)
	}
	return -1
}

// waitHTTP polls url (with the Host header host, when given) until it
// answers status with a body containing want.
func waitHTTP(t *testing.T, ctx context.Context, url, host string, status int, want string, r *runningSlipway) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	last := ""
	for time.Now().Before(deadline) && ctx.Err() == nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
			resp.Body.Close()
			if resp.StatusCode == status && strings.Contains(string(b), want) {
				return
			}
			last = fmt.Sprintf("%d %q", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("GET %s (Host %q) never answered %d with %q; last: %s\nslipway logs:\n%s", url, host, status, want, last, r.logs(t))
}

// execInContainer runs a command in a running container (as its user) and
// returns its combined output and exit code.
func execInContainer(t *testing.T, ctx context.Context, cli *client.Client, id string, cmd ...string) (string, int) {
	t.Helper()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	hj, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer hj.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, hj.Reader); err != nil {
		t.Fatal(err)
	}
	res, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	return out.String(), res.ExitCode
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// TestComposeFileLoads checks the top-level docker-compose.yml with both
// Compose implementations: compose-go (what docker compose v2 is built on)
// and the docker-compose v1 binary. Both must refuse to guess the socket's
// group.
func TestComposeFileLoads(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(root, "docker-compose.yml")
	ctx := context.Background()

	load := func(env []string) (*slipwayService, error) {
		opts, err := cli.NewProjectOptions([]string{file}, cli.WithWorkingDirectory(root), cli.WithName("slipway"), cli.WithEnv(env))
		if err != nil {
			return nil, err
		}
		p, err := opts.LoadProject(ctx)
		if err != nil {
			return nil, err
		}
		s, ok := p.Services["slipway"]
		if !ok {
			return nil, fmt.Errorf("no slipway service")
		}
		state := ""
		for _, v := range s.Volumes {
			if v.Type == "bind" && v.Target == "/var/lib/slipway" {
				state = v.Source
			}
		}
		return &slipwayService{s.GroupAdd, s.ReadOnly, s.CapDrop, s.CapAdd, s.SecurityOpt, s.Sysctls, s.Tmpfs, s.Restart, len(s.Secrets), s.Build.Target, p.Networks["default"].Name, state}, nil
	}
	s, err := load([]string{"DOCKER_GID=105"})
	if err != nil {
		t.Fatalf("compose-go: %v", err)
	}
	want := &slipwayService{
		groupAdd: []string{"105"}, readOnly: true, capDrop: []string{"ALL"}, securityOpt: []string{"no-new-privileges:true"},
		sysctls: map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"}, tmpfs: []string{"/tmp"}, restart: "unless-stopped",
		secrets: 2, target: "image", network: "0-slipway", stateSource: "/var/lib/slipway",
	}
	if fmt.Sprint(s) != fmt.Sprint(want) {
		t.Errorf("compose-go reads\n%+v\nwant\n%+v", *s, *want)
	}
	if s, err := load([]string{"DOCKER_GID=105", "SLIPWAY_BUILD_TARGET=offline"}); err != nil || s.target != "offline" {
		t.Errorf("offline build target: %v, %v", s, err)
	}
	if _, err := load(nil); err == nil || !strings.Contains(err.Error(), "stat -c %g") {
		t.Errorf("without DOCKER_GID: %v, want an error saying how to find it", err)
	}

	v1, err := exec.LookPath("docker-compose")
	if err != nil {
		dockertest.Unavailable(t, "docker-compose (v1) is not installed: %v", err)
	}
	cmd := exec.Command(v1, "-f", file, "config")
	cmd.Env = append(os.Environ(), "DOCKER_GID=105")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
	for _, want := range []string{
		"group_add:\n    - '105'", "read_only: true", "net.ipv4.ip_unprivileged_port_start: '0'", "- no-new-privileges:true",
		"restart: unless-stopped", "name: 0-slipway", "- /var/lib/slipway:/var/lib/slipway:rw", "SLIPWAY_STATE_DIR: /var/lib/slipway",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("docker-compose config lacks %q:\n%s", want, out)
		}
	}
	cmd = exec.Command(v1, "-f", file, "config", "-q")
	cmd.Env = slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "DOCKER_GID=") })
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "stat -c %g") {
		t.Errorf("docker-compose config without DOCKER_GID: %v\n%s", err, out)
	}
}

// slipwayService is what TestComposeFileLoads compares.
type slipwayService struct {
	groupAdd    []string
	readOnly    bool
	capDrop     []string
	capAdd      []string
	securityOpt []string
	sysctls     map[string]string
	tmpfs       []string
	restart     string
	secrets     int
	target      string
	network     string
	stateSource string // host path of the state_dir bind
}
