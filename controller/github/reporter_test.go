package github

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/internal/contract"
)

const (
	previewURL = "https://pr-1.preview.test"
	logURL     = "https://slipway.test/envs/acme-web-pr-1/log"
	secret     = "s3cr3t-Value"
)

func maskSecret(s string) string { return strings.ReplaceAll(s, secret, "***") }

type reporterEnv struct {
	fake     *githubfake.Fake
	client   *Client
	reporter *Reporter
	sleeper  *sleepRecorder
}

func newReporterEnv(t *testing.T) *reporterEnv {
	t.Helper()
	fake := githubfake.New(t)
	c, sleeper := newTestClient(t, fake, nil)
	return &reporterEnv{fake: fake, client: c, sleeper: sleeper, reporter: NewReporter(c, ReporterOptions{Mask: maskSecret})}
}

func (e *reporterEnv) report(t *testing.T, s Status) {
	t.Helper()
	if s.Repo == (Repo{}) {
		s.Repo = acme
	}
	if err := e.reporter.Report(context.Background(), s); err != nil {
		t.Fatalf("report %s: %v", s.Phase, err)
	}
}

var web = []Service{{Name: "web", URL: previewURL, Primary: true}}

// reportLifecycle reports queued → building → deploying → ready for sha.
func (e *reporterEnv) reportLifecycle(t *testing.T, pr int, sha string) {
	t.Helper()
	e.report(t, Status{PR: pr, SHA: sha, Phase: PhaseQueued})
	e.report(t, Status{PR: pr, SHA: sha, Phase: PhaseBuilding, Services: web, LogURL: logURL})
	e.report(t, Status{PR: pr, SHA: sha, Phase: PhaseDeploying, Services: web, LogURL: logURL, BuildDuration: 42 * time.Second})
	e.report(t, Status{PR: pr, SHA: sha, Phase: PhaseReady, Services: web, LogURL: logURL, BuildDuration: 42 * time.Second})
}

func deploymentStates(d githubfake.Deployment) []string {
	var out []string
	for _, s := range d.Statuses {
		out = append(out, s.State)
	}
	return out
}

func commitStates(sts []githubfake.CommitStatus) []string {
	var out []string
	for _, s := range sts {
		out = append(out, s.State+":"+s.Context)
	}
	return out
}

// jsonOf decodes a JSON literal the way the fake decodes request bodies.
func jsonOf(t *testing.T, s string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		t.Fatalf("bad JSON literal %s: %v", s, err)
	}
	return m
}

