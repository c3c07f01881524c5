package github

import (
	"context"
	"fmt"
	"time"

	gh "github.com/google/go-github/v60/github"
)

// Issue event kinds Slipway reads (GET /repos/{o}/{r}/issues/{n}/events).
const (
	EventLabeled         = "labeled"
	EventUnlabeled       = "unlabeled"
	EventHeadForcePushed = "head_ref_force_pushed"
)

// IssueEvent is one event of a pull request's issue timeline.
type IssueEvent struct {
	// Event is the kind: labeled, unlabeled, head_ref_force_pushed, ...
	Event string
	// Actor is the login of the user who caused it ("" for a deleted user).
	Actor string
	// Label is the label added or removed (labeled and unlabeled only).
	Label string
	// CreatedAt is when it happened, by GitHub's clock (whole seconds).
	CreatedAt time.Time
}

// IssueEvents lists the events of pull request number, oldest first, all
// pages. Ordinary pushes are not issue events; force pushes are.
func (c *Client) IssueEvents(ctx context.Context, repo Repo, number int) ([]IssueEvent, error) {
	g, err := c.rest(ctx, repo)
	if err != nil {
		return nil, err
	}
	opts := &gh.ListOptions{PerPage: 100}
	var out []IssueEvent
	for {
		page, resp, err := g.Issues.ListIssueEvents(ctx, repo.Owner, repo.Name, number, opts)
		if err != nil {
			return nil, fmt.Errorf("list events of %s#%d: %w", repo, number, err)
		}
		for _, e := range page {
			out = append(out, IssueEvent{
				Event: e.GetEvent(), Actor: e.GetActor().GetLogin(), Label: e.GetLabel().GetName(),
				CreatedAt: e.GetCreatedAt().Time,
			})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}
