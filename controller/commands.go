package controller

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

// Actions the dashboard asks for. They need no GitHub permission check: the
// dashboard authenticates its users.
const (
	actionRedeploy = "redeploy"
	actionDestroy  = "destroy"
	actionSleep    = "sleep"
	actionWake     = "wake"
)

// applyCommands acts on the key's ChatOps comments, approval labels and
// dashboard actions, in the order they came. Only writers (collaborator
// permission, never author_association) may command; others get a reaction
// and a short reply. forced asks for a redeploy; done means the reconcile is
// over (destroyed). A command that fails is kept, with those after it, for
// the next reconcile.
func (c *Controller) applyCommands(ctx context.Context, r *request) (forced, done bool, err error) {
	key := r.key
	c.redeploysStarted(ctx, key)
	cmds := c.intake.takeCommands(key)
	forced = c.intake.isForced(key)
	for i, cmd := range cmds {
		f, d, err := c.applyCommand(ctx, r, cmd)
		if err != nil {
			c.intake.requeueCommands(key, cmds[i:])
			return false, false, err
		}
		forced, done = forced || f, done || d
		c.commandApplied(ctx, key, cmd, f)
	}
	if done {
		// Destroyed: a redeploy asked for before it is void, or the next
		// reconcile would bring back what a writer removed.
		c.intake.deployStarted(key)
		c.redeploysStarted(ctx, key)
	}
	return forced && !done, done, nil
}

// applyCommand acts on one command.
func (c *Controller) applyCommand(ctx context.Context, r *request, cmd command) (forced, done bool, err error) {
	key, repo, project, pr := r.key, r.repo, r.project, r.pr
	if cmd.action != "" {
		return c.applyAction(ctx, r, cmd)
	}
	if cmd.label != "" {
		return false, false, c.applyApprovalLabel(ctx, key, repo, pr, cmd)
	}
	parsed, ok, perr := gh.ParseCommand(cmd.body)
	if !ok && perr == nil {
		return false, false, nil
	}
	can, err := c.gh.CanWrite(ctx, repo, cmd.sender)
	if err != nil {
		return false, false, fmt.Errorf("check permission of %s: %w", cmd.sender, err)
	}
	if !can {
		c.react(ctx, repo, cmd.commentID, gh.ReactionConfused)
		c.reply(ctx, repo, key.PR, fmt.Sprintf("@%s only collaborators with write access to %s can run Slipway commands.", cmd.sender, repo))
		return false, false, nil
	}
	var ce *gh.CommandError
	if errors.As(perr, &ce) {
		c.react(ctx, repo, cmd.commentID, gh.ReactionConfused)
		c.reply(ctx, repo, key.PR, ce.Error())
		return false, false, nil
	} else if perr != nil {
		c.log.Warn("a command that cannot be read ignored", "key", key.String(), "user", cmd.sender, "err", perr)
		return false, false, nil
	}
	c.react(ctx, repo, cmd.commentID, gh.ReactionEyes)
	switch parsed.Kind {
	case gh.CommandRedeploy:
		forced = true
		c.intake.setForced(key)
	case gh.CommandDestroy:
		if _, err := c.teardown(ctx, r, removal{sha: pr.HeadSHA, reason: "destroyed by @" + cmd.sender + " with /slipway destroy; push again or comment /slipway redeploy to bring it back", held: true}); err != nil {
			return false, false, err
		}
		done = true
	case gh.CommandKeep:
		k := store.Keep{Forever: parsed.Forever, By: cmd.sender}
		if !parsed.Forever {
			k.Until = c.now().Add(parsed.Keep)
		}
		if err := c.store.SetKeep(ctx, project, k); err != nil && !errors.Is(err, store.ErrNotFound) {
			return false, false, fmt.Errorf("record keep: %w", err)
		}
	case gh.CommandApprove:
		sha, ok := approvedHead(cmd.headSHA, pr.HeadSHA, cmd.at, c.now())
		if !ok {
			c.reply(ctx, repo, key.PR, fmt.Sprintf("@%s Slipway could not tell which commit your approval was for (it restarted since); approve again to build %s.",
				cmd.sender, contract.ShortSHA(pr.HeadSHA)))
			break
		}
		if sha != pr.HeadSHA {
			c.reply(ctx, repo, key.PR, fmt.Sprintf("@%s the pull request moved to %s after your approval of %s; approve again to build the new commit.",
				cmd.sender, contract.ShortSHA(pr.HeadSHA), contract.ShortSHA(sha)))
		}
		if err := c.store.Approve(ctx, store.Approval{Repo: key.Repo, PR: key.PR, SHA: sha, By: cmd.sender}); err != nil {
			return false, false, fmt.Errorf("record approval: %w", err)
		}
	case gh.CommandHelp:
		c.reply(ctx, repo, key.PR, gh.HelpText)
	case gh.CommandShare:
		c.share(ctx, r, cmd, parsed.Share)
	}
	c.react(ctx, repo, cmd.commentID, gh.ReactionAck)
	return forced, done, nil
}

