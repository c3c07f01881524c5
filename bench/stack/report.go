package main

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
)

func numCPU() int { return runtime.NumCPU() }

// Targets from the issue.
const (
	targetUpRatio = 0.8
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
		fmt.Fprintln(tw, "\tslipway\tdocker-compose\tslipway/compose\ttarget")
		row := func(name string, a, b []time.Duration, target string) {
			ma, mb := benchkit.Median(a), benchkit.Median(b)
			fmt.Fprintf(tw, "%s\t%s (%s)\t%s (%s)\t%s\t%s\n", name, benchkit.FmtDur(ma), benchkit.Spread(a), benchkit.FmtDur(mb), benchkit.Spread(b), fmtRatio(ratio(ma, mb)), target)
		}
		row("up (until the command returns)", sl.Ups, co.Ups, fmt.Sprintf("≤ %.2f×", targetUpRatio))
		row("up until web answers 200", sl.Servings, co.Servings, "")
		row("down", sl.Downs, co.Downs, "")
		fmt.Fprintf(tw, "cached build steps\t%s\t%s\t\t\n", intsMedian(sl.Hits), intsMedian(co.Hits))
		fmt.Fprintf(tw, "failed runs\t%d\t%d\t\t\n", sl.Failed, co.Failed)
		tw.Flush()

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
