package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/controller/stack"
	swarmengine "github.com/slipwayhq/slipway/controller/swarm"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
	"github.com/slipwayhq/slipway/webhooks"
)

// swarmServe is Slipway in its container (the Dockerfile's offline image)
// with engine: swarm, driven by a fake GitHub as GitHub drives it: signed
// webhooks to the container's published port. Everything the container
// reaches on the host it reaches at the default bridge's gateway address:
// the fake GitHub listens there, and the registry, which the daemon pushes
// to and pulls from as 127.0.0.1 (a loopback registry needs no TLS), is
// forwarded there (registry.api).
type swarmServe struct {
	t        *testing.T
	cli      *client.Client
	fake     *githubfake.Fake
	repo     string
	domain   string
	secret   string
	token    string // the dashboard's
	reg      string // as the daemon pushes to it (127.0.0.1:port)
	run      *runningSlipway
	spec     slipwayContainer // how run was started
	base     string           // the published port, http://127.0.0.1:port
	delivery atomic.Int64
}

// newSwarmServe makes the engine a swarm manager (leaving it at cleanup if
// it made it), starts the registry and the fake GitHub, builds the offline
// image and runs it with engine: swarm against them.
func newSwarmServe(t *testing.T, ctx context.Context) *swarmServe {
	t.Helper()
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	dockertest.UseSwarm(t, cli)
	gw, err := dockertest.BridgeGateway(ctx, cli)
	if err != nil {
		t.Fatal(err)
	}
	// The rules docs/security.md has an operator add by hand for
	// docker_gwbridge when Slipway runs in a container (and that Slipway
	// adds itself as root on the host): the previews' tasks leave the node
	// through that bridge, and may not open connections to the host. They
	// must not hit Slipway's own container, which reaches the host (the
	// fake GitHub, the registry's API) through its own bridge network,
	// overlays joined or not.
	fw, err := stack.NewIPTables(ctx, nil)
	if err != nil {
		dockertest.Unavailable(t, "firewall: %v", err)
	}
	if err := fw.Isolate(ctx, "swarm-tasks", swarmengine.GatewayBridge); err != nil {
		t.Fatalf("firewall %s: %v", swarmengine.GatewayBridge, err)
	}
	t.Cleanup(func() {
		if err := fw.Release(context.Background(), swarmengine.GatewayBridge); err != nil {
			t.Errorf("release the firewall rules of %s: %v", swarmengine.GatewayBridge, err)
		}
	})
	reg := dockertest.StartRegistry(t)
	regAPI := dockertest.Forward(t, gw, reg)
	s := &swarmServe{t: t, cli: cli, fake: githubfake.NewOn(t, gw), repo: "acme/" + dockertest.UniqueName("swe2e"),
		domain: dockertest.UniqueName("swe2e") + ".localhost", secret: "swarm-e2e-secret", token: "swarm-e2e-dashboard-token", reg: reg}
	s.fake.AddRepo(s.repo, githubfake.RepoOptions{})
	s.fake.SetPermission(s.repo, "alice", githubfake.Write)

	socket, gid := engineSocket(t, cli)
	tag := "slipway-test/slipway:" + dockertest.UniqueName("swe2eimg")
	buildOfflineImage(t, cli, tag)
	stateDir := stateDirFor(t, 10001)
	cfgFile := filepath.Join(t.TempDir(), "slipway.yaml")
	writeFile(t, cfgFile, fmt.Sprintf(`domain: %s
listen: {http: ":8080"}
state_dir: %s
resync: 5s
engine: swarm
registry: {address: %q, api: %q}
github: {api_url: %q, token: %q, webhook_secret: %q}
repos: [{name: %s}]
dashboard: {token: %q}
`, s.domain, stateDir, reg, "http://"+regAPI, s.fake.URL, s.fake.Token, s.secret, s.repo, s.token), 0o644)
	s.spec = slipwayContainer{image: tag, socket: socket, groupAdd: []string{gid}, config: cfgFile, stateDir: stateDir}
	s.run = runSlipwayContainer(t, ctx, cli, s.spec)
	s.base = "http://127.0.0.1:" + s.run.hostPort
	waitHTTP(t, ctx, s.base+"/readyz", "", http.StatusOK, "ready", s.run)
	return s
}

func (s *swarmServe) project(n int) string {
	owner, name, _ := strings.Cut(s.repo, "/")
	return contract.ProjectName(owner, name, n)
}

func (s *swarmServe) host(n int) string { return fmt.Sprintf("pr-%d.%s", n, s.domain) }

