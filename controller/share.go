package controller

import (
	"context"
	"fmt"
	"time"

	"github.com/slipwayhq/slipway/access"
)

// Sharer makes a time-limited share link for one pull request's previews
// (package access, through slipway serve). It returns the secret, shown
// once, and when it stops working; public reports that the repository's
// previews need no link.
type Sharer interface {
	Share(ctx context.Context, repo string, pr int, ttl time.Duration, by string) (secret string, expires time.Time, public bool, err error)
}

// share answers "/slipway share <ttl>" from a writer with a link that
// opens the preview without signing in: on a private repository only,
// since the reply is a comment that anyone who reads the pull request
// reads, which for a public repository is everyone.
func (c *Controller) share(ctx context.Context, r *request, cmd command, ttl time.Duration) {
	sender := cmd.sender
	if c.shares == nil {
		c.reply(ctx, r.repo, r.key.PR, fmt.Sprintf("@%s share links are not available: this Slipway serves no private previews.", sender))
		return
	}
	if !cmd.privateRepo {
		c.reply(ctx, r.repo, r.key.PR, fmt.Sprintf("@%s Slipway posts share links only on private repositories, and GitHub's delivery did not say %s is one: anyone who can read this comment could use the link. "+
			"Make one from the dashboard's Access page or with `slipway access share`, and send it privately.", sender, r.key.Repo))
		return
	}
	secret, expires, public, err := c.shares.Share(ctx, r.key.Repo, r.key.PR, ttl, sender)
	switch {
	case err != nil:
		c.log.Warn("make a share link", "key", r.key.String(), "err", err)
		c.reply(ctx, r.repo, r.key.PR, fmt.Sprintf("@%s Slipway could not make a share link: %v", sender, err))
		return
	case public:
		c.reply(ctx, r.repo, r.key.PR, fmt.Sprintf("@%s the previews of %s are public: anyone with the address can open them, no link needed.", sender, r.key.Repo))
		return
	}
	hosts := c.defaultHosts(r.repo, r.key.PR)
	if len(hosts) == 0 {
		c.reply(ctx, r.repo, r.key.PR, fmt.Sprintf("@%s Slipway could not tell this preview's address.", sender))
		return
	}
	link := c.hosts.URL(hosts[0]) + "/?" + access.BypassParam + "=" + secret
	c.reply(ctx, r.repo, r.key.PR, fmt.Sprintf("@%s here is a link that opens this preview without signing in, until %s (UTC). "+
		"Anyone who has it can open the preview: share it only with whom it is for. Revoke it from the dashboard or with `slipway access revoke`.\n\n%s",
		sender, expires.UTC().Format("2006-01-02 15:04"), link))
}
