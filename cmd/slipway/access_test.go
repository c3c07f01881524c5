package main

import (
	"context"
	"testing"

	"github.com/slipwayhq/slipway/config"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/github/githubfake"
)

// The gate's permission source: read access to the repository, narrowed
// by access_team to an organisation or a team, asked of (fake) GitHub.
func TestPermissionsNarrowedToOrgOrTeam(t *testing.T) {
	fake := githubfake.New(t)
	for _, r := range []string{"acme/shop", "acme/blog", "acme/docs"} {
		fake.AddRepo(r, githubfake.RepoOptions{Private: true})
		for _, u := range []string{"ada", "qa-lead", "outsider"} {
			fake.SetPermission(r, u, githubfake.Read)
		}
	}
	fake.AddOrgMember("acme", "ada")
	fake.AddTeamMember("acme", "qa", "qa-lead")
	client, err := gh.New(gh.Options{APIURL: fake.URL, Token: fake.Token})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.Repos = []config.RepoPolicy{{Name: "acme/shop", AccessTeam: "acme"}, {Name: "acme/blog", AccessTeam: "acme/qa"}, {Name: "acme/docs"}}
	p := &ghPermissions{c: client, cfg: &cfg}
	want := map[string]string{
		"acme/shop ada": "read", "acme/shop qa-lead": "read", "acme/shop outsider": "none",
		"acme/blog ada": "none", "acme/blog qa-lead": "read", "acme/blog outsider": "none",
		"acme/docs outsider": "read", "acme/docs stranger": "none",
	}
	for k, w := range want {
		var repo, user string
		for i := range k {
			if k[i] == ' ' {
				repo, user = k[:i], k[i+1:]
			}
		}
		got, err := p.Permission(context.Background(), repo, user)
		if err != nil || got != w {
			t.Errorf("%s: %q %v, want %q", k, got, err, w)
		}
	}
	if got, _ := (&ghPermissions{cfg: &cfg}).Permission(context.Background(), "acme/shop", "ada"); got != "none" {
		t.Errorf("before the GitHub client exists: %q", got)
	}
}
