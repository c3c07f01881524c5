package access

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// A preview's page can set a cookie named like Slipway's for the whole
// domain or for a longer path, which the browser then sends before
// Slipway's own. Such a cookie must not shadow the real one: every cookie
// of the name is tried.
func TestPlantedCookieDoesNotShadowTheRealOne(t *testing.T) {
	perms := &fakePermissions{roles: map[string]string{"acme/shop ada": "read"}}
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}}, perms)
	good := r.sessionFor("ada", time.Hour)
	planted := SessionCookie + "=planted-by-a-preview"
	resp, body := r.do("GET", shopHost, "/", nil, cookieHeader(planted, "app=1", good))
	if resp.StatusCode != 200 || body != backendBody {
		t.Fatalf("planted session cookie first: %d %q", resp.StatusCode, body)
	}
	// Only the planted one: refused, as any invalid session.
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(planted)); resp.StatusCode != http.StatusFound {
		t.Errorf("planted cookie alone: %d, want the sign-in", resp.StatusCode)
	}
	r.noCredentialReached()
}

func TestPlantedGrantDoesNotShadowThePasswordGrant(t *testing.T) {
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: Password, Password: "hunter2"}}, nil)
	name := grantName("acme/shop", 0)
	exp := r.clock.Now().Add(time.Hour)
	real := r.keys.seal(name, claims{Kind: kindPassword, Repo: "acme/shop", Password: r.keys.passwordFingerprint("acme/shop", "hunter2"), Expires: exp.Unix()})
	resp, body := r.do("GET", shopHost, "/", nil, cookieHeader(name+"=junk", name+"="+real))
	if resp.StatusCode != 200 || body != backendBody {
		t.Fatalf("planted grant first: %d %q", resp.StatusCode, body)
	}
	r.noCredentialReached(real)
}

// A cookie's Max-Age is counted from the gate's clock, not the wall clock.
func TestCookieLifetimeFollowsTheClock(t *testing.T) {
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}}, nil)
	c := r.gate.Session("ada", 1)
	if want := int(r.gate.opts.SessionTTL.Seconds()); c.MaxAge != want {
		t.Errorf("session Max-Age %d, want %d", c.MaxAge, want)
	}
	if !c.Expires.Equal(r.clock.Now().Add(r.gate.opts.SessionTTL)) {
		t.Errorf("session Expires %v", c.Expires)
	}
	if !strings.HasPrefix(c.Name, CookiePrefix) {
		t.Errorf("name %q", c.Name)
	}
}

// A valid session planted first (a preview's author's own, set by the
// preview's page for the domain) does not stand in for the visitor's: the
// first session whose user may see the repository is used.
func TestPlantedValidSessionDoesNotReplaceTheVisitors(t *testing.T) {
	perms := &fakePermissions{roles: map[string]string{"acme/shop ada": "read"}}
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}}, perms)
	resp, body := r.do("GET", shopHost, "/", nil, cookieHeader(r.sessionFor("mallory", time.Hour), r.sessionFor("ada", time.Hour)))
	if resp.StatusCode != 200 || body != backendBody {
		t.Fatalf("mallory's session first, then ada's: %d %q", resp.StatusCode, body)
	}
	// Mallory's alone is refused, naming mallory.
	resp, body = r.do("GET", shopHost, "/", nil, cookieHeader(r.sessionFor("mallory", time.Hour)))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "mallory") {
		t.Errorf("mallory alone: %d %q", resp.StatusCode, body)
	}
}

// Each cookie of a name costs a signature check: only the first few are
// tried, so a request stuffed with forged ones buys no more than that.
func TestCookiesOfOneNameTriedAtMostMaxSameName(t *testing.T) {
	perms := &fakePermissions{roles: map[string]string{"acme/shop ada": "read"}}
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}}, perms)
	var cs []string
	for range maxSameName - 1 {
		cs = append(cs, SessionCookie+"=junk")
	}
	good := r.sessionFor("ada", time.Hour)
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(append(cs, good)...)); resp.StatusCode != 200 {
		t.Errorf("the real session as the %dth: %d", maxSameName, resp.StatusCode)
	}
	cs = append(cs, SessionCookie+"=junk")
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(append(cs, good)...)); resp.StatusCode != http.StatusFound {
		t.Errorf("the real session after %d others: %d, want the sign-in", maxSameName, resp.StatusCode)
	}
}
