package dashboard

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// fakeEngine serves a fixed list of environments, for tests of the
// listing and access logic that need no containers. Tests of logs and
// actions use the real engine.
type fakeEngine struct {
	mu    sync.Mutex
	err   error // returned by List and Inspect
	envs  []stack.Environment
	lines map[string][]string // project → engine output lines
	lists atomic.Int64
}

func (f *fakeEngine) List(context.Context) ([]stack.Environment, error) {
	f.lists.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	return slices.Clone(f.envs), nil
}

func (f *fakeEngine) Inspect(_ context.Context, project string) (*stack.Environment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	for _, e := range f.envs {
		if e.Project == project {
			return &e, nil
		}
	}
	return nil, nil
}

func (f *fakeEngine) Logs(ctx context.Context, project string, o stack.LogOptions, w io.Writer) error {
	f.mu.Lock()
	lines := slices.Clone(f.lines[project])
	f.mu.Unlock()
	for _, l := range lines {
		if o.Service != "" && !strings.HasPrefix(l, o.Service+"-") {
			continue
		}
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	if o.Follow {
		<-ctx.Done()
	}
	return nil
}

// recordingActions records which actions got through the access checks.
// Like the controller, it queues them (outcome "" is Queued) unless told
// otherwise.
type recordingActions struct {
	mu      sync.Mutex
	calls   []string
	outcome Outcome
	err     error
}

func (a *recordingActions) record(action, project string) (Outcome, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, action+" "+project)
	if a.err != nil {
		return "", a.err
	}
	return cmp.Or(a.outcome, Queued), nil
}

func (a *recordingActions) Calls() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

func (a *recordingActions) Redeploy(_ context.Context, p string) (Outcome, error) {
	return a.record("redeploy", p)
}
func (a *recordingActions) Destroy(_ context.Context, p string) (Outcome, error) {
	return a.record("destroy", p)
}
func (a *recordingActions) Sleep(_ context.Context, p string) (Outcome, error) {
	return a.record("sleep", p)
}
func (a *recordingActions) Wake(_ context.Context, p string) (Outcome, error) {
	return a.record("wake", p)
}

// runningEnv is an engine environment with one running web container.
func runningEnv(project, repo string, pr int, sha string) stack.Environment {
	return stack.Environment{
		Project: project, Repo: repo, PR: pr, SHA: sha,
		Services: []stack.ServiceState{{Service: "web", Containers: []stack.ContainerState{{
			Name: project + "-web-1", ID: "id-" + project, Number: 1, State: "running", SHA: sha, Image: "busybox", Built: true,
		}}}},
		Routes:  []stack.ObservedRoute{{Host: "pr-" + fmt.Sprint(pr) + ".preview.test", Service: "web", Port: 8080, Primary: true}},
		Created: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
	}
}

// openStore opens a real history database in a temporary directory.
func openStore(t testing.TB, now func() time.Time) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), store.FileName), store.Options{Now: now, LogFlushInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// track records an environment and its phases in the store.
func track(t testing.TB, st *store.Store, info store.EnvironmentInfo, phases ...store.PhaseEntry) {
	t.Helper()
	ctx := context.Background()
	if err := st.UpsertEnvironment(ctx, info); err != nil {
		t.Fatalf("upsert %s: %v", info.Project, err)
	}
	for _, p := range phases {
		if err := st.RecordPhase(ctx, info.Project, p); err != nil {
			t.Fatalf("record %s %s: %v", info.Project, p.Phase, err)
		}
	}
}

// newTestServer starts the dashboard on a real HTTP server.
func newTestServer(t testing.TB, opts Options) (*Server, *httptest.Server) {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// noRedirect is a client that returns redirects instead of following them.
func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// --- the real engine ---

const (
	shaA = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
	shaB = "b2c3d4e5f60718293a4b5c6d7e8f9012345678a1"
	shaC = "c3d4e5f60718293a4b5c6d7e8f9012345678a1b2"
)

// testEngine returns the stack engine over the real Docker Engine, with the
// busybox image the fixture runs.
func testEngine(t testing.TB) (*stack.Engine, *client.Client) {
	t.Helper()
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	return stack.NewEngine(cli, nil, stack.EngineOptions{ReadyTimeout: 60 * time.Second, StopTimeout: 2 * time.Second, MinUptime: 300 * time.Millisecond}), cli
}

// fixture is one environment of testdata/app on the engine.
type fixture struct {
	Project, Repo string
	PR            int
	SHA           string
}

// deploy brings testdata/app up as owner/repo#pr at sha, and removes it in
// t.Cleanup, checking that nothing of it is left.
func deploy(t testing.TB, e *stack.Engine, cli *client.Client, owner, repo string, pr int, sha string) fixture {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "app"))
	if err != nil {
		t.Fatal(err)
	}
	src := stack.Source{Dir: dir, Owner: owner, Repo: repo, PR: pr, SHA: sha}
	f := fixture{Project: src.Project(), Repo: src.FullName(), PR: pr, SHA: sha}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := e.Down(ctx, f.Project); err != nil {
			t.Errorf("cleanup down %s: %v", f.Project, err)
		}
		left, err := dockertest.Leftovers(ctx, cli, contract.LabelProject+"="+f.Project)
		if err != nil {
			t.Errorf("list leftovers: %v", err)
		}
		if len(left) > 0 {
			t.Errorf("left behind by %s: %v", f.Project, left)
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// A previous run killed before its cleanup may have left the project.
	if err := e.Down(ctx, f.Project); err != nil {
		t.Fatalf("down %s before up: %v", f.Project, err)
	}
	p, err := stack.Load(ctx, src, stack.LoadOptions{Hosts: stack.HostOptions{Domain: "preview.example.com"}, Limits: config.Defaults().Limits})
	if err != nil {
		t.Fatalf("load %s: %v", f.Project, err)
	}
	var log strings.Builder
	if _, err := e.Up(ctx, p, stack.UpOptions{BuildLog: &log}); err != nil {
		t.Fatalf("up %s: %v\n%s", f.Project, err, log.String())
	}
	return f
}

// sseEvent is one server-sent event.
type sseEvent struct {
	ID, Event, Data string
}

// readEvent reads the next event from an event stream, skipping comments
// and the retry field.
func readEvent(r *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	seen := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if seen {
				return ev, nil
			}
		case strings.HasPrefix(line, ":"), strings.HasPrefix(line, "retry:"):
		case strings.HasPrefix(line, "id: "):
			ev.ID, seen = line[4:], true
		case strings.HasPrefix(line, "event: "):
			ev.Event, seen = line[7:], true
		case strings.HasPrefix(line, "data: "):
			ev.Data, seen = line[6:], true
		}
	}
}

// openEvents starts an event-stream GET and returns its body reader.
func openEvents(t testing.TB, ctx context.Context, url, token, lastEventID string) (*http.Response, *bufio.Reader) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s: %d %s %s", url, resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return resp, bufio.NewReader(resp.Body)
}
