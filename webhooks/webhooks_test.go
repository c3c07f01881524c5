package webhooks

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/slipwayhq/slipway/controller/store"
)

const secret = "It's a Secret to Everybody"

// recorder is the controller queue's stand-in: it records what it is
// given, and blocks while hold is open.
type recorder struct {
	mu     sync.Mutex
	events []Event
	hold   chan struct{} // nil: never blocks
}

func (r *recorder) Enqueue(ev Event) {
	if r.hold != nil {
		<-r.hold
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) Events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

// rig is a handler behind a real HTTP server, with the real store as its
// delivery log.
type rig struct {
	url   string
	store *store.Store
	queue *recorder
	reg   *prometheus.Registry
	h     *Handler
}

func newRig(t *testing.T, tweak func(*Options)) *rig {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r := &rig{store: st, queue: &recorder{}, reg: prometheus.NewRegistry()}
	opts := Options{
		Secrets:    []string{secret},
		AllowRepo:  func(name string) bool { return strings.EqualFold(name, "acme/webshop") },
		Deliveries: st,
		Enqueuer:   r.queue,
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: r.reg,
	}
	if tweak != nil {
		tweak(&opts)
	}
	r.h, err = NewHandler(opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle(Path, r.h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	r.url = srv.URL + Path
	return r
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// delivery is one request as GitHub would send it.
type delivery struct {
	event       string
	id          string
	body        io.Reader
	length      int64 // -1: chunked
	contentType string
	signature   string // "" and unsigned false: sign body with secret
	unsigned    bool
}

func jsonDelivery(event, id string, payload []byte) delivery {
	return delivery{event: event, id: id, body: bytes.NewReader(payload), length: int64(len(payload)), contentType: "application/json", signature: Sign([]byte(secret), payload)}
}

type reply struct {
	status int
	body   string
}

func (r *rig) send(t *testing.T, d delivery) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, r.url, d.body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = d.length
	req.Header.Set("User-Agent", "GitHub-Hookshot/5e3b1c5")
	if d.contentType != "" {
		req.Header.Set("Content-Type", d.contentType)
	}
	if d.event != "" {
		req.Header.Set(HeaderEvent, d.event)
	}
	if d.id != "" {
		req.Header.Set(HeaderDelivery, d.id)
	}
	if !d.unsigned {
		req.Header.Set(HeaderSignature, d.signature)
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("POST: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	return reply{resp.StatusCode, strings.TrimSpace(string(body))}
}

// assertNoTrace checks that delivery id was neither enqueued nor recorded.
func (r *rig) assertNoTrace(t *testing.T, id string) {
	t.Helper()
	for _, ev := range r.queue.Events() {
		if ev.DeliveryID == id {
			t.Errorf("delivery %s was enqueued", id)
		}
	}
	first, err := r.store.FirstSeen(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !first {
		t.Errorf("delivery %s was recorded", id)
	}
}

func TestSignatureChecks(t *testing.T) {
	payload := load(t, "pull_request")
	for _, c := range []struct {
		name      string
		secrets   []string
		signature string
		unsigned  bool
		body      []byte // sent instead of the signed payload
		status    int
		msg       string
	}{
		{name: "valid", signature: Sign([]byte(secret), payload), status: 202, msg: "accepted"},
		{name: "rotated: old secret", secrets: []string{"next secret", secret}, signature: Sign([]byte(secret), payload), status: 202},
		{name: "rotated: new secret", secrets: []string{"next secret", secret}, signature: Sign([]byte("next secret"), payload), status: 202},
		{name: "wrong secret", signature: Sign([]byte("hunter2"), payload), status: 401, msg: "does not match"},
		{name: "forged: body changed after signing", signature: Sign([]byte(secret), payload),
			body: bytes.Replace(payload, []byte(`"number": 42`), []byte(`"number": 43`), 1), status: 401, msg: "does not match"},
		{name: "unsigned", unsigned: true, status: 401, msg: "missing or malformed"},
		{name: "sha1 signature only", signature: "sha1=2fd4e1c67a2d28fced849ee1bb76e7391b93eb12", status: 401, msg: "missing or malformed"},
		{name: "garbage signature", signature: "sha256=not-a-mac", status: 401, msg: "missing or malformed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, func(o *Options) {
				if c.secrets != nil {
					o.Secrets = c.secrets
				}
			})
			body := payload
			if c.body != nil {
				body = c.body
			}
			d := jsonDelivery(KindPullRequest, "72d3162e-cc78-11e3-81ab-4c9367dc0958", body)
			d.signature, d.unsigned = c.signature, c.unsigned
			got := r.send(t, d)
			if got.status != c.status || !strings.Contains(got.body, c.msg) {
				t.Fatalf("got %d %q, want %d %q", got.status, got.body, c.status, c.msg)
			}
			if c.status != 202 {
				r.assertNoTrace(t, d.id)
				return
			}
			if evs := r.queue.Events(); len(evs) != 1 || evs[0].HeadSHA != headSHA || evs[0].DeliveryID != d.id {
				t.Errorf("enqueued %+v", evs)
			}
		})
	}
}

// repeatReader yields n bytes of one byte value without allocating them.
type repeatReader struct {
	n int64
	b byte
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), r.n)]
	for i := range p {
		p[i] = r.b
	}
	r.n -= int64(len(p))
	return len(p), nil
}