func TestReporterOpenPushCloseSequence(t *testing.T) {
	e := newReporterEnv(t)
	num, sha1 := e.fake.OpenPR("acme/web", githubfake.PR{Author: "alice", Files: githubfake.Files{"compose.yaml": "services: {}"}})
	e.reportLifecycle(t, num, sha1)
	sha2 := e.fake.Push("acme/web", num, githubfake.Files{"compose.yaml": "services: {web: {}}"})
	e.reportLifecycle(t, num, sha2)
	e.fake.ClosePR("acme/web", num)
	e.report(t, Status{PR: num, SHA: sha2, Phase: PhaseRemoved, Reason: "the pull request was closed", Services: web})

	deps := e.fake.Deployments("acme/web")
	if len(deps) != 2 {
		t.Fatalf("%d deployments, want one per SHA: %+v", len(deps), deps)
	}
	d1, d2 := deps[0], deps[1]
	comments := e.fake.Comments("acme/web", num)
	if len(comments) != 1 {
		t.Fatalf("%d comments, want one sticky comment: %+v", len(comments), comments)
	}
	c := comments[0]

	// The exact conversation.
	dep := func(id int64) string { return fmt.Sprintf("/repos/acme/web/deployments/%d/statuses", id) }
	commit := func(sha string) string { return "/repos/acme/web/statuses/" + sha }
	comment := fmt.Sprintf("/repos/acme/web/issues/comments/%d", c.ID)
	phase := func(d int64, sha string) []string {
		return []string{"POST " + dep(d), "POST " + commit(sha), "GET " + comment, "PATCH " + comment}
	}
	var want []string
	want = append(want, "GET /repos/acme/web/deployments", "POST /repos/acme/web/deployments", "POST "+dep(d1.ID), "POST "+commit(sha1),
		"GET /user", fmt.Sprintf("GET /repos/acme/web/issues/%d/comments", num), fmt.Sprintf("POST /repos/acme/web/issues/%d/comments", num))
	for range 3 {
		want = append(want, phase(d1.ID, sha1)...)
	}
	want = append(want, "GET /repos/acme/web/deployments", "POST /repos/acme/web/deployments", "POST "+dep(d2.ID),
		"POST "+dep(d1.ID), // the superseded SHA's deployment goes inactive
		"POST "+commit(sha2), "GET "+comment, "PATCH "+comment)
	for range 3 {
		want = append(want, phase(d2.ID, sha2)...)
	}
	want = append(want, "GET /repos/acme/web/deployments", "POST "+dep(d2.ID), "GET "+comment, "PATCH "+comment)

	reqs := e.fake.Requests()
	if got := calls(reqs); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("requests:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range reqs {
		if r.Status >= 300 {
			t.Errorf("%s %s answered %d", r.Method, r.Path, r.Status)
		}
	}

	// Bodies, against GitHub's documented shapes.
	bodies := map[string][]map[string]any{}
	for _, r := range reqs {
		if r.Method != "GET" {
			bodies[r.Method+" "+r.Path] = append(bodies[r.Method+" "+r.Path], r.Body)
		}
	}
	createBody := func(sha string) map[string]any {
		return jsonOf(t, `{"ref":"`+sha+`","task":"deploy:slipway","auto_merge":false,"required_contexts":[],
			"payload":{"pr":1},"environment":"pr-1","description":"Slipway preview of #1",
			"transient_environment":true,"production_environment":false}`)
	}
	if got := bodies["POST /repos/acme/web/deployments"]; !reflect.DeepEqual(got, []map[string]any{createBody(sha1), createBody(sha2)}) {
		t.Errorf("create deployment bodies = %v", got)
	}
	statusBodies := func(sha string) []map[string]any {
		s := contract.ShortSHA(sha)
		return []map[string]any{
			jsonOf(t, `{"state":"queued","description":"Queued `+s+`"}`),
			jsonOf(t, `{"state":"in_progress","description":"Building `+s+`","log_url":"`+logURL+`"}`),
			jsonOf(t, `{"state":"in_progress","description":"Deploying `+s+`","log_url":"`+logURL+`"}`),
			jsonOf(t, `{"state":"success","description":"Preview of `+s+` ready (built in 42s)","environment_url":"`+previewURL+`","log_url":"`+logURL+`"}`),
		}
	}
	want1 := append(statusBodies(sha1), jsonOf(t, `{"state":"inactive","description":"Superseded by `+contract.ShortSHA(sha2)+`"}`))
	if got := bodies["POST "+dep(d1.ID)]; !reflect.DeepEqual(got, want1) {
		t.Errorf("deployment 1 status bodies:\n%v\nwant\n%v", got, want1)
	}
	want2 := append(statusBodies(sha2), jsonOf(t, `{"state":"inactive","description":"Preview removed: the pull request was closed"}`))
	if got := bodies["POST "+dep(d2.ID)]; !reflect.DeepEqual(got, want2) {
		t.Errorf("deployment 2 status bodies:\n%v\nwant\n%v", got, want2)
	}
	commitBodies := []map[string]any{
		jsonOf(t, `{"state":"pending","description":"Preview queued","context":"slipway/preview"}`),
		jsonOf(t, `{"state":"pending","description":"Building the preview","context":"slipway/preview","target_url":"`+logURL+`"}`),
		jsonOf(t, `{"state":"pending","description":"Deploying the preview","context":"slipway/preview","target_url":"`+logURL+`"}`),
		jsonOf(t, `{"state":"success","description":"Preview ready","context":"slipway/preview","target_url":"`+previewURL+`"}`),
	}
	for _, sha := range []string{sha1, sha2} {
		if got := bodies["POST "+commit(sha)]; !reflect.DeepEqual(got, commitBodies) {
			t.Errorf("commit status bodies for %s:\n%v\nwant\n%v", contract.ShortSHA(sha), got, commitBodies)
		}
	}
	patches := bodies["PATCH "+comment]
	if len(patches) != 8 {
		t.Fatalf("%d comment edits, want 8", len(patches))
	}
	for _, p := range append(bodies[fmt.Sprintf("POST /repos/acme/web/issues/%d/comments", num)], patches...) {
		if len(p) != 1 || !strings.HasPrefix(fmt.Sprint(p["body"]), StickyMarker) {
			t.Errorf("comment body shape %v", p)
		}
	}

	// The state GitHub ends with.
	for i, d := range deps {
		if d.Environment != "pr-1" || d.Task != DeploymentTask || !d.TransientEnvironment || d.ProductionEnvironment {
			t.Errorf("deployment %d = %+v", i, d)
		}
		if got := deploymentStates(d); strings.Join(got, ",") != "queued,in_progress,in_progress,success,inactive" {
			t.Errorf("deployment %d states = %v", i, got)
		}
	}
	if d1.SHA != sha1 || d2.SHA != sha2 {
		t.Errorf("deployment SHAs %s, %s", d1.SHA, d2.SHA)
	}
	if !strings.Contains(c.Body, "Preview removed") || !strings.Contains(c.Body, "the pull request was closed") || c.Author != githubfake.DefaultLogin {
		t.Errorf("final comment by %s:\n%s", c.Author, c.Body)
	}
	for _, sha := range []string{sha1, sha2} {
		if got := commitStates(e.fake.CommitStatuses("acme/web", sha)); strings.Join(got, ",") !=
			"pending:slipway/preview,pending:slipway/preview,pending:slipway/preview,success:slipway/preview" {
			t.Errorf("commit statuses of %s = %v", contract.ShortSHA(sha), got)
		}
	}

	// Reporting the same phase again sends nothing.
	e.fake.ResetRequests()
	e.report(t, Status{PR: num, SHA: sha2, Phase: PhaseRemoved, Reason: "the pull request was closed", Services: web})
	if got := calls(e.fake.Requests()); len(got) != 1 || got[0] != "GET /repos/acme/web/deployments" {
		t.Errorf("repeated removal sent %v; want only the listing", got)
	}
}

