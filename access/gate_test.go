package access

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

func cookieHeader(cs ...string) http.Header {
	return http.Header{"Cookie": {strings.Join(cs, "; ")}}
}

// sessionFor seals a GitHub session cookie as the callback would.
func (r *rig) sessionFor(login string, ttl time.Duration) string {
	c := claims{Kind: kindSession, Login: login, UserID: 1, Expires: r.clock.Now().Add(ttl).Unix()}
	return SessionCookie + "=" + r.keys.seal(SessionCookie, c)
}

func TestPublicPreviewUnchangedButStripped(t *testing.T) {
	r := newRig(t, nil, nil)
	resp, body := r.do("GET", shopHost, "/page?x=1", nil, cookieHeader("app=1", r.sessionFor("ada", time.Hour), "slipway_grant_abc=zzz", "theme=dark"))
	if resp.StatusCode != 200 || body != backendBody {
		t.Fatalf("public preview: %d %q", resp.StatusCode, body)
	}
	if got := resp.Header.Get("X-Robots-Tag"); got != "noindex" {
		t.Errorf("X-Robots-Tag = %q, want noindex", got)
	}
	got := r.backend.requests()
	if len(got) != 1 || got[0].URI != "/page?x=1" {
		t.Fatalf("backend got %+v", got)
	}
	if c := strings.Join(got[0].Cookies, ";"); c != "app=1; theme=dark" {
		t.Errorf("backend cookies %q, want the application's own only", c)
	}
	r.noCredentialReached()
	// The bypass parameter is removed even for a public preview.
	if resp, _ := r.do("GET", shopHost, "/page?"+BypassParam+"=swp_leak&x=1", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("public with the parameter: %d", resp.StatusCode)
	}
	if got := r.backend.requests(); got[len(got)-1].URI != "/page?x=1" {
		t.Errorf("backend got %q", got[len(got)-1].URI)
	}
	r.noCredentialReached("swp_leak")
	// So is a percent-encoded one, which the preview would decode.
	for _, q := range []string{"slipway%5Fbypass=swp_enc1&x=1", "%73lipway_bypass=swp_enc2&x=1"} {
		if resp, _ := r.do("GET", shopHost, "/page?"+q, nil, nil); resp.StatusCode != 200 {
			t.Fatalf("public with %q: %d", q, resp.StatusCode)
		}
		if got := r.backend.requests(); got[len(got)-1].URI != "/page?x=1" {
			t.Errorf("%q: backend got %q", q, got[len(got)-1].URI)
		}
	}
	r.noCredentialReached("swp_enc1", "swp_enc2")
	// Unknown hosts (404 page) carry noindex too.
	resp, _ = r.do("GET", "pr-99-none."+testDomain, "/", nil, nil)
	if resp.StatusCode != 404 || resp.Header.Get("X-Robots-Tag") != "noindex" {
		t.Errorf("unknown host: %d, X-Robots-Tag %q", resp.StatusCode, resp.Header.Get("X-Robots-Tag"))
	}
}

func TestPasswordMode(t *testing.T) {
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: Password, Password: "hunter2"}}, nil)
	resp, body := r.do("GET", shopHost, "/orders", nil, nil)
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(body, "acme/shop") || !strings.Contains(body, `name="password"`) {
		t.Fatalf("no credentials: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("X-Robots-Tag") != "noindex" {
		t.Error("password form without noindex")
	}
	post := func(pw, next string) *http.Response {
		form := url.Values{"password": {pw}, "next": {next}}
		resp, _ := r.do("POST", shopHost, "/.slipway/password", strings.NewReader(form.Encode()),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		return resp
	}
	if resp := post("wrong", "/orders"); resp.StatusCode != http.StatusUnauthorized || len(resp.Cookies()) != 0 {
		t.Fatalf("wrong password: %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	if n := len(r.backend.requests()); n != 0 {
		t.Fatalf("backend reached %d times before the password", n)
	}
	// next off the host is replaced by "/".
	if resp := post("hunter2", "//evil.example/x"); resp.Header.Get("Location") != "/" {
		t.Errorf("next=//evil.example: Location %q", resp.Header.Get("Location"))
	}
	resp = post("hunter2", "/orders")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/orders" {
		t.Fatalf("right password: %d → %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var grant *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, grantPrefix) {
			grant = c
		}
	}
	if grant == nil || !grant.HttpOnly || grant.SameSite != http.SameSiteLaxMode || grant.Domain != testDomain {
		t.Fatalf("grant cookie %+v", grant)
	}
	resp, body = r.do("GET", shopHost, "/orders", nil, cookieHeader("app=1", grant.Name+"="+grant.Value))
	if resp.StatusCode != 200 || body != backendBody {
		t.Fatalf("with the grant: %d %q", resp.StatusCode, body)
	}
	r.noCredentialReached("hunter2", grant.Value)
	// The grant does not open another repository's password-protected preview.
	r.gate.scopes.Clear()
	r.gate.opts.AccessFor = func(repo string) RepoAccess {
		if repo == "acme/blog" {
			return RepoAccess{Mode: Password, Password: "hunter2"} // even the same password
		}
		return RepoAccess{Mode: Password, Password: "hunter2"}
	}
	blogName := grantName("acme/blog", 0)
	for _, c := range []string{grant.Name + "=" + grant.Value, blogName + "=" + grant.Value} {
		resp, _ = r.do("GET", blogHost, "/", nil, cookieHeader(c))
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("shop's grant (%s) on blog: %d", c[:20], resp.StatusCode)
		}
	}
	// A changed password ends the grant.
	r.gate.scopes.Clear()
	r.gate.opts.AccessFor = func(string) RepoAccess { return RepoAccess{Mode: Password, Password: "new"} }
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(grant.Name+"="+grant.Value)); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("grant after the password changed: %d", resp.StatusCode)
	}
}

