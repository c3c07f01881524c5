package controller_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// The product: open a PR, get a URL; push, see the change; close, and it is gone.
func TestOpenPushCloseLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	n, sha1 := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Title: "Add a shop", Files: app("one")})
	if code := h.deliver("pull_request", h.prEvent("opened", n, "alice")); code != 202 {
		t.Fatalf("opened delivery: %d", code)
	}
	h.waitServes(n, "version one")

	sha2 := h.fake.Push(h.repo, n, app("two"))
	h.deliver("pull_request", h.prEvent("synchronize", n, "alice"))
	h.waitServes(n, "version two")
	h.waitReady(n)
	env, err := h.engine.Inspect(context.Background(), h.project(n))
	if err != nil || env == nil || env.SHA != sha2 {
		t.Fatalf("environment %+v (err %v), want SHA %s", env, err, sha2)
	}

	h.fake.ClosePR(h.repo, n)
	h.deliver("pull_request", h.prEvent("closed", n, "alice"))
	h.waitGone(n)
	eventually(t, 30*time.Second, "removed phase", func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseRemoved)), p
	})

	// What GitHub shows: one deployment per SHA, ending inactive; one comment.
	// (The history records "removed" just before the report goes out.)
	eventually(t, 10*time.Second, "the removal on GitHub", func() (bool, string) {
		for _, c := range h.fake.Comments(h.repo, n) {
			if strings.Contains(c.Body, "slipway:preview") && strings.Contains(strings.ToLower(c.Body), "removed") {
				return true, ""
			}
		}
		return false, "comment does not say removed"
	})
	deps := h.fake.Deployments(h.repo)
	shas := map[string]bool{}
	for _, d := range deps {
		shas[d.SHA] = true
		if d.Environment != fmt.Sprintf("pr-%d", n) || !d.TransientEnvironment || d.ProductionEnvironment {
			t.Errorf("deployment %+v: want environment pr-%d, transient, not production", d, n)
		}
		if d.LatestState() != "inactive" {
			t.Errorf("deployment of %s ends %q, want inactive", d.SHA[:7], d.LatestState())
		}
	}
	if len(deps) != 2 || !shas[sha1] || !shas[sha2] {
		t.Errorf("deployments for %v, want one each for %s and %s", shas, sha1[:7], sha2[:7])
	}
	var sticky []githubfake.Comment
	for _, c := range h.fake.Comments(h.repo, n) {
		if strings.Contains(c.Body, "slipway:preview") {
			sticky = append(sticky, c)
		}
	}
	if len(sticky) != 1 {
		t.Fatalf("%d sticky comments, want 1", len(sticky))
	}
	if !strings.Contains(strings.ToLower(sticky[0].Body), "removed") {
		t.Errorf("sticky comment after close does not say the environment was removed:\n%s", sticky[0].Body)
	}
	var states []string
	for _, s := range h.fake.CommitStatuses(h.repo, sha2) {
		if s.Context == "slipway/preview" {
			states = append(states, s.State)
		}
	}
	if len(states) == 0 || states[len(states)-1] != "success" {
		t.Errorf("commit statuses of the last SHA %v, want ending in success", states)
	}
}

// A burst of pushes builds at most twice and ends at the last SHA with one
// environment.
func TestBurstOfPushesConvergesToTheLastSHA(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{debounce: 500 * time.Millisecond})
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: app("0")})
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	h.waitServes(n, "version 0")
	before := h.counter("slipway_builds_total")
	// The pushes arrive within the debounce of each other by the
	// controller's clock, however long a loaded machine takes to deliver
	// them; then the burst goes quiet.
	h.clock.Freeze()
	var last string
	for i := 1; i <= 20; i++ {
		last = h.fake.Push(h.repo, n, app(fmt.Sprint(i)))
		h.deliver("pull_request", h.prEvent("synchronize", n, "alice"))
	}
	h.clock.Thaw()
	h.clock.Advance(time.Second)
	h.waitServes(n, "version 20")
	if builds := h.counter("slipway_builds_total") - before; builds > 2 {
		t.Errorf("%v builds for a burst of 20 pushes, want at most 2", builds)
	}
	projects, _ := h.engine.Projects(context.Background())
	count := 0
	for _, ref := range projects {
		if ref.Repo == h.repo {
			count++
		}
	}
	env, _ := h.engine.Inspect(context.Background(), h.project(n))
	if count != 1 || env == nil || env.SHA != last {
		t.Errorf("%d environments, SHA %v; want one at %s", count, env, last[:7])
	}
}