func TestReporterFailureMasksSecrets(t *testing.T) {
	for _, internal := range []bool{false, true} {
		t.Run(fmt.Sprintf("internal=%v", internal), func(t *testing.T) {
			e := newReporterEnv(t)
			num, sha := e.fake.OpenPR("acme/web", githubfake.PR{})
			e.report(t, Status{PR: num, SHA: sha, Phase: PhaseBuilding})
			log := "Step 3/7 : RUN npm ci\nnpm ERR! 401 Unauthorized token=" + secret + "\nnpm ERR! A complete log of this run can be found\n"
			e.report(t, Status{PR: num, SHA: sha, Phase: PhaseFailed, Reason: "npm ci exited 1 (token " + secret + ")",
				LogURL: logURL, Failure: &Failure{Step: "build", Service: "api", Log: log, Internal: internal}})

			for _, r := range e.fake.Requests() {
				if b, _ := json.Marshal(r.Body); strings.Contains(string(b), secret) || strings.Contains(r.Path, secret) {
					t.Errorf("secret sent in %s %s: %s", r.Method, r.Path, b)
				}
			}
			wantState, wantCommit := "failure", "failure"
			if internal {
				wantState, wantCommit = "error", "error"
			}
			deps := e.fake.Deployments("acme/web")
			if len(deps) != 1 {
				t.Fatalf("%d deployments", len(deps))
			}
			last := deps[0].Statuses[len(deps[0].Statuses)-1]
			if last.State != wantState || last.Description != "build failed for api: npm ci exited 1 (token ***)" || last.LogURL != logURL {
				t.Errorf("deployment status = %+v", last)
			}
			sts := e.fake.CommitStatuses("acme/web", sha)
			if cs := sts[len(sts)-1]; cs.State != wantCommit || cs.Description != "build failed for api: npm ci exited 1 (token ***)" || cs.TargetURL != logURL {
				t.Errorf("commit status = %+v", cs)
			}
			body := e.fake.Comments("acme/web", num)[0].Body
			for _, w := range []string{"❌ Preview failed", "**Step:** `build`", "**Service:** `api`", "npm ERR! 401 Unauthorized token=***", "```text"} {
				if !strings.Contains(body, w) {
					t.Errorf("comment lacks %q:\n%s", w, body)
				}
			}
		})
	}
}

