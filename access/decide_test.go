package access

import (
	"testing"
)

func TestDecide(t *testing.T) {
	cases := []struct {
		name string
		mode Mode
		ev   evidence
		want verdict
	}{
		{"public needs nothing", Public, evidence{}, admit},
		{"public ignores a bad token", Public, evidence{Bypass: invalid}, admit},
		{"password without grant", Password, evidence{}, askPassword},
		{"password with grant", Password, evidence{Grant: valid}, admit},
		{"password with a forged grant", Password, evidence{Grant: invalid}, askPassword},
		{"password with a github session only", Password, evidence{Session: valid, Permission: permAllowed}, askPassword},
		{"github without session", GitHub, evidence{}, signIn},
		{"github with a forged session", GitHub, evidence{Session: invalid}, signIn},
		{"github session, permission not asked", GitHub, evidence{Session: valid}, needPermission},
		{"github session allowed", GitHub, evidence{Session: valid, Permission: permAllowed}, admit},
		{"github session denied", GitHub, evidence{Session: valid, Permission: permDenied}, refuse},
		{"github, GitHub down", GitHub, evidence{Session: valid, Permission: permError}, unavailable},
		{"github with a share grant", GitHub, evidence{Grant: valid}, admit},
		{"valid bypass", GitHub, evidence{Bypass: valid}, admit},
		{"refused bypass wins over a session", GitHub, evidence{Bypass: invalid, Session: valid, Permission: permAllowed}, refuseBypass},
		{"refused bypass wins over a grant", Password, evidence{Bypass: invalid, Grant: valid}, refuseBypass},
		{"unknown mode never opens", Mode("typo"), evidence{Session: valid, Permission: permAllowed}, refuse},
	}
	for _, c := range cases {
		if got := decide(c.mode, c.ev); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestNextStaysOnPreviewDomain(t *testing.T) {
	g := &Gate{domain: "preview.test", opts: Options{ControlURL: "https://preview.test"}}
	home := "https://preview.test/"
	cases := map[string]string{
		"https://pr-7.preview.test/orders?x=1": "https://pr-7.preview.test/orders?x=1",
		"http://pr-7.preview.test/":            "http://pr-7.preview.test/",
		"https://preview.test/dash":            "https://preview.test/dash",
		"https://evil.example/":                home,
		"https://preview.test.evil.example/":   home,
		"https://evilpreview.test/":            home,
		"//evil.example/":                      home,
		"javascript:alert(1)":                  home,
		"https://user@pr-7.preview.test/":      home,
		"https://pr-7.preview.test\\@evil/":    home,
		"/relative":                            home,
		"":                                     home,
		"https://pr-7.preview.test/\r\nX: y":   home,
	}
	for in, want := range cases {
		if got := g.safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
	paths := map[string]string{
		"/orders?x=1":        "/orders?x=1",
		"//evil.example":     "/",
		`/\evil.example`:     "/",
		"https://evil/":      "/",
		"evil":               "/",
		"/.slipway/password": "/",
		"":                   "/",
	}
	for in, want := range paths {
		if got := safePath(in); got != want {
			t.Errorf("safePath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveScope(t *testing.T) {
	prefixes := map[string]string{"acme-shop": "acme/shop", "my-org-web-app": "My.Org/web_app"}
	cases := map[string]scope{
		"acme-shop-pr-7":       {Repo: "acme/shop", Known: true, PR: 7},
		"my-org-web-app-pr-12": {Repo: "My.Org/web_app", Known: true, PR: 12},
		"local-demo-pr-1":      {Repo: "local-demo", PR: 1},
		"acme-shop-pr-x":       {Repo: "acme-shop-pr-x"},
		"weird":                {Repo: "weird"},
	}
	for in, want := range cases {
		if got := resolveScope(in, prefixes); got != want {
			t.Errorf("resolveScope(%q) = %+v, want %+v", in, got, want)
		}
	}
}
