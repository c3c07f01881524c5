package store

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2024, 3, 19, 8, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

func openTest(t *testing.T, opts Options) (*Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", FileName)
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

const (
	sha1 = "9f2c1d7e4b3a5968c0d1e2f3a4b5c6d7e8f90a1b"
	sha2 = "3e4d5c6b7a8f9e0d1c2b3a4f5e6d7c8b9a0f1e2d"
)

func info(pr int) EnvironmentInfo {
	return EnvironmentInfo{
		Project:  fmt.Sprintf("acme-webshop-pr-%d", pr),
		Repo:     "acme/webshop",
		PR:       pr,
		Title:    "Checkout: show delivery estimate",
		Author:   "jdoe-dev",
		HeadRepo: "jdoe-dev/webshop",
	}
}

func mustUpsert(t *testing.T, s *Store, in EnvironmentInfo) {
	t.Helper()
	if err := s.UpsertEnvironment(context.Background(), in); err != nil {
		t.Fatalf("UpsertEnvironment(%s): %v", in.Project, err)
	}
}

func mustPhase(t *testing.T, s *Store, project string, e PhaseEntry) {
	t.Helper()
	if err := s.RecordPhase(context.Background(), project, e); err != nil {
		t.Fatalf("RecordPhase(%s, %s): %v", project, e.Phase, err)
	}
}

func TestEnvironmentLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now})
	in := info(42)
	mustUpsert(t, s, in)
	created := clk.Now()

	steps := []PhaseEntry{
		{Phase: contract.PhaseWaiting, SHA: sha1},
		{Phase: contract.PhaseBuilding, SHA: sha1, Detail: "building web"},
		{Phase: contract.PhaseFailed, SHA: sha1, Detail: "build failed", Failure: &Failure{Step: "build", Service: "web", Message: "RUN npm ci: exit status 1"}},
		{Phase: contract.PhaseWaiting, SHA: strings.ToUpper(sha2)},
		{Phase: contract.PhaseBuilding, SHA: sha2},
		{Phase: contract.PhaseDeploying, SHA: sha2},
	}
	for _, e := range steps {
		clk.Advance(time.Second)
		mustPhase(t, s, in.Project, e)
	}
	env, err := s.Environment(ctx, in.Project)
	if err != nil {
		t.Fatal(err)
	}
	if env.Phase != contract.PhaseDeploying || env.SHA != sha2 || !env.PhaseAt.Equal(clk.Now()) || !env.Updated.Equal(clk.Now()) {
		t.Errorf("current phase = %s %s at %v (updated %v), want deploying %s at %v", env.Phase, env.SHA, env.PhaseAt, env.Updated, sha2, clk.Now())
	}
	if !env.Created.Equal(created) || !env.LastPush.Equal(created) {
		t.Errorf("created %v, last push %v; want both %v", env.Created, env.LastPush, created)
	}
	want := Failure{Step: "build", Service: "web", Message: "RUN npm ci: exit status 1", SHA: sha1, At: created.Add(3 * time.Second)}
	if env.LastError == nil || *env.LastError != want {
		t.Errorf("LastError = %+v, want %+v", env.LastError, want)
	}

	// Ready clears the error.
	clk.Advance(time.Second)
	mustPhase(t, s, in.Project, PhaseEntry{Phase: contract.PhaseReady, SHA: sha2})
	env, _ = s.Environment(ctx, in.Project)
	if env.LastError != nil || env.Phase != contract.PhaseReady {
		t.Errorf("after ready: phase %s, LastError %+v", env.Phase, env.LastError)
	}

	tl, err := s.Timeline(ctx, in.Project)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tl {
		got = append(got, string(e.Phase)+"@"+e.SHA[:7])
	}
	wantTL := []string{"waiting@9f2c1d7", "building@9f2c1d7", "failed@9f2c1d7", "waiting@3e4d5c6", "building@3e4d5c6", "deploying@3e4d5c6", "ready@3e4d5c6"}
	if !reflect.DeepEqual(got, wantTL) {
		t.Errorf("timeline = %v, want %v", got, wantTL)
	}

	// An upsert with empty fields keeps what is known; LastPush only moves forward.
	push := created.Add(time.Hour)
	mustUpsert(t, s, EnvironmentInfo{Project: in.Project, Repo: "ACME/webshop", PR: 42, Title: "Checkout: delivery estimate (v2)", LastPush: push})
	mustUpsert(t, s, EnvironmentInfo{Project: in.Project, Repo: "acme/webshop", PR: 42, LastPush: created})
	env, _ = s.Environment(ctx, in.Project)
	if env.Title != "Checkout: delivery estimate (v2)" || env.Author != "jdoe-dev" || env.HeadRepo != "jdoe-dev/webshop" || !env.LastPush.Equal(push) {
		t.Errorf("after upserts: %+v", env.EnvironmentInfo)
	}

	// Keep: set, then clear.
	until := clk.Now().Add(7 * 24 * time.Hour)
	if err := s.SetKeep(ctx, in.Project, Keep{Until: until, By: "mara-maint"}); err != nil {
		t.Fatal(err)
	}
	env, _ = s.Environment(ctx, in.Project)
	if !env.Keep.Until.Equal(until) || env.Keep.By != "mara-maint" || !env.Keep.At.Equal(clk.Now()) || env.Keep.Forever {
		t.Errorf("keep = %+v", env.Keep)
	}
	if err := s.SetKeep(ctx, in.Project, Keep{Forever: true, By: "mara-maint"}); err != nil {
		t.Fatal(err)
	}
	env, _ = s.Environment(ctx, in.Project)
	if !env.Keep.Forever || !env.Keep.Until.IsZero() {
		t.Errorf("keep forever = %+v", env.Keep)
	}
	if err := s.SetKeep(ctx, in.Project, Keep{}); err != nil {
		t.Fatal(err)
	}
	env, _ = s.Environment(ctx, in.Project)
	if env.Keep != (Keep{}) {
		t.Errorf("cleared keep = %+v", env.Keep)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	in := info(7)
	mustUpsert(t, s, in)
	mustPhase(t, s, in.Project, PhaseEntry{Phase: contract.PhaseWaiting, SHA: sha1})
	before, _ := s.Environment(ctx, in.Project)

	cases := []struct {
		name string
		err  error
		want error
	}{
		{"unknown phase", s.RecordPhase(ctx, in.Project, PhaseEntry{Phase: "exploded"}), ErrInvalid},
		{"phase of unknown project", s.RecordPhase(ctx, "acme-webshop-pr-999", PhaseEntry{Phase: contract.PhaseWaiting}), ErrNotFound},
		{"bad project name", s.RecordPhase(ctx, "Acme/Webshop#7", PhaseEntry{Phase: contract.PhaseWaiting}), ErrInvalid},
		{"upsert other PR onto project", s.UpsertEnvironment(ctx, EnvironmentInfo{Project: in.Project, Repo: "acme/webshop", PR: 8}), ErrInvalid},
		{"upsert bad repo", s.UpsertEnvironment(ctx, EnvironmentInfo{Project: "x-pr-1", Repo: "webshop", PR: 1}), ErrInvalid},
		{"upsert PR 0", s.UpsertEnvironment(ctx, EnvironmentInfo{Project: "x-pr-0", Repo: "a/b"}), ErrInvalid},
		{"keep of unknown project", s.SetKeep(ctx, "acme-webshop-pr-999", Keep{Forever: true}), ErrNotFound},
		{"approve bad sha", s.Approve(ctx, Approval{Repo: "acme/webshop", PR: 7, SHA: "main", By: "x"}), ErrInvalid},
		{"approve without approver", s.Approve(ctx, Approval{Repo: "acme/webshop", PR: 7, SHA: sha1}), ErrInvalid},
		{"log of unknown project", func() error { _, err := s.NewBuildLog(ctx, "acme-webshop-pr-999", sha1); return err }(), ErrNotFound},
		{"log of bad sha", func() error { _, err := s.NewBuildLog(ctx, in.Project, "HEAD"); return err }(), ErrInvalid},
		{"empty delivery", func() error { _, err := s.FirstSeen(ctx, ""); return err }(), ErrInvalid},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: err = %v, want %v", c.name, c.err, c.want)
		}
	}
	after, _ := s.Environment(ctx, in.Project)
	if !reflect.DeepEqual(before, after) {
		t.Errorf("environment changed:\n%+v\n%+v", before, after)
	}
	envs, _ := s.Environments(ctx)
	if len(envs) != 1 {
		t.Errorf("%d environments, want 1", len(envs))
	}
	if tl, _ := s.Timeline(ctx, in.Project); len(tl) != 1 {
		t.Errorf("timeline has %d entries, want 1", len(tl))
	}
	if _, ok, _ := s.Approval(ctx, "acme/webshop", 7, sha1); ok {
		t.Error("approval without approver was stored")
	}
}

