package controller

import (
	"context"
	"fmt"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/internal/contract"
)

// desired is what a pull request should have.
type desired struct {
	deploy  bool
	trusted bool   // secrets may be given
	await   bool   // an untrusted fork PR waiting for approval
	keep    bool   // leave whatever runs as it is (head repository deleted)
	reason  string // why not deployed
	// askTrust: the answer depends on the author's permission and on
	// an approval of the head SHA; ask, then decide again with them.
	askTrust bool
}

// trust is what GitHub and the store say of a fork PR's author and head.
type trust struct {
	known    bool // the fields below were asked
	canWrite bool // the author may write to the base repository
	approved bool // a writer approved the head SHA
}

// decideDesire is the pure decision of what a pull request should have,
// from the PR, its repository's policy and, for a fork PR under
// forks: approve, the trust facts (askTrust until they are known).
func decideDesire(pr gh.PullRequest, rp config.RepoPolicy, t trust) desired {
	switch {
	case !pr.Open() && pr.Merged:
		return desired{reason: "the pull request was merged"}
	case !pr.Open():
		return desired{reason: "the pull request was closed"}
	case pr.Draft && !rp.Drafts:
		return desired{reason: "the pull request is a draft"}
	}
	if label := rp.TriggerLabel(); label != "" && !pr.HasLabel(label) {
		return desired{reason: fmt.Sprintf("the pull request does not carry the %q label", label)}
	}
	if pr.HeadRepo == "" {
		return desired{keep: true, reason: "the pull request's head repository was deleted, so its source cannot be fetched"}
	}
	if !pr.FromFork() {
		return desired{deploy: true, trusted: true}
	}
	switch rp.Forks {
	case config.ForksNever:
		return desired{reason: "pull requests from forks are not deployed (forks: never)"}
	case config.ForksAlways:
		return desired{deploy: true}
	}
	// forks: approve. The author's permission on the repository decides,
	// never author_association.
	switch {
	case !t.known:
		return desired{askTrust: true}
	case t.canWrite:
		return desired{deploy: true, trusted: true}
	case t.approved:
		return desired{deploy: true}
	}
	return desired{await: true, reason: fmt.Sprintf("a fork pull request by @%s: a maintainer must approve commit %s", pr.Author, contract.ShortSHA(pr.HeadSHA))}
}

// desire decides what the request's pull request should have, asking
// GitHub and the store for the trust facts only when they matter.
func (c *Controller) desire(ctx context.Context, r *request) (desired, error) {
	d := decideDesire(r.pr, r.policy, trust{})
	if !d.askTrust {
		return d, nil
	}
	t := trust{known: true}
	can, err := c.gh.CanWrite(ctx, r.repo, r.pr.Author)
	if err != nil {
		return desired{}, fmt.Errorf("check permission of %s: %w", r.pr.Author, err)
	}
	t.canWrite = can
	if !can {
		_, ok, err := c.store.Approval(ctx, r.repo.String(), r.pr.Number, r.pr.HeadSHA)
		if err != nil {
			return desired{}, fmt.Errorf("read approval: %w", err)
		}
		t.approved = ok
	}
	return decideDesire(r.pr, r.policy, t), nil
}