// downAtCleanup removes project from the test process if the test leaves
// it behind (a failure), before the swarm is left.
func (s *swarmServe) downAtCleanup(project string) {
	s.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		// Each of Down's waits (tasks gone, networks gone) is bounded by
		// ReadyTimeout: within the context, so that the steps after a wait
		// that failed still run.
		e := swarmengine.NewEngine(s.cli, nil, swarmengine.Options{Registry: &swarmengine.Registry{Address: s.reg}, ReadyTimeout: time.Minute})
		if err := e.Down(ctx, project); err != nil {
			s.t.Errorf("cleanup down %s: %v", project, err)
		}
	})
}

// deliver sends a signed webhook delivery to the container's published
// port and wants it accepted.
func (s *swarmServe) deliver(event string, payload map[string]any) {
	s.t.Helper()
	body, _ := json.Marshal(payload)
	req, _ := http.NewRequest(http.MethodPost, s.base+webhooks.Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhooks.HeaderEvent, event)
	req.Header.Set(webhooks.HeaderDelivery, fmt.Sprint("swe2e-", s.delivery.Add(1)))
	req.Header.Set(webhooks.HeaderSignature, webhooks.Sign([]byte(s.secret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("deliver %s: %v", event, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		s.t.Fatalf("deliver %s: %d", event, resp.StatusCode)
	}
}

// pullRequest delivers a pull_request event of PR n as GitHub sends it.
func (s *swarmServe) pullRequest(action string, n int) {
	s.t.Helper()
	var pr map[string]any
	if err := json.Unmarshal(s.fake.PullRequestJSON(s.repo, n), &pr); err != nil {
		s.t.Fatal(err)
	}
	s.deliver("pull_request", map[string]any{"action": action, "number": n, "pull_request": pr,
		"repository": map[string]any{"full_name": s.repo}, "sender": map[string]any{"login": "alice"}})
}

// action asks the dashboard API for action (sleep, wake, …) on project.
func (s *swarmServe) action(project, action string) {
	s.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.base+"/api/v1/environments/"+project+"/actions/"+action, nil)
	req.Header.Set("Authorization", "Bearer "+s.token)
	code, body := dockertest.Do(req)
	if code != http.StatusAccepted && code != http.StatusOK {
		s.t.Fatalf("%s %s: %d %s", action, project, code, body)
	}
}

// services lists project's services.
func (s *swarmServe) services(ctx context.Context, project string) []swarm.Service {
	s.t.Helper()
	svcs, err := s.cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: filters.NewArgs(filters.Arg("label", swarmengine.LabelNamespace+"="+project))})
	if err != nil {
		s.t.Fatal(err)
	}
	return svcs
}

// runningTasks lists the IDs of service's tasks desired running.
func (s *swarmServe) runningTasks(ctx context.Context, service string) []string {
	s.t.Helper()
	tasks, err := s.cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", service), filters.Arg("desired-state", "running"))})
	if err != nil {
		s.t.Fatal(err)
	}
	var ids []string
	for _, tk := range tasks {
		ids = append(ids, tk.ID)
	}
	return ids
}

// kill kills Slipway's container as the kernel's OOM killer or a power cut
// would (docker kill -s KILL) and starts it again over the same state_dir,
// as a restart policy does. The published port may change.
func (s *swarmServe) kill(ctx context.Context) {
	s.t.Helper()
	s.killOnly(ctx)
	if err := s.cli.ContainerStart(ctx, s.run.id, container.StartOptions{}); err != nil {
		s.t.Fatalf("start slipway's container again after the kill: %v", err)
	}
	s.run.hostPort = s.run.publishedPort(s.t, ctx)
	s.base = "http://127.0.0.1:" + s.run.hostPort
	waitHTTP(s.t, ctx, s.base+"/healthz", "", http.StatusOK, "", s.run)
}

func (s *swarmServe) killOnly(ctx context.Context) {
	s.t.Helper()
	name := strings.TrimPrefix(s.containerName(ctx), "/")
	if out, err := exec.CommandContext(ctx, "docker", "kill", "-s", "KILL", name).CombinedOutput(); err != nil {
		s.t.Fatalf("docker kill: %v\n%s", err, out)
	}
	waitC, errC := s.cli.ContainerWait(ctx, s.run.id, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		s.t.Fatal(err)
	}
}

