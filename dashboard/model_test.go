package dashboard

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func stopped(e stack.Environment) stack.Environment {
	e.Services[0].Containers[0].State = "exited"
	e.Services[0].Containers[0].ExitCode = 137
	return e
}

func degraded(e stack.Environment) stack.Environment {
	e.Services = append(e.Services, stack.ServiceState{Service: "api", Containers: []stack.ContainerState{{Name: e.Project + "-api-1", ID: "api-" + e.Project, State: "exited", ExitCode: 1}}})
	return e
}

func TestMergePhases(t *testing.T) {
	hist := func(project string, phase store.Phase) store.Environment {
		return store.Environment{EnvironmentInfo: store.EnvironmentInfo{Project: project, Repo: "acme/shop", PR: 1}, Phase: phase, SHA: shaB, Created: t0, Updated: t0}
	}
	live := func(project string) stack.Environment { return runningEnv(project, "acme/shop", 1, shaA) }
	removed := hist("p", contract.PhaseRemoved)
	removed.Removed = t0

	tests := []struct {
		name      string
		hist      []store.Environment
		live      []stack.Environment
		liveKnown bool
		phase     string
		state     string
		tracked   bool
		sha       string
	}{
		{"ready and running", []store.Environment{hist("p", contract.PhaseReady)}, []stack.Environment{live("p")}, true, "ready", StateRunning, true, shaA},
		{"ready but stopped is sleeping", []store.Environment{hist("p", contract.PhaseReady)}, []stack.Environment{stopped(live("p"))}, true, "sleeping", StateStopped, true, shaA},
		{"sleeping but woken by a request is ready", []store.Environment{hist("p", contract.PhaseSleeping)}, []stack.Environment{live("p")}, true, "ready", StateRunning, true, shaA},
		{"ready with an exited service is degraded", []store.Environment{hist("p", contract.PhaseReady)}, []stack.Environment{degraded(live("p"))}, true, PhaseDegraded, StateDegraded, true, shaA},
		{"ready but gone from the engine stays ready, absent", []store.Environment{hist("p", contract.PhaseReady)}, nil, true, "ready", StateAbsent, true, shaB},
		{"building keeps its phase while the old SHA runs", []store.Environment{hist("p", contract.PhaseBuilding)}, []stack.Environment{live("p")}, true, "building", StateRunning, true, shaA},
		{"failed keeps its phase", []store.Environment{hist("p", contract.PhaseFailed)}, []stack.Environment{live("p")}, true, "failed", StateRunning, true, shaA},
		{"removed", []store.Environment{removed}, nil, true, "removed", StateAbsent, true, shaB},
		{"local running", nil, []stack.Environment{live("p")}, true, "ready", StateRunning, false, shaA},
		{"local stopped", nil, []stack.Environment{stopped(live("p"))}, true, "sleeping", StateStopped, false, shaA},
		{"local degraded", nil, []stack.Environment{degraded(live("p"))}, true, PhaseDegraded, StateDegraded, false, shaA},
		{"engine unreadable: no absent verdict", []store.Environment{hist("p", contract.PhaseReady)}, nil, false, "ready", "", true, shaB},
		{"upserted without a phase yet", []store.Environment{hist("p", "")}, nil, true, "queued", StateAbsent, true, shaB},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := merge(mergeInput{now: t0, history: tt.hist, live: tt.live, liveKnown: tt.liveKnown, url: func(h string) string { return "https://" + h }})
			if len(got) != 1 {
				t.Fatalf("got %d environments, want 1: %+v", len(got), got)
			}
			e := got[0]
			if e.Phase != tt.phase || e.State != tt.state || e.Tracked != tt.tracked || e.SHA != tt.sha {
				t.Errorf("phase %q state %q tracked %v sha %.7s, want %q %q %v %.7s", e.Phase, e.State, e.Tracked, e.SHA, tt.phase, tt.state, tt.tracked, tt.sha)
			}
		})
	}
}

