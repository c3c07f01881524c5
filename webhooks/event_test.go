package webhooks

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// Values in testdata/*.json (shapes as GitHub sends them).
const (
	headSHA        = "9f2c1d7e4b3a5968c0d1e2f3a4b5c6d7e8f90a1b"
	installationID = 48211907
)

// edit changes a decoded payload before it is sent.
type edit func(map[string]any)

// set replaces the value at a dotted path (creating objects on the way).
func set(path string, v any) edit {
	return func(m map[string]any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
}

// del removes the value at a dotted path.
func del(path string) edit {
	return func(m map[string]any) {
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			m = m[k].(map[string]any)
		}
		delete(m, keys[len(keys)-1])
	}
}

// load reads testdata/name.json and applies edits.
func load(t testing.TB, name string, edits ...edit) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(edits) == 0 {
		return data
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	for _, e := range edits {
		e(m)
	}
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var labelPreview = map[string]any{"id": 6120543311, "node_id": "LA_kwDOI7Z0os8AAAABbM4Dzw", "name": "preview", "color": "0e8a16", "default": false}

// prEvent is the Event testdata/pull_request.json decodes to for action.
func prEvent(action string) Event {
	return Event{
		DeliveryID:     "d-1",
		Kind:           KindPullRequest,
		Action:         action,
		Repo:           "acme/webshop",
		PR:             42,
		HeadSHA:        headSHA,
		HeadRepo:       "jdoe-dev/webshop",
		InstallationID: installationID,
		Sender:         "jdoe-dev",
	}
}

func TestDecode(t *testing.T) {
	type want struct {
		event   *Event
		repo    string
		ping    bool
		ignored string // substring
		err     string // substring; errMalformed is implied
	}
	with := func(ev Event, f func(*Event)) *Event { f(&ev); return &ev }
	cases := []struct {
		name    string
		kind    string
		payload []byte
		want    want
	}{
		// Every pull_request action we act on.
		{"opened", KindPullRequest, load(t, "pull_request", set("action", "opened")), want{event: ptr(prEvent("opened")), repo: "acme/webshop"}},
		{"reopened", KindPullRequest, load(t, "pull_request", set("action", "reopened")), want{event: ptr(prEvent("reopened")), repo: "acme/webshop"}},
		{"synchronize", KindPullRequest, load(t, "pull_request"), want{event: ptr(prEvent("synchronize")), repo: "acme/webshop"}},
		{"closed", KindPullRequest, load(t, "pull_request", set("action", "closed"), set("pull_request.state", "closed")),
			want{event: ptr(prEvent("closed")), repo: "acme/webshop"}},
		{"closed merged", KindPullRequest, load(t, "pull_request", set("action", "closed"), set("pull_request.merged", true), set("pull_request.merged_at", "2024-03-20T10:00:00Z")),
			want{event: with(prEvent("closed"), func(e *Event) { e.Merged = true }), repo: "acme/webshop"}},
		{"labeled", KindPullRequest, load(t, "pull_request", set("action", "labeled"), set("label", labelPreview)),
			want{event: with(prEvent("labeled"), func(e *Event) { e.Label = "preview" }), repo: "acme/webshop"}},
		{"unlabeled", KindPullRequest, load(t, "pull_request", set("action", "unlabeled"), set("label", labelPreview)),
			want{event: with(prEvent("unlabeled"), func(e *Event) { e.Label = "preview" }), repo: "acme/webshop"}},
		{"ready_for_review", KindPullRequest, load(t, "pull_request", set("action", "ready_for_review")), want{event: ptr(prEvent("ready_for_review")), repo: "acme/webshop"}},
		{"converted_to_draft", KindPullRequest, load(t, "pull_request", set("action", "converted_to_draft"), set("pull_request.draft", true)),
			want{event: ptr(prEvent("converted_to_draft")), repo: "acme/webshop"}},
		{"edited", KindPullRequest, load(t, "pull_request", set("action", "edited"), set("changes.base.ref.from", "develop")),
			want{event: ptr(prEvent("edited")), repo: "acme/webshop"}},
		{"head repo deleted", KindPullRequest, load(t, "pull_request", set("pull_request.head.repo", nil)),
			want{event: with(prEvent("synchronize"), func(e *Event) { e.HeadRepo = "" }), repo: "acme/webshop"}},
		{"repository webhook has no installation", KindPullRequest, load(t, "pull_request", del("installation")),
			want{event: with(prEvent("synchronize"), func(e *Event) { e.InstallationID = 0 }), repo: "acme/webshop"}},
		{"upper-case sha", KindPullRequest, load(t, "pull_request", set("pull_request.head.sha", strings.ToUpper(headSHA))),
			want{event: ptr(prEvent("synchronize")), repo: "acme/webshop"}},
		{"number only at top level", KindPullRequest, load(t, "pull_request", del("pull_request.number")),
			want{event: ptr(prEvent("synchronize")), repo: "acme/webshop"}},

		// pull_request actions we ignore.
		{"assigned", KindPullRequest, load(t, "pull_request", set("action", "assigned")), want{repo: "acme/webshop", ignored: `"assigned"`}},
		{"review_requested", KindPullRequest, load(t, "pull_request", set("action", "review_requested")), want{repo: "acme/webshop", ignored: "not handled"}},
		{"locked", KindPullRequest, load(t, "pull_request", set("action", "locked")), want{repo: "acme/webshop", ignored: "not handled"}},

		// issue_comment.
		{"comment on PR", KindIssueComment, load(t, "issue_comment"), want{repo: "acme/webshop", event: &Event{
			DeliveryID: "d-1", Kind: KindIssueComment, Action: "created", Repo: "acme/webshop", PR: 42,
			InstallationID: installationID, Sender: "mara-maint",
			Comment: &Comment{ID: 2008416630, Body: "/slipway approve", Author: "mara-maint"},
		}}},
		{"comment on a private repository's PR", KindIssueComment, load(t, "issue_comment", set("repository.private", true)), want{repo: "acme/webshop", event: &Event{
			DeliveryID: "d-1", Kind: KindIssueComment, Action: "created", Repo: "acme/webshop", PR: 42,
			InstallationID: installationID, Sender: "mara-maint", PrivateRepo: true,
			Comment: &Comment{ID: 2008416630, Body: "/slipway approve", Author: "mara-maint"},
		}}},
		{"private repository", KindPullRequest, load(t, "pull_request", set("repository.private", true)),
			want{event: with(prEvent("synchronize"), func(e *Event) { e.PrivateRepo = true }), repo: "acme/webshop"}},
		{"comment on issue", KindIssueComment, load(t, "issue_comment", del("issue.pull_request")), want{repo: "acme/webshop", ignored: "not a pull request"}},
		{"comment on issue, null pull_request", KindIssueComment, load(t, "issue_comment", set("issue.pull_request", nil)), want{repo: "acme/webshop", ignored: "not a pull request"}},
		{"comment edited", KindIssueComment, load(t, "issue_comment", set("action", "edited")), want{repo: "acme/webshop", ignored: `"edited"`}},
		{"comment deleted", KindIssueComment, load(t, "issue_comment", set("action", "deleted")), want{repo: "acme/webshop", ignored: `"deleted"`}},

		// Others.
		{"ping", KindPing, load(t, "ping"), want{repo: "acme/webshop", ping: true}},
		{"organisation ping", KindPing, load(t, "ping", del("repository"), set("hook.type", "Organization")), want{ping: true}},
		{"push", "push", load(t, "ping"), want{repo: "acme/webshop", ignored: `"push"`}},
		{"installation", "installation", []byte(`{"action":"created","installation":{"id":1},"sender":{"login":"x"}}`), want{ignored: "not handled"}},

		// Malformed.
		{"not JSON", KindPullRequest, []byte(`{"action": "opened",`), want{err: "unexpected end"}},
		{"not JSON, unknown event", "push", []byte(`<xml/>`), want{err: "invalid character"}},
		{"wrong type", KindPullRequest, load(t, "pull_request", set("number", "42")), want{err: "cannot unmarshal"}},
		{"no pull_request object", KindPullRequest, load(t, "pull_request", del("pull_request")), want{err: "without pull_request object"}},
		{"no number", KindPullRequest, load(t, "pull_request", del("pull_request.number"), del("number")), want{err: "without a number"}},
		{"branch name for sha", KindPullRequest, load(t, "pull_request", set("pull_request.head.sha", "main")), want{err: "not a commit SHA"}},
		{"no repository", KindPullRequest, load(t, "pull_request", del("repository")), want{err: "without repository"}},
		{"labeled without label", KindPullRequest, load(t, "pull_request", set("action", "labeled")), want{err: "without label.name"}},
		{"comment without author", KindIssueComment, load(t, "issue_comment", del("comment.user")), want{err: "comment.user.login"}},
		{"comment without issue", KindIssueComment, load(t, "issue_comment", del("issue")), want{err: "without issue"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := decode(c.kind, "d-1", c.payload)
			if c.want.err != "" {
				if !errors.Is(err, errMalformed) || !strings.Contains(err.Error(), c.want.err) {
					t.Fatalf("err = %v, want malformed containing %q", err, c.want.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if v.repo != c.want.repo || v.ping != c.want.ping {
				t.Errorf("repo %q ping %v, want %q %v", v.repo, v.ping, c.want.repo, c.want.ping)
			}
			if !reflect.DeepEqual(v.event, c.want.event) {
				t.Errorf("event =\n%+v\nwant\n%+v", deref(v.event), deref(c.want.event))
			}
			if c.want.ignored == "" && v.ignored != "" || !strings.Contains(v.ignored, c.want.ignored) {
				t.Errorf("ignored = %q, want %q", v.ignored, c.want.ignored)
			}
			if c.want.event == nil && !c.want.ping && v.ignored == "" {
				t.Error("neither an event, a ping nor ignored")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func deref(e *Event) any {
	if e == nil {
		return nil
	}
	return *e
}

func TestSignature(t *testing.T) {
	body := load(t, "ping")
	secrets := [][]byte{[]byte("new-secret"), []byte("old-secret")}
	for _, c := range []struct {
		name   string
		header string
		ok     bool
	}{
		{"current secret", Sign([]byte("new-secret"), body), true},
		{"rotated-out secret still accepted", Sign([]byte("old-secret"), body), true},
		{"other secret", Sign([]byte("guess"), body), false},
		{"upper-case hex", "sha256=" + strings.ToUpper(strings.TrimPrefix(Sign([]byte("new-secret"), body), "sha256=")), true},
		{"sha1 prefix", "sha1=" + strings.TrimPrefix(Sign([]byte("new-secret"), body), "sha256="), false},
		{"short", Sign([]byte("new-secret"), body)[:40], false},
		{"not hex", "sha256=" + strings.Repeat("zz", 32), false},
		{"empty", "", false},
	} {
		mac, ok := parseSignature(c.header)
		got := ok && validMAC(mac, body, secrets)
		if got != c.ok {
			t.Errorf("%s: valid = %v, want %v", c.name, got, c.ok)
		}
	}
	mac, _ := parseSignature(Sign([]byte("new-secret"), body))
	if validMAC(mac, append(body, ' '), secrets) {
		t.Error("a changed body still verifies")
	}
}
