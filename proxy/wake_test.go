package proxy

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestDecideWake(t *testing.T) {
	const limit = 30 * time.Second
	tests := []struct {
		name string
		f    wakeFacts
		want wakeAction
	}{
		{"running is served", wakeFacts{Phase: PhaseRunning, CanWake: true, Limit: limit}, wakeServe},
		{"running is served without wakes too", wakeFacts{Phase: PhaseRunning}, wakeServe},
		{"a host gone gets its page", wakeFacts{Gone: true, CanWake: true, Waking: true, Limit: limit}, wakeAnswer},
		{"stopped wakes", wakeFacts{Phase: PhaseStopped, CanWake: true, Limit: limit}, wakeStart},
		{"stopped joins the wake under way", wakeFacts{Phase: PhaseStopped, CanWake: true, Waking: true, WakeAge: time.Second, Limit: limit}, wakeHold},
		{"a wake a limit old that started nothing is asked again", wakeFacts{Phase: PhaseStopped, CanWake: true, Waking: true, WakeAge: limit, Limit: limit}, wakeStart},
		{"stopped without wakes: the waiting page", wakeFacts{Phase: PhaseStopped, Limit: limit}, wakeAnswer},
		{"starting while waking holds", wakeFacts{Phase: PhaseStarting, CanWake: true, Waking: true, WakeAge: time.Hour, Limit: limit}, wakeHold},
		{"starting without a wake (a deploy): its page", wakeFacts{Phase: PhaseStarting, CanWake: true, Limit: limit}, wakeAnswer},
		{"queued while waking (a push arrived) holds", wakeFacts{Phase: PhaseQueued, CanWake: true, Waking: true, Limit: limit}, wakeHold},
		{"building while waking holds", wakeFacts{Phase: PhaseBuilding, CanWake: true, Waking: true, Limit: limit}, wakeHold},
		{"failed ends the hold", wakeFacts{Phase: PhaseFailed, CanWake: true, Waking: true, Limit: limit}, wakeAnswer},
		{"unhealthy ends the hold", wakeFacts{Phase: PhaseUnhealthy, CanWake: true, Waking: true, Limit: limit}, wakeAnswer},
		{"removing ends the hold", wakeFacts{Phase: PhaseRemoving, CanWake: true, Waking: true, Limit: limit}, wakeAnswer},
		{"failed, not waking", wakeFacts{Phase: PhaseFailed, CanWake: true, Limit: limit}, wakeAnswer},
	}
	for _, tt := range tests {
		if got := decideWake(tt.f); got != tt.want {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}

// The bookkeeping around decideWake: the first look starts the wake, the
// others join it, a wake asked for a limit ago is asked for again (by the
// clock given), and the wake is over once none of the project's hosts is
// on its way up.
func TestWakesCoalesce(t *testing.T) {
	routes := NewRoutes(nil, anyHost{})
	calls := 0
	wk := newWakes(routes, func(string) { calls++ }, time.Minute)
	defer wk.close()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	wk.now = func() time.Time { return now }
	asleep := &Route{Project: "p1", Phase: PhaseStopped}
	steps := []struct {
		rt   *Route
		want wakeAction
	}{
		{asleep, wakeStart},
		{asleep, wakeHold},
		{&Route{Project: "p1", Phase: PhaseStarting}, wakeHold},
	}
	for i, s := range steps {
		if got := wk.step("p1", s.rt); got != s.want {
			t.Fatalf("step %d: %v, want %v", i, got, s.want)
		}
	}
	now = now.Add(time.Minute)
	if got := wk.step("p1", asleep); got != wakeStart {
		t.Fatalf("a wake a limit old: %v, want it asked again", got)
	}
	c := ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("starting"))
	routes.PutContainer(c) // starting: still waking
	if _, ok := wk.flights["p1"]; !ok {
		t.Fatal("the wake was forgotten while the preview starts")
	}
	c.Health = "healthy"
	routes.PutContainer(c)
	if _, ok := wk.flights["p1"]; ok {
		t.Fatal("the wake outlived the preview's start")
	}
	if got := wk.step("p1", asleep); got != wakeStart {
		t.Fatalf("after the wake: %v, want a new wake", got)
	}
}

// A pass of a container's own check reported by the engine serves that
// run of the container only; it makes no route by itself.
func TestRoutesCheckPassed(t *testing.T) {
	r := NewRoutes(nil, anyHost{})
	run1 := time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC)
	run2 := run1.Add(time.Minute)
	started := func(at time.Time) func(*Container) { return func(c *Container) { c.Started = at } }
	web := func(mods ...func(*Container)) Container {
		return ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", mods...)
	}
	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"a pass for an unknown container makes no route", func() { r.CheckPassed("id-nobody", run1) }, ""},
		{"starting", func() { r.PutContainer(web(health("starting"), started(run1))) }, "p1/web starting"},
		{"a pass of another run changes nothing", func() { r.CheckPassed("id-p1-web-1", run2) }, "p1/web starting"},
		{"the pass of this run serves", func() { r.CheckPassed("id-p1-web-1", run1) }, "p1/web running 10.0.0.2:80"},
		{"Docker's unhealthy wins", func() { r.PutContainer(web(health("unhealthy"), started(run1))) }, "p1/web unhealthy"},
		{"stopped", func() { r.PutContainer(web(health("unhealthy"), started(run1), stopped)) }, "p1/web stopped"},
		{"the next run starts unproven", func() { r.PutContainer(web(health("starting"), started(run2))) }, "p1/web starting"},
		{"the old run's pass again changes nothing", func() { r.CheckPassed("id-p1-web-1", run1) }, "p1/web starting"},
		{"reported before the observer saw the run", func() {
			r.PutContainer(web(health("starting"), started(run1), stopped))
			r.CheckPassed("id-p1-web-1", run2)
			r.PutContainer(web(health("starting"), started(run2)))
		}, "p1/web running 10.0.0.2:80"},
		{"Docker's healthy", func() { r.PutContainer(web(health("healthy"), started(run2))) }, "p1/web running 10.0.0.2:80"},
	}
	for _, s := range steps {
		s.do()
		got := ""
		if rt := r.Lookup("pr-1.localhost"); rt != nil {
			got = summary(rt)
		}
		if got != s.want {
			t.Fatalf("%s: %q, want %q", s.name, got, s.want)
		}
	}
	// An undeclared host stays refused, passed check or not.
	owned := NewRoutes(nil, refuseAll{})
	owned.PutContainer(web(health("starting"), started(run1)))
	owned.CheckPassed("id-p1-web-1", run1)
	if owned.Lookup("pr-1.localhost") != nil {
		t.Fatal("a passed check made a route of an undeclared host")
	}
}