func TestOversizedBody(t *testing.T) {
	r := newRig(t, nil)
	const size = DefaultMaxBodyBytes + 1<<20
	sig := Sign([]byte(secret), []byte("whatever")) // never reached: the size check comes first
	for _, c := range []struct {
		name   string
		length int64
	}{
		{"chunked, no Content-Length", -1},
		{"declared Content-Length", size},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := "oversized-" + strings.ReplaceAll(c.name, " ", "-")
			body := io.MultiReader(strings.NewReader(`{"action":"opened","x":"`), &repeatReader{n: size, b: 'a'}, strings.NewReader(`"}`))
			got := r.send(t, delivery{event: KindPullRequest, id: id, body: body, length: c.length, contentType: "application/json", signature: sig})
			if got.status != http.StatusRequestEntityTooLarge || !strings.Contains(got.body, "over the limit") {
				t.Fatalf("got %d %q, want 413", got.status, got.body)
			}
			r.assertNoTrace(t, id)
		})
	}
}

func TestBodyLimitBoundary(t *testing.T) {
	payload := load(t, "pull_request")
	limit := int64(len(payload))
	r := newRig(t, func(o *Options) { o.MaxBodyBytes = limit })
	if got := r.send(t, jsonDelivery(KindPullRequest, "at-limit", payload)); got.status != 202 {
		t.Errorf("payload of exactly the limit: %d %q", got.status, got.body)
	}
	over := append(bytes.Clone(payload), '\n')
	d := jsonDelivery(KindPullRequest, "over-limit", over)
	d.length = -1
	if got := r.send(t, d); got.status != 413 {
		t.Errorf("one byte over the limit: %d %q", got.status, got.body)
	}
	r.assertNoTrace(t, "over-limit")
}

func TestMalformedDeliveries(t *testing.T) {
	r := newRig(t, nil)
	form := func(v url.Values) []byte { return []byte(v.Encode()) }
	for _, c := range []struct {
		name        string
		event       string
		contentType string
		body        []byte
		noDelivery  bool
		status      int
		msg         string
	}{
		{name: "not JSON", event: KindPullRequest, body: []byte(`{"action":"opened","pull_request":`), status: 400, msg: "malformed payload"},
		{name: "empty body", event: KindPullRequest, body: []byte{}, status: 400, msg: "malformed payload"},
		{name: "sha not a commit", event: KindPullRequest, body: load(t, "pull_request", set("pull_request.head.sha", "refs/heads/main")), status: 400, msg: "not a commit SHA"},
		{name: "form without payload", event: KindPullRequest, contentType: "application/x-www-form-urlencoded", body: form(url.Values{"data": {"{}"}}), status: 400, msg: "payload field"},
		{name: "form with bad JSON", event: KindPullRequest, contentType: "application/x-www-form-urlencoded", body: form(url.Values{"payload": {"{"}}), status: 400, msg: "malformed payload"},
		{name: "form not decodable", event: KindPullRequest, contentType: "application/x-www-form-urlencoded", body: []byte("payload=%zz"), status: 400, msg: "form-encoded body"},
		{name: "unsupported content type", event: KindPullRequest, contentType: "text/xml", body: []byte("<a/>"), status: 415, msg: "want application/json"},
		{name: "no event header", body: load(t, "pull_request"), status: 400, msg: HeaderEvent},
		{name: "no delivery header", event: KindPullRequest, body: load(t, "pull_request"), noDelivery: true, status: 400, msg: HeaderDelivery},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := "malformed-" + strings.ReplaceAll(c.name, " ", "-")
			d := jsonDelivery(c.event, id, c.body)
			if c.contentType != "" {
				d.contentType = c.contentType
			}
			if c.noDelivery {
				d.id = ""
			}
			got := r.send(t, d)
			if got.status != c.status || !strings.Contains(got.body, c.msg) {
				t.Fatalf("got %d %q, want %d %q", got.status, got.body, c.status, c.msg)
			}
			r.assertNoTrace(t, id)
		})
	}
	if n := len(r.queue.Events()); n != 0 {
		t.Errorf("%d events enqueued", n)
	}
}

