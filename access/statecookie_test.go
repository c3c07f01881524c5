package access

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// With TLS, the sign-in state lives in a __Host- cookie, which only the
// control host itself can set: a state planted by a preview's page under
// the plain name (Domain=<domain>, sent to the control host too) starts
// no session (login CSRF).
func TestStateCookieCannotBePlantedFromAPreview(t *testing.T) {
	keys, err := NewKeyring([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	g, err := New(Options{
		Domain: "preview.test", ControlURL: "https://preview.test", Keys: keys, Secure: true,
		OAuth:     OAuthClient{ClientID: "cid", ClientSecret: "secret", WebURL: "https://github.invalid/", APIURL: "https://api.github.invalid/"},
		AccessFor: func(string) RepoAccess { return RepoAccess{Mode: GitHub} },
		Now:       func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	g.Register(mux)

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "https://preview.test"+LoginPath+"?next=/", nil))
	var state *http.Cookie
	for _, c := range w.Result().Cookies() {
		if strings.Contains(c.Name, "oauth_state") {
			state = c
		}
	}
	if state == nil || state.Name != "__Host-"+stateCookie || state.Path != "/" || state.Domain != "" || !state.Secure || !state.HttpOnly {
		t.Fatalf("state cookie %+v, want __Host-%s, Path=/, no Domain, Secure, HttpOnly", state, stateCookie)
	}

	// The attacker's own state, sealed as the server would seal it under
	// the plain name, planted in the victim's browser by a preview.
	planted := keys.seal(stateCookie, claims{Kind: kindState, State: "attackers-state", Next: "/", Expires: now.Add(time.Minute).Unix()})
	r := httptest.NewRequest("GET", "https://preview.test"+CallbackPath+"?code=attackers-code&state=attackers-state", nil)
	r.Header.Set("Cookie", stateCookie+"="+planted)
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	if w.Code != http.StatusBadRequest {
		t.Fatalf("callback with a planted state: %d, want 400", w.Code)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == SessionCookie && c.Value != "" {
			t.Fatal("a session was started from a planted state")
		}
	}
}
