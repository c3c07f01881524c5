package main

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
)

// mark is one timestamped thing seen during a timed up, relative to the
// moment the tool was started.
type mark struct {
	At   time.Duration `json:"at"`
	What string        `json:"what"`
}

// runResult is one timed cycle of one tool: up, until serving, down.
type runResult struct {
	Tool    string        `json:"tool"`
	Cache   string        `json:"cache"`
	Run     int           `json:"run"`
	Up      time.Duration `json:"up"`
	Serving time.Duration `json:"serving"`
	Down    time.Duration `json:"down"`
	// CacheHits counts the build steps the builder took from its cache
	// ("Using cache" in the build output).
	CacheHits int `json:"cache_hits"`
	// Uncached counts the Dockerfile steps that were built, not taken from
	// the cache (see buildSteps): the run's cache state. Warm runs of both
	// tools must have 0.
	Uncached int `json:"uncached_steps"`
	// BuildTimings are what each step of slipway's builds took, from its
	// build log's timing lines: "<service> <step>" → duration.
	BuildTimings map[string]time.Duration `json:"build_timings,omitempty"`
	// LabelledBy counts how slipway's built images got their labels
	// ("image load", "label step").
	LabelledBy map[string]int `json:"labelled_by,omitempty"`
	// Marks are Docker events of the project (and, with -trace, the tool's
	// output lines) during the up.
	Marks []mark `json:"marks,omitempty"`
	Err   string `json:"error,omitempty"`
}

// ratio is a/b, or 0 when either is missing.
func ratio(a, b time.Duration) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func fmtRatio(r float64) string {
	if r == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f×", r)
}

// milestones are the points of an up that the breakdown table shows, in
// order. Each is found in a run's marks by milestoneOf.
var milestones = []string{
	"images built",
	"network created",
	"db started",
	"migrate started",
	"migrate exited",
	"api started",
	"api healthy",
	"web started",
	"web healthy",
	"up returned",
	"web serving",
}

// milestoneTimes finds each milestone in marks: "images built" is the last
// image tag before the first service container is created (a tool that
// builds while others start would otherwise count late tags); every other
// milestone is its first occurrence.
func milestoneTimes(marks []mark) map[string]time.Duration {
	out := map[string]time.Duration{}
	firstCreate := time.Duration(-1)
	for _, m := range marks {
		if strings.HasSuffix(m.What, " created") && m.What != "network created" && (firstCreate < 0 || m.At < firstCreate) {
			firstCreate = m.At
		}
	}
	for _, m := range marks {
		if m.What == "image tagged" {
			if (firstCreate < 0 || m.At <= firstCreate) && m.At > out["images built"] {
				out["images built"] = m.At
			}
			continue
		}
		if _, seen := out[m.What]; !seen {
			out[m.What] = m.At
		}
	}
	return out
}

// phases are spans of an up computed per run from its milestones, so that
// their medians can be compared (a difference of medians is not the median
// of differences).
var phases = []struct{ Name, From, To string }{
	{"build (start → images built)", "", "images built"},
	{"deploy (images built → web started)", "images built", "web started"},
	{"return (web started → up returned)", "web started", "up returned"},
}

// phaseTimes computes the phases of one run; a phase whose ends are
// missing is left out.
func phaseTimes(ms map[string]time.Duration) map[string]time.Duration {
	out := map[string]time.Duration{}
	for _, p := range phases {
		to, ok := ms[p.To]
		if !ok {
			continue
		}
		from := time.Duration(0)
		if p.From != "" {
			if from, ok = ms[p.From]; !ok {
				continue
			}
		}
		out[p.Name] = to - from
	}
	return out
}

// summary is the figures of one tool in one cache mode.
type summary struct {
	Ups, Servings, Downs []time.Duration
	Hits                 []int
	Uncached             []int
	Milestones           map[string][]time.Duration
	Phases               map[string][]time.Duration
	Failed               int
}