func TestForgedTamperedAndExpiredCookiesRefused(t *testing.T) {
	perms := &fakePermissions{roles: map[string]string{"acme/shop ada": "read"}}
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}}, perms)
	good := r.sessionFor("ada", time.Hour)
	if resp, body := r.do("GET", shopHost, "/", nil, cookieHeader(good)); resp.StatusCode != 200 || body != backendBody {
		t.Fatalf("valid session: %d %q", resp.StatusCode, body)
	}
	other, _ := NewKeyring([]byte(strings.Repeat("x", 32)))
	value := strings.TrimPrefix(good, SessionCookie+"=")
	id, rest, _ := strings.Cut(value, ".")
	payload, mac, _ := strings.Cut(rest, ".")
	tampered := claims{Kind: kindSession, Login: "ada", Expires: r.clock.Now().Add(1000 * time.Hour).Unix()}
	tb := other.seal(SessionCookie, tampered)
	_, tRest, _ := strings.Cut(tb, ".")
	tPayload, _, _ := strings.Cut(tRest, ".")
	cases := map[string]string{
		"forged with another key":          other.seal(SessionCookie, claims{Kind: kindSession, Login: "ada", Expires: r.clock.Now().Add(time.Hour).Unix()}),
		"payload swapped, old mac":         id + "." + tPayload + "." + mac,
		"mac flipped":                      id + "." + payload + "." + strings.Repeat("A", len(mac)),
		"no mac":                           id + "." + payload,
		"garbage":                          "not-a-cookie",
		"grant cookie used as the session": r.keys.seal(grantName("acme/shop", 0), claims{Kind: kindSession, Login: "ada", Expires: r.clock.Now().Add(time.Hour).Unix()}),
	}
	before := len(r.backend.requests())
	for name, v := range cases {
		resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(SessionCookie+"="+v))
		if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), r.gate.opts.ControlURL+LoginPath) {
			t.Errorf("%s: %d → %q, want the sign-in", name, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	// Expired: the clock moves past the session's life.
	r.clock.Add(2 * time.Hour)
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(good)); resp.StatusCode != http.StatusFound {
		t.Errorf("expired session: %d", resp.StatusCode)
	}
	if n := len(r.backend.requests()); n != before {
		t.Errorf("refused requests reached the backend: %d", n-before)
	}
	r.noCredentialReached()
}

func TestSessionOfRepoAOnRepoB(t *testing.T) {
	perms := &fakePermissions{roles: map[string]string{"acme/shop ada": "write"}}
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}, "acme/blog": {Mode: GitHub}}, perms)
	s := r.sessionFor("ada", time.Hour)
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(s)); resp.StatusCode != 200 {
		t.Fatalf("ada on shop: %d", resp.StatusCode)
	}
	resp, body := r.do("GET", blogHost, "/", nil, cookieHeader(s))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "acme/blog") || !strings.Contains(body, "ada") {
		t.Fatalf("ada on blog: %d %q", resp.StatusCode, body)
	}
	if n := len(r.backend.requests()); n != 1 {
		t.Errorf("backend reached %d times, want 1 (shop only)", n)
	}
	r.noCredentialReached()
}

