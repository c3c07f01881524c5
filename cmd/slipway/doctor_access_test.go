package main

import (
	"testing"

	"github.com/slipwayhq/slipway/config"
)

func TestDoctorSaysWhenPreviewsArePublic(t *testing.T) {
	cfg := config.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	assertResult(t, judgeAccess(&cfg), statusWarn, "previews are public by default", "docs/access.md")
	cfg.Access, cfg.AccessPassword = config.AccessPassword, "pw"
	cfg.Repos = []config.RepoPolicy{{Name: "acme/shop"}, {Name: "acme/docs", Access: config.AccessPublic}}
	assertResult(t, judgeAccess(&cfg), statusWarn, "previews of acme/docs", "")
	cfg.Repos = cfg.Repos[:1]
	assertResult(t, judgeAccess(&cfg), statusOK, "every preview is private (noindex on)", "")
}
