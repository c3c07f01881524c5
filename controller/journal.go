package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/webhooks"
)

// Commands survive a restart. GitHub sends a delivery once and never
// retries one it got a 2xx for, so a ChatOps comment or an approval label
// held only in memory would be lost to a crash, and the delivery log would
// then drop the user's "Redeliver" as a duplicate. So the controller is the
// webhook handler's Journal: the command and its delivery ID are written in
// one synced store transaction before GitHub hears 202 (a failed write
// answers 503 and records nothing, so a redelivery is acted on). New loads
// what is still pending; a command is forgotten once acted on (a redeploy
// once its deploy has started). A crash between acting and forgetting acts
// again after the restart, which every command tolerates: approving,
// destroying, keeping or redeploying twice ends in the same state.

// commandFrom returns the command ev carries: an approval label applied, or
// a comment starting with /slipway. head is the PR's head as far as the
// events told when the comment arrived: an approval covers that commit, not
// whatever the head is when the reconcile gets to it.
func commandFrom(ev webhooks.Event, head string) (command, bool) {
	switch {
	case ev.Kind == webhooks.KindPullRequest && ev.Action == "labeled" && strings.EqualFold(ev.Label, gh.ApprovalLabel):
		return command{label: ev.Label, sender: ev.Sender, headSHA: ev.HeadSHA, delivery: ev.DeliveryID}, true
	case ev.Kind == webhooks.KindIssueComment && ev.Comment != nil && strings.HasPrefix(strings.TrimSpace(ev.Comment.Body), gh.CommandPrefix):
		return command{commentID: ev.Comment.ID, body: ev.Comment.Body, sender: ev.Comment.Author, headSHA: head, delivery: ev.DeliveryID, privateRepo: ev.PrivateRepo}, true
	}
	return command{}, false
}

// Journaled reports whether ev carries a command (webhooks.Journal).
func (c *Controller) Journaled(ev webhooks.Event) bool {
	_, ok := commandFrom(ev, "")
	return ok
}

// Record writes ev's command to the store together with its delivery ID,
// then handles ev as HandleEvent does (webhooks.Journal). It reports
// whether the delivery was new.
func (c *Controller) Record(ctx context.Context, ev webhooks.Event) (bool, error) {
	key := Key{Repo: canonicalRepo(c.cfg, ev.Repo), PR: ev.PR}
	c.intake.mu.Lock()
	cmd, ok := commandFrom(ev, c.intake.heads[key])
	c.intake.mu.Unlock()
	cmd.at = c.now()
	if !ok {
		return false, fmt.Errorf("record delivery %s: it carries no command", ev.DeliveryID)
	}
	first, err := c.store.AcceptCommand(ctx, store.Command{
		Delivery: cmd.delivery, Repo: key.Repo, PR: key.PR, CommentID: cmd.commentID, Body: cmd.body,
		Label: cmd.label, Sender: cmd.sender, HeadSHA: cmd.headSHA, PrivateRepo: cmd.privateRepo,
	})
	if err != nil || !first {
		return false, err
	}
	c.handleEvent(ev, &cmd)
	return true, nil
}

// addCommandLocked queues the command ev carries (journaled, when set, is
// the one Record wrote) for the key's next reconcile and reports whether
// there was one. in.mu is held.
func (in *intake) addCommandLocked(key Key, ev webhooks.Event, journaled *command, now time.Time) bool {
	cmd, ok := commandFrom(ev, in.heads[key])
	cmd.at = now
	if journaled != nil {
		cmd, ok = *journaled, true
	}
	if ok {
		in.commands[key] = append(in.commands[key], cmd)
	}
	return ok
}

// loadCommands queues the commands a previous process accepted and did not
// act on, and the reconciles that will.
func (c *Controller) loadCommands(ctx context.Context) error {
	pending, err := c.store.PendingCommands(ctx)
	if err != nil {
		return err
	}
	for _, p := range pending {
		if _, ok := c.cfg.Repo(p.Repo); !ok {
			// The repository left the configuration: nobody acts on it.
			c.forgetCommands(ctx, Key{Repo: p.Repo, PR: p.PR}, p.Delivery)
			continue
		}
		key := Key{Repo: canonicalRepo(c.cfg, p.Repo), PR: p.PR}
		c.intake.addCommand(key, command{
			// No arrival time: across a restart, the head read later never
			// stands in for an approval's unknown one (approvedHead).
			commentID: p.CommentID, body: p.Body, sender: p.Sender, label: p.Label, headSHA: p.HeadSHA, delivery: p.Delivery,
			privateRepo: p.PrivateRepo,
		})
		c.queue.Add(key)
	}
	if len(pending) > 0 {
		c.log.Info("commands received before a restart queued again", "count", len(pending))
	}
	return nil
}

// commandApplied forgets a journaled command that has been acted on. A
// redeploy is forgotten only once its deploy has started (redeploysStarted):
// until then the forced flag that carries it lives in memory only.
func (c *Controller) commandApplied(ctx context.Context, key Key, cmd command, redeploy bool) {
	if cmd.delivery == "" {
		return
	}
	if redeploy {
		c.intake.mu.Lock()
		c.intake.redeploys[key] = append(c.intake.redeploys[key], cmd.delivery)
		c.intake.mu.Unlock()
		return
	}
	c.forgetCommands(ctx, key, cmd.delivery)
}

// redeploysStarted forgets the key's journaled redeploys once no redeploy
// is pending any more: the deploy they asked for has started.
func (c *Controller) redeploysStarted(ctx context.Context, key Key) {
	c.intake.mu.Lock()
	var done []string
	if !c.intake.forced[key] {
		done = c.intake.redeploys[key]
		delete(c.intake.redeploys, key)
	}
	c.intake.mu.Unlock()
	c.forgetCommands(ctx, key, done...)
}

// forgetCommands deletes journaled commands from the store. A failure is
// logged: the command is then acted on again after a restart.
func (c *Controller) forgetCommands(ctx context.Context, key Key, deliveries ...string) {
	for _, d := range deliveries {
		if err := c.store.CommandDone(ctx, d); err != nil {
			c.log.Warn("forget a command acted on; a restart will act on it again", "key", key.String(), "delivery", d, "err", err)
		}
	}
}
