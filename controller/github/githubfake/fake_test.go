package githubfake

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// do sends a request with the given token ("" for none) and decodes a JSON answer.
func do(t *testing.T, method, url, token, body string) (int, http.Header, any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var v any
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &v)
	return resp.StatusCode, resp.Header, v
}

func TestAuthentication(t *testing.T) {
	f := New(t)
	f.OpenPR("acme/web", PR{})
	url := f.URL + "repos/acme/web/pulls/1"
	for _, tc := range []struct {
		token string
		want  int
	}{{"", 401}, {"wrong", 401}, {"a.b.c", 401}, {f.Token, 200}} {
		if got, _, _ := do(t, "GET", url, tc.token, ""); got != tc.want {
			t.Errorf("token %q: status %d, want %d", tc.token, got, tc.want)
		}
	}
	// Expired installation tokens are refused.
	f.App()
	f.SetInstallation("acme/web", 5)
	f.mu.Lock()
	f.instTokens["ghs_old"] = &instToken{installation: 5, expires: time.Now().Add(-time.Second)}
	f.instTokens["ghs_new"] = &instToken{installation: 5, expires: time.Now().Add(time.Hour)}
	f.mu.Unlock()
	if got, _, _ := do(t, "GET", url, "ghs_old", ""); got != 401 {
		t.Errorf("expired installation token: %d", got)
	}
	if got, _, _ := do(t, "GET", url, "ghs_new", ""); got != 200 {
		t.Errorf("valid installation token: %d", got)
	}
	// App endpoints want a JWT.
	if got, _, _ := do(t, "GET", f.URL+"app", f.Token, ""); got != 401 {
		t.Errorf("GET /app with a PAT: %d", got)
	}
}

