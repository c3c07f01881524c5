package dashboard

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// tickOf returns N of a "tick N" log message, or -1.
func tickOf(msg string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(msg, "tick "))
	if err != nil || !strings.HasPrefix(msg, "tick ") {
		return -1
	}
	return n
}

// nextLine reads events until a line event and decodes it.
func nextLine(t *testing.T, r *bufio.Reader) (logLine, string) {
	t.Helper()
	for {
		ev, err := readEvent(r)
		if err != nil {
			t.Fatalf("read event: %v", err)
		}
		switch ev.Event {
		case "line":
			var l logLine
			if err := json.Unmarshal([]byte(ev.Data), &l); err != nil {
				t.Fatalf("line event %q: %v", ev.Data, err)
			}
			return l, ev.ID
		case "end":
			t.Fatalf("stream ended: %s", ev.Data)
		}
	}
}

func TestEngineListLogsAndStats(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	fx := deploy(t, e, cli, "test", dockertest.UniqueName("dash"), 11, shaA)
	st := openStore(t, nil)
	track(t, st, store.EnvironmentInfo{Project: fx.Project, Repo: fx.Repo, PR: fx.PR, Title: "Live logs", Author: "ada"},
		store.PhaseEntry{Phase: contract.PhaseReady, SHA: fx.SHA})
	srv, ts := newTestServer(t, Options{Engine: e, History: st, Stats: cli, Token: testToken, StatsTimeout: 10 * time.Second})
	client := &Client{BaseURL: ts.URL, Token: testToken}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()

	// The list merges the store with what runs.
	envs, err := client.Environments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var env *Environment
	for i := range envs {
		if envs[i].Project == fx.Project {
			env = &envs[i]
		}
	}
	if env == nil {
		t.Fatalf("%s not listed: %+v", fx.Project, envs)
	}
	if env.Phase != "ready" || env.State != StateRunning || env.SHA != shaA || env.Title != "Live logs" || !env.Tracked {
		t.Errorf("environment %+v", env)
	}
	if env.URL != "http://pr-11.preview.example.com" || len(env.Services) != 2 || env.Services[0].Name != "web" || env.Services[1].Name != "worker" {
		t.Errorf("routes and services: %s %+v", env.URL, env.Services)
	}

	// Live logs as events: history first, then lines written after we
	// connected, in order.
	connected := time.Now()
	resp, events := openEvents(t, ctx, ts.URL+"/api/v1/environments/"+fx.Project+"/logs?service=web", testToken, "")
	last, lastID := -1, ""
	for {
		l, id := nextLine(t, events)
		n := tickOf(l.Message)
		if n < 0 {
			t.Fatalf("unexpected line %+v", l)
		}
		if l.Container != "web-1" || l.Time == "" {
			t.Fatalf("line %+v", l)
		}
		if last >= 0 && n != last+1 {
			t.Fatalf("tick %d after %d", n, last)
		}
		last, lastID = n, id
		at, _ := time.Parse(time.RFC3339Nano, l.Time)
		if at.After(connected.Add(time.Second)) {
			break // a line the container wrote well after we connected
		}
	}
	resp.Body.Close()

	// A reconnecting client (EventSource sends Last-Event-ID) gets the
	// lines it missed, none twice.
	time.Sleep(500 * time.Millisecond)
	_, events = openEvents(t, ctx, ts.URL+"/api/v1/environments/"+fx.Project+"/logs?service=web", testToken, lastID)
	l, _ := nextLine(t, events)
	if n := tickOf(l.Message); n != last+1 {
		t.Errorf("after reconnecting at tick %d the first line is %q, want tick %d", last, l.Message, last+1)
	}

	// Plain text, one service, no follow.
	var buf strings.Builder
	if err := client.Logs(ctx, fx.Project, "worker", false, &buf); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "worker-1 | worker started\n" {
		t.Errorf("worker logs %q", buf.String())
	}

	// Plain text, following, until the caller stops.
	fctx, fcancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := client.Logs(fctx, fx.Project, "web", true, pw)
		pw.Close()
		done <- err
	}()
	sc := bufio.NewScanner(pr)
	var prev int
	for i := 0; sc.Scan(); i++ {
		_, msg, _ := strings.Cut(sc.Text(), " | ")
		n := tickOf(msg)
		if n < 0 || (i > 0 && n != prev+1) {
			t.Fatalf("followed line %q after tick %d", sc.Text(), prev)
		}
		prev = n
		if n > last+10 {
			break
		}
	}
	fcancel()
	go io.Copy(io.Discard, pr)
	if err := <-done; err != nil {
		t.Errorf("follow ended with %v", err)
	}

	// Stats: sampled in the background, two rounds give CPU.
	srv.sampleStats(ctx)
	time.Sleep(300 * time.Millisecond)
	srv.sampleStats(ctx)
	d, err := client.Environment(ctx, fx.Project)
	if err != nil {
		t.Fatal(err)
	}
	if d.Usage == nil || d.Usage.MemoryBytes == 0 || d.Usage.CPUPercent == nil || d.Usage.MemoryLimitBytes == 0 {
		t.Fatalf("usage after two samples: %+v", d.Usage)
	}
	for _, svc := range d.Services {
		if c := svc.Containers[0]; c.Usage == nil || c.Usage.MemoryBytes == 0 {
			t.Errorf("container %s usage %+v", c.Name, c.Usage)
		}
	}
}

