package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/proxy"
)

// benchHost is the Host header every request carries; Slipway routes it.
const benchHost = "pr-1.bench.test"

// serveBackend is the backend process: fixed bodies at /<bytes>, with
// Content-Length, keep-alive. It prints its address on stdout.
func serveBackend(sizes []int) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	bodies := map[string][]byte{}
	for _, n := range sizes {
		bodies["/"+strconv.Itoa(n)] = bytes.Repeat([]byte("x"), n)
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

// startBackend runs this program again as the backend process.
func startBackend(ctx context.Context, sizes []int) (addr string, stop func(), err error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, err
	}
	var ss []string
	for _, n := range sizes {
		ss = append(ss, strconv.Itoa(n))
	}
	cmd := exec.CommandContext(ctx, self, "-serve-backend", strings.Join(ss, ","))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("start backend: %w", err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		return "", nil, fmt.Errorf("backend address: %w", err)
	}
	return strings.TrimSpace(line), func() { cmd.Process.Kill(); cmd.Wait() }, nil
}

// startSlipway runs Slipway's proxy in this process with one route to the
// backend, metrics on, and returns its address.
func startSlipway(ctx context.Context, backend string) (addr string, stop func(), err error) {
	host, port, err := net.SplitHostPort(backend)
	if err != nil {
		return "", nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	routes := proxy.NewRoutes(log, contract.DefaultHostTemplates("bench.test", false))
	routes.PutContainer(proxy.Container{
		ID: "bench", Name: "bench-web-1", Project: "bench", Service: "web", Repo: "bench/bench", PR: 1,
		Host: benchHost, Port: port, Running: true, IP: host,
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
	srv, err := proxy.NewServer(proxy.ServerOptions{Domain: "bench.test", HTTPListener: ln, Proxy: h, Logger: log})
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

// startProcess runs an external server and waits until addr accepts.
func startProcess(ctx context.Context, dir, addr string, env []string, name string, args ...string) (func(), error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(filepath.Join(dir, filepath.Base(name)+".log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
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
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(filepath.Join(dir, filepath.Base(name)+".log"))
			return nil, fmt.Errorf("%s did not listen on %s: %s", name, addr, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startCaddy runs Caddy's reverse_proxy to the backend, with upstream
// keep-alive raised to match the others.
func startCaddy(ctx context.Context, dir, backend string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
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
		return "", nil, err
	}
	stop, err := startProcess(ctx, dir, addr, []string{"XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "HOME=" + dir},
		"caddy", "run", "--config", file, "--adapter", "caddyfile")
	return addr, stop, err
}

// startNginx runs nginx as a reverse proxy to the backend with upstream
// keep-alive and buffers large enough for the biggest body.
func startNginx(ctx context.Context, dir, backend string) (string, func(), error) {
	port, err := freePort()
	if err != nil {
		return "", nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for _, d := range []string{"logs", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o777); err != nil {
			return "", nil, err
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
		return "", nil, err
	}
	stop, err := startProcess(ctx, dir, addr, nil, "nginx", "-p", dir, "-c", file)
	return addr, stop, err
}