func TestTimelineIsBounded(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{MaxPhases: 5})
	in := info(1)
	mustUpsert(t, s, in)
	for i := range 12 {
		mustPhase(t, s, in.Project, PhaseEntry{Phase: contract.PhaseSleeping, Detail: fmt.Sprint(i)})
	}
	tl, err := s.Timeline(ctx, in.Project)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range tl {
		got = append(got, e.Detail)
	}
	if want := []string{"7", "8", "9", "10", "11"}; !reflect.DeepEqual(got, want) {
		t.Errorf("timeline details = %v, want %v", got, want)
	}
	long := strings.Repeat("é", 2000)
	mustPhase(t, s, in.Project, PhaseEntry{Phase: contract.PhaseWaiting, Detail: long})
	env, _ := s.Environment(ctx, in.Project)
	if len(env.Detail) > maxDetail || !strings.HasSuffix(env.Detail, "…") || !strings.HasPrefix(long, strings.TrimSuffix(env.Detail, "…")) {
		t.Errorf("long detail kept as %d bytes: %q...", len(env.Detail), env.Detail[:20])
	}
}

func TestEnvironmentsMostRecentFirst(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now})
	const n = 250
	for pr := 1; pr <= n; pr++ {
		clk.Advance(time.Second)
		mustUpsert(t, s, info(pr))
	}
	// Touch a few old ones: they move to the front.
	for _, pr := range []int{3, 1, 2} {
		clk.Advance(time.Second)
		mustPhase(t, s, info(pr).Project, PhaseEntry{Phase: contract.PhaseBuilding, SHA: sha1})
	}
	envs, err := s.Environments(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != n {
		t.Fatalf("%d environments, want %d", len(envs), n)
	}
	want := []int{2, 1, 3, n, n - 1}
	for i, pr := range want {
		if envs[i].PR != pr {
			t.Errorf("envs[%d].PR = %d, want %d", i, envs[i].PR, pr)
		}
	}
	for i := 1; i < len(envs); i++ {
		if envs[i].Updated.After(envs[i-1].Updated) {
			t.Fatalf("envs[%d] (%v) newer than envs[%d] (%v)", i, envs[i].Updated, i-1, envs[i-1].Updated)
		}
	}
}