func TestEngineActions(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	fx := deploy(t, e, cli, "test", dockertest.UniqueName("dash"), 12, shaB)
	local := deploy(t, e, cli, "local", dockertest.UniqueName("dash"), 13, shaC)
	st := openStore(t, nil)
	track(t, st, store.EnvironmentInfo{Project: fx.Project, Repo: fx.Repo, PR: fx.PR, Title: "Actions"},
		store.PhaseEntry{Phase: contract.PhaseReady, SHA: fx.SHA})
	_, ts := newTestServer(t, Options{Engine: e, History: st, Actions: EngineActions{Engine: e}, Token: testToken})
	client := &Client{BaseURL: ts.URL, Token: testToken}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	detail := func(project string) *EnvironmentDetail {
		t.Helper()
		d, err := client.Environment(ctx, project)
		if err != nil {
			t.Fatalf("environment %s: %v", project, err)
		}
		return d
	}

	// Without the token nothing happens.
	resp, err := http.Post(ts.URL+"/api/v1/environments/"+fx.Project+"/actions/sleep", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("action without token: %d", resp.StatusCode)
	}
	if d := detail(fx.Project); d.State != StateRunning {
		t.Fatalf("state %s after a refused sleep", d.State)
	}

	if res, err := client.Action(ctx, fx.Project, "sleep"); err != nil || res.Status != Done {
		t.Fatalf("sleep: %+v %v, want done (the engine acts before answering)", res, err)
	}
	if d := detail(fx.Project); d.State != StateStopped || d.Phase != "sleeping" {
		t.Errorf("after sleep: state %s phase %s", d.State, d.Phase)
	}
	// Following the logs of a sleeping environment ends with an "end" event.
	_, events := openEvents(t, ctx, ts.URL+"/api/v1/environments/"+fx.Project+"/logs?service=worker", testToken, "")
	for {
		ev, err := readEvent(events)
		if err != nil {
			t.Fatalf("events of a stopped environment: %v", err)
		}
		if ev.Event == "end" {
			break
		}
	}

	if res, err := client.Action(ctx, fx.Project, "wake"); err != nil || res.Status != Done {
		t.Fatalf("wake: %+v %v", res, err)
	}
	if d := detail(fx.Project); d.State != StateRunning || d.Phase != "ready" {
		t.Errorf("after wake: state %s phase %s", d.State, d.Phase)
	}
	if _, err := client.Action(ctx, fx.Project, "redeploy"); !errors.Is(err, ErrUnsupported) {
		t.Errorf("redeploy: %v, want ErrUnsupported", err)
	}

	if res, err := client.Action(ctx, local.Project, "destroy"); err != nil || res.Status != Done {
		t.Fatalf("destroy: %+v %v", res, err)
	}
	if env, err := e.Inspect(ctx, local.Project); err != nil || env != nil {
		t.Errorf("after destroy the engine has %+v %v", env, err)
	}
	if _, err := client.Environment(ctx, local.Project); !errors.Is(err, ErrNotFound) {
		t.Errorf("destroyed local environment: %v, want ErrNotFound", err)
	}
	if _, err := client.Action(ctx, local.Project, "destroy"); !errors.Is(err, ErrNotFound) {
		t.Errorf("destroying again: %v, want ErrNotFound", err)
	}
	if _, err := client.Action(ctx, fx.Project, "destroy"); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	// The history outlives the containers.
	if d := detail(fx.Project); d.State != StateAbsent || len(d.Timeline) != 1 {
		t.Errorf("after destroy: %+v", d)
	}
}