type refuseAll struct{}

func (refuseAll) OwnsHost(string, string, int, string) error { return errors.New("not ours") }

// wakeEnv is a testEnv whose host pr-1.localhost is served by a real
// backend whose container sleeps; OnWake counts the wakes asked for and
// runs onWake.
type wakeEnv struct {
	*testEnv
	asleep Container
	wakes  atomic.Int32
}

func newWakeEnv(t *testing.T, limit time.Duration, onWake func(e *wakeEnv)) *wakeEnv {
	t.Helper()
	we := &wakeEnv{}
	we.testEnv = newTestEnv(t, HandlerOptions{WakeTimeout: limit, OnWake: func(project string) {
		if project != "p1" {
			t.Errorf("woke %q, want p1", project)
		}
		we.wakes.Add(1)
		if onWake != nil {
			go onWake(we)
		}
	}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		io.WriteString(w, "real answer to "+r.Method+" "+string(b))
	}))
	t.Cleanup(srv.Close)
	we.asleep = backendContainer(t, srv, "p1-web-1", "p1", "pr-1.localhost")
	we.asleep.Running, we.asleep.Health = false, "starting"
	we.routes.PutContainer(we.asleep)
	return we
}

// awake puts the container running with health h.
func (we *wakeEnv) awake(h string) {
	c := we.asleep
	c.Running, c.Health = true, h
	we.routes.PutContainer(c)
}

