package main

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"

	"github.com/docker/docker/api/types/events"

	"github.com/slipwayhq/slipway/internal/contract"
)

func TestMedian(t *testing.T) {
	s := time.Second
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{[]time.Duration{3 * s}, 3 * s},
		{[]time.Duration{5 * s, 1 * s, 3 * s}, 3 * s},
		{[]time.Duration{4 * s, 1 * s, 3 * s, 2 * s}, 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := benchkit.Median(tt.in); got != tt.want {
			t.Errorf("benchkit.Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
	in := []time.Duration{3 * s, 1 * s, 2 * s}
	benchkit.Median(in)
	if in[0] != 3*s {
		t.Errorf("median sorted its input in place: %v", in)
	}
}

func TestRatio(t *testing.T) {
	if got := ratio(4*time.Second, 5*time.Second); got != 0.8 {
		t.Errorf("ratio(4s, 5s) = %v, want 0.8", got)
	}
	if got := ratio(0, 5*time.Second); got != 0 {
		t.Errorf("ratio with a missing side = %v, want 0", got)
	}
	if got := fmtRatio(0); got != "-" {
		t.Errorf("fmtRatio(0) = %q", got)
	}
}

func TestMilestoneTimes(t *testing.T) {
	ms := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	marks := []mark{
		{ms(0.9), "image tagged"},
		{ms(1.9), "image tagged"},
		{ms(2.0), "network created"},
		{ms(2.1), "db created"},
		{ms(2.7), "db started"},
		{ms(3.0), "image tagged"}, // a late tag (a tool building while it starts) is not "images built"
		{ms(4.0), "web started"},
		{ms(4.5), "web started"}, // a restart: the first start counts
		{ms(5.0), "up returned"},
	}
	got := milestoneTimes(marks)
	want := map[string]time.Duration{
		"images built": ms(1.9), "network created": ms(2.0), "db created": ms(2.1),
		"db started": ms(2.7), "web started": ms(4.0), "up returned": ms(5.0),
	}
	if len(got) != len(want) {
		t.Errorf("milestoneTimes = %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}

func TestSummarizeSkipsFailedRuns(t *testing.T) {
	results := []runResult{
		{Tool: toolSlipway, Cache: cacheWarm, Up: 2 * time.Second, Serving: time.Second, Down: time.Second, CacheHits: 6},
		{Tool: toolSlipway, Cache: cacheWarm, Err: "up: boom"},
		{Tool: toolSlipway, Cache: cacheCold, Up: 9 * time.Second},
		{Tool: toolCompose, Cache: cacheWarm, Up: 3 * time.Second},
	}
	s := summarize(results, toolSlipway, cacheWarm)
	if len(s.Ups) != 1 || s.Ups[0] != 2*time.Second || s.Failed != 1 || s.Hits[0] != 6 {
		t.Errorf("summarize = %+v", s)
	}
}

func TestDescribe(t *testing.T) {
	sl := &tool{name: toolSlipway, project: "bench-x-pr-1", sep: "-"}
	co := &tool{name: toolCompose, project: "bench-compose-x", sep: "_"}
	container := func(project, service, name string, action events.Action) events.Message {
		return events.Message{Type: events.ContainerEventType, Action: action, Actor: events.Actor{Attributes: map[string]string{
			contract.LabelProject: project, contract.LabelService: service, "name": name,
		}}}
	}
	tests := []struct {
		t    *tool
		m    events.Message
		want string
	}{
		{sl, container("bench-x-pr-1", "web", "bench-x-pr-1-web-1", events.ActionStart), "web started"},
		{sl, container("bench-x-pr-1", "api", "bench-x-pr-1-api-1", events.ActionHealthStatusHealthy), "api healthy"},
		{sl, container("bench-x-pr-1", "migrate", "bench-x-pr-1-migrate-1", events.ActionDie), "migrate exited"},
		// The builder's container for the LABEL step carries the labels too.
		{sl, container("bench-x-pr-1", "web", "eager_turing", events.ActionCreate), ""},
		{sl, container("other-pr-1", "web", "other-pr-1-web-1", events.ActionCreate), ""},
		{co, container("bench-compose-x", "db", "bench-compose-x_db_1", events.ActionCreate), "db created"},
		{co, events.Message{Type: events.NetworkEventType, Action: events.ActionCreate, Actor: events.Actor{Attributes: map[string]string{"name": "bench-compose-x_default"}}}, "network created"},
		{co, events.Message{Type: events.ImageEventType, Action: events.ActionTag, Actor: events.Actor{Attributes: map[string]string{"name": "bench-compose-x_web:latest"}}}, "image tagged"},
		{sl, events.Message{Type: events.ImageEventType, Action: events.ActionTag, Actor: events.Actor{Attributes: map[string]string{"name": "bench-x-pr-1-web:0123456789ab"}}}, "image tagged"},
		{sl, events.Message{Type: events.ImageEventType, Action: events.ActionTag, Actor: events.Actor{Attributes: map[string]string{"name": "slipway-test/busybox:1"}}}, ""},
	}
	for _, tt := range tests {
		if got := tt.t.describe(tt.m); got != tt.want {
			t.Errorf("%s describe(%s %s %v) = %q, want %q", tt.t.name, tt.m.Type, tt.m.Action, tt.m.Actor.Attributes, got, tt.want)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := config{runs: 5, reups: 5, tools: []string{"slipway", "compose"}, caches: []string{"warm", "cold"}, phases: []string{"cycles"},
		cmdTimeout: time.Minute, serveTimeout: time.Minute, maxDuration: time.Hour}
	if err := ok.validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	if strings.Join(ok.caches, ",") != "cold,warm" {
		t.Errorf("cache modes run in order %v, want cold before warm", ok.caches)
	}
	bad := ok
	bad.runs, bad.tools, bad.cmdTimeout = 0, []string{"podman"}, 0
	err := bad.validate()
	if err == nil {
		t.Fatal("validate accepted -runs 0, -tools podman, -cmd-timeout 0")
	}
	for _, want := range []string{"-runs 0", `unknown "podman"`, "-cmd-timeout"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestPrepareFixture(t *testing.T) {
	dst := filepath.Join(t.TempDir(), "shop")
	if err := prepareFixture("../../controller/stack/testdata/shop", dst, "run1"); err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"web", "api"} {
		df, err := os.ReadFile(filepath.Join(dst, svc, "Dockerfile"))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(df), "\n")
		if len(lines) < 3 || !strings.HasPrefix(lines[0], "FROM ") || lines[1] != "LABEL slipway-bench.stack=run1" {
			t.Errorf("%s/Dockerfile does not carry the run's label after its FROM:\n%s", svc, df)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dst, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "ports:") || !strings.Contains(string(raw), "expose:\n      - \"8080\"") {
		t.Errorf("web still publishes a host port, or lost its port:\n%s", raw)
	}
	fi, err := os.Stat(filepath.Join(dst, "web/www/cgi-bin/api"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&0o111 == 0 {
		t.Errorf("cgi-bin/api lost its execute bit: %v", fi.Mode())
	}
	if err := prepareFixture("../../controller/stack/testdata/shop", dst, "run2"); err == nil {
		t.Error("copying over an existing fixture succeeded")
	}
}

func TestPhaseTimes(t *testing.T) {
	s := time.Second
	got := phaseTimes(map[string]time.Duration{"images built": 2 * s, "web started": 5 * s, "up returned": 6 * s})
	want := map[string]time.Duration{
		"build (start → images built)":        2 * s,
		"deploy (images built → web started)": 3 * s,
		"return (web started → up returned)":  1 * s,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if got := phaseTimes(map[string]time.Duration{"up returned": 6 * s}); len(got) != 0 {
		t.Errorf("phases without their milestones = %v, want none", got)
	}
}

func TestBuildSteps(t *testing.T) {
	// Two builds interleaved as slipway prints them: the Dockerfile's steps
	// (all cached), then the label step slipway appends (never cached).
	slipwayWarm := `api | Step 1/2 : FROM sha256:96cac789684025a1d95dbecb5f5ff4a7e8e14b52e3bd54b5042a3c3fdeacca5c
api | Step 2/2 : CMD ["sh", "-c", "exec httpd -f -p 8081 -h /srv"]
api |  ---> Using cache
web | Step 1/3 : FROM sha256:96cac789684025a1d95dbecb5f5ff4a7e8e14b52e3bd54b5042a3c3fdeacca5c
web | Step 2/3 : COPY www /www
web |  ---> Using cache
web | Step 3/3 : RUN echo hi > /www/greeting.txt
api | Step 1/2 : FROM sha256:35b6f3fc766d8c17d3b2d3840d580dc212af0160f47a33093bbc228ad375bb5e
web |  ---> Using cache
api | Step 2/2 : LABEL "com.docker.compose.project"="bench-x-pr-4242" "dev.slipway.sha"="86a6817463d9"
api |  ---> Running in 20d2eb5ce3b8
web | Step 1/2 : FROM sha256:e1d4a033581e6b38379ff00f4e0b5b3a88d80299b1b21cfa8e57d2175e7b888a
web | Step 2/2 : LABEL "com.docker.compose.project"="bench-x-pr-4242" "dev.slipway.sha"="86a6817463d9"
web |  ---> Running in b404a251b271
`
	composeCold := `Step 1/3 : FROM slipway-test/busybox:1
 ---> 96cac7896840
Step 2/3 : COPY www /www
 ---> 1abae3d94f9e
Step 3/3 : RUN echo hi > /www/greeting.txt
 ---> Running in 0c5d1e3e2f11
Step 1/2 : FROM slipway-test/busybox:1
Step 2/2 : CMD ["sh"]
 ---> Using cache
`
	for _, tt := range []struct {
		name             string
		out              string
		cached, uncached int
	}{
		{"slipway, warm", slipwayWarm, 3, 0},
		{"compose, partly cold", composeCold, 1, 2},
		{"no build", "Creating network bench_default\nStarting db ... done\n", 0, 0},
	} {
		cached, uncached := buildSteps(tt.out)
		if cached != tt.cached || uncached != tt.uncached {
			t.Errorf("%s: buildSteps = %d cached, %d built; want %d, %d", tt.name, cached, uncached, tt.cached, tt.uncached)
		}
	}
}

func TestCacheState(t *testing.T) {
	for _, tt := range []struct {
		name             string
		cache            string
		slipway, compose []int
		want             string
	}{
		{"warm, all cached", cacheWarm, []int{0, 0}, []int{0, 0}, "every Dockerfile step of every run came from the cache"},
		{"warm, one run built a step", cacheWarm, []int{0, 1}, []int{0, 0}, "NOT the same in every run: slipway built [0 1]"},
		{"cold, the same every run", cacheCold, []int{4, 4}, []int{5, 5}, "each tool built the same steps in every run"},
		{"cold, one tool's down warmed the other", cacheCold, []int{4, 4}, []int{5, 0}, "NOT the same in every run: docker-compose built [5 0] Dockerfile steps (differs between runs)"},
		{"one tool only", cacheWarm, nil, []int{0}, "every Dockerfile step"},
	} {
		if got := cacheState(tt.cache, tt.slipway, tt.compose); !strings.Contains(got, tt.want) {
			t.Errorf("%s: cacheState = %q, want it to contain %q", tt.name, got, tt.want)
		}
	}
}

func TestVerdict(t *testing.T) {
	for _, tt := range []struct {
		r, target float64
		want      string
	}{
		{0.75, 0.8, "≤ 0.80× met"},
		{0.8, 0.8, "≤ 0.80× met"},
		{0.91, 0.8, "≤ 0.80× NOT met"},
		{1.2, 1.0, "≤ 1.00× NOT met"},
		{0.5, 0, ""},
		{0, 0.8, ""},
	} {
		if got := verdict(tt.r, tt.target); got != tt.want {
			t.Errorf("verdict(%v, %v) = %q, want %q", tt.r, tt.target, got, tt.want)
		}
	}
}

func TestPairedRatios(t *testing.T) {
	s := time.Second
	results := []runResult{
		{Tool: toolSlipway, Cache: cacheWarm, Run: 1, Serving: 2 * s},
		{Tool: toolCompose, Cache: cacheWarm, Run: 1, Serving: 4 * s},
		{Tool: toolCompose, Cache: cacheWarm, Run: 2, Serving: 3 * s}, // a loaded round
		{Tool: toolSlipway, Cache: cacheWarm, Run: 2, Serving: 6 * s},
		{Tool: toolSlipway, Cache: cacheWarm, Run: 3, Serving: s},
		{Tool: toolCompose, Cache: cacheWarm, Run: 3, Err: "up: boom"}, // no pair
		{Tool: toolSlipway, Cache: cacheCold, Run: 1, Serving: 9 * s},
		{Tool: toolCompose, Cache: cacheCold, Run: 1, Serving: 9 * s},
		{Tool: toolSlipway, Cache: cacheWarm, Run: 4, Serving: 3 * s},
		{Tool: toolCompose, Cache: cacheWarm, Run: 4, Serving: 4 * s},
	}
	got := pairedRatios(results, cacheWarm, func(r runResult) time.Duration { return r.Serving })
	if want := []float64{0.5, 2, 0.75}; !slices.Equal(got, want) {
		t.Errorf("pairedRatios = %v, want %v (rounds in order, unpaired rounds left out)", got, want)
	}
	if m := medianRatio(got); m != 0.75 {
		t.Errorf("medianRatio(%v) = %v, want 0.75", got, m)
	}
	if m := medianRatio([]float64{0.5, 1, 0.25, 0.75}); m != 0.625 {
		t.Errorf("medianRatio of four = %v, want 0.625", m)
	}
	if m := medianRatio(nil); m != 0 {
		t.Errorf("medianRatio(nil) = %v", m)
	}
}

func TestParseBuildTimings(t *testing.T) {
	out := strings.Join([]string{
		"web | Step 1/4 : FROM sha256:abc",
		"web | build timings: base=1.2ms context=3ms build=140.5ms inspect=2ms label=25ms verify=1.5ms total=175ms (labels set by image load)",
		"api | build timings: base=1ms context=2ms build=1.1s inspect=2ms label=700ms verify=2ms total=1.9s (labels set by label step)",
		"migrate | same build as api: tagged bench-x-migrate:123456789012 (build timings: tag=4.5ms)",
		"time=2026-12-03 level=INFO msg=\"build timings: not a build log line\"",
		"web | build timings: broken=x",
	}, "\n")
	took, via := parseBuildTimings(out)
	want := map[string]time.Duration{
		"web base": 1200 * time.Microsecond, "web context": 3 * time.Millisecond, "web build": 140500 * time.Microsecond,
		"web inspect": 2 * time.Millisecond, "web label": 25 * time.Millisecond, "web verify": 1500 * time.Microsecond, "web total": 175 * time.Millisecond,
		"api base": time.Millisecond, "api context": 2 * time.Millisecond, "api build": 1100 * time.Millisecond,
		"api inspect": 2 * time.Millisecond, "api label": 700 * time.Millisecond, "api verify": 2 * time.Millisecond, "api total": 1900 * time.Millisecond,
		"migrate tag": 4500 * time.Microsecond,
	}
	if !maps.Equal(took, want) {
		t.Errorf("timings = %v\nwant %v", took, want)
	}
	if !maps.Equal(via, map[string]int{"image load": 1, "label step": 1}) {
		t.Errorf("labelled by = %v", via)
	}
}
