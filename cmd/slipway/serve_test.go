package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
	"github.com/slipwayhq/slipway/webhooks"
)

// startServe runs serve on a loopback listener until the end of the test,
// and returns its base URL.
func startServe(t *testing.T, cfg *config.Controller) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, cfg, slog.New(slog.DiscardHandler), serveOptions{httpListener: ln}) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("serve did not stop within 30s")
		}
	})
	return "http://" + ln.Addr().String()
}

// call sends a request to serve at base, for host ("": base's own), and
// returns the status and body (0 and the error when it fails).
func call(base, method, host, path string, body []byte, hdr map[string]string) (int, string) {
	req, err := http.NewRequest(method, base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	return dockertest.Do(req)
}

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
	base := startServe(t, &cfg)

	get := func(host, path string) (int, string) { return call(base, "GET", host, path, nil, nil) }
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

// serve with a github section: a webhook deploys the pull request, a
// dashboard action is answered as queued (the controller carries it out
// later) and puts the preview to sleep, and a request for the sleeping
// preview reaches the controller through the proxy, which wakes it.
func TestServeGitHubModeSleepAndWake(t *testing.T) {
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	fake := githubfake.New(t)
	repo := "acme/" + dockertest.UniqueName("serve")
	owner, name, _ := strings.Cut(repo, "/")
	project := contract.ProjectName(owner, name, 1)
	fake.AddRepo(repo, githubfake.RepoOptions{})
	fake.SetPermission(repo, "alice", githubfake.Write)
	fake.OpenPR(repo, githubfake.PR{Author: "alice", Files: githubfake.Files{"compose.yaml": `services:
  web:
    image: slipway-test/busybox:1
    command: ["sh", "-c", "mkdir -p /www && echo github-mode-page > /www/index.html && exec httpd -f -p 8080 -h /www"]
    init: true
    stop_grace_period: 1s
    ports: ["8080"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 300ms
      retries: 100
`}})
	engine := stack.NewEngine(cli, nil, stack.EngineOptions{})
	t.Cleanup(func() { engine.Down(context.Background(), project) })

	domain := dockertest.UniqueName("g") + ".localhost"
	const secret, token = "serve-test-secret", "serve-test-dashboard-token"
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "slipway.yaml")
	yaml := fmt.Sprintf(`domain: %s
github: {api_url: %q, token: %q, webhook_secret: %q}
repos: [{name: %s}]
state_dir: %s
firewall: "off"
dashboard: {token: %q}
`, domain, fake.URL, fake.Token, secret, repo, filepath.Join(dir, "state"), token)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.LoadController(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	base := startServe(t, cfg)

	do := func(method, host, path string, body []byte, hdr map[string]string) (int, string) {
		return call(base, method, host, path, body, hdr)
	}
	preview := func() (int, string) { return do("GET", "pr-1."+domain, "/", nil, nil) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitFor("serve to answer", func() bool { c, _ := do("GET", "", "/healthz", nil, nil); return c == 200 })

	var pr map[string]any
	json.Unmarshal(fake.PullRequestJSON(repo, 1), &pr)
	event, _ := json.Marshal(map[string]any{"action": "opened", "number": 1, "pull_request": pr,
		"repository": map[string]any{"full_name": repo}, "sender": map[string]any{"login": "alice"}})
	if c, b := do("POST", "", webhooks.Path, event, map[string]string{
		"Content-Type": "application/json", webhooks.HeaderEvent: "pull_request", webhooks.HeaderDelivery: "d-1",
		webhooks.HeaderSignature: webhooks.Sign([]byte(secret), event),
	}); c != http.StatusAccepted {
		t.Fatalf("webhook: %d %s", c, b)
	}
	waitFor("the preview", func() bool { c, b := preview(); return c == 200 && strings.Contains(b, "github-mode-page") })

	c, b := do("POST", "", "/api/v1/environments/"+project+"/actions/sleep", nil, map[string]string{"Authorization": "Bearer " + token})
	if c != http.StatusAccepted || !strings.Contains(b, `"queued"`) {
		t.Errorf("sleep action: %d %s, want 202 queued", c, b)
	}
	running := func() bool {
		cs, err := cli.ContainerList(context.Background(), container.ListOptions{Filters: filters.NewArgs(filters.Arg("label", contract.LabelProject+"="+project))})
		return err == nil && len(cs) > 0
	}
	waitFor("the preview to sleep", func() bool { return !running() })
	waitFor("a request to wake the preview", func() bool { c, b := preview(); return c == 200 && strings.Contains(b, "github-mode-page") })
}