func TestValidationLikeGitHub(t *testing.T) {
	f := New(t)
	_, sha := f.OpenPR("acme/web", PR{})
	f.SetCommitStatus("acme/web", sha, CommitStatus{State: "failure", Context: "ci"})
	base := f.URL + "repos/acme/web/"
	cases := []struct {
		name, method, path, body string
		want                     int
	}{
		{"deployment without ref", "POST", "deployments", `{"environment":"pr-1"}`, 422},
		{"deployment of unknown ref", "POST", "deployments", `{"ref":"nope","required_contexts":[]}`, 409},
		{"deployment blocked by a failing check", "POST", "deployments", `{"ref":"` + sha + `"}`, 409},
		{"deployment with required_contexts []", "POST", "deployments", `{"ref":"` + sha + `","required_contexts":[]}`, 201},
		{"commit status with a bad state", "POST", "statuses/" + sha, `{"state":"done"}`, 422},
		{"commit status too long", "POST", "statuses/" + sha, `{"state":"success","description":"` + strings.Repeat("x", 141) + `"}`, 422},
		{"commit status on an unknown commit", "POST", "statuses/" + strings.Repeat("0", 40), `{"state":"success"}`, 422},
		{"comment without body", "POST", "issues/1/comments", `{}`, 422},
		{"comment on a missing PR", "POST", "issues/9/comments", `{"body":"x"}`, 404},
		{"malformed JSON", "POST", "issues/1/comments", `{`, 400},
	}
	for _, tc := range cases {
		if got, _, body := do(t, tc.method, base+tc.path, f.Token, tc.body); got != tc.want {
			t.Errorf("%s: status %d (%v), want %d", tc.name, got, body, tc.want)
		}
	}
	// Deployment statuses: states and the 140-character limit.
	dep := f.Deployments("acme/web")[0].ID
	statuses := base + "deployments/" + itoa(dep) + "/statuses"
	if got, _, _ := do(t, "POST", statuses, f.Token, `{"state":"finished"}`); got != 422 {
		t.Errorf("bad deployment state: %d", got)
	}
	if got, _, _ := do(t, "POST", statuses, f.Token, `{"state":"success","description":"`+strings.Repeat("é", 141)+`"}`); got != 422 {
		t.Errorf("141-character description: %d", got)
	}
	if got, _, _ := do(t, "POST", statuses, f.Token, `{"state":"success","description":"`+strings.Repeat("é", 140)+`"}`); got != 201 {
		t.Errorf("140-character description: %d", got)
	}
	// Only the author (or an admin) edits a comment.
	id := f.AddComment("acme/web", 1, "alice", "mine")
	if got, _, _ := do(t, "PATCH", base+"issues/comments/"+itoa(id), f.Token, `{"body":"x"}`); got != 403 {
		t.Errorf("editing another user's comment: %d", got)
	}
	f.SetPermission("acme/web", DefaultLogin, Admin)
	if got, _, _ := do(t, "PATCH", base+"issues/comments/"+itoa(id), f.Token, `{"body":"x"}`); got != 200 {
		t.Errorf("an admin editing a comment: %d", got)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestPaginationLinks(t *testing.T) {
	f := New(t)
	for range 5 {
		f.OpenPR("acme/web", PR{})
	}
	status, h, v := do(t, "GET", f.URL+"repos/acme/web/pulls?per_page=2&page=2", f.Token, "")
	if status != 200 || len(v.([]any)) != 2 {
		t.Fatalf("page 2: %d %v", status, v)
	}
	link := h.Get("Link")
	for _, want := range []string{`page=3&per_page=2>; rel="next"`, `page=3&per_page=2>; rel="last"`, `page=1&per_page=2>; rel="first"`, `page=1&per_page=2>; rel="prev"`} {
		if !strings.Contains(link, want) {
			t.Errorf("Link %q lacks %q", link, want)
		}
	}
	if !strings.HasPrefix(link, "<"+f.URL+"repos/acme/web/pulls?") {
		t.Errorf("Link is not absolute: %q", link)
	}
}

func TestTarballRedirect(t *testing.T) {
	f := New(t)
	_, sha := f.OpenPR("acme/web", PR{Files: Files{"a/b.txt": "hello", "run": Executable + "#!/bin/sh"}})
	status, h, _ := do(t, "GET", f.URL+"repos/acme/web/tarball/"+sha, f.Token, "")
	loc := h.Get("Location")
	if status != 302 || !strings.HasPrefix(loc, f.CodeloadURL+"acme/web/legacy.tar.gz/"+sha+"?token=") {
		t.Fatalf("tarball: %d Location %q", status, loc)
	}
	resp, err := http.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	var names []string
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag == tar.TypeXGlobalHeader {
			if hdr.PAXRecords["comment"] != sha {
				t.Errorf("pax comment %q", hdr.PAXRecords["comment"])
			}
			continue
		}
		names = append(names, hdr.Name)
		if hdr.Name == "acme-web-"+sha[:7]+"/a/b.txt" {
			var b bytes.Buffer
			io.Copy(&b, tr)
			if b.String() != "hello" {
				t.Errorf("content %q", b.String())
			}
		}
	}
	top := "acme-web-" + sha[:7] + "/"
	if strings.Join(names, ",") != top+","+top+"a/,"+top+"a/b.txt,"+top+"run" {
		t.Errorf("entries = %v", names)
	}
	// A URL without the one-time token, or for another commit, is refused.
	if resp, err := http.Get(strings.Split(loc, "?")[0]); err != nil || resp.StatusCode != 404 {
		t.Errorf("codeload without token: %v %v", resp.StatusCode, err)
	}
}

func TestFaultsApplyInOrderAndAreRecorded(t *testing.T) {
	f := New(t)
	f.OpenPR("acme/web", PR{})
	f.InjectFault(Fault{Count: 1, Status: 502, Method: "POST"})
	f.ServerErrors(1)
	f.RateLimit(1, time.Minute)
	url := f.URL + "repos/acme/web/pulls/1"
	if s, _, _ := do(t, "GET", url, f.Token, ""); s != 500 {
		t.Errorf("first GET: %d (the POST-only fault must not match)", s)
	}
	s, h, _ := do(t, "GET", url, f.Token, "")
	if s != 403 || h.Get("X-RateLimit-Remaining") != "0" || h.Get("X-RateLimit-Reset") == "" {
		t.Errorf("second GET: %d %v", s, h)
	}
	if s, _, _ := do(t, "GET", url, f.Token, ""); s != 200 {
		t.Errorf("third GET: %d", s)
	}
	if f.PendingFaults() != 1 {
		t.Errorf("pending = %d, want the POST fault", f.PendingFaults())
	}
	var statuses []int
	for _, r := range f.Requests() {
		statuses = append(statuses, r.Status)
	}
	if len(statuses) != 3 || statuses[0] != 500 || statuses[1] != 403 || statuses[2] != 200 {
		t.Errorf("recorded statuses %v", statuses)
	}
}