func (s *swarmServe) containerName(ctx context.Context) string {
	ins, err := s.cli.ContainerInspect(ctx, s.run.id)
	if err != nil {
		s.t.Fatal(err)
	}
	return ins.Name
}

// waitServes polls the preview of host until it answers path with status
// and a body containing want, for up to timeout: a deploy through the
// webhook builds, pushes and rolls out, which on a loaded machine takes
// minutes.
func (s *swarmServe) waitServes(ctx context.Context, timeout time.Duration, host, path string, status int, want string) {
	s.t.Helper()
	last := ""
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		code, body := dockertest.GetHost(s.base+path, host)
		if code == status && strings.Contains(body, want) {
			return
		}
		last = fmt.Sprintf("%d %q", code, lastN(body, 5))
		time.Sleep(250 * time.Millisecond)
	}
	s.t.Fatalf("GET %s%s never answered %d with %q within %v; last: %s\nslipway logs:\n%s", host, path, status, want, timeout, last, lastN(s.run.logs(s.t), 80))
}

// pairFiles is controller/swarm/testdata/pair as a PR's files, with
// web's page saying version.
func pairFiles(t *testing.T, version string) githubfake.Files {
	t.Helper()
	root := filepath.Join("..", "..", "controller", "swarm", "testdata", "pair")
	files := githubfake.Files{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		content := string(b)
		if fi.Mode()&0o111 != 0 {
			content = githubfake.Executable + content
		}
		files[filepath.ToSlash(rel)] = content
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	files["web/www/index.html"] = "web " + version + "\n"
	return files
}

// slowFiles is a one-service preview whose build and start take seconds,
// so that there is a deploy in progress to kill.
func slowFiles(version string) githubfake.Files {
	return githubfake.Files{
		"compose.yaml": `services:
  web:
    build: .
    ports: ["8080:8080"]
    init: true
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 300ms
      retries: 100
`,
		"Dockerfile": "FROM slipway-test/busybox:1\nRUN sleep 3\nCOPY index.html /www/index.html\nCMD [\"sh\", \"-c\", \"sleep 3; exec httpd -f -p 8080 -h /www\"]\n",
		"index.html": "version " + version + "\n",
	}
}

// deploymentOf returns the latest state of the deployment of sha ("" when
// there is none) and its environment URL.
func deploymentOf(fake *githubfake.Fake, repo, sha string) (state, url string) {
	for _, d := range fake.Deployments(repo) {
		if d.SHA == sha {
			state = d.LatestState()
			for _, st := range d.Statuses {
				if st.EnvironmentURL != "" {
					url = st.EnvironmentURL
				}
			}
		}
	}
	return state, url
}

// stickyComment returns the body of the PR's sticky comment and how many
// there are.
func stickyComment(fake *githubfake.Fake, repo string, n int) (string, int) {
	body, count := "", 0
	for _, c := range fake.Comments(repo, n) {
		if strings.Contains(c.Body, "slipway:preview") {
			body, count = c.Body, count+1
		}
	}
	return body, count
}

// TestSwarmE2EServesPullRequests is the swarm engine end to end, as it
// runs in production: Slipway in its container (the Dockerfile's offline
// image target) with engine: swarm, a registry the daemon pushes to as
// 127.0.0.1 and Slipway reaches through registry.api, and a fake GitHub
// sending signed webhooks. Run in .ci/run's swarm step.
func TestSwarmE2EServesPullRequests(t *testing.T) {
	dockertest.NeedSwarmTests(t)
	ctx, cancel := context.WithTimeout(context.Background(), 18*time.Minute)
	defer cancel()
	s := newSwarmServe(t, ctx)

	// Open → live (web calls api by service name) → push changing only web
	// (api keeps its task) → sleep → woken by a request → close → nothing
	// of the project left, on the swarm or in the registry.
	t.Run("lifecycle", func(t *testing.T) {
		s.t = t
		fake, repo := s.fake, s.repo
		n, sha1 := fake.OpenPR(repo, githubfake.PR{Author: "alice", Title: "swarm e2e", Files: pairFiles(t, "v1")})
		project, host := s.project(n), s.host(n)
		s.downAtCleanup(project)
		s.pullRequest("opened", n)
		s.waitServes(ctx, 5*time.Minute, host, "/cgi-bin/api", http.StatusOK, "token-ok")
		s.waitServes(ctx, time.Minute, host, "/", http.StatusOK, "web v1")
		waitFor(t, "the deployment of the first SHA to succeed", time.Minute, func() bool {
			st, _ := deploymentOf(fake, repo, sha1)
			return st == "success"
		})
		if _, url := deploymentOf(fake, repo, sha1); !strings.Contains(url, host) {
			t.Errorf("deployment of %s: environment URL %q, want one naming %s", sha1[:7], url, host)
		}
		waitFor(t, "the sticky comment to name the preview", 30*time.Second, func() bool {
			body, _ := stickyComment(fake, repo, n)
			return strings.Contains(body, host)
		})
		if out, err := exec.CommandContext(ctx, "docker", "stack", "ps", project, "--format", "{{.Name}} {{.CurrentState}}").CombinedOutput(); err != nil ||
			!strings.Contains(string(out), project+"_web.1") || !strings.Contains(string(out), project+"_api.1") || !strings.Contains(string(out), "Running") {
			t.Errorf("docker stack ps %s: %v\n%s", project, err, out)
		}
		ins, err := s.cli.ContainerInspect(ctx, s.run.id)
		if err != nil {
			t.Fatal(err)
		}
		if overlay := contract.ResourceName(project, "default"); ins.NetworkSettings.Networks[overlay] == nil {
			t.Errorf("slipway's container is not on the preview's overlay %s: %v", overlay, keys(ins.NetworkSettings.Networks))
		}

		// A push that changes only web: api's task is kept.
		apiBefore := s.runningTasks(ctx, project+"_api")
		sha2 := fake.Push(repo, n, pairFiles(t, "v2"))
		s.pullRequest("synchronize", n)
		s.waitServes(ctx, 5*time.Minute, host, "/", http.StatusOK, "web v2")
		s.waitServes(ctx, time.Minute, host, "/cgi-bin/api", http.StatusOK, "token-ok")
		waitFor(t, "the deployment of the pushed SHA to succeed", time.Minute, func() bool {
			st, _ := deploymentOf(fake, repo, sha2)
			return st == "success"
		})
		if after := s.runningTasks(ctx, project+"_api"); len(apiBefore) != 1 || strings.Join(after, ",") != strings.Join(apiBefore, ",") {
			t.Errorf("api's tasks %v before the push, %v after: the image-only service was not kept", apiBefore, after)
		}

		// Asleep through the API: every service scaled to 0, no task left
		// running. A request wakes it.
		s.action(project, "sleep")
		waitEvery(t, "every service of the preview to be scaled to 0 with no task running", 2*time.Minute, 250*time.Millisecond, func() bool {
			svcs := s.services(ctx, project)
			for _, svc := range svcs {
				if svc.Spec.Mode.Replicated == nil || svc.Spec.Mode.Replicated.Replicas == nil || *svc.Spec.Mode.Replicated.Replicas != 0 ||
					len(s.runningTasks(ctx, svc.Spec.Name)) > 0 {
					return false
				}
			}
			return len(svcs) == 2
		})
		s.waitServes(ctx, 3*time.Minute, host, "/cgi-bin/api", http.StatusOK, "token-ok")
		s.waitServes(ctx, time.Minute, host, "/", http.StatusOK, "web v2")

		// Closed: nothing of the project is left, and GitHub says so.
		fake.ClosePR(repo, n)
		s.pullRequest("closed", n)
		s.waitServes(ctx, 3*time.Minute, host, "/", http.StatusNotFound, "")
		waitEvery(t, "nothing of the project to be left", 3*time.Minute, time.Second, func() bool {
			return len(swarmLeftovers(t, ctx, s.cli, s.reg, project)) == 0
		})
		waitFor(t, "every deployment to be inactive", time.Minute, func() bool {
			for _, d := range fake.Deployments(repo) {
				if d.LatestState() != "inactive" {
					return false
				}
			}
			return true
		})
		waitFor(t, "the sticky comment to say removed", time.Minute, func() bool {
			body, _ := stickyComment(fake, repo, n)
			return strings.Contains(strings.ToLower(body), "removed")
		})
		if _, count := stickyComment(fake, repo, n); count != 1 {
			t.Errorf("%d sticky comments, want 1", count)
		}
		if deps := fake.Deployments(repo); len(deps) != 2 {
			t.Errorf("%d deployments, want one for each of the 2 SHAs", len(deps))
		}
	})

	// Slipway's container killed (SIGKILL) while a deploy is in progress,
	// first while the services are being rolled out, then while the deploy
	// of a pushed SHA is under way (before its image is built), and last in
	// the middle of the teardown; started again over the same state_dir each
	// time, it converges to the live preview, and the close leaves nothing
	// behind.
	t.Run("SIGKILL mid-deploy", func(t *testing.T) {
		s.t = t
		fake, repo := s.fake, s.repo
		n, sha1 := fake.OpenPR(repo, githubfake.PR{Author: "alice", Title: "killed", Files: slowFiles("one")})
		project, host := s.project(n), s.host(n)
		s.downAtCleanup(project)
		s.pullRequest("opened", n)
		// The services exist once the image is built and pushed; web starts
		// 3s later, so the engine is waiting for it to be ready.
		waitEvery(t, "a service of the preview to appear", 5*time.Minute, 100*time.Millisecond, func() bool { return len(s.services(ctx, project)) > 0 })
		st, _ := deploymentOf(fake, repo, sha1)
		s.kill(ctx)
		t.Logf("killed with the first deploy's services created, its deployment %q", st)
		s.waitServes(ctx, 5*time.Minute, host, "/", http.StatusOK, "version one")
		waitFor(t, "the deployment of the first SHA to succeed", 2*time.Minute, func() bool {
			st, _ := deploymentOf(fake, repo, sha1)
			return st == "success"
		})

		// Killed while the pushed SHA's image is being built.
		sha2 := fake.Push(repo, n, slowFiles("two"))
		s.pullRequest("synchronize", n)
		waitEvery(t, "the build of the pushed SHA to start", 5*time.Minute, 100*time.Millisecond, func() bool {
			st, _ := deploymentOf(fake, repo, sha2)
			return st == "in_progress" || s.hasImage(ctx, project, sha2)
		})
		st, _ = deploymentOf(fake, repo, sha2)
		built := s.hasImage(ctx, project, sha2)
		s.kill(ctx)
		t.Logf("killed with the pushed SHA's deployment %q, its image built: %v", st, built)
		s.waitServes(ctx, 5*time.Minute, host, "/", http.StatusOK, "version two")
		waitFor(t, "the deployment of the pushed SHA to succeed", 2*time.Minute, func() bool {
			st, _ := deploymentOf(fake, repo, sha2)
			return st == "success"
		})
		svcs := s.services(ctx, project)
		if len(svcs) != 1 || svcs[0].Spec.Name != project+"_web" {
			var names []string
			for _, svc := range svcs {
				names = append(names, svc.Spec.Name)
			}
			t.Errorf("services %v, want only %s_web", names, project)
		}
		for _, svc := range svcs {
			if sha := svc.Spec.Labels[contract.LabelSHA]; sha != sha2 {
				t.Errorf("service %s at %s, want %s", svc.Spec.Name, sha, sha2)
			}
		}

		// Killed during the teardown, once its services are gone (their
		// task containers, networks, secrets, volumes and registry tags
		// follow them), and started again, as a restart policy would: the
		// teardown detached Slipway's container from the overlay before it
		// removed the services. (Docker 20.10 refuses to start a container
		// killed on an overlay while a task of it is being removed:
		// "network … not found".)
		fake.ClosePR(repo, n)
		s.pullRequest("closed", n)
		waitEvery(t, "the teardown to remove the services", 3*time.Minute, 100*time.Millisecond, func() bool { return len(s.services(ctx, project)) == 0 })
		left := swarmLeftovers(t, ctx, s.cli, s.reg, project)
		s.kill(ctx)
		t.Logf("killed during the teardown, with %v left", left)
		waitEvery(t, "nothing of the project to be left", 3*time.Minute, time.Second, func() bool {
			return len(swarmLeftovers(t, ctx, s.cli, s.reg, project)) == 0
		})
		s.waitServes(ctx, time.Minute, host, "/", http.StatusNotFound, "")
		waitFor(t, "every deployment to be inactive", time.Minute, func() bool {
			for _, d := range fake.Deployments(repo) {
				if d.SHA != sha1 && d.SHA != sha2 {
					continue // the lifecycle's
				}
				if d.LatestState() != "inactive" {
					return false
				}
			}
			return true
		})
	})
}

// hasImage reports whether an image of project built for sha is on the
// engine (the build of sha has reached its end).
func (s *swarmServe) hasImage(ctx context.Context, project, sha string) bool {
	imgs, err := s.cli.ImageList(ctx, image.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", contract.LabelProject+"="+project), filters.Arg("label", contract.LabelSHA+"="+sha))})
	return err == nil && len(imgs) > 0
}

// waitEvery is waitFor polling every interval: for conditions that cost
// several API calls.
func waitEvery(t *testing.T, what string, timeout, interval time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(interval)
	}
}
