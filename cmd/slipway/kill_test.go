package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
	"github.com/slipwayhq/slipway/webhooks"
)

// killFixture is a web app whose build and start are slow enough to be
// killed in the middle of.
func killFixture(version string, replicas int) githubfake.Files {
	return githubfake.Files{
		"compose.yaml": fmt.Sprintf(`services:
  web:
    build: .
    ports: ["8080"]
    init: true
    stop_grace_period: 1s
    deploy: {replicas: %d}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 300ms
      retries: 100
`, replicas),
		"Dockerfile": "FROM slipway-test/busybox:1\nRUN sleep 3\nCOPY index.html /www/index.html\nCMD [\"sh\", \"-c\", \"sleep 2; exec httpd -f -p 8080 -h /www\"]\n",
		"index.html": "version " + version + "\n",
	}
}

// slipwayProcess is `slipway serve` running as a child process.
type slipwayProcess struct {
	t      *testing.T
	bin    string
	config string
	port   int
	cmd    *exec.Cmd
	logs   *os.File
}

func (p *slipwayProcess) start() {
	p.t.Helper()
	cmd := exec.Command(p.bin, "serve", "--config", p.config, "--log-format", "json")
	cmd.Stdout, cmd.Stderr = p.logs, p.logs
	if err := cmd.Start(); err != nil {
		p.t.Fatal(err)
	}
	p.cmd = cmd
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", p.port)); err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	p.t.Fatal("slipway serve did not answer /healthz within 30s")
}

