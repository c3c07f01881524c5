package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

// listingFixture: a store and an engine that agree on some environments
// and not on others.
//
//	shop-pr-1   tracked, ready, running
//	shop-pr-2   tracked, failed (rolled back: nothing on the engine)
//	shop-pr-3   tracked, removed
//	local-x-pr-5 untracked (`slipway up`), running
type listingFixture struct {
	st     *store.Store
	engine *fakeEngine
	srv    *Server
	url    string
	client *Client
	acts   *recordingActions
}

func newListingFixture(t *testing.T, mod func(*Options)) *listingFixture {
	t.Helper()
	st := openStore(t, nil)
	track(t, st, store.EnvironmentInfo{Project: "acme-shop-pr-1", Repo: "acme/shop", PR: 1, Title: "Add cart", Author: "ada"},
		store.PhaseEntry{Phase: contract.PhaseBuilding, SHA: shaA}, store.PhaseEntry{Phase: contract.PhaseReady, SHA: shaA})
	track(t, st, store.EnvironmentInfo{Project: "acme-shop-pr-2", Repo: "acme/shop", PR: 2, Title: "Fix tax", Author: "bob"},
		store.PhaseEntry{Phase: contract.PhaseFailed, SHA: shaB, Failure: &store.Failure{Step: "build", Service: "web", Message: "exit status 2"}})
	track(t, st, store.EnvironmentInfo{Project: "acme-shop-pr-3", Repo: "acme/shop", PR: 3},
		store.PhaseEntry{Phase: contract.PhaseRemoved})
	eng := &fakeEngine{envs: []stack.Environment{
		runningEnv("acme-shop-pr-1", "acme/shop", 1, shaA),
		runningEnv("local-x-pr-5", "local/x", 5, shaC),
	}}
	acts := &recordingActions{}
	opts := Options{Engine: eng, History: st, Actions: acts, Token: testToken, PreviewURL: func(h string) string { return "https://" + h }}
	if mod != nil {
		mod(&opts)
	}
	s, ts := newTestServer(t, opts)
	return &listingFixture{st: st, engine: eng, srv: s, url: ts.URL, client: &Client{BaseURL: ts.URL, Token: testToken}, acts: acts}
}

func TestAPIEnvironments(t *testing.T) {
	f := newListingFixture(t, nil)
	envs, err := f.client.Environments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Environment{}
	for _, e := range envs {
		got[e.Project] = e
	}
	want := map[string]struct {
		phase, state string
		tracked      bool
	}{
		"acme-shop-pr-1": {"ready", StateRunning, true},
		"acme-shop-pr-2": {"failed", StateAbsent, true},
		"local-x-pr-5":   {"ready", StateRunning, false},
	}
	if len(got) != len(want) {
		t.Errorf("got %d environments, want %d (removed ones hidden): %v", len(got), len(want), envs)
	}
	for p, w := range want {
		e, ok := got[p]
		if !ok {
			t.Errorf("%s missing", p)
			continue
		}
		if e.Phase != w.phase || e.State != w.state || e.Tracked != w.tracked {
			t.Errorf("%s: phase %s state %s tracked %v, want %+v", p, e.Phase, e.State, e.Tracked, w)
		}
	}
	if e := got["acme-shop-pr-1"]; e.URL != "https://pr-1.preview.test" || e.Title != "Add cart" || e.SHA != shaA || len(e.Services) != 1 {
		t.Errorf("merged environment: %+v", e)
	}
	if e := got["acme-shop-pr-2"]; e.LastError == nil || e.LastError.Step != "build" || e.LastError.SHA != shaB {
		t.Errorf("last error: %+v", e.LastError)
	}

	for q, want := range map[string]string{
		"phase=removed":               "acme-shop-pr-3",
		"repo=local/x":                "local-x-pr-5",
		"phase=failed&repo=acme/shop": "acme-shop-pr-2",
		"q=ada":                       "acme-shop-pr-1",
	} {
		var list EnvironmentList
		getJSON(t, f.url+"/api/v1/environments?"+q, &list)
		var names []string
		for _, e := range list.Environments {
			names = append(names, e.Project)
		}
		if strings.Join(names, ",") != want {
			t.Errorf("?%s: %v, want %s", q, names, want)
		}
	}
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s: content type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: decode: %v", url, err)
	}
	return resp.StatusCode
}