// A close that arrives while the first build runs: nothing is published and
// nothing remains.
func TestCloseDuringFirstBuildPublishesNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	files := app("slow")
	files["Dockerfile"] = "FROM slipway-test/busybox:1\nRUN sleep 4\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: files})

	var served sync.Once
	stop := make(chan struct{})
	sawServe := false
	go func() { // watch the preview host the whole time
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
				if code, _ := h.get(n); code == 200 {
					served.Do(func() { sawServe = true })
				}
			}
		}
	}()
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	eventually(t, 30*time.Second, "the build to start", func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseBuilding)), p
	})
	h.fake.ClosePR(h.repo, n)
	h.deliver("pull_request", h.prEvent("closed", n, "alice"))
	eventually(t, 60*time.Second, "removed phase", func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseRemoved)), p
	})
	time.Sleep(6 * time.Second) // past the end of the cancelled build
	close(stop)
	h.waitGone(n)
	if sawServe {
		t.Error("the preview of a closed PR was served")
	}
	for _, d := range h.fake.Deployments(h.repo) {
		for _, s := range d.Statuses {
			if s.State == "success" {
				t.Errorf("deployment %d got a success status", d.ID)
			}
		}
	}
}

// The same delivery five times is acted on once.
func TestRedeliveryIsActedOnOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: app("once")})
	ev := h.prEvent("opened", n, "alice")
	codes := map[int]int{}
	for i := 0; i < 5; i++ {
		codes[h.deliverID("pull_request", "same-delivery", ev)]++
	}
	if codes[202] != 1 || codes[200] != 4 {
		t.Errorf("status codes %v, want one 202 and four 200", codes)
	}
	h.waitServes(n, "version once")
	if got := h.counter("slipway_controller_events_total"); got != 1 {
		t.Errorf("%v events reached the controller, want 1", got)
	}
}

// A dropped closed webhook: the resync removes the environment.
func TestResyncRemovesTheEnvironmentOfAClosedPR(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{resync: 2 * time.Second})
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: app("x")})
	// Not even the opened webhook is delivered: the resync finds the open PR.
	h.waitServes(n, "version x")
	h.fake.ClosePR(h.repo, n)
	h.waitGone(n)
}

// A failed build reports the step and log, on the deployment, the commit
// status and the comment; it is not retried until the SHA changes.
func TestFailedBuildIsReportedAndNotRetried(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	files := app("broken")
	files["Dockerfile"] = "FROM slipway-test/busybox:1\nRUN echo compiling the frontend && echo 'error TS2304: cannot find name foo' && exit 2\n"
	n, sha := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: files})
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	eventually(t, 60*time.Second, "failed phase", func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseFailed)), p
	})
	eventually(t, 10*time.Second, "the failure on GitHub", func() (bool, string) {
		var body string
		for _, c := range h.fake.Comments(h.repo, n) {
			body = c.Body
		}
		deps := h.fake.Deployments(h.repo)
		if len(deps) == 0 {
			return false, "no deployment"
		}
		return deps[0].LatestState() == "failure" && strings.Contains(body, "TS2304") && strings.Contains(body, "build"), deps[0].LatestState() + " / " + body
	})
	var states []string
	for _, s := range h.fake.CommitStatuses(h.repo, sha) {
		states = append(states, s.State)
	}
	if len(states) == 0 || states[len(states)-1] != "failure" {
		t.Errorf("commit statuses %v, want ending in failure", states)
	}
	builds := h.counter("slipway_builds_total")
	h.ctrl.Enqueue(keyOf(h, n))
	time.Sleep(2 * time.Second)
	if again := h.counter("slipway_builds_total"); again != builds {
		t.Errorf("a failed SHA was built again (%v builds, was %v)", again, builds)
	}
	// A fix is pushed: it builds and serves.
	h.fake.Push(h.repo, n, app("fixed"))
	h.deliver("pull_request", h.prEvent("synchronize", n, "alice"))
	h.waitServes(n, "version fixed")
	if left, _ := dockertest.Leftovers(context.Background(), h.cli, contract.LabelProject+"="+h.project(n)); len(left) == 0 {
		t.Error("no objects for a running environment?")
	}
}