func (p *slipwayProcess) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		p.t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func (p *slipwayProcess) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-done
		p.t.Error("slipway serve did not stop within 30s of SIGTERM")
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The controller can be killed at any instant; on restart it converges with
// no orphans, no duplicate projects and no stuck phases.
func TestServeSurvivesSIGKILL(t *testing.T) {
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "slipway")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build slipway: %v\n%s", err, out)
	}
	fake := githubfake.New(t)
	repo := "acme/" + dockertest.UniqueName("kill")
	owner, name, _ := strings.Cut(repo, "/")
	fake.AddRepo(repo, githubfake.RepoOptions{})
	domain := dockertest.UniqueName("k") + ".localhost"
	port := freePort(t)
	secret := "kill-test-secret"
	state := filepath.Join(dir, "state")
	cfg := fmt.Sprintf(`domain: %s
listen: {http: "127.0.0.1:%d"}
github: {api_url: %q, token: %q, webhook_secret: %q}
repos: [{name: %s}]
state_dir: %s
resync: 3s
`, domain, port, fake.URL, fake.Token, secret, repo, state)
	cfgPath := filepath.Join(dir, "slipway.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	p := &slipwayProcess{t: t, bin: bin, config: cfgPath, port: port, logs: logs}
	t.Cleanup(func() {
		if p.cmd != nil && p.cmd.ProcessState == nil {
			p.kill()
		}
		ctx := context.Background()
		if left, _ := dockertest.Leftovers(ctx, cli, contract.LabelRepo+"="+repo); len(left) > 0 {
			for _, proj := range []int{1} {
				exec.Command(bin, "down", "--pr", fmt.Sprint(proj), "--repo", repo).Run()
			}
			t.Errorf("left behind: %v", left)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("serve log:\n%s", lastN(string(b), 60))
		}
	})
	project := contract.ProjectName(owner, name, 1)
	var delivery atomic.Int64
	deliver := func(action string) {
		var pr map[string]any
		json.Unmarshal(fake.PullRequestJSON(repo, 1), &pr)
		body, _ := json.Marshal(map[string]any{"action": action, "number": 1, "pull_request": pr,
			"repository": map[string]any{"full_name": repo}, "sender": map[string]any{"login": "alice"}})
		req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d%s", port, webhooks.Path), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhooks.HeaderEvent, "pull_request")
		req.Header.Set(webhooks.HeaderDelivery, fmt.Sprint("d-", delivery.Add(1)))
		req.Header.Set(webhooks.HeaderSignature, webhooks.Sign([]byte(secret), body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("deliver %s: %v", action, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 202 {
			t.Fatalf("deliver %s: %d", action, resp.StatusCode)
		}
	}
	get := func() (int, string) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/", port), nil)
		req.Host = "pr-1." + domain
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	waitFor := func(what string, timeout time.Duration, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	containers := func() []container.Summary {
		cs, _ := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", contract.LabelProject+"="+project))})
		return cs
	}
	// assertClean checks the environment's containers: only canonical names,
	// the wanted count, every one at sha.
	assertClean := func(want int, sha string) {
		t.Helper()
		cs := containers()
		if len(cs) != want {
			t.Errorf("%d containers, want %d", len(cs), want)
		}
		for _, c := range cs {
			name := strings.TrimPrefix(c.Names[0], "/")
			if !strings.HasPrefix(name, project+"-web-") {
				t.Errorf("orphan container %s", name)
			}
			if c.Labels[contract.LabelSHA] != sha {
				t.Errorf("container %s at %s, want %s", name, c.Labels[contract.LabelSHA], sha)
			}
		}
		projects := map[string]bool{}
		for _, c := range containers() {
			projects[c.Labels[contract.LabelProject]] = true
		}
		if len(projects) > 1 {
			t.Errorf("duplicate projects %v", projects)
		}
	}
	buildingOnGitHub := func(sha string) bool {
		for _, d := range fake.Deployments(repo) {
			if d.SHA == sha && d.LatestState() == "in_progress" {
				return true
			}
		}
		return false
	}

	// 1. Killed in the middle of the first build.
	fake.SetPermission(repo, "alice", githubfake.Write)
	_, sha1 := fake.OpenPR(repo, githubfake.PR{Author: "alice", Files: killFixture("one", 2)})
	p.start()
	deliver("opened")
	waitFor("the first build to start", 60*time.Second, func() bool { return buildingOnGitHub(sha1) })
	p.kill()
	p.start()
	waitFor("version one", 3*time.Minute, func() bool { c, b := get(); return c == 200 && strings.Contains(b, "version one") })
	waitFor("containers settle", 30*time.Second, func() bool { return len(containers()) == 2 })
	assertClean(2, sha1)

	// 2. Killed while the new SHA's containers are being created.
	sha2 := fake.Push(repo, 1, killFixture("two", 2))
	deliver("synchronize")
	waitFor("a container of the new SHA", 90*time.Second, func() bool {
		for _, c := range containers() {
			if c.Labels[contract.LabelSHA] == sha2 {
				return true
			}
		}
		return false
	})
	p.kill()
	p.start()
	waitFor("version two", 3*time.Minute, func() bool { c, b := get(); return c == 200 && strings.Contains(b, "version two") })
	waitFor("containers settle", 30*time.Second, func() bool { return len(containers()) == 2 })
	assertClean(2, sha2)
	waitFor("the deployment of the new SHA to succeed", 30*time.Second, func() bool {
		for _, d := range fake.Deployments(repo) {
			if d.SHA == sha2 && d.LatestState() == "success" {
				return true
			}
		}
		return false
	})

	// 3. Killed during the teardown.
	fake.ClosePR(repo, 1)
	deliver("closed")
	waitFor("the teardown to start", 30*time.Second, func() bool { return len(containers()) < 2 })
	p.kill()
	p.start()
	waitFor("nothing left", 60*time.Second, func() bool {
		left, _ := dockertest.Leftovers(context.Background(), cli, contract.LabelProject+"="+project)
		return len(left) == 0
	})
	waitFor("every deployment inactive", 30*time.Second, func() bool {
		for _, d := range fake.Deployments(repo) {
			if d.LatestState() != "inactive" {
				return false
			}
		}
		return true
	})
	// The removal is reported after it is recorded: once the comment says
	// so, the history must say so too.
	waitFor("the comment to say removed", 30*time.Second, func() bool {
		for _, c := range fake.Comments(repo, 1) {
			if strings.Contains(c.Body, "slipway:preview") && strings.Contains(strings.ToLower(c.Body), "removed") {
				return true
			}
		}
		return false
	})
	p.stop()

	// No phase is left stuck: the history ends removed.
	st, err := store.Open(filepath.Join(state, store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	env, err := st.Environment(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	if env.Phase != contract.PhaseRemoved {
		t.Errorf("history ends in %q (%s), want removed", env.Phase, env.Detail)
	}
	if entries, err := os.ReadDir(filepath.Join(state, "src")); err == nil && len(entries) > 0 {
		t.Errorf("sources left in the state directory: %v", entries)
	}
}

func lastN(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