func TestMergeJoinsSources(t *testing.T) {
	cpu := 12.5
	h := store.Environment{
		EnvironmentInfo: store.EnvironmentInfo{Project: "acme-shop-pr-7", Repo: "acme/shop", PR: 7, Title: "Faster checkout", Author: "ada", HeadRepo: "ada/shop", LastPush: t0.Add(-2 * time.Hour)},
		Phase:           contract.PhaseReady, SHA: shaA, Detail: "2 services", PhaseAt: t0.Add(-time.Hour),
		Created: t0.Add(-48 * time.Hour), Updated: t0.Add(-time.Hour),
		LastError: &store.Failure{Step: "build", Message: "boom"},
		Keep:      store.Keep{Until: t0.Add(30 * 24 * time.Hour)},
	}
	l := runningEnv("acme-shop-pr-7", "acme/shop", 7, shaA)
	l.Created = t0.Add(-time.Hour)
	l.Routes = append(l.Routes, stack.ObservedRoute{Host: "api-pr-7.preview.test", Service: "api", Port: 80})
	l.Services = append(l.Services, stack.ServiceState{Service: "worker", Containers: []stack.ContainerState{
		{Name: "w-1", ID: "w1", State: "running"}, {Name: "w-2", ID: "w2", State: "exited", ExitCode: 0},
	}})
	got := merge(mergeInput{
		now: t0, history: []store.Environment{h}, live: []stack.Environment{l}, liveKnown: true,
		requests: map[string]time.Time{"acme-shop-pr-7": t0.Add(-time.Minute), "other": t0},
		usage: map[string]Usage{
			"id-acme-shop-pr-7": {CPUPercent: &cpu, MemoryBytes: 100 << 20, MemoryLimitBytes: 1 << 30, SampledAt: t0},
			"w1":                {MemoryBytes: 20 << 20, MemoryLimitBytes: 1 << 30, SampledAt: t0.Add(-time.Second)},
			"w2":                {MemoryBytes: 999 << 20}, // exited: not counted
		},
		url: func(h string) string { return "https://" + h },
	})
	if len(got) != 1 {
		t.Fatalf("got %d environments", len(got))
	}
	e := got[0]
	checks := []struct {
		name      string
		got, want any
	}{
		{"title", e.Title, "Faster checkout"},
		{"author", e.Author, "ada"},
		{"fork", e.HeadRepo, "ada/shop"},
		{"url is the primary's", e.URL, "https://pr-7.preview.test"},
		{"routes", len(e.Routes), 2},
		{"created is the store's (older)", e.Created, t0.Add(-48 * time.Hour)},
		{"last request", e.LastRequest, t0.Add(-time.Minute)},
		{"memory sums running containers", e.Usage.MemoryBytes, uint64(120 << 20)},
		{"cpu sums known samples", *e.Usage.CPUPercent, 12.5},
		{"sampled at is the oldest", e.Usage.SampledAt, t0.Add(-time.Second)},
		{"container usage", e.Services[0].Containers[0].Usage.MemoryBytes, uint64(100 << 20)},
		{"exited container has no usage", e.Services[1].Containers[1].Usage == nil, true},
		{"keep beyond the ttl wins", e.Expires, t0.Add(30 * 24 * time.Hour)},
		{"last error", e.LastError.Message, "boom"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

// The expires column follows the TTL the controller applies: the
// operator's repos[].ttl, else the .slipway.yml ttl of the last deploy,
// else the default; from the store's times, for environments the
// controller tracks and has not removed.
func TestMergeExpiry(t *testing.T) {
	week := 7 * 24 * time.Hour
	d := func(v time.Duration) *config.Duration { c := config.Duration(v); return &c }
	tracked := func(repo string, fileTTL *config.Duration, keep store.Keep) store.Environment {
		return store.Environment{
			EnvironmentInfo: store.EnvironmentInfo{Project: "p", Repo: repo, PR: 1, LastPush: t0.Add(-time.Hour)},
			Phase:           contract.PhaseReady, Created: t0.Add(-48 * time.Hour), FileTTL: fileTTL, Keep: keep,
		}
	}
	operator := func(repo string) *config.Duration {
		if repo == "acme/ops" {
			return d(3 * time.Hour)
		}
		return nil
	}
	removed := tracked("acme/shop", nil, store.Keep{})
	removed.Removed = t0
	noPush := tracked("acme/shop", nil, store.Keep{})
	noPush.LastPush = time.Time{}
	for _, tt := range []struct {
		name    string
		hist    []store.Environment
		repoTTL func(string) *config.Duration
		want    time.Time
	}{
		{"the default", []store.Environment{tracked("acme/shop", nil, store.Keep{})}, operator, t0.Add(-time.Hour + week)},
		{"the .slipway.yml ttl of the last deploy", []store.Environment{tracked("acme/shop", d(2*time.Hour), store.Keep{})}, operator, t0.Add(time.Hour)},
		{"no RepoTTL option: the .slipway.yml ttl", []store.Environment{tracked("acme/shop", d(2*time.Hour), store.Keep{})}, nil, t0.Add(time.Hour)},
		{"the operator's ttl wins", []store.Environment{tracked("acme/ops", d(2*time.Hour), store.Keep{})}, operator, t0.Add(2 * time.Hour)},
		{".slipway.yml ttl 0: never", []store.Environment{tracked("acme/shop", d(0), store.Keep{})}, operator, time.Time{}},
		{"kept until beyond the ttl", []store.Environment{tracked("acme/shop", d(2*time.Hour), store.Keep{Until: t0.Add(week)})}, operator, t0.Add(week)},
		{"kept forever", []store.Environment{tracked("acme/shop", d(2*time.Hour), store.Keep{Forever: true})}, operator, time.Time{}},
		{"from the store's creation without a push", []store.Environment{noPush}, operator, t0.Add(-48*time.Hour + week)},
		{"removed", []store.Environment{removed}, operator, time.Time{}},
		{"not tracked by the controller", nil, operator, time.Time{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			live := runningEnv("p", "acme/shop", 1, shaA)
			live.Created = t0.Add(-100 * time.Hour) // never what the controller counts from
			got := merge(mergeInput{now: t0, history: tt.hist, live: []stack.Environment{live}, liveKnown: true, url: func(h string) string { return h }, repoTTL: tt.repoTTL})
			if len(got) != 1 {
				t.Fatalf("got %d environments", len(got))
			}
			if !got[0].Expires.Equal(tt.want) {
				t.Errorf("expires %v, want %v", got[0].Expires, tt.want)
			}
		})
	}
}

func TestMergeOrder(t *testing.T) {
	hist := []store.Environment{
		{EnvironmentInfo: store.EnvironmentInfo{Project: "old"}, Phase: contract.PhaseReady, Created: t0.Add(-3 * time.Hour), Updated: t0.Add(-3 * time.Hour)},
		{EnvironmentInfo: store.EnvironmentInfo{Project: "new"}, Phase: contract.PhaseBuilding, Created: t0.Add(-5 * time.Hour), Updated: t0},
	}
	local := runningEnv("local-x-pr-1", "local/x", 1, shaA)
	local.Created = t0.Add(-time.Hour)
	got := merge(mergeInput{now: t0, history: hist, live: []stack.Environment{local}, liveKnown: true, url: func(h string) string { return h }})
	var order []string
	for _, e := range got {
		order = append(order, e.Project)
	}
	if strings.Join(order, ",") != "new,local-x-pr-1,old" {
		t.Errorf("order %v, want most recently active first", order)
	}
}

func TestFilter(t *testing.T) {
	envs := []Environment{
		{Project: "acme-shop-pr-1", Repo: "acme/shop", PR: 1, Title: "Add cart", Author: "ada", SHA: "abcdef1234", Phase: "ready"},
		{Project: "acme-shop-pr-2", Repo: "acme/shop", PR: 2, Title: "Fix tax", Author: "bob", Phase: "failed"},
		{Project: "acme-api-pr-1", Repo: "acme/api", PR: 1, Title: "Cart API", Author: "ada", Phase: "ready"},
		{Project: "acme-api-pr-9", Repo: "acme/api", PR: 9, Phase: "removed"},
	}
	for _, tt := range []struct {
		query string
		want  string
	}{
		{"", "acme-shop-pr-1,acme-shop-pr-2,acme-api-pr-1"},
		{"repo=acme/shop", "acme-shop-pr-1,acme-shop-pr-2"},
		{"repo=ACME/API", "acme-api-pr-1"},
		{"phase=ready", "acme-shop-pr-1,acme-api-pr-1"},
		{"phase=removed", "acme-api-pr-9"},
		{"phase=ready&repo=acme/api", "acme-api-pr-1"},
		{"q=cart", "acme-shop-pr-1,acme-api-pr-1"},
		{"q=%232", "acme-shop-pr-2"},
		{"q=2", "acme-shop-pr-2"},
		{"q=abcd", "acme-shop-pr-1"},
		{"q=BOB", "acme-shop-pr-2"},
		{"q=nothing", ""},
	} {
		q, _ := url.ParseQuery(tt.query)
		var got []string
		for _, e := range apply(envs, FilterFromQuery(q)) {
			got = append(got, e.Project)
		}
		if strings.Join(got, ",") != tt.want {
			t.Errorf("%q: got %v, want %s", tt.query, got, tt.want)
		}
	}
	s := summarize(envs, Filter{Repo: "acme/shop"})
	if s.Total != 2 || s.ByPhase["ready"] != 1 || s.ByPhase["failed"] != 1 || s.ByPhase["removed"] != 0 {
		t.Errorf("summary under repo filter: %+v", s)
	}
	if strings.Join(s.Repos, ",") != "acme/api,acme/shop" {
		t.Errorf("repos %v: every repo stays selectable", s.Repos)
	}
	if s := summarize(envs, Filter{Phase: "failed"}); s.ByPhase["ready"] != 2 || s.ByPhase["removed"] != 1 || s.Total != 3 {
		t.Errorf("phase counts must ignore the phase filter: %+v", s)
	}
}

func TestPhasesIncludeDegraded(t *testing.T) {
	got := strings.Join(Phases(), ",")
	if !strings.Contains(got, "ready,degraded,failed") || !strings.HasPrefix(got, "queued") {
		t.Errorf("Phases() = %s", got)
	}
}

func TestCPUPercent(t *testing.T) {
	cpu := func(total, system uint64, online uint32) container.CPUStats {
		return container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: total}, SystemUsage: system, OnlineCPUs: online}
	}
	for _, tt := range []struct {
		name     string
		pre, cur container.CPUStats
		want     float64
		ok       bool
	}{
		{"half a core of two", cpu(1000, 10000, 2), cpu(2000, 14000, 2), 50, true},
		{"two cores busy", cpu(0, 1000, 2), cpu(1000, 2000, 2), 200, true},
		{"no previous sample", container.CPUStats{}, cpu(2000, 14000, 2), 0, false},
		{"restarted container", cpu(5000, 10000, 2), cpu(100, 14000, 2), 0, false},
		{"no time passed", cpu(1000, 10000, 2), cpu(1000, 10000, 2), 0, false},
		{"online from percpu", cpu(0, 1000, 0), container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 500, PercpuUsage: []uint64{1, 2, 3, 4}}, SystemUsage: 2000}, 200, true},
	} {
		got, ok := cpuPercent(tt.pre, tt.cur)
		if ok != tt.ok || got != tt.want {
			t.Errorf("%s: got %v %v, want %v %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
}

func TestMemoryUsage(t *testing.T) {
	for _, tt := range []struct {
		name string
		m    container.MemoryStats
		want uint64
	}{
		{"cgroup v1 excludes inactive file", container.MemoryStats{Usage: 1000, Stats: map[string]uint64{"total_inactive_file": 300}}, 700},
		{"cgroup v2 excludes inactive file", container.MemoryStats{Usage: 1000, Stats: map[string]uint64{"inactive_file": 400}}, 600},
		{"no stats", container.MemoryStats{Usage: 1000}, 1000},
		{"inactive larger than usage", container.MemoryStats{Usage: 100, Stats: map[string]uint64{"inactive_file": 400}}, 100},
	} {
		if got := memoryUsage(tt.m); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestParseLogLine(t *testing.T) {
	for _, tt := range []struct {
		in               string
		container, stamp string
		msg              string
	}{
		{"web-1 | 2025-03-01T12:00:00.123456789Z tick 1", "web-1", "2025-03-01T12:00:00.123456789Z", "tick 1"},
		{"web-1 | no timestamp here", "web-1", "", "no timestamp here"},
		{"web-1 | 2025-03-01T12:00:00Z ", "web-1", "2025-03-01T12:00:00Z", ""},
		{"web-1 | 2025-03-01T12:00:00Z a | b\r", "web-1", "2025-03-01T12:00:00Z", "a | b"},
		{"garbage", "", "", "garbage"},
	} {
		got := parseLogLine(tt.in)
		if got.Container != tt.container || got.Time != tt.stamp || got.Message != tt.msg {
			t.Errorf("%q: got %+v", tt.in, got)
		}
		if (tt.stamp != "") != (got.ts != 0) {
			t.Errorf("%q: ts %d", tt.in, got.ts)
		}
	}
}

func TestCursor(t *testing.T) {
	c := cursor{"web-1": 1700000000000000001, "api-1": 5}
	s := c.String()
	if s != "api-1=5,web-1=1700000000000000001" {
		t.Errorf("String() = %s", s)
	}
	back := parseCursor(s)
	if len(back) != 2 || back["web-1"] != c["web-1"] || back["api-1"] != 5 {
		t.Errorf("round trip: %v", back)
	}
	for _, bad := range []string{"", "x", "web-1=abc", "=5", "a b=1", strings.Repeat("a", maxCursorLen+1)} {
		if got := parseCursor(bad); got != nil {
			t.Errorf("parseCursor(%.20q) = %v, want nil", bad, got)
		}
	}
}

func TestParseTail(t *testing.T) {
	for _, tt := range []struct{ in, def, want string }{
		{"", "all", "all"}, {"", "200", "200"}, {"all", "200", "all"}, {"50", "all", "50"}, {"007", "all", "7"},
	} {
		if got, err := parseTail(tt.in, tt.def); err != nil || got != tt.want {
			t.Errorf("parseTail(%q, %q) = %q, %v", tt.in, tt.def, got, err)
		}
	}
	for _, bad := range []string{"-1", "x", "1e3", "99999999"} {
		if _, err := parseTail(bad, "all"); err == nil {
			t.Errorf("parseTail(%q) accepted", bad)
		}
	}
}

func TestFormatting(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{formatBytes(512), "512 B"},
		{formatBytes(1536), "1.5 KiB"},
		{formatBytes(200 << 20), "200 MiB"},
		{formatBytes(3 << 30), "3.0 GiB"},
		{formatPercent(0.01), "0%"},
		{formatPercent(3.14159), "3.1%"},
		{formatPercent(123.4), "123%"},
		{humanDuration(2 * time.Second), "2s"},
		{humanDuration(42 * time.Second), "42s"},
		{humanDuration(5 * time.Minute), "5m"},
		{humanDuration(30 * time.Hour), "30h"},
		{humanDuration(-30 * time.Hour), "30h"},
		{humanDuration(80 * time.Hour), "3d"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// A failure the controller retries and a removal that stands until the
// next push say so on the page.
func TestRetryAndHeldAreShown(t *testing.T) {
	st := openStore(t, nil)
	info := store.EnvironmentInfo{Project: "acme-shop-pr-5", Repo: "acme/shop", PR: 5}
	track(t, st, info,
		store.PhaseEntry{Phase: contract.PhaseFailed, SHA: shaA, Detail: "engine down", Retry: true, Failure: &store.Failure{Step: "deploy", Message: "engine down"}},
		store.PhaseEntry{Phase: contract.PhaseRemoved, SHA: shaA, Detail: "destroyed", Held: true})
	_, ts := newTestServer(t, Options{Engine: &fakeEngine{}, History: st, Token: testToken})
	req, _ := http.NewRequest("GET", ts.URL+"/environments/"+info.Project, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	for _, want := range []string{"will retry", "stands until the next push or a redeploy"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not say %q", want)
		}
	}
}