func TestReporterWaitsOutRateLimits(t *testing.T) {
	e := newReporterEnv(t)
	num, sha := e.fake.OpenPR("acme/web", githubfake.PR{})
	e.fake.RateLimit(2, 3*time.Second)
	e.fake.SecondaryRateLimit(1, 5*time.Second)
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseQueued})

	waits := e.sleeper.Waits()
	if len(waits) != 3 {
		t.Fatalf("waits = %v, want 3", waits)
	}
	for i, w := range waits[:2] {
		if w < 2*time.Second || w > 5*time.Second {
			t.Errorf("wait %d = %v, want about the 3s until the reset", i, w)
		}
	}
	if waits[2] != 5*time.Second {
		t.Errorf("wait after Retry-After: 5 = %v", waits[2])
	}
	reqs := e.fake.Requests()
	if reqs[0].Status != 403 || reqs[1].Status != 403 || reqs[2].Status != 429 || reqs[3].Status != 200 || reqs[0].Path != reqs[3].Path {
		t.Errorf("first requests: %+v", reqs[:4])
	}
	if n := len(e.fake.Deployments("acme/web")); n != 1 {
		t.Errorf("%d deployments", n)
	}
	if n := len(e.fake.Comments("acme/web", num)); n != 1 {
		t.Errorf("%d comments", n)
	}
}

func TestReporterSurvivesA500Storm(t *testing.T) {
	e := newReporterEnv(t)
	num, sha := e.fake.OpenPR("acme/web", githubfake.PR{})
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseQueued})
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseBuilding, Services: web})

	e.fake.ServerErrors(23)
	ready := Status{Repo: acme, PR: num, SHA: sha, Phase: PhaseReady, Services: web, BuildDuration: time.Second}
	failures := 0
	for attempt := 1; ; attempt++ {
		err := e.reporter.Report(context.Background(), ready)
		if err == nil {
			break
		}
		failures++
		if !strings.Contains(err.Error(), "500") {
			t.Errorf("attempt %d: %v", attempt, err)
		}
		if attempt == 10 {
			t.Fatalf("still failing after the storm: %v", err)
		}
	}
	if failures == 0 {
		t.Fatal("the storm did not make any report fail; the test proves nothing")
	}
	if n := e.fake.PendingFaults(); n != 0 {
		t.Fatalf("%d faults still pending", n)
	}
	deps := e.fake.Deployments("acme/web")
	if len(deps) != 1 {
		t.Fatalf("%d deployments after the storm, want 1", len(deps))
	}
	if got := deploymentStates(deps[0]); got[len(got)-1] != "success" || strings.Count(strings.Join(got, ","), "success") != 1 {
		t.Errorf("deployment states = %v", got)
	}
	if s := deps[0].Statuses[len(deps[0].Statuses)-1]; s.EnvironmentURL != previewURL {
		t.Errorf("final status = %+v", s)
	}
	comments := e.fake.Comments("acme/web", num)
	if len(comments) != 1 || !strings.Contains(comments[0].Body, "Preview ready") {
		t.Errorf("comments after the storm = %+v", comments)
	}
	sts := e.fake.CommitStatuses("acme/web", sha)
	if sts[len(sts)-1].State != "success" {
		t.Errorf("final commit status = %+v", sts[len(sts)-1])
	}
	if len(e.sleeper.Waits()) == 0 {
		t.Error("no backoff happened")
	}
}

