package main

import (
	"strings"

	"github.com/slipwayhq/slipway/config"
)

// judgeAccess says who can open previews: a warning names the public ones
// (anyone who finds the host sees them), so an operator never serves
// public previews without knowing it.
func judgeAccess(cfg *config.Controller) checkResult {
	const name = "access"
	public := cfg.PublicPreviews()
	robots := "noindex on"
	if !cfg.NoIndex {
		robots = "noindex OFF: search engines may index previews"
	}
	if len(public) == 0 {
		return checkOK(name, "every preview is private (%s)", robots)
	}
	what := "previews of " + strings.Join(public, ", ")
	if public[0] == "*" {
		what = "previews are public by default (access: public)"
		if len(public) > 1 {
			what += "; public too: " + strings.Join(public[1:], ", ")
		}
	}
	return checkWarn(name, "set access: github or password (docs/access.md) unless previews may be seen by anyone who finds their host",
		"%s: anyone who knows or guesses a preview's host can open it (%s)", what, robots)
}
