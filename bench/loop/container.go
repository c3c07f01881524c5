package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
	"github.com/docker/docker/pkg/stdcopy"
	"github.com/docker/go-connections/nat"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// Slipway in its container, as examples/swarm and docs/container.md run
// it: the image of the Dockerfile's offline target (a static binary built
// here, no base image), the engine's socket with its group, the
// configuration read-only, state_dir from the host at the same path,
// read-only root, no capabilities. The same steps as
// cmd/slipway/container_test.go's buildOfflineImage and
// runSlipwayContainer, copied here because a benchmark is not a test.

// buildSlipwayImage builds the offline target of root's Dockerfile as tag,
// labelled with labels (the sweep finds it by them).
func buildSlipwayImage(ctx context.Context, cli client.APIClient, root, tag string, labels map[string]string) error {
	bctx, err := os.MkdirTemp("", "slipway-bench-image-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(bctx)
	dockerfile, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return err
	}
	rootfs := filepath.Join(bctx, "dist", "rootfs")
	files := map[string]string{
		"Dockerfile":                string(dockerfile),
		"dist/rootfs/etc/passwd":    "root:x:0:0:root:/root:/sbin/nologin\nslipway:x:10001:10001:Slipway:/var/lib/slipway:/sbin/nologin\n",
		"dist/rootfs/etc/group":     "root:x:0:\nslipway:x:10001:\n",
		"dist/state/.keep":          "",
		"dist/rootfs/tmp/.keep":     "",
		"dist/rootfs/etc/ssl/.keep": "",
	}
	if ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		files["dist/rootfs/etc/ssl/certs/ca-certificates.crt"] = string(ca)
	}
	for name, content := range files {
		p := filepath.Join(bctx, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(rootfs, "tmp"), 0o777|fs.ModeSticky); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", filepath.Join(rootfs, "slipway"), "./cmd/slipway")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/slipway (static): %w\n%s", err, out)
	}
	body, err := dockertest.TarDir(bctx)
	if err != nil {
		return err
	}
	resp, err := cli.ImageBuild(ctx, body, build.ImageBuildOptions{
		Tags: []string{tag}, Target: "offline", Remove: true, ForceRemove: true, Labels: labels,
	})
	if err != nil {
		return fmt.Errorf("build %s: %w", tag, err)
	}
	defer resp.Body.Close()
	var log bytes.Buffer
	// ImageBuild's error comes in the stream, not from the call.
	if err := jsonmessage.DisplayJSONMessagesStream(resp.Body, &log, 0, false, nil); err != nil {
		return fmt.Errorf("build %s: %w\n%s", tag, err, log.String())
	}
	return nil
}

// engineSocket returns the engine's unix socket and its group ID.
func engineSocket(cli *client.Client) (string, string, error) {
	path, ok := strings.CutPrefix(cli.DaemonHost(), "unix://")
	if !ok {
		return "", "", fmt.Errorf("-engine swarm mounts the engine's unix socket into Slipway's container; DOCKER_HOST is %s", cli.DaemonHost())
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", "", err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", "", fmt.Errorf("stat %s: no owner", path)
	}
	return path, fmt.Sprint(st.Gid), nil
}

// slipwayCtr is a running container of the image.
type slipwayCtr struct {
	cli     *client.Client
	id      string
	name    string
	addr    string // 127.0.0.1:<port 8080 published>
	logPath string
}

// runSlipwayContainer runs image with config and stateDir on network,
// port 8080 published on loopback, and returns once it is started.
func runSlipwayContainer(ctx context.Context, cli *client.Client, image, name, networkName, config, stateDir, logPath string, labels map[string]string) (*slipwayCtr, error) {
	socket, gid, err := engineSocket(cli)
	if err != nil {
		return nil, err
	}
	port := nat.Port("8080/tcp")
	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image:        image,
		ExposedPorts: nat.PortSet{port: {}},
		Labels:       labels,
	}, &container.HostConfig{
		Binds: []string{
			socket + ":/var/run/docker.sock",
			config + ":/etc/slipway/slipway.yaml:ro",
			stateDir + ":" + stateDir,
		},
		GroupAdd:       []string{gid},
		ReadonlyRootfs: true,
		Tmpfs:          map[string]string{"/tmp": ""},
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges:true"},
		Sysctls:        map[string]string{"net.ipv4.ip_unprivileged_port_start": "0"},
		PortBindings:   nat.PortMap{port: {{HostIP: "127.0.0.1"}}},
		NetworkMode:    container.NetworkMode(networkName),
	}, &network.NetworkingConfig{}, nil, name)
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", name, err)
	}
	c := &slipwayCtr{cli: cli, id: resp.ID, name: name, logPath: logPath}
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return c, fmt.Errorf("start %s: %w", name, err)
	}
	ins, err := cli.ContainerInspect(ctx, resp.ID)
	if err != nil {
		return c, err
	}
	b := ins.NetworkSettings.Ports[port]
	if len(b) == 0 || b[0].HostPort == "" {
		return c, fmt.Errorf("port 8080 of %s is not published", name)
	}
	c.addr = "127.0.0.1:" + b[0].HostPort
	return c, nil
}

// stop stops the container (SIGTERM, 30 s, then SIGKILL), keeps its log
// in logPath, and removes it.
func (c *slipwayCtr) stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	timeout := 30
	var errs []error
	if err := c.cli.ContainerStop(ctx, c.id, container.StopOptions{Timeout: &timeout}); err != nil {
		errs = append(errs, fmt.Errorf("stop %s: %w", c.name, err))
	}
	if rc, err := c.cli.ContainerLogs(ctx, c.id, container.LogsOptions{ShowStdout: true, ShowStderr: true}); err == nil {
		var b bytes.Buffer
		_, _ = stdcopy.StdCopy(&b, &b, rc)
		rc.Close()
		if err := os.WriteFile(c.logPath, b.Bytes(), 0o644); err != nil {
			errs = append(errs, err)
		}
	}
	// RemoveVolumes: the anonymous volume of the image's VOLUME.
	if err := c.cli.ContainerRemove(ctx, c.id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil {
		errs = append(errs, fmt.Errorf("remove %s: %w", c.name, err))
	}
	return errors.Join(errs...)
}

// problems returns the warnings and errors in its log so far.
func (c *slipwayCtr) problems(ctx context.Context) []string {
	rc, err := c.cli.ContainerLogs(ctx, c.id, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		return []string{err.Error()}
	}
	defer rc.Close()
	var b bytes.Buffer
	_, _ = stdcopy.StdCopy(&b, &b, rc)
	var p serveProc
	for _, line := range bytes.Split(b.Bytes(), []byte("\n")) {
		p.scan(line, nil)
	}
	return p.problems
}
