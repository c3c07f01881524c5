package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/proxy"
)

// startInproc runs Slipway's proxy in this process (proxy.Handler behind
// proxy.Server, metrics on) with one route, host → backend, and returns its
// address. It is the handler alone, without the rest of `slipway serve`.
func startInproc(ctx context.Context, backend, domain, host, repo, project string) (addr string, stop func(), err error) {
	ip, port, err := net.SplitHostPort(backend)
	if err != nil {
		return "", nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	routes := proxy.NewRoutes(log, contract.DefaultHostTemplates(domain, false))
	routes.PutContainer(proxy.Container{
		ID: "bench", Name: contract.ContainerName(project, "web", 1), Project: project, Service: "web", Repo: repo, PR: 1,
		Host: host, Port: port, Running: true, IP: ip,
	})
	m, err := proxy.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return "", nil, err
	}
	h := proxy.NewHandler(routes, proxy.HandlerOptions{Metrics: m, Logger: log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv, err := proxy.NewServer(proxy.ServerOptions{Domain: domain, HTTPListener: ln, Proxy: h, Logger: log})
	if err != nil {
		return "", nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	return srv.HTTPAddr().String(), func() { cancel(); <-done; h.Close() }, nil
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startProcess runs an external server and waits until addr accepts. It
// returns the process ID.
func startProcess(ctx context.Context, dir, addr string, env []string, name string, args ...string) (int, func(), error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(dir, filepath.Base(name)+".log"))
	if err != nil {
		return 0, nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return 0, nil, fmt.Errorf("start %s: %w", name, err)
	}
	stop := func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	}
	if err := waitListening(ctx, addr, 15*time.Second); err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(dir, filepath.Base(name)+".log"))
		return 0, nil, fmt.Errorf("%s: %w: %s", name, err, log)
	}
	return cmd.Process.Pid, stop, nil
}

// startCaddy runs Caddy's reverse_proxy to the backend, with upstream
// keep-alive raised to match the others.
func startCaddy(ctx context.Context, dir, backend string) (string, int, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", 0, nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
}

http://:%d {
	bind 127.0.0.1
	reverse_proxy %s {
		transport http {
			keepalive 90s
			keepalive_idle_conns 1024
			keepalive_idle_conns_per_host 512
		}
	}
}
`, port, backend)
	file := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return "", 0, nil, err
	}
	pid, stop, err := startProcess(ctx, dir, addr, []string{"XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "HOME=" + dir},
		"caddy", "run", "--config", file, "--adapter", "caddyfile")
	return addr, pid, stop, err
}

// startNginx runs nginx as a reverse proxy to the backend with upstream
// keep-alive and buffers large enough for the biggest body.
func startNginx(ctx context.Context, dir, backend string) (string, int, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", 0, nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			return "", 0, nil, err
		}
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes auto;
worker_rlimit_nofile 65535;
pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log warn;
events { worker_connections 8192; }
http {
	access_log off;
	client_body_temp_path %[1]s/tmp/body;
	proxy_temp_path %[1]s/tmp/proxy;
	upstream backend {
		server %[2]s;
		keepalive 512;
	}
	server {
		listen %[3]s;
		keepalive_requests 1000000;
		location / {
			proxy_pass http://backend;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_set_header Host $host;
			proxy_buffer_size 16k;
			proxy_buffers 8 16k;
		}
	}
}
`, dir, backend, addr)
	file := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		return "", 0, nil, err
	}
	pid, stop, err := startProcess(ctx, dir, addr, nil, "nginx", "-p", dir, "-c", file)
	return addr, pid, stop, err
}
