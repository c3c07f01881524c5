package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

// creditApprovalLabels credits approval labels whose webhook never reached
// the controller (it was down, or the delivery failed). Resync finds the
// label on a fork pull request that waits for approval of its head and
// credits it as the labeled webhook would have: to the commit that was the
// head when the label was applied, if a writer applied it. Nothing but the
// issue events tells which commit that was, so a label is credited only
// when they prove it was this head (see labelApprover); otherwise the pull
// request keeps waiting, and its comment says how to approve.
func (c *Controller) creditApprovalLabels(ctx context.Context, rp config.RepoPolicy, repo gh.Repo, prs []gh.PullRequest) {
	if rp.Forks != config.ForksApprove {
		return
	}
	for _, pr := range prs {
		if !pr.Open() || !pr.FromFork() || pr.HeadRepo == "" || !pr.HasLabel(gh.ApprovalLabel) {
			continue
		}
		if err := c.creditApprovalLabel(ctx, Key{Repo: rp.Name, PR: pr.Number}, repo, pr); err != nil {
			c.log.Warn("resync: credit an approval label", "repo", rp.Name, "pr", pr.Number, "err", err)
		}
	}
}

func (c *Controller) creditApprovalLabel(ctx context.Context, key Key, repo gh.Repo, pr gh.PullRequest) error {
	if _, ok, err := c.store.Approval(ctx, key.Repo, key.PR, pr.HeadSHA); err != nil || ok {
		return err
	}
	project := contract.ProjectName(repo.Owner, repo.Name, pr.Number)
	env, err := c.store.Environment(ctx, project)
	if errors.Is(err, store.ErrNotFound) {
		return nil // never seen waiting: nothing tells when this head came
	} else if err != nil {
		return fmt.Errorf("read history of %s: %w", project, err)
	}
	if env.Phase != contract.PhaseWaiting || (env.Wait != "" && env.Wait != contract.WaitApproval) || !strings.EqualFold(env.SHA, pr.HeadSHA) {
		return nil
	}
	events, err := c.gh.IssueEvents(ctx, repo, pr.Number)
	if err != nil {
		return err
	}
	who, why := labelApprover(events, env.PhaseAt)
	if who == "" {
		c.log.Debug("resync: approval label not credited", "key", key.String(), "sha", pr.HeadSHA, "why", why)
		return nil
	}
	can, err := c.gh.CanWrite(ctx, repo, who)
	if err != nil {
		return fmt.Errorf("check permission of %s: %w", who, err)
	}
	if !can {
		c.log.Info("approval label from a user without write access ignored", "key", key.String(), "user", who)
		return nil
	}
	if err := c.store.Approve(ctx, store.Approval{Repo: key.Repo, PR: key.PR, SHA: pr.HeadSHA, By: who}); err != nil {
		return fmt.Errorf("record approval: %w", err)
	}
	c.log.Info("resync: approval label applied while no webhook arrived credited", "key", key.String(), "sha", pr.HeadSHA, "user", who)
	return nil
}

// labelApprover returns who applied the approval label a pull request
// carries, when its issue events (oldest first) prove that the label was
// applied at the current head; since is when the controller recorded the
// pull request waiting for approval of that head. Otherwise it returns ""
// and why not.
//
// The proof: the label's latest labeled event is not before since, and no
// force push came after since. Ordinary pushes only add commits (and are
// not issue events), so a head that is the same at since and now, with no
// force push in between, never changed: it was the head when the label was
// applied. GitHub's times are whole seconds; a force push in since's second
// counts as after it.
func labelApprover(events []gh.IssueEvent, since time.Time) (who, why string) {
	var label *gh.IssueEvent
	for i, e := range events {
		switch {
		case (e.Event == gh.EventLabeled || e.Event == gh.EventUnlabeled) && strings.EqualFold(e.Label, gh.ApprovalLabel):
			label = &events[i]
		case e.Event == gh.EventHeadForcePushed && !e.CreatedAt.Before(since.Truncate(time.Second)):
			return "", fmt.Sprintf("the head was force-pushed at %s, after the controller saw it", e.CreatedAt.Format(time.RFC3339))
		}
	}
	switch {
	case label == nil || label.Event != gh.EventLabeled:
		return "", "no event shows the label applied"
	case label.CreatedAt.Before(since):
		return "", fmt.Sprintf("the label was applied at %s, before the head the controller waits on was known (%s)",
			label.CreatedAt.Format(time.RFC3339), since.Format(time.RFC3339))
	case label.Actor == "":
		return "", "the user who applied the label is gone"
	}
	return label.Actor, ""
}