func TestPruneRemovedHistory(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, path := openTest(t, Options{Now: clk.Now, RetainRemoved: 24 * time.Hour, MaxRemoved: 3})

	remove := func(pr int) {
		p := info(pr).Project
		mustPhase(t, s, p, PhaseEntry{Phase: contract.PhaseRemoving})
		mustPhase(t, s, p, PhaseEntry{Phase: contract.PhaseRemoved})
	}
	for pr := 1; pr <= 6; pr++ {
		mustUpsert(t, s, info(pr))
		mustPhase(t, s, info(pr).Project, PhaseEntry{Phase: contract.PhaseReady, SHA: sha1})
		if err := s.Approve(ctx, Approval{Repo: "acme/webshop", PR: pr, SHA: sha1, By: "mara-maint"}); err != nil {
			t.Fatal(err)
		}
		w, err := s.NewBuildLog(ctx, info(pr).Project, sha1)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(w, "build of PR %d\n", pr)
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// PR 1 removed long ago; 2..5 removed recently, one after the other;
	// 6 still runs. PR 2 comes back (reopened) before the count bound bites.
	remove(1)
	clk.Advance(48 * time.Hour)
	remove(2)
	mustPhase(t, s, info(2).Project, PhaseEntry{Phase: contract.PhaseWaiting, SHA: sha2})
	for pr := 3; pr <= 5; pr++ {
		clk.Advance(time.Minute)
		remove(pr)
	}
	// RecordPhase(removed) pruned already: 1 is too old; 3..5 are within
	// the count bound.
	assertProjects(t, s, 2, 3, 4, 5, 6)
	// Reopen and prune again after the day passes for 3..5 but not 2, 6.
	s.Close()
	clk.Advance(25 * time.Hour)
	s2, err := Open(path, Options{Now: clk.Now, RetainRemoved: 24 * time.Hour, MaxRemoved: 3})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	assertProjects(t, s2, 2, 6)
	for pr := 1; pr <= 6; pr++ {
		_, ok, err := s2.Approval(ctx, "acme/webshop", pr, sha1)
		if err != nil {
			t.Fatal(err)
		}
		if wantOK := pr == 2 || pr == 6; ok != wantOK {
			t.Errorf("approval of PR %d kept = %v, want %v", pr, ok, wantOK)
		}
		_, err = s2.BuildLog(ctx, info(pr).Project, sha1, 0)
		if wantOK := pr == 2 || pr == 6; (err == nil) != wantOK {
			t.Errorf("build log of PR %d: err = %v, want kept = %v", pr, err, wantOK)
		}
	}
	if _, err := s2.Timeline(ctx, info(3).Project); !errors.Is(err, ErrNotFound) {
		t.Errorf("timeline of pruned PR 3: err = %v, want ErrNotFound", err)
	}
}

func TestPruneCountBound(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now, MaxRemoved: 2})
	for pr := 1; pr <= 5; pr++ {
		clk.Advance(time.Minute)
		mustUpsert(t, s, info(pr))
		mustPhase(t, s, info(pr).Project, PhaseEntry{Phase: contract.PhaseRemoved})
	}
	// The two most recently removed stay.
	assertProjects(t, s, 4, 5)
	if n, err := s.Prune(ctx); err != nil || n != 0 {
		t.Errorf("Prune again = %d, %v; want 0, nil", n, err)
	}
}

