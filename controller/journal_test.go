package controller

import (
	"context"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/webhooks"
)

const (
	headA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	headB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

func TestCommandFrom(t *testing.T) {
	comment := func(body string) webhooks.Event {
		return webhooks.Event{DeliveryID: "d", Kind: webhooks.KindIssueComment, Action: "created", Repo: "acme/shop", PR: 3,
			Sender: "alice", Comment: &webhooks.Comment{ID: 9, Body: body, Author: "alice"}}
	}
	label := func(action, name string) webhooks.Event {
		return webhooks.Event{DeliveryID: "d", Kind: webhooks.KindPullRequest, Action: action, Repo: "acme/shop", PR: 3,
			HeadSHA: headB, Label: name, Sender: "alice"}
	}
	for _, tc := range []struct {
		name string
		ev   webhooks.Event
		want command
		ok   bool
	}{
		{"approve comment binds the head the events told", comment("/slipway approve"),
			command{commentID: 9, body: "/slipway approve", sender: "alice", headSHA: headA, delivery: "d"}, true},
		{"indented command", comment("  /slipway destroy\n"),
			command{commentID: 9, body: "  /slipway destroy\n", sender: "alice", headSHA: headA, delivery: "d"}, true},
		{"unknown command still answered", comment("/slipway frobnicate"),
			command{commentID: 9, body: "/slipway frobnicate", sender: "alice", headSHA: headA, delivery: "d"}, true},
		{"ordinary comment", comment("looks good, /slipway approve later"), command{}, false},
		{"comment without body", webhooks.Event{Kind: webhooks.KindIssueComment, Repo: "acme/shop", PR: 3}, command{}, false},
		{"documented approval label binds the labelled head", label("labeled", "slipway:approved"),
			command{label: "slipway:approved", sender: "alice", headSHA: headB, delivery: "d"}, true},
		{"label names are case-insensitive", label("labeled", "Slipway:Approved"),
			command{label: "Slipway:Approved", sender: "alice", headSHA: headB, delivery: "d"}, true},
		{"another label", label("labeled", "preview"), command{}, false},
		{"approval label removed", label("unlabeled", gh.ApprovalLabel), command{}, false},
		{"push", webhooks.Event{Kind: webhooks.KindPullRequest, Action: "synchronize", Repo: "acme/shop", PR: 3, HeadSHA: headB}, command{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := commandFrom(tc.ev, headA)
			if ok != tc.ok || got != tc.want {
				t.Errorf("commandFrom = %+v, %v; want %+v, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}

// testController is a controller over a real store at path, with no
// engine: enough to accept and apply approvals.
func testController(t *testing.T, path string, g GitHub) (*Controller, *store.Store) {
	t.Helper()
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Defaults()
	cfg.Repos = []config.RepoPolicy{{Name: "acme/shop"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Config: &cfg, GitHub: g, Reporter: nopReporter{}, Engine: nopEngine{}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return c, st
}

// A command accepted by one process and not acted on is acted on by the
// next, bound to the head the first one knew, and then forgotten.
func TestAcceptedCommandsSurviveARestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), store.FileName)
	c, st := testController(t, path, &writerGitHub{})
	c.HandleEvent(webhooks.Event{DeliveryID: "d-open", Kind: webhooks.KindPullRequest, Action: "opened", Repo: "acme/shop", PR: 3, HeadSHA: headA})
	approve := webhooks.Event{DeliveryID: "d-approve", Kind: webhooks.KindIssueComment, Action: "created", Repo: "acme/shop", PR: 3,
		Comment: &webhooks.Comment{ID: 7, Body: "/slipway approve", Author: "alice"}}
	label := webhooks.Event{DeliveryID: "d-label", Kind: webhooks.KindPullRequest, Action: "labeled", Repo: "acme/shop", PR: 4,
		HeadSHA: headB, Label: gh.ApprovalLabel, Sender: "bob"}
	for _, ev := range []webhooks.Event{approve, label} {
		if !c.Journaled(ev) {
			t.Fatalf("%s not journaled", ev.DeliveryID)
		}
		if first, err := c.Record(ctx, ev); err != nil || !first {
			t.Fatalf("record %s: %v, %v", ev.DeliveryID, first, err)
		}
	}
	if first, err := c.Record(ctx, approve); err != nil || first {
		t.Errorf("redelivery recorded again: %v, %v", first, err)
	}
	// The process dies here, before any reconcile.
	st.Close()

	c2, st2 := testController(t, path, &writerGitHub{})
	for _, k := range []Key{{Repo: "acme/shop", PR: 3}, {Repo: "acme/shop", PR: 4}} {
		repo, _ := c2.repoOf(k)
		// PR 3 has moved on since the approval: the approval stays with the head it was written at.
		pr := gh.PullRequest{Number: k.PR, State: "open", HeadSHA: headB}
		if _, _, err := c2.applyCommands(ctx, &request{key: k, repo: repo, project: c2.projectOf(k), pr: pr}); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []struct {
		pr  int
		sha string
		by  string
	}{{3, headA, "alice"}, {4, headB, "bob"}} {
		a, ok, err := st2.Approval(ctx, "acme/shop", want.pr, want.sha)
		if err != nil || !ok || a.By != want.by {
			t.Errorf("approval of #%d at %s after the restart: %+v, %v, %v; want by %s", want.pr, want.sha[:7], a, ok, err, want.by)
		}
	}
	if _, ok, _ := st2.Approval(ctx, "acme/shop", 3, headB); ok {
		t.Error("the head pushed after the approval was approved")
	}
	if pending, err := st2.PendingCommands(ctx); err != nil || len(pending) != 0 {
		t.Errorf("pending after they were acted on: %+v, %v", pending, err)
	}
	st2.Close()
	c3, _ := testController(t, path, &writerGitHub{})
	if n := c3.queue.Len(); n != 0 {
		t.Errorf("a third start queued %d keys: commands acted on came back", n)
	}
}

// A journaled redeploy lives until the deploy it asked for has started: a
// restart before that redeploys, after that does not.
func TestJournaledRedeployIsForgottenOnceTheDeployStarts(t *testing.T) {
	ctx := context.Background()
	c, st := testController(t, filepath.Join(t.TempDir(), store.FileName), &writerGitHub{})
	key := Key{Repo: "acme/shop", PR: 3}
	ev := webhooks.Event{DeliveryID: "d-redeploy", Kind: webhooks.KindIssueComment, Action: "created", Repo: "acme/shop", PR: 3,
		Comment: &webhooks.Comment{ID: 7, Body: "/slipway redeploy", Author: "alice"}}
	if _, err := c.Record(ctx, ev); err != nil {
		t.Fatal(err)
	}
	repo, _ := c.repoOf(key)
	pr := gh.PullRequest{Number: 3, State: "open", HeadSHA: headA}
	forced, _, err := c.applyCommands(ctx, &request{key: key, repo: repo, project: c.projectOf(key), pr: pr})
	if err != nil || !forced {
		t.Fatalf("applyCommands: forced %v, err %v", forced, err)
	}
	// Deferred (debounce, limits): the redeploy is still owed.
	if _, _, err := c.applyCommands(ctx, &request{key: key, repo: repo, project: c.projectOf(key), pr: pr}); err != nil {
		t.Fatal(err)
	}
	if pending, _ := st.PendingCommands(ctx); len(pending) != 1 {
		t.Fatalf("pending before the deploy started: %+v, want the redeploy", pending)
	}
	c.intake.deployStarted(key) // what deploy does when it starts
	if _, _, err := c.applyCommands(ctx, &request{key: key, repo: repo, project: c.projectOf(key), pr: pr}); err != nil {
		t.Fatal(err)
	}
	if pending, _ := st.PendingCommands(ctx); len(pending) != 0 {
		t.Errorf("pending after the deploy started: %+v", pending)
	}
}

func TestLabelApprover(t *testing.T) {
	since := time.Date(2024, 3, 19, 8, 0, 0, 500_000_000, time.UTC) // the controller saw the head waiting
	at := func(d time.Duration) time.Time { return since.Truncate(time.Second).Add(d) }
	labeled := func(who string, d time.Duration) gh.IssueEvent {
		return gh.IssueEvent{Event: gh.EventLabeled, Actor: who, Label: gh.ApprovalLabel, CreatedAt: at(d)}
	}
	for _, tc := range []struct {
		name   string
		events []gh.IssueEvent
		want   string
	}{
		{"applied after the head was seen", []gh.IssueEvent{labeled("alice", time.Minute)}, "alice"},
		{"label name case", []gh.IssueEvent{{Event: gh.EventLabeled, Actor: "alice", Label: "SLIPWAY:APPROVED", CreatedAt: at(time.Minute)}}, "alice"},
		{"the latest application counts", []gh.IssueEvent{
			labeled("alice", -time.Hour),
			{Event: gh.EventUnlabeled, Actor: "mallory", Label: gh.ApprovalLabel, CreatedAt: at(-time.Minute)},
			labeled("bob", time.Minute),
		}, "bob"},
		{"other labels do not count", []gh.IssueEvent{
			labeled("alice", time.Minute),
			{Event: gh.EventLabeled, Actor: "mallory", Label: "preview", CreatedAt: at(2 * time.Minute)},
		}, "alice"},
		{"applied before the head was known", []gh.IssueEvent{labeled("alice", -time.Minute)}, ""},
		{"applied in the same second, before", []gh.IssueEvent{labeled("alice", 0)}, ""},
		{"force push after the head was seen", []gh.IssueEvent{
			labeled("alice", time.Minute),
			{Event: gh.EventHeadForcePushed, Actor: "mallory", CreatedAt: at(2 * time.Minute)},
		}, ""},
		{"force push after the label, before the head came back", []gh.IssueEvent{
			{Event: gh.EventHeadForcePushed, Actor: "mallory", CreatedAt: at(30 * time.Second)},
			labeled("alice", time.Minute),
		}, ""},
		{"force push in the second the head was seen", []gh.IssueEvent{
			{Event: gh.EventHeadForcePushed, Actor: "mallory", CreatedAt: at(0)},
			labeled("alice", time.Minute),
		}, ""},
		{"force push long before", []gh.IssueEvent{
			{Event: gh.EventHeadForcePushed, Actor: "mallory", CreatedAt: at(-time.Hour)},
			labeled("alice", time.Minute),
		}, "alice"},
		{"removed since", []gh.IssueEvent{
			labeled("alice", time.Minute),
			{Event: gh.EventUnlabeled, Actor: "alice", Label: gh.ApprovalLabel, CreatedAt: at(2 * time.Minute)},
		}, ""},
		{"no event", nil, ""},
		{"deleted user", []gh.IssueEvent{labeled("", time.Minute)}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			who, why := labelApprover(tc.events, since)
			if who != tc.want {
				t.Errorf("labelApprover = %q (%s), want %q", who, why, tc.want)
			}
			if who == "" && why == "" {
				t.Error("refused without a reason")
			}
		})
	}
}

// eventsGitHub is a writerGitHub with issue events.
type eventsGitHub struct {
	writerGitHub
	events map[int][]gh.IssueEvent
}

func (g *eventsGitHub) IssueEvents(_ context.Context, _ gh.Repo, n int) ([]gh.IssueEvent, error) {
	return g.events[n], nil
}

// Resync credits an approval label a writer applied while no webhook
// arrived, to the head the pull request waits on, and nothing else.
func TestResyncCreditsApprovalLabels(t *testing.T) {
	ctx := context.Background()
	g := &eventsGitHub{events: map[int][]gh.IssueEvent{}}
	c, st := testController(t, filepath.Join(t.TempDir(), store.FileName), g)
	rp, _ := c.cfg.Repo("acme/shop")
	repo, _ := c.repoOf(Key{Repo: "acme/shop"})
	seen := time.Now()
	later := seen.Add(time.Minute)
	fork := func(n int, labels ...string) gh.PullRequest {
		return gh.PullRequest{Number: n, State: "open", Author: "mallory", HeadSHA: headA, HeadRepo: "mallory/shop", BaseRepo: "acme/shop", Labels: labels}
	}
	waiting := func(n int, sha string) {
		project := c.projectOf(Key{Repo: "acme/shop", PR: n})
		if err := st.UpsertEnvironment(ctx, store.EnvironmentInfo{Project: project, Repo: "acme/shop", PR: n}); err != nil {
			t.Fatal(err)
		}
		if err := st.RecordPhase(ctx, project, store.PhaseEntry{Phase: contract.PhaseWaiting, SHA: sha, Detail: "approval", At: seen}); err != nil {
			t.Fatal(err)
		}
	}
	label := func(n int, who string, at time.Time) {
		g.events[n] = append(g.events[n], gh.IssueEvent{Event: gh.EventLabeled, Actor: who, Label: gh.ApprovalLabel, CreatedAt: at})
	}
	prs := []gh.PullRequest{
		fork(1, gh.ApprovalLabel), // credited
		fork(2, gh.ApprovalLabel), // by a reader
		fork(3, gh.ApprovalLabel), // waits on another head
		fork(4),                   // no label on the PR
		fork(5, gh.ApprovalLabel), // never seen by the controller
		{Number: 6, State: "open", Author: "alice", HeadSHA: headA, HeadRepo: "acme/shop", BaseRepo: "acme/shop", Labels: []string{gh.ApprovalLabel}}, // not a fork
	}
	for n := 1; n <= 6; n++ {
		label(n, "alice", later)
		if n != 5 {
			waiting(n, headA)
		}
	}
	g.events[2] = nil
	label(2, "mallory", later)
	waiting(3, headB)

	c.creditApprovalLabels(ctx, rp, repo, prs)
	var approved []int
	for n := 1; n <= 6; n++ {
		if a, ok, err := st.Approval(ctx, "acme/shop", n, headA); err != nil {
			t.Fatal(err)
		} else if ok {
			approved = append(approved, n)
			if a.By != "alice" {
				t.Errorf("#%d approved by %q, want alice", n, a.By)
			}
		}
	}
	if !reflect.DeepEqual(approved, []int{1}) {
		t.Errorf("approved %v, want [1]", approved)
	}

	// Under forks: never or always there is nothing to approve.
	for _, forks := range []string{config.ForksNever, config.ForksAlways} {
		rp.Forks = forks
		g.events[7] = nil
		label(7, "alice", later)
		waiting(7, headA)
		c.creditApprovalLabels(ctx, rp, repo, []gh.PullRequest{fork(7, gh.ApprovalLabel)})
		if _, ok, _ := st.Approval(ctx, "acme/shop", 7, headA); ok {
			t.Errorf("forks: %s: approval credited", forks)
		}
	}
}

// An approval written while no event had told the PR's head is not bound
// to whatever the head is after a restart: a fork's author may have pushed
// meanwhile. The writer is asked to approve again.
func TestApprovalOfAnUnknownHeadIsNotBoundAcrossARestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), store.FileName)
	c, st := testController(t, path, &writerGitHub{})
	approve := webhooks.Event{DeliveryID: "d-approve", Kind: webhooks.KindIssueComment, Action: "created", Repo: "acme/shop", PR: 3,
		Comment: &webhooks.Comment{ID: 7, Body: "/slipway approve", Author: "alice"}}
	if _, err := c.Record(ctx, approve); err != nil {
		t.Fatal(err)
	}
	st.Close()
	ghc := &writerGitHub{}
	c2, st2 := testController(t, path, ghc)
	k := Key{Repo: "acme/shop", PR: 3}
	repo, _ := c2.repoOf(k)
	pr := gh.PullRequest{Number: 3, State: "open", HeadSHA: headB, Author: "mallory", HeadRepo: "mallory/shop", BaseRepo: "acme/shop"}
	if _, _, err := c2.applyCommands(ctx, &request{key: k, repo: repo, project: c2.projectOf(k), pr: pr}); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st2.Approval(ctx, "acme/shop", 3, headB); ok {
		t.Error("the head pushed after the approval was written was approved")
	}
	if len(ghc.replies) != 1 || !strings.Contains(ghc.replies[0], "approve again") {
		t.Errorf("replies %q, want one asking to approve again", ghc.replies)
	}
	if pending, _ := st2.PendingCommands(ctx); len(pending) != 0 {
		t.Errorf("the refused approval is still pending: %+v", pending)
	}
}

func TestApprovedHead(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, tc := range []struct {
		name           string
		atArrival, now string
		arrived, clock time.Time
		want           string
		ok             bool
	}{
		{"the head the events named", "aaa", "bbb", t0, t0.Add(time.Hour), "aaa", true},
		{"unknown, read at once", "", "bbb", t0, t0.Add(time.Second), "bbb", true},
		{"unknown, read long after", "", "bbb", t0, t0.Add(time.Minute), "", false},
		{"unknown, arrival unknown (a restart)", "", "bbb", time.Time{}, t0, "", false},
		{"unknown, and no head now (PR gone)", "", "", t0, t0, "", false},
	} {
		sha, ok := approvedHead(tc.atArrival, tc.now, tc.arrived, tc.clock)
		if sha != tc.want || ok != tc.ok {
			t.Errorf("%s: %q %v, want %q %v", tc.name, sha, ok, tc.want, tc.ok)
		}
	}
}

// Commands of a repository no longer configured are dropped at start, not
// queued again after every restart.
func TestPendingCommandsOfAnUnconfiguredRepositoryAreDropped(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), store.FileName)
	_, st := testController(t, path, &writerGitHub{})
	if _, err := st.AcceptCommand(ctx, store.Command{Delivery: "d-gone", Repo: "other/gone", PR: 1, Body: "/slipway destroy", Sender: "alice"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	_, st2 := testController(t, path, &writerGitHub{})
	if pending, _ := st2.PendingCommands(ctx); len(pending) != 0 {
		t.Errorf("pending %+v, want none", pending)
	}
}