func TestCleanupDeploymentsMarksExactlyTheStaleOnes(t *testing.T) {
	fake := githubfake.New(t)
	c, _ := newTestClient(t, fake, nil)
	open2, head2 := fake.OpenPR("acme/web", githubfake.PR{})
	old2 := strings.Repeat("a", 40)
	open3, head3 := fake.OpenPR("acme/web", githubfake.PR{})
	closedSHA := strings.Repeat("c", 40)
	ok := []githubfake.DeploymentStatus{{State: "success", EnvironmentURL: "https://x"}}
	add := func(sha, env, task string, statuses ...githubfake.DeploymentStatus) int64 {
		return fake.AddDeployment("acme/web", githubfake.Deployment{SHA: sha, Environment: env, Task: task, TransientEnvironment: true, Statuses: statuses})
	}
	stale := map[int64]string{
		add(closedSHA, "pr-1", DeploymentTask, ok...):                                                 "closed PR, success",
		add(closedSHA, "pr-1/api", DeploymentTask, githubfake.DeploymentStatus{State: "in_progress"}): "closed PR, per-service, in progress",
		add(old2, fmt.Sprintf("pr-%d", open2), DeploymentTask, ok...):                                 "open PR, superseded SHA",
		add(closedSHA, "pr-99", DeploymentTask):                                                       "closed PR, no status at all",
	}
	untouched := map[int64]string{
		add(head2, fmt.Sprintf("pr-%d", open2), DeploymentTask, ok...):                                                                        "open PR's current deployment",
		add(head3, fmt.Sprintf("pr-%d/web", open3), DeploymentTask, ok...):                                                                    "another open PR's current per-service deployment",
		add(closedSHA, "pr-5", DeploymentTask, githubfake.DeploymentStatus{State: "success"}, githubfake.DeploymentStatus{State: "inactive"}): "already inactive",
		add(closedSHA, "production", "deploy", ok...):                                                                                         "not a preview environment",
		add(closedSHA, "pr-1", "deploy", ok...):                                                                                               "another tool's deployment to pr-1",
		add(closedSHA, "pr-x", DeploymentTask, ok...):                                                                                         "not a PR environment",
	}
	before := map[int64]int{}
	for _, d := range fake.Deployments("acme/web") {
		before[d.ID] = len(d.Statuses)
	}
	open := map[int]string{open2: head2, open3: head3}

	res, err := c.CleanupDeployments(context.Background(), acme, open)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Inactivated) != len(stale) {
		t.Errorf("inactivated %d, want %d: %+v", len(res.Inactivated), len(stale), res.Inactivated)
	}
	for _, d := range fake.Deployments("acme/web") {
		added := d.Statuses[before[d.ID]:]
		if why, ok := stale[d.ID]; ok {
			if len(added) != 1 || added[0].State != "inactive" {
				t.Errorf("%s (%d): new statuses %+v, want one inactive", why, d.ID, added)
			}
		}
		if why, ok := untouched[d.ID]; ok && len(added) != 0 {
			t.Errorf("%s (%d) was touched: %+v", why, d.ID, added)
		}
	}
	// The bodies say why.
	for _, r := range fake.Requests() {
		if r.Method == "POST" {
			if r.Body["state"] != "inactive" || !(strings.Contains(fmt.Sprint(r.Body["description"]), "is closed") || strings.Contains(fmt.Sprint(r.Body["description"]), "Superseded by")) {
				t.Errorf("cleanup body %v", r.Body)
			}
		}
	}

	// A second run asks nothing about what it already settled.
	fake.ResetRequests()
	res, err = c.CleanupDeployments(context.Background(), acme, open)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Inactivated) != 0 {
		t.Errorf("second run inactivated %+v", res.Inactivated)
	}
	for _, r := range fake.Requests() {
		if r.Method != "GET" || strings.Contains(r.Path, "/statuses") {
			t.Errorf("second run sent %s %s", r.Method, r.Path)
		}
	}
}

