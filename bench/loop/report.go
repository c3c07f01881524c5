package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
	"github.com/slipwayhq/slipway/internal/text"
)

// Targets from issue 4.
const (
	targetAckP99    = 20 * time.Millisecond
	targetWarmLive  = 5 * time.Second
	targetCleanTime = 3 * time.Second
)

// report prints the targets table, then the breakdowns.
func report(w io.Writer, cfg config, res *results) {
	fmt.Fprintln(w, "\n== Targets (issue 4) ==")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tfigure\ttarget\tresult")
	if cfg.has(partAck) {
		all := burstLatencies(res.Bursts)
		fmt.Fprintf(tw, "webhook ack p99, %d deliveries in %d bursts of %d, builds running\t%s (p50 %s, max %s)\t< %s\t%s\n",
			len(all), len(res.Bursts), cfg.burst, fmtMs(quantile(all, .99)), fmtMs(quantile(all, .5)), fmtMs(quantile(all, 1)),
			fmtMs(targetAckP99), verdict(len(all) > 0, quantile(all, .99) < targetAckP99))
		if floor := floorLatencies(res.Bursts); len(floor) > 0 {
			fmt.Fprintf(tw, "  reference: the same bursts to a bare 202 handler (the machine's floor)\t%s (p50 %s, max %s)\t\t-\n",
				fmtMs(quantile(floor, .99)), fmtMs(quantile(floor, .5)), fmtMs(quantile(floor, 1)))
		}
		if p := res.Paced; p != nil {
			ls := latencies(p.Samples)
			fmt.Fprintf(tw, "webhook ack p99, %d deliveries one at a time (every %s), builds running\t%s (p50 %s, max %s)\t< %s\t%s\n",
				len(ls), p.Interval, fmtMs(quantile(ls, .99)), fmtMs(quantile(ls, .5)), fmtMs(quantile(ls, 1)),
				fmtMs(targetAckP99), verdict(len(ls) > 0, quantile(ls, .99) < targetAckP99))
		}
	}
	if cfg.has(partOpen) {
		cold, warm := liveTimes(res.Open, cacheCold), liveTimes(res.Open, cacheWarm)
		fmt.Fprintf(tw, "open-to-live, warm cache (median of %d; min–max %s s)\t%s\t< %s\t%s\n",
			len(warm), benchkit.Spread(warm), benchkit.FmtDur(benchkit.Median(warm)), benchkit.FmtDur(targetWarmLive), verdict(len(warm) > 0, benchkit.Median(warm) < targetWarmLive)+maxNote(warm, targetWarmLive))
		fmt.Fprintf(tw, "open-to-live, cold cache (median of %d; min–max %s s)\t%s\t(none)\t-\n", len(cold), benchkit.Spread(cold), benchkit.FmtDur(benchkit.Median(cold)))
		cleans := cleanTimes(res.Open)
		fmt.Fprintf(tw, "close-to-clean (median of %d; min–max %s s)\t%s\t< %s\t%s\n",
			len(cleans), benchkit.Spread(cleans), benchkit.FmtDur(benchkit.Median(cleans)), benchkit.FmtDur(targetCleanTime), verdict(len(cleans) > 0, benchkit.Median(cleans) < targetCleanTime)+maxNote(cleans, targetCleanTime))
	}
	if cfg.has(partWake) {
		hold := wakeTimes(res.Wake, wakeHold)
		fmt.Fprintf(tw, "wake: sleeping shop, first request to its page (median of %d; min–max %s s)\t%s\t≤ %s\t%s\n",
			len(hold), benchkit.Spread(hold), benchkit.FmtDur(benchkit.Median(hold)), benchkit.FmtDur(targetWake), verdict(len(hold) > 0, benchkit.Median(hold) <= targetWake))
		for _, ref := range []struct{ mode, what string }{
			{wakeReload, "wake_timeout 0, the waiting page reloaded"},
			{wakeBaseline, "the -wake-baseline binary"},
		} {
			ds := wakeTimes(res.Wake, ref.mode)
			if len(ds) == 0 {
				continue
			}
			ratio := "-"
			if m := benchkit.Median(ds); m > 0 && len(hold) > 0 {
				ratio = fmt.Sprintf("%.2f×", benchkit.Median(hold).Seconds()/m.Seconds())
			}
			fmt.Fprintf(tw, "  reference: %s (median of %d; min–max %s s; held/this %s)\t%s\t\t-\n",
				ref.what, len(ds), benchkit.Spread(ds), ratio, benchkit.FmtDur(benchkit.Median(ds)))
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "Debounce: serve's controller waits until a PR's events have been quiet for 1s (its default; serve has no setting for it) before it builds, so every open-to-live includes about 1s of debounce.")
	if cfg.has(partOpen) {
		for _, c := range []string{cacheWarm, cacheCold} {
			q, live := markTimes(res.Open, c, "history: queued"), liveTimes(res.Open, c)
			if len(q) > 0 && len(live) > 0 {
				fmt.Fprintf(w, "  %s: %s of the %s median passes before the history shows the PR queued (debounce, then reading the PR from GitHub).\n",
					c, benchkit.FmtDur(benchkit.Median(q)), benchkit.FmtDur(benchkit.Median(live)))
			}
		}
	}

	if cfg.has(partOpen) && len(res.Open) > 0 {
		fmt.Fprintln(w, "\n== Open-to-live breakdown: median time since the opened delivery at which each point was first seen ==")
		breakdown(w, res.Open, func(r *openRun) []mark { return r.OpenMarks }, []string{cacheCold, cacheWarm})
		fmt.Fprintf(w, "GitHub API calls made between the opened delivery and the first 200 (median): cold %s, warm %s\n",
			medianInt(res.Open, cacheCold), medianInt(res.Open, cacheWarm))
		fmt.Fprintln(w, "\n== Close-to-clean breakdown: median time since the closed delivery ==")
		breakdown(w, res.Open, func(r *openRun) []mark { return r.CleanMarks }, []string{cacheCold, cacheWarm})
		if res.HistoryErr != "" {
			fmt.Fprintf(w, "(history phases missing: %s)\n", res.HistoryErr)
		}
	}

	if cfg.has(partAck) && len(res.Bursts) > 0 {
		fmt.Fprintln(w, "\n== Webhook acknowledgement, per burst (client: request to response, fresh connection each) ==")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "burst\tbuilding\tdeliveries\tp50\tp99\tmax\tall answered in\tserver p50\tserver p99\tfloor p50\tfloor p99\tengine NetworkList")
		for _, br := range res.Bursts {
			ls, fl := latencies(br.Samples), latencies(br.Floor)
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", br.Burst, br.Building, len(br.Samples),
				fmtMs(quantile(ls, .5)), fmtMs(quantile(ls, .99)), fmtMs(quantile(ls, 1)), fmtMs(br.Wall),
				fmtBound(br.Server.quantileBound(.5)), fmtBound(br.Server.quantileBound(.99)),
				fmtMs(quantile(fl, .5)), fmtMs(quantile(fl, .99)), fmtMs(br.NetworkList))
		}
		if c := res.Closing; c != nil {
			ls := latencies(c.Samples)
			fmt.Fprintf(tw, "closing\t-\t%d\t%s\t%s\t%s\t%s\t-\t-\t-\t-\t-\n", len(c.Samples), fmtMs(quantile(ls, .5)), fmtMs(quantile(ls, .99)), fmtMs(quantile(ls, 1)), fmtMs(c.Wall))
		}
		tw.Flush()
		fmt.Fprintln(w, "server p50/p99: bucket bounds of serve's slipway_webhook_handling_seconds over the burst (the handler alone: no connection set-up, HTTP parsing or control-surface guard).")
		fmt.Fprintln(w, "floor: the same burst, same client, just before, to a handler in the benchmark process that only answers 202.")
		fmt.Fprintln(w, "engine NetworkList: what serve's control-surface guard asks the engine every 5 s, under its lock, in the request path; timed at the burst.")
		if p := res.Paced; p != nil {
			ls := latencies(p.Samples)
			fmt.Fprintf(w, "\nPaced, one at a time every %s: p50 %s  p99 %s  max %s; server p50 %s, p99 %s; slowest: %s\n", p.Interval,
				fmtMs(quantile(ls, .5)), fmtMs(quantile(ls, .99)), fmtMs(quantile(ls, 1)),
				fmtBound(p.Server.quantileBound(.5)), fmtBound(p.Server.quantileBound(.99)), slowest(p.Samples, 8))
		}
		fmt.Fprintln(w, "\nBy kind, all bursts:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "kind\tcount\tp50\tp99\tmax\tstatuses")
		for _, kind := range []string{kindSync, kindOpened, kindDupBurst, kindDupOld} {
			var ss []ackSample
			for _, br := range res.Bursts {
				for _, s := range br.Samples {
					if s.Kind == kind {
						ss = append(ss, s)
					}
				}
			}
			ls := latencies(ss)
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", kind, len(ss), fmtMs(quantile(ls, .5)), fmtMs(quantile(ls, .99)), fmtMs(quantile(ls, 1)), statuses(ss))
		}
		tw.Flush()
		fmt.Fprintln(w, "\nClient-side latency against when the request started in its burst (all bursts): queueing in the benchmark's own goroutines and the accept queue shows here.")
		startBuckets(w, res.Bursts)
	}

	if n := len(res.ServeProblems); n > 0 {
		fmt.Fprintf(w, "\nserve logged %d warning(s)/error(s); the first ones:\n", n)
		for _, p := range res.ServeProblems[:min(n, 8)] {
			fmt.Fprintf(w, "  %s\n", text.FirstLine(p, 300))
		}
	}
}

