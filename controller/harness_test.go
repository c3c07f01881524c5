package controller_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
	"github.com/slipwayhq/slipway/internal/text"
	"github.com/slipwayhq/slipway/proxy"
	"github.com/slipwayhq/slipway/webhooks"
)

const webhookSecret = "e2e-webhook-secret"

// harness is Slipway assembled as serve assembles it, in process: the fake
// GitHub, the real engine, store, webhook receiver, proxy and controller.
type harness struct {
	t        *testing.T
	clock    *testClock
	fake     *githubfake.Fake
	cli      *client.Client
	engine   *stack.Engine
	store    *store.Store
	ctrl     *controller.Controller
	reg      *prometheus.Registry
	hooks    *httptest.Server
	proxy    *httptest.Server
	repo     string
	domain   string
	cfg      *config.Controller
	delivery atomic.Int64
	cancel   context.CancelFunc
	done     chan struct{}

	// handler is the proxy; wakes counts the wakes it asked for, starts
	// the engine's Start calls.
	handler       *proxy.Handler
	wakes, starts atomic.Int32
}

type harnessOptions struct {
	forks    string
	trigger  string
	secrets  map[string]config.Secret
	resync   time.Duration
	debounce time.Duration
	limits   *config.Limits
	ttl      *config.Duration

	// wakeTimeout is how long the proxy holds a request for a sleeping
	// preview. Default 1m.
	wakeTimeout time.Duration
}

