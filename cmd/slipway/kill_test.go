package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
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
	"github.com/docker/docker/client"

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

// serveRig is a `slipway serve` binary configured against a fake GitHub
// with one repository, for tests that kill it.
type serveRig struct {
	t        *testing.T
	cli      *client.Client
	bin      string
	fake     *githubfake.Fake
	repo     string
	domain   string
	port     int
	secret   string
	state    string
	p        *slipwayProcess
	delivery atomic.Int64
}

// newServeRig builds slipway and writes its configuration; rig.p.start()
// runs it. At cleanup it kills the process and checks that nothing of the
// repository is left on the engine.
func newServeRig(t *testing.T, name string) *serveRig {
	t.Helper()
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	dir := t.TempDir()
	r := &serveRig{t: t, cli: cli, bin: filepath.Join(dir, "slipway"), fake: githubfake.New(t),
		repo: "acme/" + dockertest.UniqueName(name), domain: dockertest.UniqueName("k") + ".localhost",
		port: freePort(t), secret: "kill-test-secret", state: filepath.Join(dir, "state")}
	if out, err := exec.Command("go", "build", "-o", r.bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build slipway: %v\n%s", err, out)
	}
	r.fake.AddRepo(r.repo, githubfake.RepoOptions{})
	cfg := fmt.Sprintf(`domain: %s
listen: {http: "127.0.0.1:%d"}
github: {api_url: %q, token: %q, webhook_secret: %q}
repos: [{name: %s}]
state_dir: %s
resync: 3s
`, r.domain, r.port, r.fake.URL, r.fake.Token, r.secret, r.repo, r.state)
	cfgPath := filepath.Join(dir, "slipway.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logs, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	r.p = &slipwayProcess{t: t, bin: r.bin, config: cfgPath, port: r.port, logs: logs}
	t.Cleanup(func() {
		if r.p.cmd != nil && r.p.cmd.ProcessState == nil {
			r.p.kill()
		}
		ctx := context.Background()
		if left, _ := dockertest.Leftovers(ctx, cli, contract.LabelRepo+"="+r.repo); len(left) > 0 {
			for pr := 1; pr <= 3; pr++ {
				exec.Command(r.bin, "down", "--pr", fmt.Sprint(pr), "--repo", r.repo).Run()
			}
			t.Errorf("left behind: %v", left)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("serve log:\n%s", lastN(string(b), 60))
		}
	})
	return r
}

func (r *serveRig) project(pr int) string {
	owner, name, _ := strings.Cut(r.repo, "/")
	return contract.ProjectName(owner, name, pr)
}

// deliver sends a signed webhook delivery and wants it accepted.
func (r *serveRig) deliver(event string, payload map[string]any) {
	r.t.Helper()
	body, _ := json.Marshal(payload)
	req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d%s", r.port, webhooks.Path), bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhooks.HeaderEvent, event)
	req.Header.Set(webhooks.HeaderDelivery, fmt.Sprint("d-", r.delivery.Add(1)))
	req.Header.Set(webhooks.HeaderSignature, webhooks.Sign([]byte(r.secret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("deliver %s: %v", event, err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		r.t.Fatalf("deliver %s: %d", event, resp.StatusCode)
	}
}

// pullRequest is a pull_request payload of PR n as GitHub sends it.
func (r *serveRig) pullRequest(action string, n int, sender string) map[string]any {
	var pr map[string]any
	json.Unmarshal(r.fake.PullRequestJSON(r.repo, n), &pr)
	return map[string]any{"action": action, "number": n, "pull_request": pr,
		"repository": map[string]any{"full_name": r.repo}, "sender": map[string]any{"login": sender}}
}

// comment is an issue_comment payload: user commented body on PR n.
func (r *serveRig) comment(n int, user, body string) map[string]any {
	id := r.fake.AddComment(r.repo, n, user, body)
	return map[string]any{"action": "created",
		"issue":      map[string]any{"number": n, "pull_request": map[string]any{"url": "x"}},
		"comment":    map[string]any{"id": id, "body": body, "user": map[string]any{"login": user}},
		"repository": map[string]any{"full_name": r.repo}, "sender": map[string]any{"login": user}}
}

// get fetches the preview of PR n.
func (r *serveRig) get(n int) (int, string) {
	return dockertest.GetHost(fmt.Sprintf("http://127.0.0.1:%d/", r.port), fmt.Sprintf("pr-%d.%s", n, r.domain))
}

// waitFor polls cond until it holds, failing the test after timeout.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The controller can be killed at any instant; on restart it converges with
// no orphans, no duplicate projects and no stuck phases.
func TestServeSurvivesSIGKILL(t *testing.T) {
	r := newServeRig(t, "kill")
	cli, fake, repo, p, state := r.cli, r.fake, r.repo, r.p, r.state
	project := r.project(1)
	deliver := func(action string) { r.deliver("pull_request", r.pullRequest(action, 1, "alice")) }
	get := func() (int, string) { return r.get(1) }
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
	waitFor(t, "the first build to start", 60*time.Second, func() bool { return buildingOnGitHub(sha1) })
	p.kill()
	p.start()
	waitFor(t, "version one", 3*time.Minute, func() bool { c, b := get(); return c == 200 && strings.Contains(b, "version one") })
	waitFor(t, "containers settle", 30*time.Second, func() bool { return len(containers()) == 2 })
	assertClean(2, sha1)

	// 2. Killed while the new SHA's containers are being created.
	sha2 := fake.Push(repo, 1, killFixture("two", 2))
	deliver("synchronize")
	waitFor(t, "a container of the new SHA", 90*time.Second, func() bool {
		for _, c := range containers() {
			if c.Labels[contract.LabelSHA] == sha2 {
				return true
			}
		}
		return false
	})
	p.kill()
	p.start()
	waitFor(t, "version two", 3*time.Minute, func() bool { c, b := get(); return c == 200 && strings.Contains(b, "version two") })
	waitFor(t, "containers settle", 30*time.Second, func() bool { return len(containers()) == 2 })
	assertClean(2, sha2)
	waitFor(t, "the deployment of the new SHA to succeed", 30*time.Second, func() bool {
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
	waitFor(t, "the teardown to start", 30*time.Second, func() bool { return len(containers()) < 2 })
	p.kill()
	p.start()
	waitFor(t, "nothing left", 60*time.Second, func() bool {
		left, _ := dockertest.Leftovers(context.Background(), cli, contract.LabelProject+"="+project)
		return len(left) == 0
	})
	waitFor(t, "every deployment inactive", 30*time.Second, func() bool {
		for _, d := range fake.Deployments(repo) {
			if d.LatestState() != "inactive" {
				return false
			}
		}
		return true
	})
	// The removal is reported after it is recorded: once the comment says
	// so, the history must say so too.
	waitFor(t, "the comment to say removed", 30*time.Second, func() bool {
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

// A command the controller has acknowledged outlives it: /slipway approve
// and /slipway destroy accepted just before a SIGKILL take effect after the
// restart, and an approval label a writer applies while the controller is
// down is credited when it comes back.
func TestCommandsSurviveSIGKILL(t *testing.T) {
	r := newServeRig(t, "cmds")
	fake, repo, p := r.fake, r.repo, r.p
	fake.SetPermission(repo, "alice", githubfake.Write)
	fake.SetPermission(repo, "bob", githubfake.Write)
	awaiting := func(sha string) func() bool {
		return func() bool {
			for _, s := range fake.CommitStatuses(repo, sha) {
				if s.State == "pending" && strings.Contains(s.Description, "approval") {
					return true
				}
			}
			return false
		}
	}
	serves := func(n int, want string) func() bool {
		return func() bool { c, b := r.get(n); return c == 200 && strings.Contains(b, want) }
	}
	// holdPermission makes GitHub fail every permission check of user, so
	// that the controller takes the user's command but cannot act on it
	// until ClearFaults. It returns a condition that holds once the
	// controller has tried.
	holdPermission := func(user string) func() bool {
		path := "/repos/" + repo + "/collaborators/" + user + "/permission"
		fake.InjectFault(githubfake.Fault{Count: 1 << 20, Status: http.StatusInternalServerError, PathPrefix: path})
		return func() bool {
			for _, req := range fake.Requests() {
				if req.Path == path && req.Status == http.StatusInternalServerError {
					return true
				}
			}
			return false
		}
	}

	// 1. /slipway approve on a fork PR, killed before the approval is recorded.
	_, sha1 := fake.OpenPR(repo, githubfake.PR{Author: "mallory", HeadRepo: "mallory/fork", Files: killFixture("one", 1)})
	p.start()
	r.deliver("pull_request", r.pullRequest("opened", 1, "mallory"))
	waitFor(t, "PR 1 to await approval", time.Minute, awaiting(sha1))
	tried := holdPermission("alice")
	r.deliver("issue_comment", r.comment(1, "alice", "/slipway approve"))
	waitFor(t, "the controller to take alice's approval", time.Minute, tried)
	p.kill()
	fake.ClearFaults()
	p.start()
	waitFor(t, "PR 1 to serve once approved", 3*time.Minute, serves(1, "version one"))

	// 2. /slipway destroy, killed before the teardown.
	tried = holdPermission("bob")
	r.deliver("issue_comment", r.comment(1, "bob", "/slipway destroy"))
	waitFor(t, "the controller to take bob's destroy", time.Minute, tried)
	p.kill()
	fake.ClearFaults()
	p.start()
	waitFor(t, "PR 1 to be destroyed", 2*time.Minute, func() bool {
		left, err := dockertest.Leftovers(context.Background(), r.cli, contract.LabelProject+"="+r.project(1))
		return err == nil && len(left) == 0
	})
	waitFor(t, "the comment to say who destroyed it", 30*time.Second, func() bool {
		for _, c := range fake.Comments(repo, 1) {
			if strings.Contains(c.Body, "slipway:preview") && strings.Contains(c.Body, "destroyed by @bob") {
				return true
			}
		}
		return false
	})

	// 3. The approval label applied while the controller is down.
	_, sha2 := fake.OpenPR(repo, githubfake.PR{Number: 2, Author: "mallory", HeadRepo: "mallory/fork", Files: killFixture("two", 1)})
	r.deliver("pull_request", r.pullRequest("opened", 2, "mallory"))
	waitFor(t, "PR 2 to await approval", time.Minute, awaiting(sha2))
	p.kill()
	st, err := store.Open(filepath.Join(r.state, store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env, err := st.Environment(context.Background(), r.project(2))
	st.Close()
	if err != nil || env.Phase != contract.PhaseWaiting || env.SHA != sha2 {
		t.Fatalf("history of PR 2 before the label: %+v, %v", env, err)
	}
	// GitHub stamps events in whole seconds; the label must come after the
	// controller saw the head waiting.
	waitFor(t, "the clock to pass the second PR 2 was seen waiting", 10*time.Second, func() bool {
		return !time.Now().UTC().Truncate(time.Second).Before(env.PhaseAt)
	})
	fake.AddLabel(repo, 2, "slipway:approved", "alice")
	p.start()
	waitFor(t, "PR 2 to serve once its label is credited", 3*time.Minute, serves(2, "version two"))

	fake.ClosePR(repo, 2)
	r.deliver("pull_request", r.pullRequest("closed", 2, "mallory"))
	waitFor(t, "PR 2 to be removed", time.Minute, func() bool {
		left, err := dockertest.Leftovers(context.Background(), r.cli, contract.LabelRepo+"="+repo)
		return err == nil && len(left) == 0
	})
	p.stop()

	// What was acted on is not pending any more, and the destroy held.
	st, err = store.Open(filepath.Join(r.state, store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if pending, err := st.PendingCommands(context.Background()); err != nil || len(pending) != 0 {
		t.Errorf("commands still pending: %+v, %v", pending, err)
	}
	if env, err := st.Environment(context.Background(), r.project(1)); err != nil || env.Phase != contract.PhaseRemoved || !strings.Contains(env.Detail, "destroyed by @bob") {
		t.Errorf("history of PR 1 ends in %q (%s), %v; want removed by bob", env.Phase, env.Detail, err)
	}
	for _, want := range []struct {
		pr  int
		sha string
		by  string
	}{{1, sha1, "alice"}, {2, sha2, "alice"}} {
		if a, ok, err := st.Approval(context.Background(), repo, want.pr, want.sha); err != nil || !ok || a.By != want.by {
			t.Errorf("approval of PR %d: %+v, %v, %v; want by %s", want.pr, a, ok, err, want.by)
		}
	}
}
