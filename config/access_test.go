package config

import (
	"strings"
	"testing"

	"github.com/slipwayhq/slipway/internal/contract"
)

func TestAccessConfig(t *testing.T) {
	base := "github: {token: t, webhook_secret: s}\n"
	cases := []struct {
		yaml, err string
	}{
		{"access: public\n", ""},
		{"access: secret\n", `access "secret": want public, github or password`},
		{"access: password\n", "no password is set"},
		{"access: password\naccess_password: pw\n", ""},
		{"access: github\n", "github.oauth.client_id"},
		{"access: github\ngithub: {token: t, webhook_secret: s, oauth: {client_id: i, client_secret: c}}\n", ""},
		{"repos: [{name: acme/shop, access: password}]\n", "repos[0].access is password but no password"},
		{"repos: [{name: acme/shop, access: password, access_password: x}]\n", ""},
		{"repos: [{name: acme/shop, access: nope}]\n", `repos[0].access "nope"`},
		{"hostname: random\n", ""},
		{"access_team: acme/qa\n", ""},
		{"repos: [{name: acme/shop, access_team: acme}]\n", ""},
		{"access_team: acme/qa/x\n", `access_team "acme/qa/x"`},
		{"repos: [{name: acme/shop, access_team: /qa}]\n", `repos[0].access_team "/qa"`},
		{"hostname: guessable\n", `hostname "guessable"`},
	}
	for _, c := range cases {
		y := c.yaml
		if !strings.Contains(y, "github:") {
			y = base + y
		}
		_, err := ParseController([]byte(y), func(string) (string, bool) { return "", false })
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%q: %v", c.yaml, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.err)
		}
	}
	cfg, err := ParseController([]byte("access: password\naccess_password: g\nrepos: [{name: acme/shop, access: github}, {name: acme/blog}, {name: acme/docs, access: public}]\ngithub: {token: t, webhook_secret: s, oauth: {client_id: i, client_secret: c}}\n"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.AccessFor("acme/shop"); a.Mode != AccessGitHub {
		t.Errorf("shop: %+v", a)
	}
	if a := cfg.AccessFor("ACME/blog"); a.Mode != AccessPassword || a.Password != "g" {
		t.Errorf("blog inherits: %+v", a)
	}
	if got := cfg.PublicPreviews(); len(got) != 1 || got[0] != "acme/docs" {
		t.Errorf("public previews %v", got)
	}
	if !cfg.NoIndex {
		t.Error("noindex is not on by default")
	}
}

func TestRandomHostnameTemplates(t *testing.T) {
	for _, repos := range []string{"[{name: acme/shop}]", "[{name: acme/shop}, {name: acme/blog}]", "[{name: acme/shop}, {name: other/shop}]"} {
		cfg, err := ParseController([]byte("hostname: random\nrepos: "+repos+"\n"), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%s: %v", repos, err)
		}
		tm := cfg.HostTemplates()
		if !strings.Contains(tm.Primary, "{{.Random}}") || !strings.Contains(tm.Service, "{{.Random}}") {
			t.Errorf("%s: templates %+v lack the random label", repos, tm)
		}
		tm.Key = []byte(strings.Repeat("k", 32))
		h, err := contract.Host(tm.Primary, contract.HostData{Number: 7, Owner: "acme", Repo: "shop", Domain: cfg.Domain, Random: contract.RandomLabel(tm.Key, "acme/shop", 7)})
		if err != nil {
			t.Fatal(err)
		}
		if err := tm.OwnsHost(h, "acme/shop", 7, ""); err != nil {
			t.Errorf("%s: %s not owned: %v", repos, h, err)
		}
	}
}
