package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// serve in local mode: the proxy serves an environment made like `slipway
// up` does, the control surface answers health, readiness, metrics and the
// dashboard's API, ls --server reads it, and it stops when asked.
func TestServeLocalMode(t *testing.T) {
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": `services:
  web:
    image: slipway-test/busybox:1
    command: ["sh", "-c", "mkdir -p /www && echo local-mode-page > /www/index.html && exec httpd -f -p 8080 -h /www"]
    init: true
    ports: ["8080"]
`,
	})
	repo := dockertest.UniqueName("serve")
	engine := stack.NewEngine(cli, nil, stack.EngineOptions{ReadyTimeout: time.Minute})
	domain := dockertest.UniqueName("s") + ".localhost"
	plan, err := stack.Load(context.Background(), stack.Source{Dir: dir, Owner: "local", Repo: repo, PR: 3, SHA: strings.Repeat("3", 40)},
		stack.LoadOptions{Hosts: stack.HostOptions{Domain: domain}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Down(context.Background(), plan.Name) })
	if _, err := engine.Up(context.Background(), plan, stack.UpOptions{}); err != nil {
		t.Fatal(err)
	}

	cfg := config.Defaults()
	cfg.Domain = domain
	cfg.Firewall = config.FirewallOff
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, &cfg, slog.New(slog.DiscardHandler), serveOptions{httpListener: ln}) }()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	}()

	get := func(host, path string) (int, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := get("pr-3."+domain, "/")
		if code == 200 && strings.Contains(body, "local-mode-page") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("preview not served: %d %q", code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": "slipway_proxy_"} {
		if code, body := get("", path); code != 200 || !strings.Contains(body, want) {
			t.Errorf("%s: %d, body lacks %q", path, code, want)
		}
	}
	if code, _ := get("pr-99."+domain, "/"); code != 404 {
		t.Errorf("unknown preview host: %d, want 404", code)
	}
	if code, body := get("", "/api/v1/environments"); code != 200 || !strings.Contains(body, plan.Name) {
		t.Errorf("dashboard API: %d, lacks %s", code, plan.Name)
	}
	var out, errOut syncBuffer
	root := newRoot(&out, &errOut)
	root.SetArgs([]string{"ls", "--server", base + "/"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatalf("ls --server: %v %s", err, errOut.String())
	}
	if !strings.Contains(out.String(), plan.Name) {
		t.Errorf("ls --server does not list %s:\n%s", plan.Name, out.String())
	}
}
