package main

import (
	"math"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
	"github.com/slipwayhq/slipway/internal/contract"

	"github.com/docker/docker/api/types/events"

	"github.com/slipwayhq/slipway/controller/store"
)

func ms(n ...int) []time.Duration {
	out := make([]time.Duration, len(n))
	for i, v := range n {
		out[i] = time.Duration(v) * time.Millisecond
	}
	return out
}

func TestQuantileIsNearestRank(t *testing.T) {
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // unsorted on purpose: 100..1
	}
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		q    float64
		want time.Duration
	}{
		{"none", nil, .99, 0},
		{"one", ms(7), .5, 7 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), .5, 50 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), .99, 99 * time.Millisecond},
		{"max", ms(hundred...), 1, 100 * time.Millisecond},
		{"p99 of 200 is the 198th", ms(append(hundred, hundred...)...), .99, 99 * time.Millisecond},
		{"p50 of 3", ms(30, 10, 20), .5, 20 * time.Millisecond},
	} {
		if got := quantile(tc.ds, tc.q); got != tc.want {
			t.Errorf("%s: quantile(%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		ds   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(5), 5 * time.Millisecond},
		{ms(9, 1, 5), 5 * time.Millisecond},
		{ms(4, 1, 2, 3), 2500 * time.Microsecond},
	} {
		if got := benchkit.Median(tc.ds); got != tc.want {
			t.Errorf("benchkit.Median(%v) = %v, want %v", tc.ds, got, tc.want)
		}
	}
}

func TestParseHistogramSelectsTheSeriesAndSubtracts(t *testing.T) {
	lines := []string{
		`# HELP slipway_webhook_handling_seconds Time from receiving...`,
		`# TYPE slipway_webhook_handling_seconds histogram`,
		`slipway_webhook_handling_seconds_bucket{event="other",le="0.001"} 99`,
		`slipway_webhook_handling_seconds_bucket{event="pull_request",le="0.001"} 10`,
		`slipway_webhook_handling_seconds_bucket{event="pull_request",le="0.005"} 15`,
		`slipway_webhook_handling_seconds_bucket{event="pull_request",le="0.02"} 18`,
		`slipway_webhook_handling_seconds_bucket{event="pull_request",le="+Inf"} 20`,
		`slipway_webhook_handling_seconds_sum{event="pull_request"} 0.5`,
		`slipway_webhook_handling_seconds_count{event="pull_request"} 20`,
		`slipway_other_bucket{event="pull_request",le="0.001"} 1000`,
	}
	h := parseHistogram(lines, "slipway_webhook_handling_seconds", `event="pull_request"`)
	want := histogram{0.001: 10, 0.005: 15, 0.02: 18, math.Inf(1): 20}
	if len(h) != len(want) {
		t.Fatalf("parsed %v, want %v", h, want)
	}
	for b, v := range want {
		if h[b] != v {
			t.Errorf("bucket %v = %v, want %v", b, h[b], v)
		}
	}
	d := h.minus(histogram{0.001: 10, 0.005: 10, 0.02: 10, math.Inf(1): 10})
	if d.count() != 10 || d[0.001] != 0 || d[0.005] != 5 {
		t.Errorf("delta %v: want count 10, 0 at 1ms, 5 at 5ms", d)
	}
	for _, tc := range []struct {
		q    float64
		want float64
	}{{.5, 0.005}, {.8, 0.02}, {.99, math.Inf(1)}} {
		if got := d.quantileBound(tc.q); got != tc.want {
			t.Errorf("quantileBound(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
	if b, err := d.MarshalJSON(); err != nil || string(b) != `{"+Inf":10,"0.001":0,"0.005":5,"0.02":8}` {
		t.Errorf("JSON %s, %v", b, err)
	}
	if got := (histogram{}).quantileBound(.5); got != 0 {
		t.Errorf("empty histogram: %v, want 0", got)
	}
}

func TestEventsBelongToTheirProjectOnly(t *testing.T) {
	const p = "bench-loopab-pr-1"
	for _, tc := range []struct {
		name string
		e    dockerEvent
		want bool
	}{
		{"container by label", dockerEvent{Type: events.ContainerEventType, Project: p}, true},
		{"container of pr-10", dockerEvent{Type: events.ContainerEventType, Project: "bench-loopab-pr-10"}, false},
		{"network", dockerEvent{Type: events.NetworkEventType, Name: p + "_default"}, true},
		{"network of pr-10", dockerEvent{Type: events.NetworkEventType, Name: "bench-loopab-pr-10_default"}, false},
		{"image", dockerEvent{Type: events.ImageEventType, Name: p + "-web:0123456789ab"}, true},
		{"image of pr-10", dockerEvent{Type: events.ImageEventType, Name: "bench-loopab-pr-10-web:0123456789ab"}, false},
	} {
		if got := tc.e.belongsTo(p); got != tc.want {
			t.Errorf("%s: belongsTo = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestEventMarksSkipBuilderContainersAndRepeats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	const p = "bench-loopab-pr-1"
	evs := []dockerEvent{
		{At: t0.Add(100 * time.Millisecond), Type: events.ContainerEventType, Action: events.ActionCreate, Project: p, Service: "web", Name: "0f3a9c2b1d4e"},
		{At: t0.Add(200 * time.Millisecond), Type: events.ImageEventType, Action: events.ActionTag, Name: p + "-web:abc"},
		{At: t0.Add(300 * time.Millisecond), Type: events.ContainerEventType, Action: events.ActionCreate, Project: p, Service: "web", Name: p + "-web-1"},
		{At: t0.Add(400 * time.Millisecond), Type: events.ContainerEventType, Action: events.ActionHealthStatusHealthy, Project: p, Service: "web", Name: p + "-web-1"},
		{At: t0.Add(500 * time.Millisecond), Type: events.ContainerEventType, Action: events.ActionHealthStatusHealthy, Project: p, Service: "web", Name: p + "-web-1"},
	}
	got := eventMarks(evs, t0)
	want := []mark{{200 * time.Millisecond, "image tagged"}, {300 * time.Millisecond, "web created"}, {400 * time.Millisecond, "web healthy"}}
	if len(got) != len(want) {
		t.Fatalf("marks %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("mark %d = %v, want %v", i, got[i], want[i])
		}
	}
}

func TestPhaseMarksTakeTheFirstOfEachPhaseInTheWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tl := []store.PhaseEntry{
		{Phase: contract.PhaseReady, At: t0.Add(-time.Second)}, // an earlier deploy
		{Phase: contract.PhaseWaiting, At: t0.Add(time.Second)},
		{Phase: contract.PhaseBuilding, At: t0.Add(2 * time.Second)},
		{Phase: contract.PhaseWaiting, At: t0.Add(3 * time.Second)},
		{Phase: contract.PhaseRemoving, At: t0.Add(4 * time.Second)}, // not asked for
		{Phase: contract.PhaseReady, At: t0.Add(9 * time.Second)},    // after the window
	}
	got := phaseMarks(tl, t0, t0.Add(5*time.Second), openPhases)
	want := []mark{{time.Second, "history: waiting"}, {2 * time.Second, "history: building"}}
	if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("marks %v, want %v", got, want)
	}
}

func TestTextOfStripsTags(t *testing.T) {
	got := textOf("<html><h1>Deploy failed</h1>\n<p>step <b>build</b>: boom</p></html>")
	if got != "Deploy failed step build : boom" {
		t.Errorf("textOf = %q", got)
	}
}

func TestServeEnvDropsInheritedSlipwayVariables(t *testing.T) {
	got := serveEnv([]string{"PATH=/bin", "SLIPWAY_DOMAIN=x", "HOME=/root"}, []string{"SLIPWAY_LIMITS_BUILDS=3"})
	want := []string{"PATH=/bin", "HOME=/root", "SLIPWAY_LIMITS_BUILDS=3"}
	if len(got) != len(want) {
		t.Fatalf("env %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("env %v, want %v", got, want)
		}
	}
}

func TestNumbersAsN(t *testing.T) {
	for in, want := range map[string]string{
		"/repos/bench/loop1a2b/pulls/12":                               "/repos/bench/loop1a2b/pulls/N",
		"/repos/o/r/statuses/0123456789abcdef0123456789abcdef01234567": "/repos/o/r/statuses/N",
		"/repos/o/r/deployments/1001/statuses":                         "/repos/o/r/deployments/N/statuses",
		"/repos/o/r/issues/comments/77":                                "/repos/o/r/issues/comments/N",
		"/repos/o/face/pulls":                                          "/repos/o/face/pulls",
	} {
		if got := numbersAsN(in); got != want {
			t.Errorf("numbersAsN(%q) = %q, want %q", in, got, want)
		}
	}
}
