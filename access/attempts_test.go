package access

import (
	"net/http"
	"net/url"
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