// summarize collects the successful runs of tool in cache mode.
func summarize(results []runResult, tool, cache string) summary {
	s := summary{Milestones: map[string][]time.Duration{}, Phases: map[string][]time.Duration{}}
	for _, r := range results {
		if r.Tool != tool || r.Cache != cache {
			continue
		}
		if r.Err != "" {
			s.Failed++
			continue
		}
		s.Ups = append(s.Ups, r.Up)
		s.Servings = append(s.Servings, r.Serving)
		if r.Down > 0 {
			s.Downs = append(s.Downs, r.Down)
		}
		s.Hits = append(s.Hits, r.CacheHits)
		s.Uncached = append(s.Uncached, r.Uncached)
		ms := milestoneTimes(r.Marks)
		for k, v := range ms {
			s.Milestones[k] = append(s.Milestones[k], v)
		}
		for k, v := range phaseTimes(ms) {
			s.Phases[k] = append(s.Phases[k], v)
		}
	}
	return s
}

// slipwayLabelStep is how the step Slipway appends to every image it
// builds (its labels, with the SHA) shows in the build output. It is never
// cached (each push has a new SHA) and is not a step of the Dockerfile.
const slipwayLabelStep = `: LABEL "com.docker.compose.project"=`

// buildSteps reads the classic builder's output (interleaved lines of
// parallel builds are fine) and counts the Dockerfile steps taken from the
// cache and those built. FROM steps and Slipway's own label step are not
// counted.
func buildSteps(out string) (cached, uncached int) {
	steps := 0
	for _, line := range strings.Split(out, "\n") {
		_, rest, ok := strings.Cut(line, "Step ")
		if !ok {
			if strings.Contains(line, "---> Using cache") {
				cached++
			}
			continue
		}
		num, instr, ok := strings.Cut(rest, " : ")
		if !ok || !strings.Contains(num, "/") {
			continue
		}
		if strings.HasPrefix(strings.ToUpper(instr), "FROM ") || strings.Contains(line, slipwayLabelStep) {
			continue
		}
		steps++
	}
	return cached, max(steps-cached, 0)
}

// pairedRatios are slipway/docker-compose per round of a cache mode, for
// the rounds in which both tools succeeded: each round runs the two back
// to back, so a ratio within a round is not skewed by load that changes
// between rounds on a shared machine.
func pairedRatios(results []runResult, cache string, of func(runResult) time.Duration) []float64 {
	byRun := map[int]map[string]time.Duration{}
	for _, r := range results {
		if r.Cache != cache || r.Err != "" {
			continue
		}
		if byRun[r.Run] == nil {
			byRun[r.Run] = map[string]time.Duration{}
		}
		byRun[r.Run][r.Tool] = of(r)
	}
	var out []float64
	for _, run := range slices.Sorted(maps.Keys(byRun)) {
		if x := ratio(byRun[run][toolSlipway], byRun[run][toolCompose]); x > 0 {
			out = append(out, x)
		}
	}
	return out
}

// medianRatio is the median of xs (0 for none), through benchkit.Median
// with the ratios in fixed point (nanounits).
func medianRatio(xs []float64) float64 {
	fixed := make([]time.Duration, len(xs))
	for i, x := range xs {
		fixed[i] = time.Duration(math.Round(x * 1e9))
	}
	return float64(benchkit.Median(fixed)) / 1e9
}

// buildTimingSteps are the steps of slipway's build timing lines, in the
// order of a build (tag is a service that shares another's build).
var buildTimingSteps = []string{"base", "network", "context", "build", "inspect", "label", "verify", "tag", "total"}

// parseBuildTimings reads slipway's build log timing lines,
//
//	<service> | build timings: base=1.2ms context=3ms ... (labels set by image load)
//	<service> | same build as <leader>: tagged <image> (build timings: tag=2ms)
//
// into "<service> <step>" → duration, and counts how the images got their
// labels.
func parseBuildTimings(out string) (map[string]time.Duration, map[string]int) {
	took := map[string]time.Duration{}
	via := map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		service, rest, ok := strings.Cut(line, " | ")
		if !ok {
			continue
		}
		_, kvs, ok := strings.Cut(rest, "build timings: ")
		if !ok {
			continue
		}
		if i := strings.Index(kvs, "(labels set by "); i >= 0 {
			via[strings.TrimSuffix(kvs[i+len("(labels set by "):], ")")]++
			kvs = kvs[:i]
		}
		for _, kv := range strings.Fields(strings.TrimSuffix(kvs, ")")) {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				continue
			}
			if d, err := time.ParseDuration(v); err == nil {
				took[strings.TrimSpace(service)+" "+k] = d
			}
		}
	}
	return took, via
}
