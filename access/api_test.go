package access

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestTokenAPI(t *testing.T) {
	st, err := OpenStore(t.TempDir()+"/access.db", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	mux := http.NewServeMux()
	(&API{Store: st, Token: "op-token", Public: func(r string) bool { return r == "acme/open" }}).Register(mux)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	call := func(method, path, token, body string) (int, map[string]any) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&out)
		return resp.StatusCode, out
	}
	if code, _ := call("GET", TokensPath, "", ""); code != http.StatusUnauthorized {
		t.Errorf("no token: %d", code)
	}
	if code, _ := call("GET", TokensPath, "wrong", ""); code != http.StatusUnauthorized {
		t.Errorf("wrong token: %d", code)
	}
	if code, out := call("POST", TokensPath, "op-token", `{"kind":"bypass","repo":"acme/open"}`); code != http.StatusBadRequest {
		t.Errorf("token for public previews: %d %v", code, out)
	}
	if code, _ := call("POST", TokensPath, "op-token", `{"kind":"share","repo":"acme/shop","pr":7,"ttl":"2000h"}`); code != http.StatusBadRequest {
		t.Errorf("share link past the maximum: %d", code)
	}
	code, out := call("POST", TokensPath, "op-token", `{"kind":"share","repo":"acme/shop","pr":7,"ttl":"48h","note":"for the client"}`)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, out)
	}
	secret, _ := out["secret"].(string)
	tok, _ := out["token"].(map[string]any)
	id, _ := tok["id"].(string)
	if !strings.HasPrefix(secret, "swp_") || id == "" || tok["hash"] == secret {
		t.Fatalf("created %v", out)
	}
	if _, ok := st.Redeem(secret, time.Now()); !ok {
		t.Fatal("the secret shown does not redeem")
	}
	_, out = call("GET", TokensPath+"?repo=acme/shop", "op-token", "")
	list, _ := out["tokens"].([]any)
	if len(list) != 1 || strings.Contains(toJSON(list), secret) || !strings.Contains(toJSON(list), "expires") {
		t.Fatalf("list %v", list)
	}
	if code, _ := call("DELETE", TokensPath+"/"+id, "op-token", ""); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	if _, ok := st.Redeem(secret, time.Now()); ok {
		t.Fatal("revoked secret still redeems")
	}
	if code, _ := call("DELETE", TokensPath+"/nope", "op-token", ""); code != http.StatusNotFound {
		t.Errorf("revoke unknown: %d", code)
	}
	// Disabled without a dashboard token.
	mux2 := http.NewServeMux()
	(&API{Store: st}).Register(mux2)
	rec := httptest.NewRecorder()
	mux2.ServeHTTP(rec, httptest.NewRequest("GET", TokensPath, nil))
	if rec.Code != http.StatusForbidden {
		t.Errorf("API without a dashboard token: %d", rec.Code)
	}
}

func toJSON(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestStoreSurvivesReopen(t *testing.T) {
	path := t.TempDir() + "/access.db"
	st, err := OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, secret, err := st.Create(t.Context(), NewToken{Kind: KindBypass, Repo: "acme/shop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Revoke(t.Context(), tok.ID); err != nil {
		t.Fatal(err)
	}
	_, secret2, _ := st.Create(t.Context(), NewToken{Kind: KindBypass, Repo: "acme/shop"})
	st.Close()
	st, err = OpenStore(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, ok := st.Redeem(secret, time.Now()); ok {
		t.Error("revocation lost on reopen")
	}
	if _, ok := st.Redeem(secret2, time.Now()); !ok {
		t.Error("live token lost on reopen")
	}
}

func TestKeyringRotation(t *testing.T) {
	path := t.TempDir() + "/keys.json"
	day := 24 * time.Hour
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	k1, err := LoadKeyring(path, t0, 30*day, 31*day)
	if err != nil {
		t.Fatal(err)
	}
	c := claims{Kind: kindSession, Login: "ada", Expires: t0.Add(60 * day).Unix()}
	v := k1.seal(SessionCookie, c)
	// Reloaded before the rotation: the same key.
	k2, _ := LoadKeyring(path, t0.Add(day), 30*day, 31*day)
	if k2.keys[0].ID != k1.keys[0].ID {
		t.Fatal("rotated early")
	}
	// After the rotation period: a new key signs, the old one still verifies.
	k3, _ := LoadKeyring(path, t0.Add(31*day), 30*day, 31*day)
	if k3.keys[0].ID == k1.keys[0].ID || len(k3.keys) != 2 {
		t.Fatalf("not rotated: %d keys", len(k3.keys))
	}
	if _, ok := k3.open(SessionCookie, v, t0.Add(31*day)); !ok {
		t.Error("a cookie of the previous key no longer verifies")
	}
	// A password grant keyed by the previous key still matches; a wrong
	// password matches under neither.
	fp := k1.passwordFingerprint("acme/shop", "hunter2")
	if !k3.passwordMatches(fp, "acme/shop", "hunter2") {
		t.Error("a password grant of the previous key no longer matches")
	}
	if k3.passwordMatches(fp, "acme/shop", "hunter3") || k3.passwordMatches(fp, "acme/blog", "hunter2") {
		t.Error("a grant matches another password or repository")
	}
	// Past rotation+keep, the old key is dropped.
	k4, _ := LoadKeyring(path, t0.Add(62*day), 30*day, 31*day)
	for _, k := range k4.keys {
		if k.ID == k1.keys[0].ID {
			t.Error("the old key was kept past its use")
		}
	}
}