func newHarness(t *testing.T, o harnessOptions) *harness {
	t.Helper()
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	h := &harness{t: t, cli: cli, fake: githubfake.New(t), reg: prometheus.NewRegistry(), done: make(chan struct{}), clock: &testClock{}}
	h.repo = "acme/" + dockertest.UniqueName("shop")
	h.fake.AddRepo(h.repo, githubfake.RepoOptions{})
	h.fake.SetPermission(h.repo, "alice", githubfake.Write)

	cfg := config.Defaults()
	// Every harness shares the engine (and the proxy sees every managed
	// container), so each gets its own domain: pr-1 of one test is not pr-1
	// of another.
	h.domain = dockertest.UniqueName("t") + ".localhost"
	cfg.Domain = h.domain
	cfg.StateDir = t.TempDir()
	cfg.GitHub = &config.GitHub{APIURL: h.fake.URL, Token: h.fake.Token, WebhookSecret: webhookSecret}
	cfg.Repos = []config.RepoPolicy{{Name: h.repo, Forks: o.forks, Trigger: o.trigger, TTL: o.ttl}}
	cfg.Secrets = o.secrets
	cfg.Resync = config.Duration(time.Hour)
	if o.resync > 0 {
		cfg.Resync = config.Duration(o.resync)
	}
	cfg.ReadyTimeout = config.Duration(time.Minute)
	if o.limits != nil {
		cfg.Limits = *o.limits
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	h.cfg = &cfg
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))

	st, err := store.Open(filepath.Join(cfg.StateDir, store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	h.store = st
	ghc, err := gh.New(gh.Options{APIURL: h.fake.URL, Token: h.fake.Token, Retry: gh.RetryPolicy{BaseDelay: 10 * time.Millisecond, MaxDelay: 100 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	routes := proxy.NewRoutes(log, cfg.HostTemplates())
	h.engine = stack.NewEngine(cli, log, stack.EngineOptions{ReadyTimeout: time.Minute, StopTimeout: 2 * time.Second, OnCheckPassed: routes.CheckPassed})
	observer := proxy.NewObserver(cli, routes, proxy.ObserverOptions{Logger: log})
	var ctrl *controller.Controller
	wakeTimeout := o.wakeTimeout
	if wakeTimeout == 0 {
		wakeTimeout = time.Minute
	}
	handler := proxy.NewHandler(routes, proxy.HandlerOptions{Logger: log, WakeTimeout: wakeTimeout, OnWake: func(project string) {
		h.wakes.Add(1)
		if ctrl != nil {
			go ctrl.OnWake(project)
		}
	}})
	h.handler = handler
	h.proxy = httptest.NewServer(handler)
	secrets := map[string]string{"token": h.fake.Token}
	for k, v := range o.secrets {
		secrets[k] = v.Value
	}
	masker := controller.NewMasker(secrets)
	debounce := o.debounce
	if debounce == 0 {
		debounce = 100 * time.Millisecond
	}
	h.ctrl, err = controller.New(controller.Options{
		Config: h.cfg, GitHub: ghc, Reporter: gh.NewReporter(ghc, gh.ReporterOptions{Mask: masker.String}),
		Engine: countStarts{h.engine, &h.starts}, Store: st, Routes: routes, LastRequest: handler.LastRequest, Masker: masker,
		Logger: log, Registerer: h.reg, Debounce: debounce, Workers: 4, Now: h.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctrl = h.ctrl
	wh, err := webhooks.NewHandler(webhooks.Options{
		Secrets: []string{webhookSecret}, AllowRepo: func(n string) bool { _, ok := h.cfg.Repo(n); return ok },
		Deliveries: st, Enqueuer: webhooks.EnqueueFunc(h.ctrl.HandleEvent), Journal: h.ctrl, Logger: log, Registerer: h.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	h.hooks = httptest.NewServer(wh)
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	go observer.Run(ctx)
	go func() {
		defer close(h.done)
		if err := h.ctrl.Run(ctx); err != nil {
			t.Errorf("controller: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-h.done
		h.hooks.Close()
		h.proxy.Close()
		handler.Close()
		// Remove every environment of this test's repo, then check nothing is left.
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		projects, _ := h.engine.Projects(ctx)
		for p, ref := range projects {
			if ref.Repo == h.repo {
				if err := h.engine.Down(ctx, p); err != nil {
					t.Errorf("cleanup %s: %v", p, err)
				}
			}
		}
		if left, _ := dockertest.Leftovers(ctx, cli, contract.LabelRepo+"="+h.repo); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
		st.Close()
	})
	return h
}

// countStarts counts the engine's Start calls (wakes).
type countStarts struct {
	*stack.Engine
	n *atomic.Int32
}

func (c countStarts) Start(ctx context.Context, project string) error {
	c.n.Add(1)
	return c.Engine.Start(ctx, project)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// app returns the files of a small web app whose page says version.
func app(version string) githubfake.Files {
	return githubfake.Files{
		"compose.yaml": `services:
  web:
    build: .
    ports: ["8080"]
    init: true
    stop_grace_period: 1s
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 300ms
      retries: 60
`,
		"Dockerfile": "FROM slipway-test/busybox:1\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n",
		"index.html": "version " + version + "\n",
	}
}

// deliver sends a signed webhook delivery and returns the status code.
func (h *harness) deliver(event string, payload any) int {
	h.t.Helper()
	return h.deliverID(event, fmt.Sprintf("delivery-%d", h.delivery.Add(1)), payload)
}

func (h *harness) deliverID(event, id string, payload any) int {
	h.t.Helper()
	body, err := json.Marshal(payload)
	if err != nil {
		h.t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", h.hooks.URL+webhooks.Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(webhooks.HeaderEvent, event)
	req.Header.Set(webhooks.HeaderDelivery, id)
	req.Header.Set(webhooks.HeaderSignature, webhooks.Sign([]byte(webhookSecret), body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// prEvent is a pull_request delivery as GitHub sends it.
func (h *harness) prEvent(action string, n int, sender string) map[string]any {
	var pr map[string]any
	if err := json.Unmarshal(h.fake.PullRequestJSON(h.repo, n), &pr); err != nil {
		h.t.Fatal(err)
	}
	owner, name, _ := strings.Cut(h.repo, "/")
	return map[string]any{
		"action": action, "number": n, "pull_request": pr,
		"repository": map[string]any{"full_name": h.repo, "name": name, "owner": map[string]any{"login": owner}},
		"sender":     map[string]any{"login": sender},
	}
}

// commentEvent is an issue_comment delivery on PR n.
func (h *harness) commentEvent(n int, id int64, user, body string) map[string]any {
	owner, name, _ := strings.Cut(h.repo, "/")
	return map[string]any{
		"action":     "created",
		"issue":      map[string]any{"number": n, "pull_request": map[string]any{"url": "x"}},
		"comment":    map[string]any{"id": id, "body": body, "user": map[string]any{"login": user}},
		"repository": map[string]any{"full_name": h.repo, "name": name, "owner": map[string]any{"login": owner}},
		"sender":     map[string]any{"login": user},
	}
}

func (h *harness) project(n int) string {
	owner, name, _ := strings.Cut(h.repo, "/")
	return contract.ProjectName(owner, name, n)
}

// get fetches the preview of PR n through the proxy.
func (h *harness) get(n int) (int, string) { return h.getPath(n, "/") }

// eventually polls cond until it holds or timeout passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

// waitServes waits until the preview of PR n answers 200 with want in the page.
func (h *harness) waitServes(n int, want string) {
	h.t.Helper()
	eventually(h.t, 90*time.Second, fmt.Sprintf("pr-%d to serve %q", n, want), func() (bool, string) {
		code, body := h.get(n)
		return code == 200 && strings.Contains(body, want), fmt.Sprintf("%d %q phase=%s", code, firstLine(body), h.phase(n))
	})
}

// waitReady waits until the history shows PR n ready (the controller has
// finished the deploy and reported it; the route may go live a little earlier).
func (h *harness) waitReady(n int) {
	h.t.Helper()
	eventually(h.t, 90*time.Second, fmt.Sprintf("%s to be ready", h.project(n)), func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseReady)), p
	})
}

// waitGone waits until nothing with PR n's project label is on the engine.
func (h *harness) waitGone(n int) {
	h.t.Helper()
	eventually(h.t, 60*time.Second, fmt.Sprintf("%s to be gone", h.project(n)), func() (bool, string) {
		left, err := dockertest.Leftovers(context.Background(), h.cli, contract.LabelProject+"="+h.project(n))
		return err == nil && len(left) == 0, fmt.Sprint(left, err)
	})
}

func (h *harness) phase(n int) string {
	e, err := h.store.Environment(context.Background(), h.project(n))
	if err != nil {
		return "none"
	}
	return string(e.Phase) + " " + e.Detail
}

// counter reads a counter (or the sum of a counter vector) from the registry.
func (h *harness) counter(name string) float64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if c := m.GetCounter(); c != nil {
				sum += c.GetValue()
			}
		}
	}
	return sum
}

func firstLine(s string) string { return text.FirstLine(s, 120) }

func keyOf(h *harness, n int) controller.Key { return controller.Key{Repo: h.repo, PR: n} }

// testClock is the controller's clock in the harness: the real time plus an
// offset a test moves forward, so that a TTL or sleep_after expires when the
// test says, not when a loaded machine happens to get there.
type testClock struct {
	mu     sync.Mutex
	offset time.Duration
	frozen *time.Time // while set, Now stands still
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen != nil {
		return *c.frozen
	}
	return time.Now().Add(c.offset)
}

// Freeze stops the clock until Thaw: events then arrive at one instant,
// however slowly a loaded machine delivers them.
func (c *testClock) Freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().Add(c.offset)
	c.frozen = &now
}

// Thaw lets the clock run again, from no earlier than where it stood.
func (c *testClock) Thaw() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen != nil {
		if lag := c.frozen.Sub(time.Now().Add(c.offset)); lag > 0 {
			c.offset += lag
		}
		c.frozen = nil
	}
}

// Advance moves the clock by d (negative: back).
func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}
