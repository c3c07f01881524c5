package controller_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/internal/contract"
)

// putToSleep deploys files as PR n, waits until it serves want, then lets
// sleep_after put it to sleep and comes back to the present (so the woken
// environment is not idle at once).
func (h *harness) putToSleep(files githubfake.Files, want string) int {
	h.t.Helper()
	files[".slipway.yml"] = "sleep_after: 1h\n"
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: files})
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	h.waitServes(n, want)
	h.waitReady(n)
	h.clock.Advance(2 * time.Hour)
	h.ctrl.Enqueue(keyOf(h, n))
	eventually(h.t, 30*time.Second, "sleeping", func() (bool, string) {
		env, _ := h.engine.Inspect(context.Background(), h.project(n))
		return env != nil && env.Phase() == "stopped" && strings.HasPrefix(h.phase(n), string(contract.PhaseSleeping)), h.phase(n)
	})
	h.clock.Advance(-2 * time.Hour)
	return n
}

// startsTwiceApp is app(version) whose web container refuses its second
// start when fail, or whose healthcheck fails from its second start on
// when !fail: a preview that deploys, sleeps, and then cannot wake.
func startsTwiceApp(version string, fail bool) githubfake.Files {
	files := app(version)
	if fail {
		files["Dockerfile"] = "FROM slipway-test/busybox:1\nCOPY index.html /www/index.html\n" +
			`CMD ["sh", "-c", "if [ -f /started ]; then echo refusing a second start >&2; exit 3; fi; touch /started; exec httpd -f -p 8080 -h /www"]` + "\n"
		return files
	}
	files["Dockerfile"] = "FROM slipway-test/busybox:1\nCOPY index.html /www/index.html\n" +
		`CMD ["sh", "-c", "if [ -f /started ]; then touch /again; fi; touch /started; exec httpd -f -p 8080 -h /www"]` + "\n"
	// Fails from the second start on; turns unhealthy only after 1000
	// failed checks, long after any hold limit of these tests.
	files["compose.yaml"] = strings.Replace(files["compose.yaml"],
		`test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]`,
		`test: ["CMD-SHELL", "test ! -f /again && wget -q -O /dev/null http://127.0.0.1:8080/"]`, 1)
	files["compose.yaml"] = strings.Replace(files["compose.yaml"], "retries: 60", "retries: 1000", 1)
	return files
}

// Concurrent first requests to a sleeping preview share one wake (one
// OnWake, one engine Start), are held while it wakes, and all get the
// real page.
func TestWakeHoldsConcurrentFirstRequests(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	n := h.putToSleep(app("drowsy"), "version drowsy")
	const clients = 6
	var wg sync.WaitGroup
	got := make([]string, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, body := h.get(n)
			got[i] = fmt.Sprintf("%d %s", code, firstLine(body))
		}()
	}
	wg.Wait()
	for i, g := range got {
		if g != "200 version drowsy" {
			t.Errorf("request %d: %q, want the real page", i, g)
		}
	}
	if w, s := h.wakes.Load(), h.starts.Load(); w != 1 || s != 1 {
		t.Errorf("%d wakes asked for and %d engine starts, want one of each", w, s)
	}
	eventually(t, 3*time.Minute, "ready again", func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseReady)), p
	})
}

// A preview that fails to wake answers the held request with the failure
// page as soon as the controller records the failure, not at the end of
// the hold (a minute here) and not never.
func TestWakeFailureAnswersFailurePage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{wakeTimeout: time.Hour})
	n := h.putToSleep(startsTwiceApp("fragile", true), "version fragile")
	code, body := h.get(n)
	if code != http.StatusBadGateway || !strings.Contains(body, "Deploy failed") || !strings.Contains(body, "exited with code 3") {
		t.Fatalf("%d %q, want the failure page naming the exit", code, body)
	}
	// The page is shown before the history is written.
	eventually(t, 3*time.Minute, "the failure in the history", func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseFailed)), p
	})
}

// A request that outlasts the hold limit gets the waiting page, which
// reloads itself. The preview's check never passes after its wake (and
// the controller gives up only after its ready_timeout, a minute), so no
// machine is too slow or too fast for it.
func TestWakeLimitAnswersWaitingPage(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{wakeTimeout: 3 * time.Second})
	n := h.putToSleep(startsTwiceApp("stuck", false), "version stuck")
	req, _ := http.NewRequest(http.MethodGet, h.proxy.URL+"/", nil)
	req.Host = fmt.Sprintf("pr-%d.%s", n, h.domain)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" || !strings.Contains(string(body), "reloads by itself") {
		t.Fatalf("%d (Retry-After %q) %q, want the waiting page", resp.StatusCode, resp.Header.Get("Retry-After"), firstLine(string(body)))
	}
	if w := h.wakes.Load(); w != 1 {
		t.Errorf("%d wakes asked for, want 1", w)
	}
}

// A held request whose client goes away releases its hold.
func TestWakeClientCancelReleasesHold(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{wakeTimeout: time.Hour})
	n := h.putToSleep(startsTwiceApp("abandoned", false), "version abandoned")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.proxy.URL+"/", nil)
		req.Host = fmt.Sprintf("pr-%d.%s", n, h.domain)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			err = fmt.Errorf("answered %d", resp.StatusCode)
		}
		done <- err
	}()
	eventually(t, 3*time.Minute, "the request to be held", func() (bool, string) {
		return h.handler.Holding() == 1, fmt.Sprintf("holding %d", h.handler.Holding())
	})
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("client: %v, want it cancelled while held", err)
	}
	eventually(t, 3*time.Minute, "the hold to be released", func() (bool, string) {
		return h.handler.Holding() == 0, fmt.Sprintf("holding %d", h.handler.Holding())
	})
}
