package dashboard

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write ../docs/dashboard.png from the browser test (uses fixed project names)")

// findChromium returns Debian's chromium, or stops the test (a failure
// under CI=true).
func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	dockertest.Unavailable(t, "no chromium binary in PATH (apt-get install -y chromium)")
	return ""
}

// artifactDir is where the test writes its screenshots.
func artifactDir(t *testing.T) string {
	if d := os.Getenv("SLIPWAY_ARTIFACTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// requestTimes is a RequestLog with fixed times, standing in for the
// proxy's record of visits.
type requestTimes map[string]time.Time

func (r requestTimes) LastRequests() map[string]time.Time { return r }

// scopedEngine lists only the test's projects: the engine is shared with
// other tests, whose environments come and go.
type scopedEngine struct {
	*stack.Engine
	projects map[string]bool
}

func (s scopedEngine) List(ctx context.Context) ([]stack.Environment, error) {
	all, err := s.Engine.List(ctx)
	var out []stack.Environment
	for _, e := range all {
		if s.projects[e.Project] {
			out = append(out, e)
		}
	}
	return out, err
}

// settableClock lets the test date what it records in the store.
type settableClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settableClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *settableClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

// TestBrowser drives the dashboard in a real Chromium against real
// environments: the list shows them with their phases, the environment page
// streams log lines written after it loaded, an action without a valid
// session is refused and with one it works.
func TestBrowser(t *testing.T) {
	chrome := findChromium(t)
	e, cli := testEngine(t)
	now := time.Now()

	// Three environments on the engine, two known only to the history.
	shop, api := "webshop", "api"
	if !*updateScreenshot {
		shop, api = dockertest.UniqueName("webshop"), dockertest.UniqueName("api")
	}
	ready := deploy(t, e, cli, "acme", shop, 142, shaA)
	sleeping := deploy(t, e, cli, "acme", shop, 139, shaB)
	failed := deploy(t, e, cli, "acme", api, 57, shaC)
	if err := e.Stop(context.Background(), sleeping.Project); err != nil {
		t.Fatalf("stop %s: %v", sleeping.Project, err)
	}

	clk := &settableClock{}
	st := openStore(t, clk.Now)
	at := func(d time.Duration) time.Time { return now.Add(-d) }
	record := func(info store.EnvironmentInfo, created time.Duration, phases ...store.PhaseEntry) {
		clk.Set(at(created))
		track(t, st, info, phases...)
	}
	record(store.EnvironmentInfo{Project: ready.Project, Repo: ready.Repo, PR: 142, Title: "Checkout: pay with saved cards", Author: "ada", LastPush: at(25 * time.Minute)}, 26*time.Hour,
		store.PhaseEntry{Phase: contract.PhaseWaiting, SHA: shaA, At: at(26 * time.Minute)},
		store.PhaseEntry{Phase: contract.PhaseBuilding, SHA: shaA, At: at(25 * time.Minute), Detail: "building web, worker"},
		store.PhaseEntry{Phase: contract.PhaseDeploying, SHA: shaA, At: at(23 * time.Minute)},
		store.PhaseEntry{Phase: contract.PhaseReady, SHA: shaA, At: at(22 * time.Minute), Detail: "2 services running"})
	record(store.EnvironmentInfo{Project: sleeping.Project, Repo: sleeping.Repo, PR: 139, Title: "Search suggestions as you type", Author: "grace", LastPush: at(50 * time.Hour)}, 4*24*time.Hour,
		store.PhaseEntry{Phase: contract.PhaseReady, SHA: shaB, At: at(50 * time.Hour)},
		store.PhaseEntry{Phase: contract.PhaseSleeping, SHA: shaB, At: at(3 * time.Hour), Detail: "idle for 30m"})
	record(store.EnvironmentInfo{Project: failed.Project, Repo: failed.Repo, PR: 57, Title: "Rate-limit the public API", Author: "linus", LastPush: at(8 * time.Minute)}, 3*time.Hour,
		store.PhaseEntry{Phase: contract.PhaseReady, SHA: shaC, At: at(2 * time.Hour)},
		store.PhaseEntry{Phase: contract.PhaseBuilding, SHA: shaA, At: at(8 * time.Minute)},
		store.PhaseEntry{Phase: contract.PhaseFailed, SHA: shaA, At: at(6 * time.Minute), Failure: &store.Failure{Step: "deploy", Service: "web", Message: "web exited with code 1: listen tcp :8080: bind: address already in use"}})
	building := store.EnvironmentInfo{Project: "acme-" + shop + "-pr-145", Repo: "acme/" + shop, PR: 145, Title: "Dark mode for the admin", Author: "margaret"}
	record(building, 2*time.Minute,
		store.PhaseEntry{Phase: contract.PhaseWaiting, SHA: shaB, At: at(2 * time.Minute)},
		store.PhaseEntry{Phase: contract.PhaseBuilding, SHA: shaB, At: at(90 * time.Second), Detail: "building web"})
	waiting := store.EnvironmentInfo{Project: "acme-" + api + "-pr-58", Repo: "acme/" + api, PR: 58, Title: "Add OpenAPI examples", Author: "octo-contrib", HeadRepo: "octo-contrib/" + api}
	record(waiting, 40*time.Minute,
		store.PhaseEntry{Phase: contract.PhaseWaiting, SHA: shaC, At: at(40 * time.Minute), Detail: "fork PR: waiting for a maintainer's /slipway approve"})
	clk.Set(at(22 * time.Minute))
	if w, err := st.NewBuildLog(context.Background(), ready.Project, shaA); err == nil {
		fmt.Fprint(w, "web | Step 1/3 : FROM slipway-test/busybox:1\nweb |  ---> 3c7b1e2f9a10\nweb | Step 2/3 : COPY www /www\nweb | Step 3/3 : CMD [\"httpd\", \"-f\", \"-p\", \"8080\"]\nweb | Successfully built 9d1e0c4b7a21\nweb | Successfully tagged "+ready.Project+"-web:a1b2c3d4e5f6\n")
		w.Close()
	}
	clk.Set(now)

	srv, ts := newTestServer(t, Options{
		Engine:  scopedEngine{e, map[string]bool{ready.Project: true, sleeping.Project: true, failed.Project: true}},
		History: st, Stats: cli, Actions: EngineActions{Engine: e},
		Requests: requestTimes{ready.Project: at(2 * time.Minute), sleeping.Project: at(3*time.Hour + 30*time.Minute), failed.Project: at(9 * time.Minute)},
		Token:    testToken, User: testUser, Password: testPassword,
		PreviewURL:    func(h string) string { return "https://" + h },
		StatsInterval: 500 * time.Millisecond,
		ListCacheTTL:  200 * time.Millisecond,
	})
	runCtx, stopRun := context.WithCancel(context.Background())
	defer stopRun()
	go srv.Run(runCtx)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1440, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	defer cancelTab()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	artifacts := artifactDir(t)
	shoot := func(name string) []byte {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		p := filepath.Join(artifacts, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
		return png
	}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}

	// Sign in through the form.
	must("open", chromedp.Do(ctx, chromedp.EmulateViewport(1440, 900), chromedp.Navigate(ts.URL+"/")))
	must("login form", chromedp.Do(ctx,
		chromedp.WaitVisible(chromedp.CSS(`input[name=user]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=user]`), testUser),
		chromedp.SendKeys(chromedp.CSS(`input[name=password]`), testPassword),
	))
	_, err := chromedp.RunResponse(ctx, chromedp.Submit(chromedp.CSS(`input[name=password]`)))
	must("sign in", err)
	must("list", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`table.envs`))))

	// The list shows every environment with its phase.
	want := map[string]string{
		ready.Project: "ready", sleeping.Project: "sleeping", failed.Project: "failed",
		building.Project: "building", waiting.Project: "waiting",
	}
	phases, err := chromedp.Run(ctx, chromedp.Evaluate[map[string]string](
		`Object.fromEntries([...document.querySelectorAll('tr[data-project]')].map(r => [r.dataset.project, r.dataset.phase]))`))
	must("read phases", err)
	for p, ph := range want {
		if phases[p] != ph {
			t.Errorf("%s shows phase %q, want %q", p, phases[p], ph)
		}
	}

	// CPU and memory arrive from the background sampler; the page refreshes.
	cpuCell := fmt.Sprintf(`document.querySelector('tr[data-project=%q] td[data-label=CPU]').textContent.trim()`, ready.Project)
	deadline := time.Now().Add(15 * time.Second)
	for {
		cpu, err := chromedp.Run(ctx, chromedp.Evaluate[string](cpuCell))
		must("read CPU", err)
		if cpu != "—" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no CPU sample shown for %s", ready.Project)
		}
		time.Sleep(500 * time.Millisecond)
		must("reload", chromedp.Do(ctx, chromedp.Reload()))
	}
	// A short viewport: the full-page shot is as tall as the content.
	must("render", chromedp.Do(ctx, chromedp.EmulateViewport(1440, 480), chromedp.WaitVisible(chromedp.CSS(`table.envs`))))
	png := shoot("dashboard-list.png")
	if *updateScreenshot {
		p, _ := filepath.Abs(filepath.Join("..", "docs", "dashboard.png"))
		must("write docs screenshot", os.WriteFile(p, png, 0o644))
		t.Logf("updated %s", p)
	}
	_, err = chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}})
	must("dark mode", err)
	shoot("dashboard-list-dark.png")
	_, err = chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "light"}}})
	must("light mode", err)
	must("narrow viewport", chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2))))
	shoot("dashboard-list-narrow.png")
	must("viewport", chromedp.Do(ctx, chromedp.EmulateViewport(1440, 900)))

	// The filter chips work as plain links.
	must("filter", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[data-phase-chip=failed]`)), chromedp.WaitVisible(chromedp.CSS(`a.chip.on[data-phase-chip=failed]`))))
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll('tr[data-project]')].map(r => r.dataset.project)`))
	must("filtered rows", err)
	if len(rows) != 1 || rows[0] != failed.Project {
		t.Errorf("failed filter shows %v", rows)
	}

	// The environment page, reached from a link on another site (as from
	// a PR comment): the browser withholds the SameSite=Strict cookie on
	// that navigation, and the dashboard reloads the page to get it.
	linker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<a id="preview" href="%s/environments/%s">Preview logs</a>`, ts.URL, ready.Project)
	}))
	defer linker.Close()
	must("other site", chromedp.Do(ctx, chromedp.Navigate(strings.Replace(linker.URL, "127.0.0.1", "localhost", 1))))
	must("follow link", chromedp.Do(ctx, chromedp.Click(chromedp.ID("preview"))))
	must("environment page", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`[data-log-stream]`))))

	// It streams lines the container writes after the page loaded.
	maxTick := `Math.max(-1, ...[...document.querySelectorAll('[data-log-stream] .ln')].map(l => { const m = /tick (\d+)$/.exec(l.textContent); return m ? +m[1] : -1 }))`
	first, err := chromedp.Run(ctx, chromedp.Poll[int](maxTick+` >= 0 ? `+maxTick+` : null`, chromedp.WithPollingTimeout(15*time.Second)))
	must("first log lines", err)
	_, err = chromedp.Run(ctx, chromedp.Poll[bool](fmt.Sprintf(`%s >= %d`, maxTick, first+5), chromedp.WithPollingTimeout(15*time.Second)))
	must(fmt.Sprintf("log lines after tick %d", first), err)
	live, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-live-state]`)))
	must("live state", err)
	if live != "live" {
		t.Errorf("stream state %q", live)
	}
	shoot("dashboard-environment.png")

	// An action without a session is refused, in the browser (a forged
	// CSRF token) and outside it (no cookie at all).
	must("forge", chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`(() => {
		const f = document.querySelector('form[action$="/actions/destroy"]');
		f.querySelector('input[name=csrf]').value = 'forged';
		f.removeAttribute('data-confirm');
		f.submit();
	})()`)))
	must("refusal page", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`.error-card`))))
	msg, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.error-card`)))
	must("refusal text", err)
	if !strings.Contains(msg, "403") || !strings.Contains(msg, "Form expired") {
		t.Errorf("forged action answered %q", msg)
	}
	resp, err := http.PostForm(ts.URL+"/environments/"+ready.Project+"/actions/destroy", url.Values{"csrf": {"x"}})
	must("POST without session", err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("POST without session: %d", resp.StatusCode)
	}
	if env, err := e.Inspect(context.Background(), ready.Project); err != nil || env == nil {
		t.Fatalf("refused actions removed %s: %v", ready.Project, err)
	}

	// With the session, destroy works: confirm the dialog, land on the list.
	must("environment page", chromedp.Do(ctx, chromedp.Navigate(ts.URL+"/environments/"+ready.Project), chromedp.WaitVisible(chromedp.CSS(`button[data-action=destroy]`))))
	dctx, dcancel := context.WithCancel(ctx)
	defer dcancel()
	go func() {
		for ev, err := range chromedp.Events(dctx, page.JavascriptDialogOpening) {
			if err != nil {
				return
			}
			if !strings.Contains(ev.Message, "Destroy "+ready.Project) {
				t.Errorf("confirm dialog says %q", ev.Message)
			}
			go chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	must("destroy", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-action=destroy]`))))
	must("destroyed", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(`.alert.ok`))))
	dcancel()
	done, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.alert.ok`)))
	must("destroy message", err)
	if done != "Destroyed "+ready.Project+"." {
		t.Errorf("after destroy: %q", done)
	}
	if env, err := e.Inspect(context.Background(), ready.Project); err != nil || env != nil {
		t.Errorf("after destroy the engine still has %s: %+v %v", ready.Project, env, err)
	}
	state, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(fmt.Sprintf(`tr[data-project=%q] .drift`, ready.Project))))
	must("drift", err)
	if state != "not on the engine" {
		t.Errorf("destroyed environment shows %q", state)
	}
}
