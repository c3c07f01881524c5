package access

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestBypassTokenHeaderAndRevocation(t *testing.T) {
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}, "acme/blog": {Mode: Password, Password: "p"}}, &fakePermissions{roles: map[string]string{}})
	ctx := context.Background()
	tok, secret, err := r.store.Create(ctx, NewToken{Kind: KindBypass, Repo: "acme/shop", CreatedBy: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok.Hash, secret) || tok.Hash == "" {
		t.Fatal("the secret is stored in clear")
	}
	h := http.Header{BypassHeader: {secret}}
	if resp, body := r.do("GET", shopHost, "/", nil, h); resp.StatusCode != 200 || body != backendBody {
		t.Fatalf("bypass header: %d %q", resp.StatusCode, body)
	}
	// Of another repository: refused.
	if resp, _ := r.do("GET", blogHost, "/", nil, h); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("shop's token on blog: %d", resp.StatusCode)
	}
	// The query parameter sets a grant cookie and redirects to the clean URL.
	resp, _ := r.do("GET", shopHost, "/a?b=1&"+BypassParam+"="+secret, nil, nil)
	if resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/a?b=1" {
		t.Fatalf("bypass parameter: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var grant string
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, grantPrefix) {
			grant = c.Name + "=" + c.Value
		}
	}
	if resp, _ := r.do("GET", shopHost, "/a?b=1", nil, cookieHeader(grant)); resp.StatusCode != 200 {
		t.Fatalf("grant from the parameter: %d", resp.StatusCode)
	}
	served := len(r.backend.requests())
	if _, err := r.store.Revoke(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if resp, _ := r.do("GET", shopHost, "/", nil, h); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token in the header: %d", resp.StatusCode)
	}
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(grant)); resp.StatusCode != http.StatusFound {
		t.Errorf("grant of a revoked token: %d", resp.StatusCode)
	}
	if resp, _ := r.do("GET", shopHost, "/?"+BypassParam+"="+secret, nil, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked token in the query: %d", resp.StatusCode)
	}
	if n := len(r.backend.requests()); n != served {
		t.Errorf("refused requests reached the backend: %d", n-served)
	}
	r.noCredentialReached(secret)
	if got := r.store.List("acme/shop"); len(got) != 1 || got[0].Revoked.IsZero() {
		t.Errorf("list: %+v", got)
	}
}

func TestShareLinkExpires(t *testing.T) {
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}}, &fakePermissions{roles: map[string]string{}})
	ctx := context.Background()
	if _, _, err := r.store.Create(ctx, NewToken{Kind: KindShare, Repo: "acme/shop", PR: 7, TTL: 60 * 24 * time.Hour}); err == nil {
		t.Error("a 60-day share link was created")
	}
	_, secret, err := r.store.Create(ctx, NewToken{Kind: KindShare, Repo: "acme/shop", PR: 7, TTL: 48 * time.Hour, CreatedBy: "ada"})
	if err != nil {
		t.Fatal(err)
	}
	resp, _ := r.do("GET", shopHost, "/?"+BypassParam+"="+secret, nil, nil)
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("share link: %d", resp.StatusCode)
	}
	grant := resp.Cookies()[0]
	if !strings.HasPrefix(grant.Name, grantPrefix) || grant.Expires.After(r.clock.Now().Add(48*time.Hour+time.Second)) {
		t.Fatalf("grant %+v outlives the link", grant)
	}
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(grant.Name+"="+grant.Value)); resp.StatusCode != 200 {
		t.Fatalf("grant of the share link: %d", resp.StatusCode)
	}
	served := len(r.backend.requests())
	r.clock.Add(48*time.Hour + time.Second)
	if resp, body := r.do("GET", shopHost, "/?"+BypassParam+"="+secret, nil, nil); resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "acme/shop") {
		t.Errorf("expired share link: %d", resp.StatusCode)
	}
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(grant.Name+"="+grant.Value)); resp.StatusCode != http.StatusFound {
		t.Errorf("grant of an expired share link: %d", resp.StatusCode)
	}
	if n := len(r.backend.requests()); n != served {
		t.Errorf("refused requests reached the backend: %d", n-served)
	}
	r.noCredentialReached(secret)
}