func verdict(have, ok bool) string {
	switch {
	case !have:
		return "no data"
	case ok:
		return "PASS"
	}
	return "FAIL"
}

// maxNote warns when the median passes but the slowest run does not.
func maxNote(ds []time.Duration, target time.Duration) string {
	if len(ds) > 0 && benchkit.Median(ds) < target && slices.Max(ds) >= target {
		return " (slowest run over)"
	}
	return ""
}

func liveTimes(runs []*openRun, cache string) []time.Duration {
	var out []time.Duration
	for _, r := range runs {
		if r.Cache == cache && r.Err == "" && r.Live > 0 {
			out = append(out, r.Live)
		}
	}
	return out
}

// markTimes returns when each successful run of cache first showed what.
func markTimes(runs []*openRun, cache, what string) []time.Duration {
	var out []time.Duration
	for _, r := range runs {
		if r.Cache != cache || r.Err != "" {
			continue
		}
		for _, m := range r.OpenMarks {
			if m.What == what {
				out = append(out, m.At)
				break
			}
		}
	}
	return out
}

func cleanTimes(runs []*openRun) []time.Duration {
	var out []time.Duration
	for _, r := range runs {
		if r.Cache != cacheAnchor && r.Err == "" && r.Clean > 0 {
			out = append(out, r.Clean)
		}
	}
	return out
}

