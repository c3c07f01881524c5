package controller

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/webhooks"
)

// recordingSharer records the share links asked for.
type recordingSharer struct {
	asked  []string
	public bool
}

func (s *recordingSharer) Share(_ context.Context, repo string, pr int, ttl time.Duration, by string) (string, time.Time, bool, error) {
	s.asked = append(s.asked, repo+"#"+string(rune('0'+pr))+" "+ttl.String()+" "+by)
	return "swp_secret", time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC), s.public, nil
}

// shareController is a controller of acme/shop on preview.example.com
// whose GitHub calls everyone but mallory a writer and records replies, with a
// recording Sharer.
func shareController(t *testing.T) (*Controller, *writerGitHub, *recordingSharer) {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	cfg := config.Defaults()
	cfg.Domain = "preview.example.com"
	cfg.Repos = []config.RepoPolicy{{Name: "acme/shop"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ghc := &writerGitHub{}
	sh := &recordingSharer{}
	c, err := New(Options{Config: &cfg, GitHub: ghc, Reporter: nopReporter{}, Engine: nopEngine{}, Store: st, Shares: sh})
	if err != nil {
		t.Fatal(err)
	}
	return c, ghc, sh
}

// "/slipway share 48h" from a writer replies with a link carrying the
// secret; from anyone else it makes no link.
func TestShareCommandRepliesWithALinkToWritersOnly(t *testing.T) {
	c, ghc, sh := shareController(t)
	key := Key{Repo: "acme/shop", PR: 3}
	c.HandleEvent(webhooks.Event{Kind: webhooks.KindIssueComment, Action: "created", Repo: "acme/shop", PR: 3, PrivateRepo: true,
		Comment: &webhooks.Comment{ID: 7, Body: "/slipway share 48h", Author: "mallory"}})
	c.HandleEvent(webhooks.Event{Kind: webhooks.KindIssueComment, Action: "created", Repo: "acme/shop", PR: 3, PrivateRepo: true,
		Comment: &webhooks.Comment{ID: 8, Body: "/slipway share 48h", Author: "alice"}})
	repo, _ := c.repoOf(key)
	r := &request{key: key, repo: repo, project: "acme-shop-pr-3", pr: gh.PullRequest{Number: 3, State: "open", HeadSHA: strings.Repeat("1", 40)}}
	if _, _, err := c.applyCommands(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if len(sh.asked) != 1 || sh.asked[0] != "acme/shop#3 48h0m0s alice" {
		t.Fatalf("share links asked: %q", sh.asked)
	}
	if len(ghc.replies) != 2 || !strings.Contains(ghc.replies[0], "write access") {
		t.Fatalf("replies %q", ghc.replies)
	}
	if want := "http://pr-3.preview.example.com/?slipway_bypass=swp_secret"; !strings.Contains(ghc.replies[1], want) {
		t.Errorf("reply %q lacks the link %s", ghc.replies[1], want)
	}
}

// On a repository the delivery does not call private, the reply would be
// readable by anyone: no link is made, and the reply says where to make one.
func TestShareCommandMakesNoLinkOnAPublicRepository(t *testing.T) {
	c, ghc, sh := shareController(t)
	key := Key{Repo: "acme/shop", PR: 3}
	c.HandleEvent(webhooks.Event{Kind: webhooks.KindIssueComment, Action: "created", Repo: "acme/shop", PR: 3,
		Comment: &webhooks.Comment{ID: 8, Body: "/slipway share 48h", Author: "alice"}})
	repo, _ := c.repoOf(key)
	r := &request{key: key, repo: repo, project: "acme-shop-pr-3", pr: gh.PullRequest{Number: 3, State: "open", HeadSHA: strings.Repeat("1", 40)}}
	if _, _, err := c.applyCommands(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if len(sh.asked) != 0 {
		t.Fatalf("share links made: %q", sh.asked)
	}
	if len(ghc.replies) != 1 || !strings.Contains(ghc.replies[0], "only on private repositories") || strings.Contains(ghc.replies[0], "slipway_bypass") {
		t.Fatalf("replies %q", ghc.replies)
	}
}
