package controller_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/internal/contract"
)

// Over limits.environments a PR waits, says so, and deploys when a slot frees.
func TestEnvironmentLimitQueuesInOrder(t *testing.T) {
	t.Parallel()
	lim := config.Defaults().Limits
	lim.Environments = 1
	h := newHarness(t, harnessOptions{limits: &lim})
	n1, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: app("first")})
	h.deliver("pull_request", h.prEvent("opened", n1, "alice"))
	h.waitServes(n1, "version first")
	n2, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: app("second")})
	h.deliver("pull_request", h.prEvent("opened", n2, "alice"))
	eventually(t, 20*time.Second, "the second PR to wait", func() (bool, string) {
		p := h.phase(n2)
		return strings.HasPrefix(p, string(contract.PhaseWaiting)) && strings.Contains(p, "limit 1"), p
	})
	eventually(t, 10*time.Second, "the wait on GitHub", func() (bool, string) {
		for _, c := range h.fake.Comments(h.repo, n2) {
			if strings.Contains(c.Body, "limit 1") {
				return true, ""
			}
		}
		return false, "no comment says it waits"
	})
	h.fake.ClosePR(h.repo, n1)
	h.deliver("pull_request", h.prEvent("closed", n1, "alice"))
	h.waitGone(n1)
	h.waitServes(n2, "version second")
}

// An environment without a push for its TTL is removed, and stays removed
// until the next push.
func TestTTLRemovesIdleEnvironmentsUntilThePush(t *testing.T) {
	t.Parallel()
	ttl := config.Duration(time.Hour)
	h := newHarness(t, harnessOptions{ttl: &ttl})
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: app("ttl")})
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	h.waitServes(n, "version ttl")
	h.waitReady(n)
	h.clock.Advance(2 * time.Hour)
	h.ctrl.Enqueue(keyOf(h, n)) // what the minute ticker does
	h.waitGone(n)
	eventually(t, 10*time.Second, "held removal", func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseRemoved)) && strings.Contains(p, "without a push"), p
	})
	h.ctrl.Enqueue(keyOf(h, n)) // a resync does not bring it back
	time.Sleep(2 * time.Second)
	if code, _ := h.get(n); code == 200 {
		t.Fatal("an expired environment came back without a push")
	}
	h.fake.Push(h.repo, n, app("ttl-2"))
	h.deliver("pull_request", h.prEvent("synchronize", n, "alice"))
	h.waitServes(n, "version ttl-2")
}

// sleep_after stops an idle environment; a request wakes it.
func TestSleepAndWakeOnRequest(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	files := app("sleepy")
	files[".slipway.yml"] = "sleep_after: 1h\n"
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: files})
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	h.waitServes(n, "version sleepy")
	h.waitReady(n)
	h.clock.Advance(2 * time.Hour)
	h.ctrl.Enqueue(keyOf(h, n))
	eventually(t, 30*time.Second, "sleeping", func() (bool, string) {
		env, _ := h.engine.Inspect(context.Background(), h.project(n))
		return env != nil && env.Phase() == "stopped" && strings.HasPrefix(h.phase(n), string(contract.PhaseSleeping)), h.phase(n)
	})
	// Back to the present, so the woken environment is not idle at once.
	h.clock.Advance(-2 * time.Hour)
	// The request that wakes it is held until it is served again.
	if code, body := h.get(n); code != 200 || !strings.Contains(body, "version sleepy") {
		t.Fatalf("the request that woke the environment: %d %q, want its page", code, firstLine(body))
	}
	eventually(t, 10*time.Second, "ready again", func() (bool, string) {
		p := h.phase(n)
		return strings.HasPrefix(p, string(contract.PhaseReady)), p
	})
}

// Over limits.builds a PR says it waits for a build slot, without holding
// a worker, and builds when the slot frees.
func TestBuildSlotsQueue(t *testing.T) {
	t.Parallel()
	lim := config.Defaults().Limits
	lim.Builds = 1
	h := newHarness(t, harnessOptions{limits: &lim})
	slow := app("slow")
	slow["Dockerfile"] = "FROM slipway-test/busybox:1\nRUN sleep 4\nCOPY index.html /www/index.html\nCMD [\"httpd\", \"-f\", \"-p\", \"8080\", \"-h\", \"/www\"]\n"
	n1, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: slow})
	h.deliver("pull_request", h.prEvent("opened", n1, "alice"))
	eventually(t, 20*time.Second, "the first build", func() (bool, string) {
		p := h.phase(n1)
		return strings.HasPrefix(p, string(contract.PhaseBuilding)), p
	})
	n2, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: app("second")})
	h.deliver("pull_request", h.prEvent("opened", n2, "alice"))
	eventually(t, 10*time.Second, "the second PR to wait for a build slot", func() (bool, string) {
		p := h.phase(n2)
		return strings.Contains(p, "waiting for a build slot"), p
	})
	// A close of another PR is handled meanwhile: workers are not all blocked.
	n3, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: app("third")})
	h.fake.ClosePR(h.repo, n3)
	h.deliver("pull_request", h.prEvent("closed", n3, "alice"))
	h.waitServes(n1, "version slow")
	h.waitServes(n2, "version second")
}