func TestAPIEnvironmentDetail(t *testing.T) {
	f := newListingFixture(t, nil)
	ctx := context.Background()
	w, err := f.st.NewBuildLog(ctx, "acme-shop-pr-1", shaA)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "web | Step 1/3 : FROM busybox")
	w.Close()
	d, err := f.client.Environment(ctx, "acme-shop-pr-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Timeline) != 2 || d.Timeline[0].Phase != contract.PhaseBuilding || d.Timeline[1].Phase != contract.PhaseReady {
		t.Errorf("timeline %+v", d.Timeline)
	}
	if len(d.BuildLogs) != 1 || d.BuildLogs[0].SHA != shaA || d.BuildLogs[0].Size == 0 {
		t.Errorf("build logs %+v", d.BuildLogs)
	}
	d, err = f.client.Environment(ctx, "local-x-pr-5")
	if err != nil || d.Tracked || len(d.Timeline) != 0 || d.Phase != "ready" {
		t.Errorf("untracked detail: %+v %v", d, err)
	}
	if _, err := f.client.Environment(ctx, "acme-shop-pr-404"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown environment: %v, want ErrNotFound", err)
	}
	var e apiError
	if code := getJSON(t, f.url+"/api/v1/environments/Not_Valid", &e); code != http.StatusBadRequest || !strings.Contains(e.Error, "invalid project") {
		t.Errorf("invalid name: %d %+v", code, e)
	}
	// The engine failing leaves the history visible, with a warning.
	f.engine.mu.Lock()
	f.engine.err = errors.New("engine on fire")
	f.engine.mu.Unlock()
	d, err = f.client.Environment(ctx, "acme-shop-pr-1")
	if err != nil || len(d.Warnings) != 1 || !strings.Contains(d.Warnings[0], "engine on fire") || d.State != "" {
		t.Errorf("with the engine down: %+v %v", d, err)
	}
}