func medianInt(runs []*openRun, cache string) string {
	var ns []time.Duration
	for _, r := range runs {
		if r.Cache == cache && r.Err == "" {
			ns = append(ns, time.Duration(r.GitHubCalls))
		}
	}
	if len(ns) == 0 {
		return "-"
	}
	return fmt.Sprint(int64(benchkit.Median(ns)))
}

func floorLatencies(bs []*burstResult) []time.Duration {
	var out []time.Duration
	for _, b := range bs {
		out = append(out, latencies(b.Floor)...)
	}
	return out
}

// slowest lists the n largest latencies with their position in the run.
func slowest(ss []ackSample, n int) string {
	idx := make([]int, len(ss))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return int(ss[b].Latency - ss[a].Latency) })
	var parts []string
	for _, i := range idx[:min(n, len(idx))] {
		parts = append(parts, fmt.Sprintf("#%d %s", i+1, fmtMs(ss[i].Latency)))
	}
	return strings.Join(parts, ", ")
}

func burstLatencies(bs []*burstResult) []time.Duration {
	var out []time.Duration
	for _, b := range bs {
		out = append(out, latencies(b.Samples)...)
	}
	return out
}

// breakdown prints, per point of the runs' timelines, the median time at
// which it was first seen, per cache mode, ordered by the first mode's
// medians.
func breakdown(w io.Writer, runs []*openRun, marksOf func(*openRun) []mark, caches []string) {
	at := map[string]map[string][]time.Duration{} // cache → what → times
	for _, c := range caches {
		at[c] = map[string][]time.Duration{}
	}
	count := map[string]int{}
	for _, r := range runs {
		if r.Err != "" || at[r.Cache] == nil {
			continue
		}
		count[r.Cache]++
		for _, m := range marksOf(r) {
			at[r.Cache][m.What] = append(at[r.Cache][m.What], m.At)
		}
	}
	whats := map[string]time.Duration{}
	for _, c := range caches {
		for what, ds := range at[c] {
			if d, ok := whats[what]; !ok || benchkit.Median(ds) < d {
				whats[what] = benchkit.Median(ds)
			}
		}
	}
	order := slices.SortedFunc(maps.Keys(whats), func(a, b string) int { return int(whats[a] - whats[b]) })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	header := "point\t"
	for _, c := range caches {
		header += fmt.Sprintf("%s (n=%d)\tseen in\t", c, count[c])
	}
	fmt.Fprintln(tw, header)
	for _, what := range order {
		line := what + "\t"
		for _, c := range caches {
			ds := at[c][what]
			if len(ds) == 0 {
				line += "-\t\t"
				continue
			}
			line += fmt.Sprintf("%.3fs\t%d\t", benchkit.Median(ds).Seconds(), len(ds))
		}
		fmt.Fprintln(tw, line)
	}
	tw.Flush()
}

func statuses(ss []ackSample) string {
	codes := map[string]int{}
	for _, s := range ss {
		if s.Err != "" {
			codes["error"]++
		} else {
			codes[fmt.Sprint(s.Status)]++
		}
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(codes)) {
		parts = append(parts, fmt.Sprintf("%d×%s", codes[k], k))
	}
	return strings.Join(parts, " ")
}

// startBuckets prints latency quantiles by when requests started in their
// burst (the goroutines start at once, but 2 cores serve them in turn).
func startBuckets(w io.Writer, bs []*burstResult) {
	edges := []time.Duration{time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond, time.Duration(math.MaxInt64)}
	names := []string{"started < 1ms", "1–5ms", "5–20ms", "≥ 20ms"}
	groups := make([][]time.Duration, len(edges))
	for _, b := range bs {
		for _, s := range b.Samples {
			if s.Err != "" {
				continue
			}
			for i, e := range edges {
				if s.Start < e {
					groups[i] = append(groups[i], s.Latency)
					break
				}
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "request started\tcount\tp50\tp99\tmax")
	for i, g := range groups {
		if len(g) == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", names[i], len(g), fmtMs(quantile(g, .5)), fmtMs(quantile(g, .99)), fmtMs(quantile(g, 1)))
	}
	tw.Flush()
}

func writeJSON(path string, res *results) error {
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
