package github

import (
	"context"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
)

// Every page of a pull request's events, oldest first, with who did what.
func TestIssueEvents(t *testing.T) {
	fake := githubfake.New(t)
	fake.AddRepo("acme/web", githubfake.RepoOptions{})
	num, _ := fake.OpenPR("acme/web", githubfake.PR{Author: "mallory", HeadRepo: "mallory/web"})
	other, _ := fake.OpenPR("acme/web", githubfake.PR{})
	start := time.Date(2024, 3, 19, 8, 0, 0, 0, time.UTC)
	var want []IssueEvent
	for i := range 150 { // two pages
		e := IssueEvent{Event: EventUnlabeled, Actor: "bot", Label: "noise", CreatedAt: start.Add(time.Duration(i) * time.Second)}
		fake.AddIssueEvent("acme/web", githubfake.IssueEvent{PR: num, Event: e.Event, Actor: e.Actor, Label: e.Label, CreatedAt: e.CreatedAt})
		want = append(want, e)
	}
	fake.AddIssueEvent("acme/web", githubfake.IssueEvent{PR: other, Event: EventLabeled, Actor: "alice", Label: "elsewhere"})
	fake.AddLabel("acme/web", num, ApprovalLabel, "mara-maint")
	fake.ForcePush("acme/web", num, githubfake.Files{"a": "b"}, "mallory")
	c, _ := newTestClient(t, fake, nil)
	got, err := c.IssueEvents(context.Background(), acme, num)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want)+2 {
		t.Fatalf("got %d events, want %d", len(got), len(want)+2)
	}
	if !reflect.DeepEqual(got[:len(want)], want) {
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("event %d: got %+v, want %+v", i, got[i], want[i])
			}
		}
	}
	labeled, pushed := got[len(want)], got[len(want)+1]
	if labeled.Event != EventLabeled || labeled.Label != ApprovalLabel || labeled.Actor != "mara-maint" || labeled.CreatedAt.IsZero() {
		t.Errorf("labeled event: %+v", labeled)
	}
	if pushed.Event != EventHeadForcePushed || pushed.Actor != "mallory" || pushed.Label != "" || pushed.CreatedAt.IsZero() {
		t.Errorf("force-push event: %+v", pushed)
	}
	if !slices.Contains(fake.PullRequest("acme/web", num).Labels, ApprovalLabel) {
		t.Error("AddLabel did not label the pull request")
	}
}
