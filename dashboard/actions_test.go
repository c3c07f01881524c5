package dashboard

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The pages an action form leads to say what happened: an action the
// controller only queued is "queued", never "done"; one carried out before
// the answer is "done".
func TestActionPagesSayWhatHappened(t *testing.T) {
	f := newAuthFixture(t, withCredentials)
	c := f.login(t)
	csrf := f.csrfOf(t, c)
	hdr := map[string]string{"Cookie": c.String(), "Sec-Fetch-Site": "same-origin"}
	follow := func(action string) string {
		t.Helper()
		resp, body := f.do(t, "POST", "/environments/"+project1+"/actions/"+action, url.Values{"csrf": {csrf}}, hdr)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("%s: %d %.300s", action, resp.StatusCode, body)
		}
		resp, body = f.do(t, "GET", resp.Header.Get("Location"), nil, hdr)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("page after %s: %d", action, resp.StatusCode)
		}
		return body
	}
	for _, tt := range []struct {
		outcome   Outcome
		action    string
		want, not string
	}{
		{Queued, "sleep", "Sleep: queued.", "Sleep: done."},
		{Queued, "destroy", "Destroy of " + project1 + " queued", "Destroyed " + project1},
		{Done, "sleep", "Sleep: done.", "queued"},
		{Done, "destroy", "Destroyed " + project1 + ".", "queued"},
	} {
		f.actions.mu.Lock()
		f.actions.outcome = tt.outcome
		f.actions.mu.Unlock()
		body := follow(tt.action)
		if !strings.Contains(body, tt.want) || strings.Contains(body, tt.not) {
			t.Errorf("%s %s: the page does not say %q (or says %q)", tt.outcome, tt.action, tt.want, tt.not)
		}
	}
	// A hand-made query claims nothing the dashboard does not know.
	resp, body := f.do(t, "GET", "/environments/"+project1+"?action=sleep&outcome=finished", nil, hdr)
	if resp.StatusCode != http.StatusOK || strings.Contains(body, "data-action-outcome") {
		t.Errorf("an unknown outcome in the query is shown: %d", resp.StatusCode)
	}
}