func TestFormEncodedDelivery(t *testing.T) {
	r := newRig(t, nil)
	payload := load(t, "pull_request", set("action", "opened"))
	body := []byte(url.Values{"payload": {string(payload)}}.Encode())
	d := jsonDelivery(KindPullRequest, "form-1", body) // GitHub signs the raw form body
	d.contentType = "application/x-www-form-urlencoded"
	if got := r.send(t, d); got.status != 202 {
		t.Fatalf("got %d %q", got.status, got.body)
	}
	want := prEvent("opened")
	want.DeliveryID = "form-1"
	if evs := r.queue.Events(); len(evs) != 1 || fmt.Sprint(evs[0]) != fmt.Sprint(want) {
		t.Errorf("enqueued %+v, want %+v", evs, want)
	}
}

func TestEveryPullRequestActionIsEnqueued(t *testing.T) {
	r := newRig(t, nil)
	actions := []string{"opened", "reopened", "synchronize", "closed", "labeled", "unlabeled", "ready_for_review", "converted_to_draft", "edited"}
	for i, action := range actions {
		d := jsonDelivery(KindPullRequest, fmt.Sprintf("pr-%d", i), load(t, "pull_request", set("action", action), set("label", labelPreview)))
		if got := r.send(t, d); got.status != 202 || got.body != "accepted" {
			t.Errorf("%s: got %d %q", action, got.status, got.body)
		}
	}
	evs := r.queue.Events()
	if len(evs) != len(actions) {
		t.Fatalf("%d events enqueued, want %d", len(evs), len(actions))
	}
	for i, ev := range evs {
		if ev.Action != actions[i] || ev.Repo != "acme/webshop" || ev.PR != 42 || ev.HeadSHA != headSHA || ev.DeliveryID != fmt.Sprintf("pr-%d", i) {
			t.Errorf("event %d = %+v", i, ev)
		}
	}
}

func TestNullHeadRepo(t *testing.T) {
	r := newRig(t, nil)
	d := jsonDelivery(KindPullRequest, "fork-gone", load(t, "pull_request", set("pull_request.head.repo", nil)))
	if got := r.send(t, d); got.status != 202 {
		t.Fatalf("got %d %q", got.status, got.body)
	}
	if evs := r.queue.Events(); len(evs) != 1 || evs[0].HeadRepo != "" || evs[0].HeadSHA != headSHA {
		t.Errorf("enqueued %+v", evs)
	}
}

func TestCommentsAndIgnoredEvents(t *testing.T) {
	r := newRig(t, nil)
	for _, c := range []struct {
		name    string
		event   string
		payload []byte
		status  int
		msg     string
	}{
		{"comment on PR", KindIssueComment, load(t, "issue_comment"), 202, "accepted"},
		{"comment on issue", KindIssueComment, load(t, "issue_comment", del("issue.pull_request")), 202, "ignored: comment on an issue"},
		{"edited comment", KindIssueComment, load(t, "issue_comment", set("action", "edited")), 202, "ignored"},
		{"deleted comment", KindIssueComment, load(t, "issue_comment", set("action", "deleted")), 202, "ignored"},
		{"assigned", KindPullRequest, load(t, "pull_request", set("action", "assigned")), 202, "ignored"},
		{"push", "push", load(t, "ping"), 202, `ignored: event "push"`},
		{"ping", KindPing, load(t, "ping"), 200, "pong"},
	} {
		d := jsonDelivery(c.event, "c-"+strings.ReplaceAll(c.name, " ", "-"), c.payload)
		got := r.send(t, d)
		if got.status != c.status || !strings.Contains(got.body, c.msg) {
			t.Errorf("%s: got %d %q, want %d %q", c.name, got.status, got.body, c.status, c.msg)
		}
		if c.name != "comment on PR" {
			r.assertNoTrace(t, d.id)
		}
	}
	evs := r.queue.Events()
	if len(evs) != 1 {
		t.Fatalf("enqueued %+v, want the PR comment only", evs)
	}
	if c := evs[0].Comment; evs[0].Kind != KindIssueComment || evs[0].PR != 42 || c == nil || c.Body != "/slipway approve" || c.Author != "mara-maint" || c.ID != 2008416630 {
		t.Errorf("comment event = %+v (%+v)", evs[0], c)
	}
}

