package controller

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

func TestPhaseTables(t *testing.T) {
	failed := &failure{Step: "build", Service: "web", Terminal: true}
	for _, tc := range []struct {
		prev       contract.Phase
		t          transition
		report     gh.Phase // "" for none
		route      contract.RouteState
		show, hide bool
	}{
		{"", transition{Phase: contract.PhaseWaiting, Wait: contract.WaitEnvironmentSlot}, gh.PhaseQueued, contract.RouteState{Phase: contract.RouteQueued, Step: "waiting"}, true, false},
		{"", transition{Phase: contract.PhaseWaiting, Wait: contract.WaitBuildSlot}, gh.PhaseQueued, contract.RouteState{Phase: contract.RouteQueued, Step: "waiting"}, true, false},
		{"", transition{Phase: contract.PhaseWaiting, Wait: contract.WaitApproval}, gh.PhaseAwaitingApproval, contract.RouteState{}, false, false},
		{contract.PhaseWaiting, transition{Phase: contract.PhaseBuilding}, gh.PhaseBuilding, contract.RouteState{Phase: contract.RouteBuilding, Step: "building"}, true, false},
		{contract.PhaseBuilding, transition{Phase: contract.PhaseDeploying}, gh.PhaseDeploying, contract.RouteState{Phase: contract.RouteStarting, Step: "deploying"}, true, false},
		{contract.PhaseDeploying, transition{Phase: contract.PhaseReady}, gh.PhaseReady, contract.RouteState{}, false, true},
		{contract.PhaseSleeping, transition{Phase: contract.PhaseReady}, "", contract.RouteState{}, false, true},
		{contract.PhaseBuilding, transition{Phase: contract.PhaseFailed, Detail: "no such file", Failure: failed}, gh.PhaseFailed,
			contract.RouteState{Phase: contract.RouteFailed, Step: "build", Service: "web", Reason: "no such file"}, true, false},
		{contract.PhaseReady, transition{Phase: contract.PhaseSleeping}, "", contract.RouteState{}, false, false},
		{contract.PhaseReady, transition{Phase: contract.PhaseRemoving, Detail: "closed"}, "", contract.RouteState{Phase: contract.RouteRemoving, Reason: "closed"}, true, false},
		{contract.PhaseRemoving, transition{Phase: contract.PhaseRemoved}, gh.PhaseRemoved, contract.RouteState{}, false, true},
	} {
		name := string(tc.prev) + "→" + string(tc.t.Phase) + "/" + string(tc.t.Wait)
		p, ok := reportPhase(tc.prev, tc.t)
		if p != tc.report || ok != (tc.report != "") {
			t.Errorf("%s: report %q %v, want %q", name, p, ok, tc.report)
		}
		st, show, hide := routeState(tc.t)
		if st != tc.route || show != tc.show || hide != tc.hide {
			t.Errorf("%s: route %+v show %v clear %v, want %+v %v %v", name, st, show, hide, tc.route, tc.show, tc.hide)
		}
	}
}

func TestRepeats(t *testing.T) {
	prev := store.Environment{Phase: contract.PhaseWaiting, SHA: "a", Wait: contract.WaitEnvironmentSlot, Detail: "2 ahead"}
	failedPrev := store.Environment{Phase: contract.PhaseFailed, SHA: "a", Detail: "boom"}
	for _, tc := range []struct {
		name string
		prev store.Environment
		t    transition
		want bool
	}{
		{"still waiting, fewer ahead", prev, transition{Phase: contract.PhaseWaiting, SHA: "a", Wait: contract.WaitEnvironmentSlot, Detail: "1 ahead"}, true},
		{"waiting for another slot", prev, transition{Phase: contract.PhaseWaiting, SHA: "a", Wait: contract.WaitBuildSlot}, false},
		{"waiting at a new SHA", prev, transition{Phase: contract.PhaseWaiting, SHA: "b", Wait: contract.WaitEnvironmentSlot}, false},
		{"building after waiting", prev, transition{Phase: contract.PhaseBuilding, SHA: "a"}, false},
		{"the same final failure", failedPrev, transition{Phase: contract.PhaseFailed, SHA: "a", Detail: "boom", Failure: &failure{Terminal: true}}, true},
		{"the same failure, now retried", failedPrev, transition{Phase: contract.PhaseFailed, SHA: "a", Detail: "boom", Failure: &failure{}}, false},
		{"another failure", failedPrev, transition{Phase: contract.PhaseFailed, SHA: "a", Detail: "bang", Failure: &failure{Terminal: true}}, false},
		{"building again", store.Environment{Phase: contract.PhaseBuilding, SHA: "a"}, transition{Phase: contract.PhaseBuilding, SHA: "a"}, false},
	} {
		if got := repeats(tc.prev, tc.t); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// recordingRoutes is the proxy's side of RouteStates, recorded.
type recordingRoutes struct {
	mu     sync.Mutex
	states []contract.RouteState
	clears int
}

func (r *recordingRoutes) SetState(_ string, _ []string, st contract.RouteState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.states = append(r.states, st)
	return nil
}

func (r *recordingRoutes) ClearState(string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.clears++
}

// recordingReporter records the statuses sent to GitHub.
type recordingReporter struct {
	mu   sync.Mutex
	sent []gh.Status
}

func (r *recordingReporter) Report(_ context.Context, s gh.Status) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, s)
	return nil
}

