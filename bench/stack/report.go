package main

import (
	"fmt"
	"io"
	"maps"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
)

func numCPU() int { return runtime.NumCPU() }

// Targets from the issue (15).
const (
	// targetServingRatio: from the command's start until web answers 200,
	// slipway/docker-compose.
	targetServingRatio = 0.8
	// targetUpRatio: until the command returns, slipway (every service
	// ready) / docker-compose (containers started).
	targetUpRatio = 1.0
	targetReup    = 500 * time.Millisecond
)

// report prints, per cache mode, the medians of both tools, their ratio and
// the breakdown of an up; then the no-change re-ups.
func report(w io.Writer, cfg config, results []runResult, reups map[string][]time.Duration) {
	hasTool := func(name string) bool { return slices.Contains(cfg.tools, name) }
	for _, cache := range cfg.caches {
		sl, co := summarize(results, toolSlipway, cache), summarize(results, toolCompose, cache)
		if len(sl.Ups)+len(co.Ups)+sl.Failed+co.Failed == 0 {
			continue
		}
		what := "every Dockerfile step in the layer cache"
		if cache == cacheCold {
			what = "only the base image present"
		}
		fmt.Fprintf(w, "== %s cache (%s), medians (min–max) of %d run(s) ==\n", cache, what, cfg.runs)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\tslipway\tdocker-compose\tratio of medians\tper round: median (min–max)\ttarget (per round)\t")
		row := func(name string, a, b []time.Duration, of func(runResult) time.Duration, target float64) {
			ma, mb := benchkit.Median(a), benchkit.Median(b)
			paired := pairedRatios(results, cache, of)
			mp := medianRatio(paired)
			spread := "-"
			if len(paired) > 0 {
				spread = fmt.Sprintf("%s (%.2f–%.2f)", fmtRatio(mp), slices.Min(paired), slices.Max(paired))
			}
			fmt.Fprintf(tw, "%s\t%s (%s)\t%s (%s)\t%s\t%s\t%s\n", name, benchkit.FmtDur(ma), benchkit.Spread(a), benchkit.FmtDur(mb), benchkit.Spread(b),
				fmtRatio(ratio(ma, mb)), spread, verdict(mp, target))
		}
		row("up until web answers 200", sl.Servings, co.Servings, func(r runResult) time.Duration { return r.Serving }, targetServingRatio)
		row("up until the command returns", sl.Ups, co.Ups, func(r runResult) time.Duration { return r.Up }, targetUpRatio)
		row("down", sl.Downs, co.Downs, func(r runResult) time.Duration { return r.Down }, 0)
		fmt.Fprintf(tw, "cached build steps\t%s\t%s\t\t\t\t\n", intsMedian(sl.Hits), intsMedian(co.Hits))
		fmt.Fprintf(tw, "Dockerfile steps built\t%s\t%s\t\t\t\t\n", intsMedian(sl.Uncached), intsMedian(co.Uncached))
		fmt.Fprintf(tw, "failed runs\t%d\t%d\t\t\t\t\n", sl.Failed, co.Failed)
		tw.Flush()
		fmt.Fprintln(w, "(slipway up returns once every service is ready; docker-compose up -d once its containers are started)")
		fmt.Fprintln(w, cacheState(cache, sl.Uncached, co.Uncached))

		fmt.Fprintln(w, "\nbreakdown of an up (median seconds since the command started, from Docker's events):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\tslipway\tdocker-compose\tslipway − compose")
		for _, m := range milestones {
			a, b := sl.Milestones[m], co.Milestones[m]
			if len(a)+len(b) == 0 {
				continue
			}
			diff := "-"
			if len(a) > 0 && len(b) > 0 {
				diff = fmt.Sprintf("%+.2fs", (benchkit.Median(a) - benchkit.Median(b)).Seconds())
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m, benchkit.FmtDur(benchkit.Median(a)), benchkit.FmtDur(benchkit.Median(b)), diff)
		}
		tw.Flush()

		fmt.Fprintln(w, "\nphases of an up (median of each run's span):")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "\tslipway\tdocker-compose\tslipway − compose")
		for _, p := range phases {
			a, b := sl.Phases[p.Name], co.Phases[p.Name]
			diff := "-"
			if len(a) > 0 && len(b) > 0 {
				diff = fmt.Sprintf("%+.2fs", (benchkit.Median(a) - benchkit.Median(b)).Seconds())
			}
			fmt.Fprintf(tw, "%s\t%s (%s)\t%s (%s)\t%s\n", p.Name, benchkit.FmtDur(benchkit.Median(a)), benchkit.Spread(a), benchkit.FmtDur(benchkit.Median(b)), benchkit.Spread(b), diff)
		}
		tw.Flush()
		reportBuildTimings(w, results, cache)
		fmt.Fprintln(w)
	}
	if len(reups) > 0 {
		fmt.Fprintln(w, "== no-change re-up (same SHA, nothing changed), median (min–max) ==")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		if hasTool(toolSlipway) {
			fmt.Fprintf(tw, "slipway up\t%s (%s)\ttarget < %s\n", benchkit.FmtDur(benchkit.Median(reups[toolSlipway])), benchkit.Spread(reups[toolSlipway]), benchkit.FmtDur(targetReup))
		}
		if hasTool(toolCompose) {
			fmt.Fprintf(tw, "docker-compose up -d --build\t%s (%s)\tfor reference\n", benchkit.FmtDur(benchkit.Median(reups[toolCompose])), benchkit.Spread(reups[toolCompose]))
		}
		tw.Flush()
	}
}

