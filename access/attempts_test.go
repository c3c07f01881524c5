package access

import (
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestLockedFor(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		a    attempts
		now  time.Time
		want time.Duration
	}{
		{"none", attempts{}, t0, 0},
		{"below the limit", attempts{first: t0, count: maxWrongPasswords - 1}, t0.Add(time.Second), 0},
		{"at the limit", attempts{first: t0, count: maxWrongPasswords}, t0.Add(time.Minute), wrongPasswordWindow - time.Minute},
		{"window over", attempts{first: t0, count: maxWrongPasswords}, t0.Add(wrongPasswordWindow), 0},
	} {
		if got := lockedFor(tc.a, tc.now); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// Counting: within the window the count grows; after it, it starts again.
	a := attempts{}.after(t0)
	a = a.after(t0.Add(time.Minute))
	if a.count != 2 || !a.first.Equal(t0) {
		t.Errorf("within the window: %+v", a)
	}
	if b := a.after(t0.Add(wrongPasswordWindow)); b.count != 1 || !b.first.Equal(t0.Add(wrongPasswordWindow)) {
		t.Errorf("after the window: %+v", b)
	}
}

// After maxWrongPasswords wrong passwords from one client, the form
// refuses even the right one, without checking, until the window passes;
// then the right password works again.
func TestPasswordGuessingSlowedDown(t *testing.T) {
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: Password, Password: "hunter2"}}, nil)
	post := func(pw string) *http.Response {
		form := url.Values{"password": {pw}, "next": {"/"}}
		resp, _ := r.do("POST", shopHost, "/.slipway/password", strings.NewReader(form.Encode()),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		return resp
	}
	for i := range maxWrongPasswords {
		if resp := post("guess"); resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("wrong password %d: %d", i+1, resp.StatusCode)
		}
	}
	resp := post("hunter2")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") != "600" || len(resp.Cookies()) != 0 {
		t.Fatalf("right password while locked: %d, Retry-After %q, cookies %v", resp.StatusCode, resp.Header.Get("Retry-After"), resp.Cookies())
	}
	r.clock.Add(wrongPasswordWindow)
	if resp := post("hunter2"); resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) == 0 {
		t.Fatalf("right password after the window: %d", resp.StatusCode)
	}
	if n := len(r.backend.requests()); n != 0 {
		t.Errorf("the backend was reached %d times", n)
	}
}

// The count is per client: behind a trusted proxy, the right-most
// X-Forwarded-For address that is not one; an IPv6 client by its /64.
func TestPasswordClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	req := func(remote string, xff ...string) *http.Request {
		r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
		for _, v := range xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string
	}{
		{"direct", req("192.0.2.7:5555"), "acme/shop 192.0.2.7"},
		{"direct, forwarded header ignored", req("192.0.2.7:5555", "198.51.100.1"), "acme/shop 192.0.2.7"},
		{"through a trusted proxy", req("10.0.0.2:5555", "198.51.100.9, 198.51.100.1"), "acme/shop 198.51.100.1"},
		{"through two trusted proxies", req("10.0.0.2:5555", "198.51.100.1, 10.0.0.3"), "acme/shop 198.51.100.1"},
		{"a trusted proxy naming no one", req("10.0.0.2:5555"), "acme/shop 10.0.0.2"},
		{"a trusted proxy naming garbage", req("10.0.0.2:5555", "not-an-address"), "acme/shop 10.0.0.2"},
		{"IPv6 by its /64", req("[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443"), "acme/shop 2001:db8:1:2::"},
		{"IPv4-mapped", req("[::ffff:192.0.2.7]:443"), "acme/shop 192.0.2.7"},
	} {
		if got := passwordClient(tc.r, "acme/shop", trusted); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

// A full table forgets no one's count: newcomers share their repository's.
func TestWrongPasswordsTableFull(t *testing.T) {
	t0 := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	var w wrongPasswords
	w.keys = make(map[string]attempts, maxAttemptKeys)
	for i := range maxAttemptKeys - 1 {
		w.keys["acme/shop filler"+strconv.Itoa(i)] = attempts{first: t0, count: 1}
	}
	for range maxWrongPasswords {
		w.wrong("acme/shop locked", "acme/shop", t0)
	}
	if w.wait("acme/shop locked", "acme/shop", t0) == 0 {
		t.Fatal("not locked")
	}
	// The table is full: newcomers count together, and the locked client
	// stays locked.
	for i := range maxWrongPasswords {
		w.wrong("acme/shop new"+strconv.Itoa(i), "acme/shop", t0)
	}
	if w.wait("acme/shop locked", "acme/shop", t0) == 0 {
		t.Error("the locked client was forgotten")
	}
	if w.wait("acme/shop another", "acme/shop", t0) == 0 {
		t.Error("newcomers are not limited while the table is full")
	}
	if w.wait("acme/blog someone", "acme/blog", t0) != 0 {
		t.Error("another repository's newcomers share the count")
	}
	// Once the window passes, lapsed entries make room again.
	later := t0.Add(wrongPasswordWindow)
	w.wrong("acme/shop fresh", "acme/shop", later)
	if _, ok := w.keys["acme/shop fresh"]; !ok {
		t.Error("lapsed entries were not dropped to make room")
	}
}

// Only the preview's own form posts a password: a browser's post from
// another site or another preview is refused before it is counted.
func TestPasswordPostFromAnotherOriginRefused(t *testing.T) {
	r := newRig(t, map[string]RepoAccess{"acme/shop": {Mode: Password, Password: "hunter2"}}, nil)
	post := func(h http.Header) *http.Response {
		h.Set("Content-Type", "application/x-www-form-urlencoded")
		form := url.Values{"password": {"guess"}, "next": {"/"}}
		resp, _ := r.do("POST", shopHost, "/.slipway/password", strings.NewReader(form.Encode()), h)
		return resp
	}
	for _, h := range []http.Header{
		{"Sec-Fetch-Site": {"cross-site"}},
		{"Sec-Fetch-Site": {"same-site"}}, // another preview of the domain
		{"Origin": {"http://pr-9-evil." + testDomain}},
	} {
		if resp := post(h); resp.StatusCode != http.StatusForbidden {
			t.Errorf("%v: %d, want 403", h, resp.StatusCode)
		}
	}
	if n := len(r.gate.wrongPasswords.keys); n != 0 {
		t.Errorf("refused posts were counted: %d clients", n)
	}
	if resp := post(http.Header{"Sec-Fetch-Site": {"same-origin"}}); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("same-origin wrong password: %d, want 401", resp.StatusCode)
	}
}