func TestAPIEngineDownStillLists(t *testing.T) {
	f := newListingFixture(t, nil)
	f.engine.err = errors.New("cannot connect to the Docker daemon")
	var list EnvironmentList
	if code := getJSON(t, f.url+"/api/v1/environments", &list); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if len(list.Environments) != 2 || len(list.Warnings) != 1 || !strings.Contains(list.Warnings[0], "Docker daemon") {
		t.Errorf("list %+v", list)
	}
	resp, err := http.Get(f.url + "/?x") // page, no token: redirected to login
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func TestAPIActions(t *testing.T) {
	f := newListingFixture(t, nil)
	ctx := context.Background()
	// The controller queues actions: the API says so, with 202.
	res, err := f.client.Action(ctx, "acme-shop-pr-1", "redeploy")
	if err != nil || res != (ActionResult{Project: "acme-shop-pr-1", Action: "redeploy", Status: Queued}) {
		t.Errorf("redeploy: %+v %v", res, err)
	}
	if code := postAction(t, f.url, "acme-shop-pr-1", "sleep"); code != http.StatusAccepted {
		t.Errorf("a queued action: %d, want 202 Accepted", code)
	}
	// One done before the answer (local mode) is 200 and says done.
	f.acts.outcome = Done
	if res, err := f.client.Action(ctx, "acme-shop-pr-1", "wake"); err != nil || res.Status != Done {
		t.Errorf("wake done at once: %+v %v", res, err)
	}
	if code := postAction(t, f.url, "acme-shop-pr-1", "wake"); code != http.StatusOK {
		t.Errorf("a done action: %d, want 200", code)
	}
	// An implementation that says nothing is not taken for done.
	f.acts.outcome = "maybe"
	if res, err := f.client.Action(ctx, "acme-shop-pr-1", "sleep"); err != nil || res.Status != Queued {
		t.Errorf("unknown outcome: %+v %v, want queued", res, err)
	}
	f.acts.outcome = ""
	var e apiError
	req, _ := http.NewRequest("POST", f.url+"/api/v1/environments/acme-shop-pr-1/actions/explode", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&e)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(e.Error, "unknown action") {
		t.Errorf("unknown action: %d %+v", resp.StatusCode, e)
	}
	if resp, _ := http.Get(f.url + "/api/v1/environments/acme-shop-pr-1/actions/destroy"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET on an action: %d, want 404", resp.StatusCode)
	}
	f.acts.err = fmt.Errorf("%w: acme-shop-pr-9", ErrNotFound)
	if _, err := f.client.Action(ctx, "acme-shop-pr-9", "destroy"); !errors.Is(err, ErrNotFound) {
		t.Errorf("action on an unknown project: %v", err)
	}
	f.acts.err = fmt.Errorf("%w: made by slipway up", ErrUnsupported)
	_, err = f.client.Action(ctx, "local-x-pr-5", "redeploy")
	var ae *APIError
	if !errors.Is(err, ErrUnsupported) || !errors.As(err, &ae) || ae.Status != http.StatusConflict {
		t.Errorf("unsupported action: %v", err)
	}
	if got := f.acts.Calls(); strings.Join(got, ";") != "redeploy acme-shop-pr-1;sleep acme-shop-pr-1;wake acme-shop-pr-1;wake acme-shop-pr-1;sleep acme-shop-pr-1;destroy acme-shop-pr-9;redeploy local-x-pr-5" {
		t.Errorf("calls %v", got)
	}

	g := newListingFixture(t, func(o *Options) { o.Actions = nil })
	_, err = g.client.Action(ctx, "acme-shop-pr-1", "destroy")
	if !errors.As(err, &ae) || ae.Status != http.StatusNotImplemented || !errors.Is(err, ErrUnsupported) {
		t.Errorf("without Actions: %v, want 501", err)
	}
	wrong := &Client{BaseURL: g.url, Token: "wrong"}
	if _, err := wrong.Action(ctx, "acme-shop-pr-1", "destroy"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong token: %v, want ErrUnauthorized", err)
	}
}

// postAction posts an action with the token and returns the status.
func postAction(t *testing.T, base, project, action string) int {
	t.Helper()
	req, _ := http.NewRequest("POST", base+"/api/v1/environments/"+project+"/actions/"+action, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestListingIsCached(t *testing.T) {
	f := newListingFixture(t, func(o *Options) { o.ListCacheTTL = time.Hour })
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := f.client.Environments(context.Background()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := f.engine.lists.Load(); n != 1 {
		t.Errorf("20 concurrent listings listed the engine %d times, want 1", n)
	}
	// An action invalidates the cache: the next listing shows its effect.
	f.engine.mu.Lock()
	f.engine.envs = f.engine.envs[1:]
	f.engine.mu.Unlock()
	if _, err := f.client.Action(context.Background(), "acme-shop-pr-1", "destroy"); err != nil {
		t.Fatal(err)
	}
	envs, err := f.client.Environments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range envs {
		if e.Project == "acme-shop-pr-1" && e.State != StateAbsent {
			t.Errorf("after destroy the listing still shows %s %s", e.Project, e.State)
		}
	}
	if n := f.engine.lists.Load(); n != 2 {
		t.Errorf("engine listed %d times, want 2", n)
	}
}

func TestListPage(t *testing.T) {
	f := newListingFixture(t, func(o *Options) { o.Public = true })
	get := func(path string) string {
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
		return string(b)
	}
	body := get("/")
	for _, want := range []string{
		`data-project="acme-shop-pr-1" data-phase="ready"`,
		`data-project="acme-shop-pr-2" data-phase="failed"`,
		`data-project="local-x-pr-5" data-phase="ready"`,
		`build · web: exit status 2`,
		`https://pr-1.preview.test`,
		`data-phase-chip="failed"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("list page lacks %q", want)
		}
	}
	if strings.Contains(body, "acme-shop-pr-3") {
		t.Error("list page shows a removed environment without the removed filter")
	}
	body = get("/?phase=failed")
	if strings.Contains(body, `data-project="acme-shop-pr-1"`) || !strings.Contains(body, `data-project="acme-shop-pr-2"`) {
		t.Error("phase filter without JavaScript")
	}
	body = get("/?repo=local%2Fx")
	if !strings.Contains(body, `data-project="local-x-pr-5"`) || strings.Contains(body, `data-project="acme-shop-pr-1"`) || !strings.Contains(body, `<option value="local/x" selected>`) {
		t.Error("repo filter without JavaScript")
	}
	body = get("/?q=nothing-matches")
	if !strings.Contains(body, "Nothing matches") {
		t.Error("empty filter result")
	}
	body = get("/environments/acme-shop-pr-2")
	for _, want := range []string{"Fix tax", "build failed", "exit status 2", "engine: absent"} {
		if !strings.Contains(body, want) {
			t.Errorf("environment page lacks %q", want)
		}
	}
	resp, err := http.Get(f.url + "/environments/acme-shop-pr-404")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown environment page: %d", resp.StatusCode)
	}
}

func TestStaticAssets(t *testing.T) {
	f := newListingFixture(t, nil)
	css := f.srv.assets.urls["app.css"]
	req, _ := http.NewRequest("GET", f.url+css, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Encoding") != "gzip" || !strings.Contains(resp.Header.Get("Cache-Control"), "immutable") || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("css: %d %v", resp.StatusCode, resp.Header)
	}
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	resp, err = http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: %d", resp.StatusCode)
	}
	if resp, _ := http.Get(f.url + "/static/nope.js"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown asset: %d", resp.StatusCode)
	}
}

func TestBuildLogAPI(t *testing.T) {
	f := newListingFixture(t, func(o *Options) { o.BuildLogPoll = 20 * time.Millisecond })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	old, err := f.st.NewBuildLog(ctx, "acme-shop-pr-1", shaB)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(old, "old build")
	old.Close()
	w, err := f.st.NewBuildLog(ctx, "acme-shop-pr-1", shaA)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintln(w, "web | step 1")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}

	// Text, following: the client sees each piece as the build writes it,
	// and the response ends with the build.
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := f.client.BuildLog(ctx, "acme-shop-pr-1", "", true, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	lines := bufio.NewReader(pr)
	expectLine := func(want string) {
		t.Helper()
		got, err := lines.ReadString('\n')
		if err != nil || got != want+"\n" {
			t.Fatalf("read %q %v, want %q", got, err, want)
		}
	}
	expectLine("web | step 1")

	// Events, from the same running build.
	_, events := openEvents(t, ctx, f.url+"/api/v1/environments/acme-shop-pr-1/build-log?sha="+shaA[:8], testToken, "")
	ev, err := readEvent(events)
	if err != nil || ev.Event != "log" || !strings.Contains(ev.Data, "step 1") || ev.ID != "13" {
		t.Fatalf("first event %+v %v", ev, err)
	}

	fmt.Fprintln(w, "web | step 2")
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	expectLine("web | step 2")
	ev, err = readEvent(events)
	if err != nil || ev.Event != "log" || ev.Data != `{"text":"web | step 2\n"}` || ev.ID != "26" {
		t.Fatalf("second event %+v %v", ev, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if rest, err := io.ReadAll(lines); err != nil || len(rest) != 0 {
		t.Errorf("after the build: %q %v", rest, err)
	}
	if err := <-done; err != nil {
		t.Errorf("follow: %v", err)
	}
	ev, err = readEvent(events)
	if err != nil || ev.Event != "end" {
		t.Errorf("end event %+v %v", ev, err)
	}

	// A reconnect resumes from the offset it had.
	_, events = openEvents(t, ctx, f.url+"/api/v1/environments/acme-shop-pr-1/build-log?sha="+shaA, testToken, "13")
	if ev, err := readEvent(events); err != nil || ev.Data != `{"text":"web | step 2\n"}` {
		t.Errorf("resumed %+v %v", ev, err)
	}

	// JSON, and SHA selection.
	var bl BuildLog
	req, _ := http.NewRequest("GET", f.url+"/api/v1/environments/acme-shop-pr-1/build-log?sha="+shaB[:6], nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&bl)
	resp.Body.Close()
	if bl.SHA != shaB || bl.Data != "old build\n" || bl.Running {
		t.Errorf("JSON build log %+v", bl)
	}
	for sha, status := range map[string]int{"zz": 400, "ffff": 404, "g123": 400} {
		var e apiError
		if code := getJSON(t, f.url+"/api/v1/environments/acme-shop-pr-1/build-log?sha="+sha, &e); code != status {
			t.Errorf("sha %s: %d %s, want %d", sha, code, e.Error, status)
		}
	}
	var e apiError
	if code := getJSON(t, f.url+"/api/v1/environments/acme-shop-pr-2/build-log", &e); code != 404 {
		t.Errorf("no build log: %d", code)
	}
}

func TestLogsAPIValidation(t *testing.T) {
	f := newListingFixture(t, nil)
	for path, status := range map[string]int{
		"/api/v1/environments/acme-shop-pr-2/logs":               404, // nothing on the engine
		"/api/v1/environments/acme-shop-pr-1/logs?service=nope":  404,
		"/api/v1/environments/acme-shop-pr-1/logs?service=a%20b": 400,
		"/api/v1/environments/acme-shop-pr-1/logs?tail=-3":       400,
	} {
		var e apiError
		if code := getJSON(t, f.url+path, &e); code != status {
			t.Errorf("%s: %d %s, want %d", path, code, e.Error, status)
		}
	}
}

// routeProblems is a fixed set of the proxy's route problems.
type routeProblems map[string][]string

func (r routeProblems) RouteProblems() map[string][]string { return r }

// The routes the proxy refused show on the environment, in the API and on
// its page, so whoever sees a 404 on a preview host can learn why.
func TestRouteProblemsShowOnTheEnvironment(t *testing.T) {
	refused := `acme-shop-pr-1-evil-1 host "pr-2.preview.test": route not declared by Slipway for acme/shop#1, not served`
	f := newListingFixture(t, func(o *Options) {
		o.Public = true
		o.Routes = routeProblems{"acme-shop-pr-1": {refused}}
	})
	d, err := f.client.Environment(context.Background(), "acme-shop-pr-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(d.RouteProblems) != 1 || d.RouteProblems[0] != refused {
		t.Errorf("route problems %q", d.RouteProblems)
	}
	if d, err := f.client.Environment(context.Background(), "local-x-pr-5"); err != nil || len(d.RouteProblems) != 0 {
		t.Errorf("another environment: %q %v", d.RouteProblems, err)
	}
	resp, err := http.Get(f.url + "/environments/acme-shop-pr-1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if want := "Route not served: " + html.EscapeString(refused); !strings.Contains(string(b), want) {
		t.Errorf("environment page lacks %q", want)
	}
}
