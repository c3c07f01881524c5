package proxy

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/slipwayhq/slipway/internal/contract"
)

// recordHandler is a slog.Handler that keeps messages for assertions.
type recordHandler struct {
	mu   sync.Mutex
	msgs []string
}

func (h *recordHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *recordHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	h.mu.Lock()
	h.msgs = append(h.msgs, b.String())
	h.mu.Unlock()
	return nil
}
func (h *recordHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *recordHandler) WithGroup(string) slog.Handler      { return h }

func (h *recordHandler) count(substr string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, m := range h.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

func TestSetStateRejectsBadInputAndChangesNothing(t *testing.T) {
	r := NewRoutes(nil, anyHost{})
	if err := r.SetState("p1", []string{"pr-1.localhost"}, State{Phase: PhaseBuilding}); err != nil {
		t.Fatal(err)
	}
	before := summary(r.Lookup("pr-1.localhost"))
	bad := []struct {
		name    string
		project string
		hosts   []string
		st      State
		errPart string
	}{
		{"empty project", "", []string{"pr-2.localhost"}, State{Phase: PhaseQueued}, "empty project"},
		{"running phase", "p1", []string{"pr-1.localhost"}, State{Phase: PhaseRunning}, "not one the controller may publish"},
		{"stopped phase", "p1", []string{"pr-1.localhost"}, State{Phase: PhaseStopped}, "not one the controller may publish"},
		{"empty phase", "p1", []string{"pr-1.localhost"}, State{}, "not one the controller may publish"},
		{"no hosts", "p1", nil, State{Phase: PhaseQueued}, "no hosts"},
		{"upper-case host", "p1", []string{"PR-1.localhost"}, State{Phase: PhaseFailed}, "not allowed"},
		{"host with port", "p1", []string{"pr-1.localhost:80"}, State{Phase: PhaseFailed}, "not allowed"},
		{"one bad among good", "p1", []string{"pr-1.localhost", "a..b"}, State{Phase: PhaseFailed}, "empty"},
	}
	for _, tt := range bad {
		err := r.SetState(tt.project, tt.hosts, tt.st)
		if err == nil || !strings.Contains(err.Error(), tt.errPart) {
			t.Errorf("%s: err = %v, want it to mention %q", tt.name, err, tt.errPart)
		}
	}
	if got := summary(r.Lookup("pr-1.localhost")); got != before {
		t.Fatalf("bad input changed the table: %q → %q", before, got)
	}
	if r.Table().Len() != 1 {
		t.Fatalf("table has %d hosts", r.Table().Len())
	}
}

func TestSetStateKeepsOneLineReason(t *testing.T) {
	r := NewRoutes(nil, anyHost{})
	long := strings.Repeat("é", 400)
	if err := r.SetState("p1", []string{"pr-1.localhost"}, State{Phase: PhaseFailed, Step: "build\nmore", Service: " web ", Reason: "exit 1\nSECRET=hunter2"}); err != nil {
		t.Fatal(err)
	}
	st := r.Lookup("pr-1.localhost").State
	if st.Reason != "exit 1" || st.Step != "build" || st.Service != "web" {
		t.Fatalf("state = %+v", st)
	}
	if err := r.SetState("p1", []string{"pr-1.localhost"}, State{Phase: PhaseFailed, Reason: long}); err != nil {
		t.Fatal(err)
	}
	got := r.Lookup("pr-1.localhost").State.Reason
	if len(got) > maxStateText+len("…") || !strings.HasSuffix(got, "…") || !strings.HasPrefix(got, "éé") {
		t.Fatalf("long reason not cut cleanly: %d bytes %q…", len(got), got[:10])
	}
	for _, r := range strings.TrimSuffix(got, "…") {
		if r != 'é' {
			t.Fatalf("reason cut inside a rune: %q", got)
		}
	}
}

func TestRoutesStateLifecycle(t *testing.T) {
	r := NewRoutes(nil, anyHost{})
	hosts := []string{"pr-1.localhost"}
	steps := []struct {
		do   func()
		want string
	}{
		{func() { _ = r.SetState("p1", hosts, State{Phase: PhaseQueued}) }, "p1/ queued state=queued///"},
		{func() { _ = r.SetState("p1", hosts, State{Phase: PhaseBuilding, Step: "build", Service: "web"}) }, "p1/ building state=building/build/web/"},
		{func() {
			r.PutContainer(ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("starting")))
		}, "p1/web building state=building/build/web/"},
		{func() { _ = r.SetState("p1", hosts, State{Phase: PhaseStarting}) }, "p1/web starting state=starting///"},
		{func() {
			r.PutContainer(ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("healthy")))
		}, "p1/web running 10.0.0.2:80 state=starting///"},
		{func() { r.ClearState("p1") }, "p1/web running 10.0.0.2:80"},
		{func() { _ = r.SetState("p1", hosts, State{Phase: PhaseRemoving}) }, "p1/web removing state=removing///"},
		{func() { r.RemoveContainer("id-p1-web-1") }, "p1/ removing state=removing///"},
		{func() { r.ClearState("p1") }, ""},
	}
	for i, s := range steps {
		s.do()
		got := ""
		if rt := r.Lookup("pr-1.localhost"); rt != nil {
			got = summary(rt)
		}
		if got != s.want {
			t.Fatalf("step %d: %q, want %q", i, got, s.want)
		}
	}
}