func intsMedian(xs []int) string {
	if len(xs) == 0 {
		return "-"
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return fmt.Sprint(s[len(s)/2])
}

// verdict says whether a ratio meets its target (at most target); "" where
// there is no target or no ratio.
func verdict(r, target float64) string {
	switch {
	case target == 0 || r == 0:
		return ""
	case r <= target:
		return fmt.Sprintf("≤ %.2f× met", target)
	default:
		return fmt.Sprintf("≤ %.2f× NOT met", target)
	}
}

// cacheState says whether every run of a cache mode started from the
// cache state the mode promises, from the Dockerfile steps each run built:
// none at all in warm mode, and in cold mode the same number in every run
// of a tool (layers one tool's down leaves, or removes, can make the
// other's next run warmer or colder).
func cacheState(cache string, slipway, compose []int) string {
	var bad []string
	for _, tc := range []struct {
		name  string
		built []int
	}{{"slipway", slipway}, {"docker-compose", compose}} {
		if len(tc.built) == 0 {
			continue
		}
		lo, hi := slices.Min(tc.built), slices.Max(tc.built)
		switch {
		case cache == cacheWarm && hi > 0:
			bad = append(bad, fmt.Sprintf("%s built %v Dockerfile steps (want 0 in every run)", tc.name, tc.built))
		case lo != hi:
			bad = append(bad, fmt.Sprintf("%s built %v Dockerfile steps (differs between runs)", tc.name, tc.built))
		}
	}
	if len(bad) > 0 {
		return "cache state: NOT the same in every run: " + strings.Join(bad, "; ")
	}
	if cache == cacheWarm {
		return "cache state: every Dockerfile step of every run came from the cache"
	}
	return "cache state: each tool built the same steps in every run"
}

// reportBuildTimings prints, from slipway's build log, the median of what
// each step of each service's build took in the runs of a cache mode, and
// how the images got their labels.
func reportBuildTimings(w io.Writer, results []runResult, cache string) {
	took := map[string][]time.Duration{}
	via := map[string]int{}
	services := map[string]bool{}
	for _, r := range results {
		if r.Tool != toolSlipway || r.Cache != cache || r.Err != "" {
			continue
		}
		for k, d := range r.BuildTimings {
			took[k] = append(took[k], d)
			service, _, _ := strings.Cut(k, " ")
			services[service] = true
		}
		for k, n := range r.LabelledBy {
			via[k] += n
		}
	}
	if len(took) == 0 {
		return
	}
	names := slices.Sorted(maps.Keys(services))
	fmt.Fprintln(w, "\nslipway's build steps (median per service, from its build log; context is part of build):")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "\t%s\n", strings.Join(names, "\t"))
	for _, step := range buildTimingSteps {
		cells := make([]string, len(names))
		any := false
		for i, svc := range names {
			cells[i] = "-"
			if ds := took[svc+" "+step]; len(ds) > 0 {
				cells[i] = fmt.Sprintf("%.1f ms", float64(benchkit.Median(ds))/float64(time.Millisecond))
				any = true
			}
		}
		if any {
			fmt.Fprintf(tw, "%s\t%s\n", step, strings.Join(cells, "\t"))
		}
	}
	tw.Flush()
	var vias []string
	for _, k := range slices.Sorted(maps.Keys(via)) {
		vias = append(vias, fmt.Sprintf("%s ×%d", k, via[k]))
	}
	fmt.Fprintf(w, "labels set by: %s\n", strings.Join(vias, ", "))
}