func assertProjects(t *testing.T, s *Store, prs ...int) {
	t.Helper()
	envs, err := s.Environments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for _, e := range envs {
		got[e.PR] = true
	}
	want := map[int]bool{}
	for _, pr := range prs {
		want[pr] = true
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("environments = %v, want %v", got, want)
	}
}

func TestApprovalIsBoundToSHA(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now})
	if err := s.Approve(ctx, Approval{Repo: "Acme/Webshop", PR: 42, SHA: strings.ToUpper(sha1), By: "mara-maint"}); err != nil {
		t.Fatal(err)
	}
	a, ok, err := s.Approval(ctx, "acme/webshop", 42, sha1)
	if err != nil || !ok {
		t.Fatalf("Approval(sha1) = %v, %v", ok, err)
	}
	if a.By != "mara-maint" || a.SHA != sha1 || !a.At.Equal(clk.Now()) || a.PR != 42 {
		t.Errorf("approval = %+v", a)
	}
	for _, c := range []struct {
		repo string
		pr   int
		sha  string
	}{
		{"acme/webshop", 42, sha2}, // a push: new SHA, not approved
		{"acme/webshop", 43, sha1}, // another PR at the same SHA
		{"acme/other", 42, sha1},   // another repo
	} {
		if _, ok, err := s.Approval(ctx, c.repo, c.pr, c.sha); ok || err != nil {
			t.Errorf("Approval(%s#%d@%s) = %v, %v; want not approved", c.repo, c.pr, c.sha[:7], ok, err)
		}
	}
}

func TestFirstSeenIsBounded(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{MaxDeliveries: 3})
	seen := func(id string) bool {
		t.Helper()
		first, err := s.FirstSeen(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return first
	}
	for _, id := range []string{"a", "b", "c"} {
		if !seen(id) {
			t.Errorf("FirstSeen(%s) = false on first sight", id)
		}
	}
	if seen("b") {
		t.Error("FirstSeen(b) = true on second sight")
	}
	if !seen("d") { // evicts a
		t.Error("FirstSeen(d) = false")
	}
	if seen("b") || seen("c") || seen("d") {
		t.Error("a recent delivery was forgotten")
	}
	if !seen("a") {
		t.Error("oldest delivery a still remembered past the bound")
	}
}