func TestPermissionCachedAndLostWithinTTL(t *testing.T) {
	perms := &fakePermissions{roles: map[string]string{"acme/shop ada": "read"}}
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}}, perms)
	s := r.sessionFor("ada", 12*time.Hour)
	for range 5 {
		if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(s)); resp.StatusCode != 200 {
			t.Fatalf("ada: %d", resp.StatusCode)
		}
	}
	if n := perms.count(); n != 1 {
		t.Fatalf("GitHub asked %d times for 5 requests, want 1", n)
	}
	perms.set("acme/shop", "ada", "none")
	// Past the TTL, the next request asks again and is refused.
	r.clock.Add(time.Minute)
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(s)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("after losing access and one TTL: %d", resp.StatusCode)
	}
}

func TestWebsocketUpgradeGated(t *testing.T) {
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}}, &fakePermissions{roles: map[string]string{}})
	resp, _ := r.do("GET", shopHost, "/ws", nil, http.Header{"Connection": {"Upgrade"}, "Upgrade": {"websocket"},
		"Sec-Websocket-Version": {"13"}, "Sec-Websocket-Key": {"dGhlIHNhbXBsZSBub25jZQ=="}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("upgrade without a session: %d", resp.StatusCode)
	}
	resp, _ = r.do("GET", shopHost, "/events", nil, http.Header{"Accept": {"text/event-stream"}})
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("event stream without a session: %d", resp.StatusCode)
	}
	if n := len(r.backend.requests()); n != 0 {
		t.Errorf("backend reached %d times", n)
	}
}

// An admitted upgrade reaches the backend as a websocket, without
// Slipway's cookie; the connection then carries data both ways.
func TestWebsocketAdmittedWithoutCredentials(t *testing.T) {
	perms := &fakePermissions{roles: map[string]string{"acme/shop ada": "read"}}
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}}, perms)
	got := make(chan string, 1)
	ws := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got <- req.Header.Get("Cookie")
		conn, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		defer conn.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
		brw.Flush()
		line, _ := brw.ReadString('\n')
		brw.WriteString("echo " + line)
		brw.Flush()
	}))
	defer ws.Close()
	u, _ := url.Parse(ws.URL)
	r.routeTo(u.Port()) // shop's host now goes to the websocket server
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.proxy.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nCookie: app=1; %s\r\n\r\n", shopHost, r.sessionFor("ada", time.Hour))
	br := bufio.NewReader(conn)
	status, _ := br.ReadString('\n')
	if !strings.Contains(status, "101") {
		t.Fatalf("upgrade with a session: %q", status)
	}
	for {
		l, err := br.ReadString('\n')
		if err != nil || l == "\r\n" {
			break
		}
	}
	fmt.Fprintf(conn, "ping\n")
	echo, _ := br.ReadString('\n')
	if echo != "echo ping\n" {
		t.Errorf("through the upgraded connection: %q", echo)
	}
	if c := <-got; c != "app=1" {
		t.Errorf("the websocket backend got cookies %q, want the application's only", c)
	}
}

// Past half its life, a cached permission is refreshed in the background
// while it is still served: the request does not wait for GitHub, and the
// refreshed answer (access lost) applies to the next request.
func TestPermissionRefreshedAheadInTheBackground(t *testing.T) {
	perms := &fakePermissions{roles: map[string]string{"acme/shop ada": "read"}, answered: make(chan struct{}, 4)}
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: GitHub}}, perms)
	s := r.sessionFor("ada", 12*time.Hour)
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(s)); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	<-perms.answered
	perms.set("acme/shop", "ada", "none")
	r.clock.Add(40 * time.Second) // past half the minute: served from the cache, refreshed behind
	if resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(s)); resp.StatusCode != 200 {
		t.Fatalf("while refreshing: %d (the cached answer should still be served)", resp.StatusCode)
	}
	select {
	case <-perms.answered:
	case <-time.After(30 * time.Second):
		t.Fatal("no background refresh")
	}
	// The refresh stores its answer right after GitHub answered it.
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, _ := r.do("GET", shopHost, "/", nil, cookieHeader(s))
		if resp.StatusCode == http.StatusForbidden {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the refresh said none: %d", resp.StatusCode)
		}
	}
	if n := perms.count(); n != 2 {
		t.Errorf("GitHub asked %d times, want 2", n)
	}
}