func TestStickyCommentRecoversFromUsers(t *testing.T) {
	e := newReporterEnv(t)
	num, sha := e.fake.OpenPR("acme/web", githubfake.PR{})
	// Someone else quoting the marker must not have their comment taken over.
	quoted := e.fake.AddComment("acme/web", num, "alice", "what is "+StickyMarker+"?")
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseQueued})
	comments := e.fake.Comments("acme/web", num)
	if len(comments) != 2 || comments[0].Body != "what is "+StickyMarker+"?" {
		t.Fatalf("comments = %+v", comments)
	}
	first := comments[1].ID

	// Deleted by a user: recreated on the next update.
	e.fake.DeleteComment("acme/web", first)
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseBuilding})
	comments = e.fake.Comments("acme/web", num)
	if len(comments) != 2 || comments[1].ID == first || !strings.Contains(comments[1].Body, "Building preview") {
		t.Fatalf("after deletion: %+v", comments)
	}
	second := comments[1].ID

	// The marker edited out: that comment is left as the user made it, and a new one is created.
	e.fake.EditComment("acme/web", second, "kept for the record")
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseDeploying})
	comments = e.fake.Comments("acme/web", num)
	if len(comments) != 3 || comments[1].Body != "kept for the record" || !strings.Contains(comments[2].Body, "Deploying preview") {
		t.Fatalf("after the marker was edited out: %+v", comments)
	}
	third := comments[2].ID
	if e.fake.Comments("acme/web", num)[0].ID != quoted {
		t.Error("the quoting comment moved")
	}

	// A restarted controller finds its comment by the marker and edits it.
	restarted := NewReporter(e.client, ReporterOptions{Mask: maskSecret})
	if err := restarted.Report(context.Background(), Status{Repo: acme, PR: num, SHA: sha, Phase: PhaseReady, Services: web}); err != nil {
		t.Fatal(err)
	}
	comments = e.fake.Comments("acme/web", num)
	if len(comments) != 3 || comments[2].ID != third || !strings.Contains(comments[2].Body, "Preview ready") {
		t.Fatalf("after restart: %+v", comments)
	}
}

func TestReporterRecreatesADeletedDeployment(t *testing.T) {
	e := newReporterEnv(t)
	num, sha := e.fake.OpenPR("acme/web", githubfake.PR{})
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseBuilding, Services: web})
	gone := e.fake.Deployments("acme/web")[0].ID
	e.fake.DeleteDeployment("acme/web", gone)

	e.fake.ResetRequests()
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseReady, Services: web})
	deps := e.fake.Deployments("acme/web")
	if len(deps) != 1 || deps[0].ID == gone || deps[0].SHA != sha || deps[0].Environment != "pr-1" {
		t.Fatalf("deployments = %+v", deps)
	}
	if got := deploymentStates(deps[0]); strings.Join(got, ",") != "success" || deps[0].Statuses[0].EnvironmentURL != previewURL {
		t.Errorf("recreated deployment statuses = %+v", deps[0].Statuses)
	}
	got := calls(e.fake.Requests())[:4]
	want := []string{fmt.Sprintf("POST /repos/acme/web/deployments/%d/statuses", gone), "GET /repos/acme/web/deployments",
		"POST /repos/acme/web/deployments", fmt.Sprintf("POST /repos/acme/web/deployments/%d/statuses", deps[0].ID)}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests = %v, want %v", got, want)
	}
}

