package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// quantile returns the q-quantile (0 < q ≤ 1) of ds by the nearest-rank
// method: the smallest value with at least q of the samples at or below
// it. 0 for none.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(q * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// fmtMs prints a duration in milliseconds.
func fmtMs(d time.Duration) string {
	return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
}

// latencies returns the latencies of the samples answered without error.
func latencies(ss []ackSample) []time.Duration {
	var out []time.Duration
	for _, s := range ss {
		if s.Err == "" {
			out = append(out, s.Latency)
		}
	}
	return out
}

// summarize prints a burst's p50/p99/max and its statuses.
func summarize(ss []ackSample) string {
	ls := latencies(ss)
	codes := map[int]int{}
	errs := 0
	for _, s := range ss {
		if s.Err != "" {
			errs++
		} else {
			codes[s.Status]++
		}
	}
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(codes)) {
		parts = append(parts, fmt.Sprintf("%d×%d", codes[c], c))
	}
	if errs > 0 {
		parts = append(parts, fmt.Sprintf("%d errors", errs))
	}
	return fmt.Sprintf("p50 %s  p99 %s  max %s  (%s)", fmtMs(quantile(ls, .5)), fmtMs(quantile(ls, .99)), fmtMs(quantile(ls, 1)), strings.Join(parts, " "))
}

// histogram is a Prometheus histogram's cumulative bucket counts by upper
// bound (+Inf included).
type histogram map[float64]float64

// parseHistogram reads the buckets of metric whose labels include
// selector from Prometheus text exposition lines.
func parseHistogram(lines []string, metric, selector string) histogram {
	h := histogram{}
	prefix := metric + "_bucket{"
	for _, l := range lines {
		rest, ok := strings.CutPrefix(l, prefix)
		if !ok {
			continue
		}
		labels, value, ok := strings.Cut(rest, "} ")
		if !ok || !strings.Contains(labels, selector) {
			continue
		}
		i := strings.Index(labels, `le="`)
		if i < 0 {
			continue
		}
		le, _, _ := strings.Cut(labels[i+4:], `"`)
		bound, err := strconv.ParseFloat(le, 64)
		if err != nil {
			continue
		}
		v, err := strconv.ParseFloat(strings.Fields(value)[0], 64)
		if err != nil {
			continue
		}
		h[bound] = v
	}
	return h
}

// MarshalJSON writes the buckets keyed by their bound in seconds ("+Inf"
// for the last).
func (h histogram) MarshalJSON() ([]byte, error) {
	out := make(map[string]float64, len(h))
	for b, v := range h {
		out[strconv.FormatFloat(b, 'g', -1, 64)] = v
	}
	return json.Marshal(out)
}

// minus returns h - old, bucket by bucket.
func (h histogram) minus(old histogram) histogram {
	out := histogram{}
	for b, v := range h {
		out[b] = v - old[b]
	}
	return out
}

// count is the number of observations.
func (h histogram) count() float64 { return h[math.Inf(1)] }

// quantileBound returns the upper bound of the bucket holding the
// q-quantile (nearest rank), +Inf when beyond the last finite bound, and 0
// for an empty histogram.
func (h histogram) quantileBound(q float64) float64 {
	n := h.count()
	if n == 0 {
		return 0
	}
	rank := math.Ceil(q * n)
	for _, b := range slices.Sorted(maps.Keys(h)) {
		if h[b] >= rank {
			return b
		}
	}
	return math.Inf(1)
}

// fmtBound prints a bucket bound in milliseconds ("≤ 5ms").
func fmtBound(b float64) string {
	switch {
	case b == 0:
		return "-"
	case math.IsInf(b, 1):
		return "> last bucket"
	}
	return "≤ " + strconv.FormatFloat(b*1000, 'f', -1, 64) + "ms"
}

func numCPU() int { return runtime.NumCPU() }
