package github

import (
	"context"
	"fmt"
	"strings"

	gh "github.com/google/go-github/v60/github"
	"github.com/slipwayhq/slipway/internal/contract"
)

// StickyMarker is the hidden marker that identifies Slipway's one comment
// on a pull request.
const StickyMarker = "<!-- slipway:preview -->"

// maxCommentBody is GitHub's limit on a comment body.
const maxCommentBody = 65536

// UpsertStickyComment makes body the content of Slipway's sticky comment on
// pull request pr and returns the comment's ID. knownID, when not zero, is
// the ID returned last time: it is checked first (GET), and used if it still
// exists and still carries the marker. Otherwise the comments are searched
// (all pages) for the first one by Slipway's own account carrying the
// marker; none found — deleted, or the marker edited out — means a new
// comment is created. An unchanged body is not written again.
func (c *Client) UpsertStickyComment(ctx context.Context, repo Repo, pr int, body string, knownID int64) (int64, error) {
	if !strings.Contains(body, StickyMarker) {
		body = StickyMarker + "\n" + body
	}
	if len(body) > maxCommentBody {
		return 0, fmt.Errorf("sticky comment on %s#%d: body of %d bytes exceeds GitHub's %d", repo, pr, len(body), maxCommentBody)
	}
	g, err := c.rest(ctx, repo)
	if err != nil {
		return 0, err
	}
	var current *gh.IssueComment
	if knownID != 0 {
		cm, _, err := g.Issues.GetComment(ctx, repo.Owner, repo.Name, knownID)
		switch {
		case IsNotFound(err):
		case err != nil:
			return 0, fmt.Errorf("get sticky comment %d on %s#%d: %w", knownID, repo, pr, err)
		case strings.Contains(cm.GetBody(), StickyMarker):
			current = cm
		}
	}
	if current == nil {
		current, err = c.findSticky(ctx, g, repo, pr)
		if err != nil {
			return 0, err
		}
	}
	if current == nil {
		cm, _, err := g.Issues.CreateComment(ctx, repo.Owner, repo.Name, pr, &gh.IssueComment{Body: gh.String(body)})
		if err != nil {
			return 0, fmt.Errorf("create sticky comment on %s#%d: %w", repo, pr, err)
		}
		return cm.GetID(), nil
	}
	if current.GetBody() == body {
		return current.GetID(), nil
	}
	_, _, err = g.Issues.EditComment(ctx, repo.Owner, repo.Name, current.GetID(), &gh.IssueComment{Body: gh.String(body)})
	if IsNotFound(err) { // deleted between the lookup and the edit
		cm, _, err := g.Issues.CreateComment(ctx, repo.Owner, repo.Name, pr, &gh.IssueComment{Body: gh.String(body)})
		if err != nil {
			return 0, fmt.Errorf("create sticky comment on %s#%d: %w", repo, pr, err)
		}
		return cm.GetID(), nil
	}
	if err != nil {
		return 0, fmt.Errorf("edit sticky comment %d on %s#%d: %w", current.GetID(), repo, pr, err)
	}
	return current.GetID(), nil
}

// findSticky returns the first comment on pr written by Slipway's own
// account that carries the marker, or nil. Only our own comments count: a
// user quoting the marker must not get their comment overwritten.
func (c *Client) findSticky(ctx context.Context, g *gh.Client, repo Repo, pr int) (*gh.IssueComment, error) {
	self, err := c.login(ctx, repo)
	if err != nil {
		return nil, fmt.Errorf("find sticky comment on %s#%d: %w", repo, pr, err)
	}
	opts := &gh.IssueListCommentsOptions{ListOptions: gh.ListOptions{PerPage: 100}}
	for {
		page, resp, err := g.Issues.ListComments(ctx, repo.Owner, repo.Name, pr, opts)
		if err != nil {
			return nil, fmt.Errorf("list comments on %s#%d: %w", repo, pr, err)
		}
		for _, cm := range page {
			if strings.EqualFold(cm.GetUser().GetLogin(), self) && strings.Contains(cm.GetBody(), StickyMarker) {
				return cm, nil
			}
		}
		if resp.NextPage == 0 {
			return nil, nil
		}
		opts.Page = resp.NextPage
	}
}

// Comment posts a new comment on pull request pr (a ChatOps reply) and
// returns its ID.
func (c *Client) Comment(ctx context.Context, repo Repo, pr int, body string) (int64, error) {
	g, err := c.rest(ctx, repo)
	if err != nil {
		return 0, err
	}
	cm, _, err := g.Issues.CreateComment(ctx, repo.Owner, repo.Name, pr, &gh.IssueComment{Body: gh.String(body)})
	if err != nil {
		return 0, fmt.Errorf("comment on %s#%d: %w", repo, pr, err)
	}
	return cm.GetID(), nil
}

// Reaction is a reaction on a comment.
type Reaction string

// The reactions Slipway uses.
const (
	ReactionAck      Reaction = "+1"       // command acted on
	ReactionEyes     Reaction = "eyes"     // command seen, working on it
	ReactionConfused Reaction = "confused" // command refused or not understood
)

// React adds a reaction to an issue comment. Reacting twice is harmless.
func (c *Client) React(ctx context.Context, repo Repo, commentID int64, r Reaction) error {
	g, err := c.rest(ctx, repo)
	if err != nil {
		return err
	}
	if _, _, err := g.Reactions.CreateIssueCommentReaction(ctx, repo.Owner, repo.Name, commentID, string(r)); err != nil {
		return fmt.Errorf("react %s to comment %d on %s: %w", r, commentID, repo, err)
	}
	return nil
}

// CommitStatusContext is the context of Slipway's commit status; branch
// protection can require it.
const CommitStatusContext = "slipway/preview"

// CommitState is the state of a commit status.
type CommitState string

// The commit status states GitHub accepts.
const (
	CommitPending CommitState = "pending"
	CommitSuccess CommitState = "success"
	CommitFailure CommitState = "failure"
	CommitError   CommitState = "error"
)

// CommitStatus is the slipway/preview status of a commit.
type CommitStatus struct {
	State CommitState
	// TargetURL is the preview (on success) or the build log.
	TargetURL string
	// Description is made one line and cut to GitHub's 140 characters.
	Description string
}

// SetCommitStatus posts the slipway/preview status on commit sha.
func (c *Client) SetCommitStatus(ctx context.Context, repo Repo, sha string, s CommitStatus) error {
	g, err := c.rest(ctx, repo)
	if err != nil {
		return err
	}
	st := &gh.RepoStatus{State: gh.String(string(s.State)), Context: gh.String(CommitStatusContext)}
	if s.TargetURL != "" {
		st.TargetURL = gh.String(s.TargetURL)
	}
	if d := oneLine(s.Description, maxDescription); d != "" {
		st.Description = gh.String(d)
	}
	if _, _, err := g.Repositories.CreateStatus(ctx, repo.Owner, repo.Name, sha, st); err != nil {
		return fmt.Errorf("set commit status of %s@%s to %s: %w", repo, contract.ShortSHA(sha), s.State, err)
	}
	return nil
}