// applyApprovalLabel credits the approval label to the head it was applied
// at, when a writer applied it.
func (c *Controller) applyApprovalLabel(ctx context.Context, key Key, repo gh.Repo, pr gh.PullRequest, cmd command) error {
	if !strings.EqualFold(cmd.label, gh.ApprovalLabel) {
		return nil
	}
	can, err := c.gh.CanWrite(ctx, repo, cmd.sender)
	if err != nil {
		return fmt.Errorf("check permission of %s: %w", cmd.sender, err)
	}
	if !can {
		c.log.Info("approval label from a user without write access ignored", "key", key.String(), "user", cmd.sender)
		return nil
	}
	sha, ok := approvedHead(cmd.headSHA, pr.HeadSHA, cmd.at, c.now())
	if !ok {
		c.log.Info("approval label for an unknown commit ignored", "key", key.String(), "user", cmd.sender)
		return nil
	}
	if err := c.store.Approve(ctx, store.Approval{Repo: key.Repo, PR: key.PR, SHA: sha, By: cmd.sender}); err != nil {
		return fmt.Errorf("record approval: %w", err)
	}
	return nil
}

// applyAction carries out a dashboard action.
func (c *Controller) applyAction(ctx context.Context, r *request, cmd command) (forced, done bool, err error) {
	switch cmd.action {
	case actionRedeploy:
		c.intake.setForced(r.key)
		return true, false, nil
	case actionDestroy:
		_, err := c.teardown(ctx, r, removal{sha: r.sha(), reason: "destroyed from the dashboard" + by(cmd.sender) + "; push again or redeploy to bring it back", held: true})
		return false, err == nil, err
	case actionSleep:
		if err := c.engine.Stop(ctx, r.project); err != nil {
			return false, false, fmt.Errorf("put %s to sleep: %w", r.project, err)
		}
		c.transition(ctx, r, transition{Phase: contract.PhaseSleeping, SHA: r.sha(), Detail: "put to sleep from the dashboard" + by(cmd.sender)})
		return false, true, nil
	case actionWake:
		c.intake.setWake(r.key)
	}
	return false, false, nil
}

func by(user string) string {
	if user == "" {
		return ""
	}
	return " by " + user
}

func (c *Controller) react(ctx context.Context, repo gh.Repo, commentID int64, r gh.Reaction) {
	if commentID == 0 {
		return
	}
	if err := c.gh.React(ctx, repo, commentID, r); err != nil {
		c.log.Warn("react to a comment", "repo", repo.String(), "comment", commentID, "err", err)
	}
}

func (c *Controller) reply(ctx context.Context, repo gh.Repo, pr int, body string) {
	if _, err := c.gh.Comment(ctx, repo, pr, c.mask.String(body)); err != nil {
		c.log.Warn("reply to a command", "repo", repo.String(), "pr", pr, "err", err)
	}
}

// ErrUnknownEnvironment is returned by the dashboard actions for a project
// that belongs to no configured repository.
var ErrUnknownEnvironment = errors.New("unknown environment")

// queueAction records a dashboard action for the project's next reconcile.
func (c *Controller) queueAction(project, action string) error {
	key, ok := c.keyOf(project)
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownEnvironment, project)
	}
	c.intake.addCommand(key, command{action: action})
	c.queue.Add(key)
	return nil
}

// Redeploy recreates the environment at the PR's head (dashboard action).
func (c *Controller) Redeploy(ctx context.Context, project string) error {
	return c.queueAction(project, actionRedeploy)
}

// Destroy removes the environment until the next push or redeploy.
func (c *Controller) Destroy(ctx context.Context, project string) error {
	return c.queueAction(project, actionDestroy)
}

// Sleep stops the environment's containers; the next request wakes it.
func (c *Controller) Sleep(ctx context.Context, project string) error {
	return c.queueAction(project, actionSleep)
}

// Wake starts a sleeping environment.
func (c *Controller) Wake(ctx context.Context, project string) error {
	return c.queueAction(project, actionWake)
}

// headBindWindow is how long after a /slipway approve arrived the head
// read at its reconcile may stand in for the head it was written at, when
// no event told that: in the moments after a start, before any event of
// the PR, not after a restart or a retry, when a fork's author may have
// pushed meanwhile.
const headBindWindow = 10 * time.Second

// approvedHead is the commit an approval covers: the head the events named
// when it arrived; else, shortly after it arrived, the head read now; else
// none (ok false: the writer must approve again).
func approvedHead(atArrival, now string, arrived, clock time.Time) (sha string, ok bool) {
	switch {
	case atArrival != "":
		return atArrival, true
	case now != "" && !arrived.IsZero() && clock.Sub(arrived) <= headBindWindow:
		return now, true
	}
	return "", false
}