func (we *wakeEnv) do(t *testing.T, ctx context.Context, method, body string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, we.front.URL+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = "pr-1.localhost"
	resp, err := we.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

func waitHolding(t *testing.T, h *Handler, n int) {
	t.Helper()
	waitFor(t, 30*time.Second, "held requests", func() (bool, string) {
		return h.Holding() == n, "holding " + strconv.Itoa(h.Holding())
	})
}

// Concurrent first requests of every method share one wake and all get
// the backend's own answer once its route runs.
func TestWakeHoldsConcurrentRequestsOnOneWake(t *testing.T) {
	we := newWakeEnv(t, time.Minute, func(we *wakeEnv) { we.awake("starting") })
	const n = 6
	var wg sync.WaitGroup
	type result struct {
		code int
		body string
		err  error
	}
	results := make([]result, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			method, body := http.MethodGet, ""
			if i%2 == 1 {
				method, body = http.MethodPost, "order "+strconv.Itoa(i)
			}
			code, got, err := we.do(t, context.Background(), method, body)
			results[i] = result{code, got, err}
			if err == nil && code == http.StatusOK && got != "real answer to "+method+" "+body {
				t.Errorf("request %d: body %q", i, got)
			}
		}()
	}
	waitHolding(t, we.handler, n)
	we.awake("healthy")
	wg.Wait()
	for i, r := range results {
		if r.err != nil || r.code != http.StatusOK {
			t.Errorf("request %d: %d %q %v", i, r.code, firstLine(r.body), r.err)
		}
	}
	if got := we.wakes.Load(); got != 1 {
		t.Errorf("%d wakes asked for, want 1", got)
	}
	if h := we.handler.Holding(); h != 0 {
		t.Errorf("still holding %d", h)
	}
}

// A wake that fails (the controller publishes the failure) answers the
// held request with the failure page at once.
func TestWakeFailureAnswersFailurePage(t *testing.T) {
	we := newWakeEnv(t, time.Hour, func(we *wakeEnv) {
		_ = we.routes.SetState("p1", []string{"pr-1.localhost"}, State{Phase: PhaseFailed, Step: "wake", Reason: "service web: exited with code 3"})
	})
	code, body, err := we.do(t, context.Background(), http.MethodGet, "")
	if err != nil || code != http.StatusBadGateway || !strings.Contains(body, "exited with code 3") {
		t.Fatalf("%d %q %v, want the failure page", code, firstLine(body), err)
	}
}

// A request held for the whole limit gets the waiting page, which
// reloads itself; nothing ever wakes here, so no machine is too slow.
func TestWakeLimitAnswersWaitingPage(t *testing.T) {
	we := newWakeEnv(t, 200*time.Millisecond, nil)
	req, _ := http.NewRequest(http.MethodGet, we.front.URL+"/", nil)
	req.Host = "pr-1.localhost"
	resp, err := we.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(b), "waking up") {
		t.Fatalf("%d Retry-After %q %q, want the waiting page", resp.StatusCode, resp.Header.Get("Retry-After"), firstLine(string(b)))
	}
	if we.wakes.Load() != 1 {
		t.Fatalf("%d wakes asked for, want 1", we.wakes.Load())
	}
}

// A client that goes away releases its hold.
func TestWakeClientCancelReleasesHold(t *testing.T) {
	we := newWakeEnv(t, time.Hour, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := we.do(t, ctx, http.MethodGet, "")
		done <- err
	}()
	waitHolding(t, we.handler, 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want canceled", err)
	}
	waitHolding(t, we.handler, 0)
}

// Beyond the cap on held requests, a request gets the waiting page at
// once instead of a hold.
func TestWakeHoldsAtMostMaxHeld(t *testing.T) {
	we := newWakeEnv(t, time.Hour, nil)
	we.handler.wake.maxHeld = 1
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := we.do(t, ctx, http.MethodGet, "")
		done <- err
	}()
	waitHolding(t, we.handler, 1)
	// Answered at once when right; the bound only ends a wrong hold.
	bounded, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	code, body, err := we.do(t, bounded, http.MethodGet, "")
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "waking up") {
		t.Fatalf("second request: %d %q %v, want the waiting page at once", code, firstLine(body), err)
	}
	if h := we.handler.Holding(); h != 1 {
		t.Fatalf("holding %d, want 1", h)
	}
	cancel()
	<-done
	waitHolding(t, we.handler, 0)
}

// With no limit, a request for a sleeping host asks for the wake and gets
// the waiting page at once, as before.
func TestWakeWithoutLimitAnswersAtOnce(t *testing.T) {
	we := newWakeEnv(t, 0, nil)
	code, body, err := we.do(t, context.Background(), http.MethodGet, "")
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "waking up") {
		t.Fatalf("%d %q %v", code, firstLine(body), err)
	}
	if we.wakes.Load() != 1 {
		t.Fatalf("%d wakes asked for, want 1", we.wakes.Load())
	}
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return s
}
