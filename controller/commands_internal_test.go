package controller

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/webhooks"
)

// writerGitHub is a GitHub where every user but "mallory" may write; it
// records replies.
type writerGitHub struct {
	GitHub
	mu      sync.Mutex
	replies []string
}

func (g *writerGitHub) CanWrite(_ context.Context, _ gh.Repo, user string) (bool, error) {
	return user != "mallory", nil
}
func (g *writerGitHub) React(context.Context, gh.Repo, int64, gh.Reaction) error { return nil }
func (g *writerGitHub) Comment(_ context.Context, _ gh.Repo, _ int, body string) (int64, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.replies = append(g.replies, body)
	return 1, nil
}

// An approval covers the head the events named when it was written: a push
// that lands before the reconcile reads the comment is not approved with it.
func TestApprovalBindsToTheHeadWhenWritten(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cfg := config.Defaults()
	cfg.Repos = []config.RepoPolicy{{Name: "acme/shop"}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	ghc := &writerGitHub{}
	c, err := New(Options{Config: &cfg, GitHub: ghc, Reporter: nopReporter{}, Engine: nopEngine{}, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	const reviewed, pushed = "1111111111111111111111111111111111111111", "2222222222222222222222222222222222222222"
	c.HandleEvent(webhooks.Event{Kind: webhooks.KindPullRequest, Action: "opened", Repo: "acme/shop", PR: 3, HeadSHA: reviewed})
	c.HandleEvent(webhooks.Event{Kind: webhooks.KindIssueComment, Action: "created", Repo: "acme/shop", PR: 3,
		Comment: &webhooks.Comment{ID: 7, Body: "/slipway approve", Author: "alice"}})
	c.HandleEvent(webhooks.Event{Kind: webhooks.KindPullRequest, Action: "synchronize", Repo: "acme/shop", PR: 3, HeadSHA: pushed})
	key := Key{Repo: "acme/shop", PR: 3}
	repo, _ := c.repoOf(key)
	r := &request{key: key, repo: repo, project: "acme-shop-pr-3", pr: gh.PullRequest{Number: 3, State: "open", HeadSHA: pushed}}
	if _, _, err := c.applyCommands(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Approval(context.Background(), "acme/shop", 3, pushed); ok {
		t.Error("the commit pushed after the approval was approved")
	}
	if _, ok, _ := st.Approval(context.Background(), "acme/shop", 3, reviewed); !ok {
		t.Error("the reviewed commit was not approved")
	}
	if len(ghc.replies) != 1 || !strings.Contains(ghc.replies[0], "approve again") {
		t.Errorf("replies %q, want one asking to approve again", ghc.replies)
	}
}

type nopReporter struct{}

func (nopReporter) Report(context.Context, gh.Status) error { return nil }

type nopEngine struct{ Engine }
