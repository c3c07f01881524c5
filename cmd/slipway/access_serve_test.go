package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// slipway serve with access: password in front of a real preview
// container: the password form, the grant, a bypass token created and
// revoked with `slipway access`, and noindex on every answer.
func TestServePrivatePreview(t *testing.T) {
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": `services:
  web:
    image: slipway-test/busybox:1
    command: ["sh", "-c", "mkdir -p /www && echo private-page > /www/index.html && exec httpd -f -p 8080 -h /www"]
    init: true
    ports: ["8080"]
`,
	})
	repo := dockertest.UniqueName("access")
	engine := stack.NewEngine(cli, nil, stack.EngineOptions{ReadyTimeout: time.Minute})
	domain := dockertest.UniqueName("a") + ".localhost"
	plan, err := stack.Load(context.Background(), stack.Source{Dir: dir, Owner: "local", Repo: repo, PR: 4, SHA: strings.Repeat("4", 40)},
		stack.LoadOptions{Hosts: stack.HostOptions{Domain: domain}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Down(context.Background(), plan.Name) })
	if _, err := engine.Up(context.Background(), plan, stack.UpOptions{}); err != nil {
		t.Fatal(err)
	}

	state := t.TempDir()
	pwFile := filepath.Join(state, "pw")
	os.WriteFile(pwFile, []byte("hunter2\n"), 0o600)
	yaml := "domain: " + domain + "\nfirewall: off\nstate_dir: " + state + "\naccess: password\naccess_password_file: " + pwFile +
		"\ndashboard: {token: dash-token}\n"
	cfgPath := filepath.Join(state, "slipway.yaml")
	os.WriteFile(cfgPath, []byte(yaml), 0o600)
	cfg, err := config.LoadController(cfgPath, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	base := startServe(t, cfg)
	host := "pr-4." + domain

	do := func(method, path string, body string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Host = host
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	read := func(resp *http.Response) string {
		defer resp.Body.Close()
		b := new(strings.Builder)
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				return b.String()
			}
		}
	}
	// The route appears once the observer has seen the container: until
	// then the host is unknown (404); then the password form.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp := do("GET", "/", "", nil)
		body := read(resp)
		if resp.Header.Get("X-Robots-Tag") != "noindex" {
			t.Fatalf("%d without noindex", resp.StatusCode)
		}
		if resp.StatusCode == http.StatusUnauthorized && strings.Contains(body, `name="password"`) {
			break
		}
		if resp.StatusCode != http.StatusNotFound || time.Now().After(deadline) {
			t.Fatalf("private preview without credentials: %d %q", resp.StatusCode, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	resp := do("POST", "/.slipway/password", url.Values{"password": {"hunter2"}, "next": {"/"}}.Encode(), map[string]string{"Content-Type": "application/x-www-form-urlencoded"})
	read(resp)
	if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
		t.Fatalf("password: %d %v", resp.StatusCode, resp.Cookies())
	}
	grant := resp.Cookies()[0]
	if resp := do("GET", "/", "", map[string]string{"Cookie": grant.Name + "=" + grant.Value}); read(resp) != "private-page\n" {
		t.Fatalf("with the grant: %d", resp.StatusCode)
	}

	// A bypass token from the CLI, through the API.
	run := func(args ...string) string {
		var out, errOut syncBuffer
		root := newRoot(&out, &errOut)
		root.SetArgs(append([]string{"access", "--server", base, "--token", "dash-token"}, args...))
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("slipway access %v: %v %s", args, err, errOut.String())
		}
		return out.String()
	}
	secret := strings.TrimSpace(run("token", "--repo", "local/"+repo, "--note", "ci"))
	if !strings.HasPrefix(secret, "swp_") {
		t.Fatalf("token: %q", secret)
	}
	if resp := do("GET", "/", "", map[string]string{"X-Slipway-Bypass": secret}); read(resp) != "private-page\n" {
		t.Fatalf("with the bypass header: %d", resp.StatusCode)
	}
	list := run("ls")
	id := strings.Fields(strings.Split(list, "\n")[1])[0]
	if !strings.Contains(list, "local/"+repo) || !strings.Contains(list, "live") || strings.Contains(list, secret) {
		t.Fatalf("ls:\n%s", list)
	}
	run("revoke", id)
	if resp := do("GET", "/", "", map[string]string{"X-Slipway-Bypass": secret}); resp.StatusCode != http.StatusUnauthorized {
		read(resp)
		t.Fatalf("revoked token: %d", resp.StatusCode)
	}
	if !strings.Contains(run("ls"), "revoked") {
		t.Error("ls does not show the revocation")
	}
}