func TestFirstSeenConcurrent(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	const ids, dups = 20, 10
	var mu sync.Mutex
	firsts := map[string]int{}
	var wg sync.WaitGroup
	for i := range ids * dups {
		wg.Go(func() {
			id := fmt.Sprintf("72d3162e-cc78-11e3-81ab-%012d", i%ids)
			first, err := s.FirstSeen(ctx, id)
			if err != nil {
				t.Error(err)
				return
			}
			if first {
				mu.Lock()
				firsts[id]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(firsts) != ids {
		t.Errorf("%d ids seen first, want %d", len(firsts), ids)
	}
	for id, n := range firsts {
		if n != 1 {
			t.Errorf("%s seen first %d times", id, n)
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{MaxPhases: 1000})
	shared := info(1000)
	mustUpsert(t, s, shared)
	const workers, each = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			own := info(w + 1)
			if err := s.UpsertEnvironment(ctx, own); err != nil {
				t.Error(err)
				return
			}
			lw, err := s.NewBuildLog(ctx, own.Project, sha1)
			if err != nil {
				t.Error(err)
				return
			}
			for i := range each {
				for _, p := range []string{own.Project, shared.Project} {
					if err := s.RecordPhase(ctx, p, PhaseEntry{Phase: contract.PhaseBuilding, Detail: fmt.Sprintf("%d/%d", w, i)}); err != nil {
						t.Error(err)
					}
				}
				fmt.Fprintf(lw, "worker %d line %d\n", w, i)
				if _, err := s.Environments(ctx); err != nil {
					t.Error(err)
				}
			}
			if err := lw.Close(); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	tl, err := s.Timeline(ctx, shared.Project)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl) != workers*each {
		t.Errorf("shared timeline has %d entries, want %d", len(tl), workers*each)
	}
	for w := range workers {
		l, err := s.BuildLog(ctx, info(w+1).Project, sha1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(string(l.Data), "\n"); n != each || l.Running() {
			t.Errorf("worker %d log: %d lines, running %v", w, n, l.Running())
		}
	}
}

func TestReopenKeepsEverything(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	in := info(42)
	mustUpsert(t, s, in)
	mustPhase(t, s, in.Project, PhaseEntry{Phase: contract.PhaseFailed, SHA: sha1, Failure: &Failure{Step: "deploy", Message: "web unhealthy"}})
	if err := s.SetKeep(ctx, in.Project, Keep{Forever: true, By: "mara-maint"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Approve(ctx, Approval{Repo: in.Repo, PR: in.PR, SHA: sha1, By: "mara-maint"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FirstSeen(ctx, "delivery-1"); err != nil {
		t.Fatal(err)
	}
	done, err := s.NewBuildLog(ctx, in.Project, sha1)
	if err != nil {
		t.Fatal(err)
	}
	done.Write([]byte("Step 1/3 : FROM scratch\n"))
	done.Close()
	running, err := s.NewBuildLog(ctx, in.Project, sha2)
	if err != nil {
		t.Fatal(err)
	}
	running.Write([]byte("Step 1/3 : FROM busybox\n"))
	if err := running.Flush(); err != nil {
		t.Fatal(err)
	}
	wantEnv, _ := s.Environment(ctx, in.Project)
	wantTL, _ := s.Timeline(ctx, in.Project)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := running.Write([]byte("late\n")); err != nil {
		t.Fatal(err) // buffered; the flush fails
	}
	if err := running.Close(); err == nil {
		t.Error("Close of a writer on a closed store succeeded")
	}

	clk.Advance(time.Minute)
	s, err = Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	gotEnv, _ := s.Environment(ctx, in.Project)
	gotTL, _ := s.Timeline(ctx, in.Project)
	if !reflect.DeepEqual(gotEnv, wantEnv) || !reflect.DeepEqual(gotTL, wantTL) {
		t.Errorf("after reopen:\n%+v\n%+v\nwant\n%+v\n%+v", gotEnv, gotTL, wantEnv, wantTL)
	}
	if _, ok, _ := s.Approval(ctx, in.Repo, in.PR, sha1); !ok {
		t.Error("approval lost")
	}
	if first, _ := s.FirstSeen(ctx, "delivery-1"); first {
		t.Error("delivery forgotten")
	}
	l, err := s.BuildLog(ctx, in.Project, sha1, 0)
	if err != nil || string(l.Data) != "Step 1/3 : FROM scratch\n" || l.Running() || l.Interrupted {
		t.Errorf("finished log = %+v, %v", l, err)
	}
	l, err = s.BuildLog(ctx, in.Project, sha2, 0)
	if err != nil || string(l.Data) != "Step 1/3 : FROM busybox\n" || !l.Interrupted || l.Running() || !l.Finished.Equal(clk.Now()) {
		t.Errorf("unfinished log after reopen = %+v, %v; want interrupted at %v", l, err, clk.Now())
	}
}

func TestOpenLockedFailsFast(t *testing.T) {
	_, path := openTest(t, Options{})
	// bbolt's flock is per open file, so a second Open in this process
	// conflicts just as another process would.
	_, err := Open(path, Options{LockTimeout: 100 * time.Millisecond})
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: err = %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("error %q does not name the file", err)
	}
}

// TestSurvivesSIGKILL runs a child process that writes history and a
// running build log, kills it with SIGKILL, and checks that a new Open sees
// everything it had committed. While the child lives, Open fails with
// ErrLocked.
func TestSurvivesSIGKILL(t *testing.T) {
	if path := os.Getenv("SLIPWAY_STORE_CHILD"); path != "" {
		childWriter(path)
		return
	}
	path := filepath.Join(t.TempDir(), FileName)
	cmd := exec.Command(os.Args[0], "-test.run=^TestSurvivesSIGKILL$")
	cmd.Env = append(os.Environ(), "SLIPWAY_STORE_CHILD="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := bufio.NewScanner(out)
	ready := false
	for lines.Scan() {
		if lines.Text() == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		t.Fatalf("child never got ready: %v", lines.Err())
	}

	if _, err := Open(path, Options{LockTimeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Fatalf("Open while the child holds the file: err = %v, want ErrLocked", err)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	s, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after SIGKILL: %v", err)
	}
	defer s.Close()
	ctx := context.Background()
	env, err := s.Environment(ctx, info(42).Project)
	if err != nil || env.Phase != contract.PhaseBuilding || env.SHA != sha2 {
		t.Errorf("environment after SIGKILL = %+v, %v", env, err)
	}
	tl, _ := s.Timeline(ctx, info(42).Project)
	if len(tl) != 101 {
		t.Errorf("timeline has %d entries, want 101", len(tl))
	}
	if first, _ := s.FirstSeen(ctx, "delivery-99"); first {
		t.Error("delivery recorded by the child forgotten")
	}
	l, err := s.BuildLog(ctx, info(42).Project, sha2, 0)
	if err != nil || !strings.HasPrefix(string(l.Data), "Step 1/2 : FROM scratch\n") || !l.Interrupted {
		t.Errorf("build log after SIGKILL = %q interrupted=%v, %v", l.Data, l.Interrupted, err)
	}
}

// childWriter is the body of the SIGKILL test's child process.
func childWriter(path string) {
	ctx := context.Background()
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	s, err := Open(path, Options{})
	if err != nil {
		fail(err)
	}
	in := info(42)
	if err := s.UpsertEnvironment(ctx, in); err != nil {
		fail(err)
	}
	for i := range 100 {
		if err := s.RecordPhase(ctx, in.Project, PhaseEntry{Phase: contract.PhaseWaiting, SHA: sha1, Detail: fmt.Sprint(i)}); err != nil {
			fail(err)
		}
		if _, err := s.FirstSeen(ctx, fmt.Sprintf("delivery-%d", i)); err != nil {
			fail(err)
		}
	}
	if err := s.RecordPhase(ctx, in.Project, PhaseEntry{Phase: contract.PhaseBuilding, SHA: sha2}); err != nil {
		fail(err)
	}
	w, err := s.NewBuildLog(ctx, in.Project, sha2)
	if err != nil {
		fail(err)
	}
	w.Write([]byte("Step 1/2 : FROM scratch\n"))
	if err := w.Flush(); err != nil {
		fail(err)
	}
	fmt.Println("ready")
	// Keep writing until killed.
	for i := 0; ; i++ {
		fmt.Fprintf(w, "line %d\n", i)
		time.Sleep(time.Millisecond)
	}
}

func TestEnvironmentsRecordedWithTextPrefixesReadAsHeldOrRetried(t *testing.T) {
	for _, tc := range []struct {
		raw         string
		held, retry bool
		detail      string
	}{
		{`{"project":"p","phase":"removed","detail":"held: destroyed by @a"}`, true, false, "destroyed by @a"},
		{`{"project":"p","phase":"failed","detail":"will retry: engine down"}`, false, true, "engine down"},
		{`{"project":"p","phase":"failed","detail":"held: not a removal"}`, false, false, "held: not a removal"},
		{`{"project":"p","phase":"removed","detail":"closed","held":true}`, true, false, "closed"},
	} {
		var e Environment
		if err := json.Unmarshal([]byte(tc.raw), &e); err != nil {
			t.Fatal(err)
		}
		if e.Held != tc.held || e.Retry != tc.retry || e.Detail != tc.detail || e.Project != "p" {
			t.Errorf("%s: held %v retry %v detail %q project %q", tc.raw, e.Held, e.Retry, e.Detail, e.Project)
		}
	}
}
