package controller_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/dashboard"
	"github.com/slipwayhq/slipway/internal/contract"
)

// trigger: label:preview deploys only labelled PRs; removing the label
// tears the environment down; nothing is posted for an excluded PR.
func TestTriggerLabel(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{trigger: "label:preview"})
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Files: app("labelled")})
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	time.Sleep(2 * time.Second)
	if len(h.fake.Comments(h.repo, n)) != 0 || len(h.fake.Deployments(h.repo)) != 0 {
		t.Fatalf("an excluded PR got %d comments and %d deployments", len(h.fake.Comments(h.repo, n)), len(h.fake.Deployments(h.repo)))
	}
	if h.counter("slipway_builds_total") != 0 {
		t.Fatal("an excluded PR was built")
	}
	h.fake.SetLabels(h.repo, n, "preview")
	ev := h.prEvent("labeled", n, "alice")
	ev["label"] = map[string]any{"name": "preview"}
	h.deliver("pull_request", ev)
	h.waitServes(n, "version labelled")
	h.fake.SetLabels(h.repo, n)
	ev = h.prEvent("unlabeled", n, "alice")
	ev["label"] = map[string]any{"name": "preview"}
	h.deliver("pull_request", ev)
	h.waitGone(n)
}

// A PR whose fork was deleted is reported and not built.
func TestDeletedHeadRepositoryIsReported(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{forks: "always"})
	h.fake.SetPermission(h.repo, "mallory", githubfake.Read)
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "mallory", HeadRepo: "mallory/fork", Files: app("gone")})
	h.fake.DeleteHeadRepo(h.repo, n)
	h.deliver("pull_request", h.prEvent("opened", n, "mallory"))
	eventually(t, 20*time.Second, "the report", func() (bool, string) {
		for _, c := range h.fake.Comments(h.repo, n) {
			if strings.Contains(c.Body, "head repository was deleted") {
				return true, ""
			}
		}
		return false, h.phase(n)
	})
	if h.counter("slipway_builds_total") != 0 {
		t.Error("a PR without a head repository was built")
	}
}

// The dashboard's API and the metrics after a real open → push → close.
func TestAPIAndMetricsFollowTheLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOptions{})
	dash, err := dashboard.New(dashboard.Options{Engine: h.engine, History: h.store, Token: "api-token", BaseURL: "http://dash.example/"})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(dash)
	defer api.Close()
	list := func(query string) map[string]dashboard.Environment {
		req, _ := http.NewRequest("GET", api.URL+"/api/v1/environments"+query, nil)
		req.Header.Set("Authorization", "Bearer api-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var l dashboard.EnvironmentList
		if err := json.NewDecoder(resp.Body).Decode(&l); err != nil {
			t.Fatal(err)
		}
		out := map[string]dashboard.Environment{}
		for _, e := range l.Environments {
			out[e.Project] = e
		}
		return out
	}
	n, _ := h.fake.OpenPR(h.repo, githubfake.PR{Author: "alice", Title: "Make it shine", Files: app("a")})
	h.deliver("pull_request", h.prEvent("opened", n, "alice"))
	h.waitServes(n, "version a")
	h.waitReady(n)
	sha2 := h.fake.Push(h.repo, n, app("b"))
	h.deliver("pull_request", h.prEvent("synchronize", n, "alice"))
	h.waitServes(n, "version b")
	h.waitReady(n)
	eventually(t, 10*time.Second, "the API to show the new SHA", func() (bool, string) {
		e := list("")[h.project(n)]
		return e.Phase == string(contract.PhaseReady) && e.SHA == sha2 && e.Title == "Make it shine" && e.Author == "alice" && e.URL != "", e.Phase + " " + e.SHA
	})
	h.fake.ClosePR(h.repo, n)
	h.deliver("pull_request", h.prEvent("closed", n, "alice"))
	h.waitGone(n)
	eventually(t, 10*time.Second, "the API to show the removal", func() (bool, string) {
		e := list("?phase=removed")[h.project(n)]
		return e.Phase == string(contract.PhaseRemoved), e.Phase
	})
	if got := h.counter("slipway_webhook_deliveries_total"); got != 3 {
		t.Errorf("webhook deliveries %v, want 3", got)
	}
	if got := h.counter("slipway_builds_total"); got != 2 {
		t.Errorf("builds %v, want 2", got)
	}
	mfs, _ := h.reg.Gather()
	seen := map[string]bool{}
	for _, mf := range mfs {
		seen[mf.GetName()] = true
	}
	for _, name := range []string{"slipway_reconcile_duration_seconds", "slipway_deploy_duration_seconds", "slipway_build_duration_seconds", "slipway_teardown_duration_seconds", "slipway_queue_depth", "slipway_environments"} {
		if !seen[name] {
			t.Errorf("metric %s missing", name)
		}
	}

}