func TestReporterPerServiceEnvironments(t *testing.T) {
	e := newReporterEnv(t)
	num, sha := e.fake.OpenPR("acme/web", githubfake.PR{})
	services := []Service{{Name: "api", URL: "https://api-pr-1.preview.test"}, {Name: "web", URL: previewURL, Primary: true}}
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseQueued}) // services not known yet: pr-1
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseBuilding, Services: services})
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseReady, Services: services})

	byEnv := map[string]githubfake.Deployment{}
	for _, d := range e.fake.Deployments("acme/web") {
		byEnv[d.Environment] = d
	}
	if len(byEnv) != 3 {
		t.Fatalf("environments = %v", byEnv)
	}
	if got := deploymentStates(byEnv["pr-1"]); strings.Join(got, ",") != "queued,inactive" {
		t.Errorf("pr-1 states = %v (replaced by per-service environments)", got)
	}
	for env, url := range map[string]string{"pr-1/web": previewURL, "pr-1/api": "https://api-pr-1.preview.test"} {
		d := byEnv[env]
		if got := deploymentStates(d); strings.Join(got, ",") != "in_progress,success" {
			t.Errorf("%s states = %v", env, got)
		}
		if last := d.Statuses[len(d.Statuses)-1]; last.EnvironmentURL != url {
			t.Errorf("%s environment_url = %q, want %q", env, last.EnvironmentURL, url)
		}
	}
	sts := e.fake.CommitStatuses("acme/web", sha)
	if last := sts[len(sts)-1]; last.TargetURL != previewURL {
		t.Errorf("commit status links %q, want the primary service", last.TargetURL)
	}

	// Removal reaches every environment, also after a restart.
	restarted := NewReporter(e.client, ReporterOptions{})
	if err := restarted.Report(context.Background(), Status{Repo: acme, PR: num, SHA: sha, Phase: PhaseRemoved, Services: services}); err != nil {
		t.Fatal(err)
	}
	for _, d := range e.fake.Deployments("acme/web") {
		if d.LatestState() != "inactive" {
			t.Errorf("%s left %s", d.Environment, d.LatestState())
		}
		if n := strings.Count(strings.Join(deploymentStates(d), ","), "inactive"); n != 1 {
			t.Errorf("%s marked inactive %d times", d.Environment, n)
		}
	}
}

func TestReporterAfterRestartDoesNotDuplicate(t *testing.T) {
	e := newReporterEnv(t)
	num, sha := e.fake.OpenPR("acme/web", githubfake.PR{})
	e.reportLifecycle(t, num, sha)

	c2, _ := newTestClient(t, e.fake, nil)
	restarted := NewReporter(c2, ReporterOptions{Mask: maskSecret})
	e.fake.ResetRequests()
	ready := Status{Repo: acme, PR: num, SHA: sha, Phase: PhaseReady, Services: web, LogURL: logURL, BuildDuration: 42 * time.Second}
	if err := restarted.Report(context.Background(), ready); err != nil {
		t.Fatal(err)
	}
	for _, r := range e.fake.Requests() {
		if r.Method == "POST" && r.Path != "/repos/acme/web/statuses/"+sha || r.Method == "PATCH" {
			t.Errorf("restart re-sent %s %s", r.Method, r.Path)
		}
	}
	if n := len(e.fake.Deployments("acme/web")); n != 1 {
		t.Errorf("%d deployments", n)
	}
	if n := len(e.fake.Comments("acme/web", num)); n != 1 {
		t.Errorf("%d comments", n)
	}
}

func TestReporterAwaitingApproval(t *testing.T) {
	e := newReporterEnv(t)
	num, sha := e.fake.OpenPR("acme/web", githubfake.PR{Author: "mallory", HeadRepo: "mallory/web"})
	e.report(t, Status{PR: num, SHA: sha, Phase: PhaseAwaitingApproval})
	if n := len(e.fake.Deployments("acme/web")); n != 0 {
		t.Errorf("%d deployments for an unapproved PR", n)
	}
	sts := e.fake.CommitStatuses("acme/web", sha)
	if len(sts) != 1 || sts[0].State != "pending" || !strings.Contains(sts[0].Description, "approval") {
		t.Errorf("commit statuses = %+v", sts)
	}
	body := e.fake.Comments("acme/web", num)[0].Body
	if !strings.Contains(body, "/slipway approve") || !strings.Contains(body, "`slipway:approved`") || !strings.Contains(body, contract.ShortSHA(sha)) {
		t.Errorf("comment:\n%s", body)
	}
}