// newPureController is a Controller over a real store and recording
// routes and reports, with no engine and no GitHub.
func newPureController(t *testing.T) (*Controller, *store.Store, *recordingRoutes, *recordingReporter) {
	t.Helper()
	st, cfg := openTestStore(t), testConfig(t, nil)
	routes, rep := &recordingRoutes{}, &recordingReporter{}
	c, err := New(Options{Config: &cfg, GitHub: &writerGitHub{}, Reporter: rep, Engine: nopEngine{}, Store: st, Routes: routes})
	if err != nil {
		t.Fatal(err)
	}
	return c, st, routes, rep
}

// A PR waiting for an environment slot is recorded waiting once and told
// to GitHub once, however often the controller looks, and its host shows
// the queued page each time.
func TestWaitingForASlotIsRecordedOnceAndShowsTheQueuedPage(t *testing.T) {
	c, st, routes, rep := newPureController(t)
	ctx := context.Background()
	r := &request{key: Key{"acme/shop", 7}, repo: gh.Repo{Owner: "acme", Name: "shop"}, project: "acme-shop-pr-7", pr: gh.PullRequest{Number: 7, HeadSHA: "abc"}}
	for i := range 30 {
		c.transition(ctx, r, transition{Phase: contract.PhaseWaiting, Wait: contract.WaitEnvironmentSlot, SHA: "abc", Detail: "waiting: " + string(rune('a'+i%26)) + " ahead"})
	}
	c.transition(ctx, r, transition{Phase: contract.PhaseBuilding, SHA: "abc"})
	tl, err := st.Timeline(ctx, r.project)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl) != 2 || tl[0].Phase != contract.PhaseWaiting || tl[0].Wait != contract.WaitEnvironmentSlot || tl[1].Phase != contract.PhaseBuilding {
		t.Errorf("timeline %+v, want waiting once, then building", tl)
	}
	fctx, cancel := context.WithCancel(ctx)
	cancel()
	c.reports.flush(fctx) // waits for the senders
	if len(rep.sent) == 0 || rep.sent[0].Phase != gh.PhaseQueued || len(rep.sent) > 2 {
		t.Errorf("reports %+v, want queued once (then building)", rep.sent)
	}
	routes.mu.Lock()
	defer routes.mu.Unlock()
	if len(routes.states) != 31 || routes.states[0].Phase != contract.RouteQueued || routes.states[30].Phase != contract.RouteBuilding {
		t.Errorf("route states %+v, want queued at every look, then building", routes.states)
	}
}

// A removal held until the next push is a typed field of the history,
// and a retried failure is told apart from a final one.
func TestHistoryCarriesHeldAndRetry(t *testing.T) {
	c, st, _, _ := newPureController(t)
	ctx := context.Background()
	r := &request{key: Key{"acme/shop", 8}, repo: gh.Repo{Owner: "acme", Name: "shop"}, project: "acme-shop-pr-8"}
	c.transition(ctx, r, transition{Phase: contract.PhaseFailed, SHA: "abc", Detail: "engine down", Failure: &failure{Step: "deploy", Message: "engine down"}})
	e, err := st.Environment(ctx, r.project)
	if err != nil || !e.Retry || e.Held || e.Detail != "engine down" || e.LastError == nil || e.LastError.Step != "deploy" {
		t.Errorf("after a retried failure: %+v %v", e, err)
	}
	c.transition(ctx, r, transition{Phase: contract.PhaseRemoved, SHA: "abc", Detail: "destroyed", Held: true})
	e, _ = st.Environment(ctx, r.project)
	if !e.Held || e.Retry || e.Detail != "destroyed" || e.Removed.IsZero() {
		t.Errorf("after a held removal: %+v", e)
	}
	if ch := chooseConvergence(convergeFacts{SHA: "abc", History: e}); ch.step != stepHold {
		t.Errorf("a held removal is not held: %+v", ch)
	}
}

// openTestStore opens a store of the test's own.
func openTestStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// testConfig is a valid configuration with the repository acme/shop,
// changed by edit.
func testConfig(t *testing.T, edit func(*config.Controller)) config.Controller {
	t.Helper()
	cfg := config.Defaults()
	cfg.Domain = "preview.test"
	cfg.StateDir = t.TempDir()
	cfg.Loader.Confinement = config.LoaderAuto
	cfg.Repos = []config.RepoPolicy{{Name: "acme/shop"}}
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}