func TestUnknownRepositoryIsForbidden(t *testing.T) {
	r := newRig(t, nil)
	other := map[string]any{"id": 1, "name": "webshop", "full_name": "mallory/webshop", "private": false}
	for _, c := range []struct {
		event   string
		payload []byte
	}{
		{KindPullRequest, load(t, "pull_request", set("repository", other))},
		{KindIssueComment, load(t, "issue_comment", set("repository", other))},
		{KindPing, load(t, "ping", set("repository", other))},
		{"push", load(t, "ping", set("repository", other))},
	} {
		d := jsonDelivery(c.event, "unknown-repo-"+c.event, c.payload)
		got := r.send(t, d)
		if got.status != 403 || got.body != "repository mallory/webshop is not configured" {
			t.Errorf("%s: got %d %q, want 403", c.event, got.status, got.body)
		}
		r.assertNoTrace(t, d.id)
	}
	// Case does not matter to GitHub, nor to us.
	d := jsonDelivery(KindPullRequest, "case", load(t, "pull_request", set("repository.full_name", "ACME/WebShop")))
	if got := r.send(t, d); got.status != 202 {
		t.Errorf("ACME/WebShop: got %d %q", got.status, got.body)
	}
}

func TestDuplicateDeliveryEnqueuesOnce(t *testing.T) {
	r := newRig(t, nil)
	payload := load(t, "pull_request")
	const n = 5
	replies := make(chan reply, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { replies <- r.send(t, jsonDelivery(KindPullRequest, "dup-1", payload)) })
	}
	wg.Wait()
	close(replies)
	count := map[int]int{}
	for rep := range replies {
		count[rep.status]++
	}
	if count[202] != 1 || count[200] != n-1 {
		t.Errorf("statuses %v, want one 202 and %d 200", count, n-1)
	}
	if got := r.send(t, jsonDelivery(KindPullRequest, "dup-1", payload)); got.status != 200 || !strings.Contains(got.body, "duplicate") {
		t.Errorf("later redelivery: %d %q", got.status, got.body)
	}
	if evs := r.queue.Events(); len(evs) != 1 {
		t.Errorf("%d enqueues, want 1", len(evs))
	}
	// A new delivery for the same PR is a new hint.
	if got := r.send(t, jsonDelivery(KindPullRequest, "dup-2", payload)); got.status != 202 {
		t.Errorf("new delivery: %d", got.status)
	}
}

