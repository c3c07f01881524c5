package dashboard

import (
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/access"
)

func TestListSaysWhenPreviewsArePublic(t *testing.T) {
	note := "Previews of acme/docs are public: anyone who finds their host can open them."
	_, ts := newTestServer(t, Options{Engine: &fakeEngine{}, Insecure: true, AccessNote: note})
	resp, err := http.Get(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), "data-access-note>"+note) {
		t.Fatalf("%d: the list page does not say which previews are public", resp.StatusCode)
	}
}

// An operator creates a share link on the access page (its secret shown
// once), sees it listed with its expiry, and revokes it; a form without
// the CSRF token changes nothing.
func TestAccessPageCreatesListsAndRevokes(t *testing.T) {
	st, err := access.OpenStore(filepath.Join(t.TempDir(), "access.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	f := newAuthFixture(t, func(o *Options) { withCredentials(o); o.Grants = st })
	c := f.login(t)
	csrf := f.csrfOf(t, c)
	hdr := map[string]string{"Cookie": c.String(), "Sec-Fetch-Site": "same-origin", "Content-Type": "application/x-www-form-urlencoded"}
	form := url.Values{"kind": {"share"}, "repo": {"acme/shop"}, "pr": {"7"}, "ttl": {"48h"}, "note": {"client"}}
	if resp, _ := f.do(t, "POST", "/access/tokens", form, hdr); resp.StatusCode != http.StatusForbidden || len(st.List("")) != 0 {
		t.Fatalf("without CSRF: %d, %d tokens", resp.StatusCode, len(st.List("")))
	}
	form.Set("csrf", csrf)
	resp, body := f.do(t, "POST", "/access/tokens", form, hdr)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %.300s", resp.StatusCode, body)
	}
	toks := st.List("acme/shop")
	if len(toks) != 1 || toks[0].PR != 7 || toks[0].CreatedBy != "dashboard:"+testUser {
		t.Fatalf("stored %+v", toks)
	}
	i := strings.Index(body, "data-secret>")
	secret := body[i+len("data-secret>"):]
	secret = secret[:strings.Index(secret, "<")]
	if _, ok := st.Redeem(secret, time.Now()); !ok {
		t.Fatalf("the secret shown (%q) does not redeem", secret)
	}
	_, page := f.do(t, "GET", "/access", nil, hdr)
	if strings.Contains(page, secret) || !strings.Contains(page, `data-token="`+toks[0].ID) {
		t.Fatal("the list shows the secret again, or lacks the token")
	}
	resp, _ = f.do(t, "POST", "/access/tokens/"+toks[0].ID+"/revoke", url.Values{"csrf": {csrf}}, hdr)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if _, ok := st.Redeem(secret, time.Now()); ok {
		t.Fatal("revoked from the dashboard but still redeems")
	}
	// A viewer without credentials cannot see the page.
	if resp, _ := f.do(t, "GET", "/access", nil, nil); resp.StatusCode == http.StatusOK {
		t.Errorf("anonymous access page: %d", resp.StatusCode)
	}
}