func TestReporterRefusesBadInput(t *testing.T) {
	e := newReporterEnv(t)
	for _, s := range []Status{
		{Repo: acme, PR: 0, SHA: strings.Repeat("a", 40), Phase: PhaseQueued},
		{Repo: acme, PR: 1, SHA: "main", Phase: PhaseQueued},
		{Repo: acme, PR: 1, SHA: "", Phase: PhaseReady},
		{Repo: acme, PR: 1, SHA: strings.Repeat("a", 40), Phase: "exploded"},
	} {
		if err := e.reporter.Report(context.Background(), s); err == nil {
			t.Errorf("%+v accepted", s)
		}
	}
	if n := len(e.fake.Requests()); n != 0 {
		t.Errorf("bad input sent %d requests", n)
	}
}

func TestReactionsAndReplies(t *testing.T) {
	fake := githubfake.New(t)
	c, _ := newTestClient(t, fake, nil)
	num, _ := fake.OpenPR("acme/web", githubfake.PR{})
	cmd := fake.AddComment("acme/web", num, "alice", "/slipway redeploy")
	ctx := context.Background()
	for _, r := range []Reaction{ReactionEyes, ReactionAck, ReactionAck} {
		if err := c.React(ctx, acme, cmd, r); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.React(ctx, acme, cmd, "thumbsup"); statusOf(err) != 422 {
		t.Errorf("invalid reaction: %v", err)
	}
	_, _, perr := ParseCommand("/slipway nope")
	id, err := c.Comment(ctx, acme, num, "@alice "+perr.Error())
	if err != nil {
		t.Fatal(err)
	}
	comments := fake.Comments("acme/web", num)
	if len(comments) != 2 || comments[1].ID != id || !strings.Contains(comments[1].Body, "Unknown command") {
		t.Fatalf("comments = %+v", comments)
	}
	want := []githubfake.Reaction{{User: githubfake.DefaultLogin, Content: "eyes"}, {User: githubfake.DefaultLogin, Content: "+1"}}
	if !reflect.DeepEqual(comments[0].Reactions, want) {
		t.Errorf("reactions = %+v, want %+v", comments[0].Reactions, want)
	}
}

func TestReporterWithAppAuthConcurrently(t *testing.T) {
	fake := githubfake.New(t)
	app := fake.App()
	fake.AddRepo("acme/web", githubfake.RepoOptions{Installation: 77})
	c := newAppClient(t, fake, nil)
	r := NewReporter(c, ReporterOptions{})
	const prs = 5
	shas := map[int]string{}
	for range prs {
		n, sha := fake.OpenPR("acme/web", githubfake.PR{})
		shas[n] = sha
	}
	errs := make(chan error, prs*2)
	for n, sha := range shas {
		go func() {
			for _, ph := range []Phase{PhaseQueued, PhaseBuilding, PhaseReady} {
				if err := r.Report(context.Background(), Status{Repo: acme, PR: n, SHA: sha, Phase: ph, Services: web}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range prs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	// A restarted controller (new client and reporter) finds the App's own comments.
	restarted := NewReporter(newAppClient(t, fake, nil), ReporterOptions{})
	for n, sha := range shas {
		if err := restarted.Report(context.Background(), Status{Repo: acme, PR: n, SHA: sha, Phase: PhaseRemoved}); err != nil {
			t.Fatal(err)
		}
		comments := fake.Comments("acme/web", n)
		if len(comments) != 1 || comments[0].Author != app.BotLogin() || !strings.Contains(comments[0].Body, "Preview removed") {
			t.Errorf("PR %d comments = %+v", n, comments)
		}
	}
	deps := fake.Deployments("acme/web")
	if len(deps) != prs {
		t.Fatalf("%d deployments, want %d", len(deps), prs)
	}
	for _, d := range deps {
		if got := strings.Join(deploymentStates(d), ","); got != "queued,in_progress,success,inactive" || d.Creator != app.BotLogin() {
			t.Errorf("%s by %s: %s", d.Environment, d.Creator, got)
		}
	}
}
