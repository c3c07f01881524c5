package controller

import (
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
)

func TestDecideDesire(t *testing.T) {
	const sha = "0123456789abcdef0123456789abcdef01234567"
	own := gh.PullRequest{Number: 1, State: "open", Author: "alice", HeadSHA: sha, HeadRepo: "acme/shop", BaseRepo: "acme/shop"}
	fork := own
	fork.Author, fork.HeadRepo = "mallory", "mallory/shop"
	with := func(p gh.PullRequest, f func(*gh.PullRequest)) gh.PullRequest { f(&p); return p }
	approve := config.RepoPolicy{Name: "acme/shop", Forks: config.ForksApprove}
	known := func(canWrite, approved bool) trust { return trust{known: true, canWrite: canWrite, approved: approved} }
	for _, tc := range []struct {
		name   string
		pr     gh.PullRequest
		rp     config.RepoPolicy
		trust  trust
		want   desired
		reason string // a part of want.reason
	}{
		{"own branch deploys trusted", own, approve, trust{}, desired{deploy: true, trusted: true}, ""},
		{"merged", with(own, func(p *gh.PullRequest) { p.State, p.Merged = "closed", true }), approve, trust{}, desired{}, "merged"},
		{"closed", with(own, func(p *gh.PullRequest) { p.State = "closed" }), approve, trust{}, desired{}, "closed"},
		{"draft", with(own, func(p *gh.PullRequest) { p.Draft = true }), approve, trust{}, desired{}, "draft"},
		{"draft with drafts: true", with(own, func(p *gh.PullRequest) { p.Draft = true }), config.RepoPolicy{Drafts: true}, trust{}, desired{deploy: true, trusted: true}, ""},
		{"trigger label missing", own, config.RepoPolicy{Trigger: "label:preview"}, trust{}, desired{}, `"preview" label`},
		{"trigger label present", with(own, func(p *gh.PullRequest) { p.Labels = []string{"Preview"} }), config.RepoPolicy{Trigger: "label:preview"}, trust{}, desired{deploy: true, trusted: true}, ""},
		{"head repository deleted keeps what runs", with(fork, func(p *gh.PullRequest) { p.HeadRepo = "" }), approve, trust{}, desired{keep: true}, "deleted"},
		{"fork, forks: never", fork, config.RepoPolicy{Forks: config.ForksNever}, trust{}, desired{}, "forks: never"},
		{"fork, forks: always, untrusted", fork, config.RepoPolicy{Forks: config.ForksAlways}, trust{}, desired{deploy: true}, ""},
		{"fork, forks: approve asks for trust", fork, approve, trust{}, desired{askTrust: true}, ""},
		{"fork by a writer", fork, approve, known(true, false), desired{deploy: true, trusted: true}, ""},
		{"fork approved: untrusted", fork, approve, known(false, true), desired{deploy: true}, ""},
		{"fork waits for approval", fork, approve, known(false, false), desired{await: true}, "@mallory"},
		{"closed fork never asks", with(fork, func(p *gh.PullRequest) { p.State = "closed" }), approve, trust{}, desired{}, "closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := decideDesire(tc.pr, tc.rp, tc.trust)
			reason := got.reason
			got.reason = ""
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if !strings.Contains(reason, tc.reason) || (tc.reason == "" && reason != "") {
				t.Errorf("reason %q, want it to contain %q", reason, tc.reason)
			}
		})
	}
}