func TestStuckEnqueuer(t *testing.T) {
	hold := make(chan struct{})
	r := newRig(t, func(o *Options) {
		o.EnqueueWait = 10 * time.Millisecond
		o.MaxPendingEnqueues = 2
	})
	r.queue.hold = hold
	released := false
	release := func() {
		if !released {
			close(hold)
			released = true
		}
	}
	t.Cleanup(release)
	payload := load(t, "pull_request")

	// The handler answers although Enqueue does not return.
	for _, id := range []string{"stuck-1", "stuck-2"} {
		if got := r.send(t, jsonDelivery(KindPullRequest, id, payload)); got.status != 202 {
			t.Fatalf("%s: got %d %q", id, got.status, got.body)
		}
	}
	// Two hand-overs pending: the next is refused and leaves no trace.
	got := r.send(t, jsonDelivery(KindPullRequest, "stuck-3", payload))
	if got.status != 503 || !strings.Contains(got.body, "not taking events") {
		t.Fatalf("third: got %d %q, want 503", got.status, got.body)
	}
	// A duplicate is refused too, rather than answered from a full queue.
	if got := r.send(t, jsonDelivery(KindPullRequest, "stuck-1", payload)); got.status != 503 {
		t.Errorf("redelivery while stuck: %d", got.status)
	}
	// Rejected deliveries never reach Enqueue, so nothing was recorded.
	release()
	waitFor(t, func() bool { return len(r.queue.Events()) == 2 })
	if got := r.send(t, jsonDelivery(KindPullRequest, "stuck-3", payload)); got.status != 202 {
		t.Errorf("stuck-3 redelivered: got %d %q", got.status, got.body)
	}
	waitFor(t, func() bool { return len(r.queue.Events()) == 3 })
	// The refused duplicate stayed a duplicate.
	if got := r.send(t, jsonDelivery(KindPullRequest, "stuck-1", payload)); got.status != 200 {
		t.Errorf("stuck-1 again: %d", got.status)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestDeliveryLogFailure(t *testing.T) {
	r := newRig(t, nil)
	r.store.Close() // the real store, unusable
	got := r.send(t, jsonDelivery(KindPullRequest, "log-down", load(t, "pull_request")))
	if got.status != 503 || !strings.Contains(got.body, "delivery log") {
		t.Errorf("got %d %q, want 503", got.status, got.body)
	}
	if n := len(r.queue.Events()); n != 0 {
		t.Errorf("%d events enqueued", n)
	}
}

func TestMethodNotAllowed(t *testing.T) {
	r := newRig(t, nil)
	resp, err := http.Get(r.url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d, Allow %q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestMetrics(t *testing.T) {
	r := newRig(t, nil)
	pr := load(t, "pull_request")
	r.send(t, jsonDelivery(KindPullRequest, "m-1", pr))
	r.send(t, jsonDelivery(KindPullRequest, "m-1", pr))
	r.send(t, jsonDelivery(KindPing, "m-2", load(t, "ping")))
	unsigned := jsonDelivery("made-up-event-name", "m-3", pr)
	unsigned.unsigned = true
	r.send(t, unsigned)

	for _, c := range []struct {
		event, outcome string
		want           float64
	}{
		{"pull_request", OutcomeAccepted, 1},
		{"pull_request", OutcomeDuplicate, 1},
		{"ping", OutcomePing, 1},
		{"other", OutcomeUnauthorized, 1},
		{"pull_request", OutcomeUnauthorized, 0},
	} {
		var m dto.Metric
		if err := r.h.metrics.deliveries.WithLabelValues(c.event, c.outcome).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != c.want {
			t.Errorf("deliveries{event=%s,outcome=%s} = %v, want %v", c.event, c.outcome, got, c.want)
		}
	}
	mfs, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var observed uint64
	for _, mf := range mfs {
		if mf.GetName() != "slipway_webhook_handling_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			observed += m.GetHistogram().GetSampleCount()
		}
	}
	if observed != 4 {
		t.Errorf("latency histogram has %d samples, want 4", observed)
	}
	// A second handler on the same registry shares the series.
	if _, err := NewHandler(Options{Secrets: []string{"s"}, AllowRepo: func(string) bool { return true }, Deliveries: r.store, Enqueuer: r.queue, Registerer: r.reg}); err != nil {
		t.Errorf("second handler on one registry: %v", err)
	}
}

func TestNewHandlerNeedsItsDependencies(t *testing.T) {
	good := Options{Secrets: []string{"s"}, AllowRepo: func(string) bool { return true }, Deliveries: fakeLog{}, Enqueuer: EnqueueFunc(func(Event) {})}
	if _, err := NewHandler(good); err != nil {
		t.Fatalf("complete options: %v", err)
	}
	for _, c := range []struct {
		name string
		f    func(*Options)
		msg  string
	}{
		{"no secret", func(o *Options) { o.Secrets = []string{""} }, "no webhook secret"},
		{"no allow", func(o *Options) { o.AllowRepo = nil }, "no AllowRepo"},
		{"no log", func(o *Options) { o.Deliveries = nil }, "no delivery log"},
		{"no enqueuer", func(o *Options) { o.Enqueuer = nil }, "no enqueuer"},
		{"negative limit", func(o *Options) { o.MaxBodyBytes = -1 }, "negative"},
	} {
		o := good
		c.f(&o)
		if _, err := NewHandler(o); err == nil || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("%s: err = %v, want %q", c.name, err, c.msg)
		}
	}
}

// fakeLog satisfies DeliveryLog for option validation only.
type fakeLog struct{}

func (fakeLog) FirstSeen(context.Context, string) (bool, error) { return true, nil }