func TestRoutesLogProblemsOnce(t *testing.T) {
	rec := &recordHandler{}
	r := NewRoutes(slog.New(rec), anyHost{})
	r.PutContainer(ctr("bad", "p1", "web", "pr-1.localhost", "nope", "10.0.0.2"))
	for i := 0; i < 5; i++ {
		r.PutContainer(ctr("good", "p2", "web", "pr-2.localhost", "80", "10.0.0.3", health([]string{"starting", "healthy"}[i%2])))
	}
	if n := rec.count("invalid route port"); n != 1 {
		t.Fatalf("problem logged %d times, want once", n)
	}
	if r.Lookup("pr-2.localhost") == nil {
		t.Fatal("bad container blanked the table")
	}
	// Once fixed and broken again, it is logged again.
	r.PutContainer(ctr("bad", "p1", "web", "pr-1.localhost", "80", "10.0.0.2"))
	r.PutContainer(ctr("bad", "p1", "web", "pr-1.localhost", "nope", "10.0.0.2"))
	if n := rec.count("invalid route port"); n != 2 {
		t.Fatalf("problem logged %d times, want twice", n)
	}
}

func TestRoutesSubscribeSeesEveryTableInOrder(t *testing.T) {
	r := NewRoutes(nil, anyHost{})
	var seen []int
	unsub := r.Subscribe(func(t *Table) { seen = append(seen, t.Len()) })
	r.PutContainer(ctr("a", "p1", "web", "a.localhost", "80", "10.0.0.2"))
	r.PutContainer(ctr("a", "p1", "web", "a.localhost", "80", "10.0.0.2")) // unchanged: no new table
	r.PutContainer(ctr("b", "p1", "web", "b.localhost", "80", "10.0.0.3"))
	r.RemoveContainer("id-a")
	r.RemoveContainer("id-missing") // unknown: no new table
	unsub()
	r.RemoveContainer("id-b")
	if got := fmt.Sprint(seen); got != "[0 1 2 1]" {
		t.Fatalf("table sizes seen: %s, want [0 1 2 1]", got)
	}
}

func TestReplaceContainersDropsVanished(t *testing.T) {
	r := NewRoutes(nil, anyHost{})
	r.ReplaceContainers([]Container{
		ctr("a", "p1", "web", "a.localhost", "80", "10.0.0.2"),
		ctr("b", "p2", "web", "b.localhost", "80", "10.0.0.3"),
	})
	r.ReplaceContainers([]Container{ctr("b", "p2", "web", "b.localhost", "80", "10.0.0.3")})
	if r.Lookup("a.localhost") != nil || r.Lookup("b.localhost") == nil {
		t.Fatalf("table after replace: %v", r.Table().Routes())
	}
}

// Routes keeps the problems of its current table, by project for the
// dashboard, and the table never holds a refused host.
func TestRoutesReportRefusedRoutes(t *testing.T) {
	rec := &recordHandler{}
	r := NewRoutes(slog.New(rec), contract.DefaultHostTemplates("localhost", false))
	r.PutContainer(Container{ID: "1", Name: "o-r-pr-1-web-1", Project: "o-r-pr-1", Service: "web", Repo: "o/r", PR: 1, Host: "pr-1.localhost", Port: "80", Running: true, IP: "10.0.0.1"})
	r.PutContainer(Container{ID: "2", Name: "o-r-pr-1-evil-1", Project: "o-r-pr-1", Service: "evil", Repo: "o/r", PR: 1, Host: "pr-2.localhost", Port: "80", Running: true, IP: "10.0.0.2"})
	if r.Lookup("pr-2.localhost") != nil {
		t.Fatal("a host PR 1 does not own is routed")
	}
	if r.Lookup("pr-1.localhost") == nil {
		t.Fatal("PR 1's own host is not routed")
	}
	got := r.RouteProblems()
	if len(got) != 1 || len(got["o-r-pr-1"]) != 1 || !strings.Contains(got["o-r-pr-1"][0], `o-r-pr-1-evil-1 host "pr-2.localhost": route not declared by Slipway for o/r#1`) {
		t.Fatalf("route problems %q", got)
	}
	if n := rec.count("route not declared"); n != 1 {
		t.Errorf("logged %d times, want once", n)
	}
	r.RemoveContainer("2")
	if got := r.RouteProblems(); len(got) != 0 {
		t.Errorf("problems after the container went: %q", got)
	}
}
