package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
)

// cycles runs the timed up/down cycles: for each cache mode, -runs rounds,
// each tool once per round, the order alternating between rounds.
func (b *bench) cycles(ctx context.Context) ([]runResult, error) {
	var results []runResult
	for _, cache := range b.cfg.caches {
		if cache == cacheWarm {
			for _, t := range b.tools {
				if err := b.warmUp(ctx, t); err != nil {
					return results, err
				}
			}
		}
		for run := 1; run <= b.cfg.runs; run++ {
			order := slices.Clone(b.tools)
			if run%2 == 0 {
				slices.Reverse(order)
			}
			for _, t := range order {
				r := b.cycle(ctx, t, cache, run)
				results = append(results, r)
				if r.Err != "" {
					fmt.Fprintf(b.out, "  %s run %d %-14s FAILED: %s\n", cache, run, t.label, r.Err)
					if ctx.Err() != nil {
						return results, ctx.Err()
					}
					if !b.cfg.keepGoing {
						return results, fmt.Errorf("%s run %d (%s cache) failed (-keep-going records it and goes on)", t.label, run, cache)
					}
					continue
				}
				fmt.Fprintf(b.out, "  %s run %d %-14s up %s  serving %s  down %s  cached steps %d, built %d\n",
					cache, run, t.label, benchkit.FmtDur(r.Up), benchkit.FmtDur(r.Serving), benchkit.FmtDur(r.Down), r.CacheHits, r.Uncached)
				if b.cfg.trace {
					for _, m := range r.Marks {
						fmt.Fprintf(b.out, "      %7.3fs %s\n", m.At.Seconds(), m.What)
					}
				}
			}
		}
		if cache == cacheWarm {
			if err := b.removeAnchors(ctx); err != nil {
				return results, err
			}
			if err := b.removeRunLayers(ctx); err != nil {
				return results, err
			}
		}
	}
	return results, nil
}

// warmUp brings t's project up and down once, untimed, keeping its built
// layers as cache anchors: each tool sends its own build context, so each
// warms its own cache.
func (b *bench) warmUp(ctx context.Context, t *tool) error {
	fmt.Fprintf(b.out, "  warming the build cache for %s\n", t.label)
	sha := newSHA()
	_, out, err := b.command(ctx, t, "warm-"+t.name+"-up", t.up(sha), t.env(sha), nil)
	if err != nil {
		b.settleAndSweep(ctx, t)
		return fmt.Errorf("warm-up up: %w\n%s", err, tail(out, 15))
	}
	n, err := b.anchor(ctx, t, out)
	if err != nil {
		b.sweep(ctx, t)
		return fmt.Errorf("warm-up: %w", err)
	}
	if _, out, err := b.command(ctx, t, "warm-"+t.name+"-down", t.down, t.env(sha), nil); err != nil {
		b.sweep(ctx, t)
		return fmt.Errorf("warm-up down: %w\n%s", err, tail(out, 15))
	}
	if left, err := b.leftovers(ctx, t); err != nil || len(left) > 0 {
		b.sweep(ctx, t)
		return fmt.Errorf("warm-up down of %s left %s %v", t.project, strings.Join(left, "; "), err)
	}
	fmt.Fprintf(b.out, "    kept %d image(s) as cache anchors\n", n)
	return nil
}

// cycle is one timed run of t from a clean state: up (timed, with the
// serving probe and the event timeline), then down (timed separately),
// then a leftover check. Any failure sweeps the project, so the next run
// starts clean again.
func (b *bench) cycle(ctx context.Context, t *tool, cache string, run int) (r runResult) {
	r = runResult{Tool: t.name, Cache: cache, Run: run}
	name := fmt.Sprintf("%s-%s-%d", cache, t.name, run)
	defer func() {
		if r.Err != "" {
			if err := b.settleAndSweep(ctx, t); err != nil {
				r.Err += "; " + err.Error()
			}
		}
	}()
	if left, err := b.leftovers(ctx, t); err != nil || len(left) > 0 {
		r.Err = fmt.Sprintf("not clean before up: %s %v", strings.Join(left, "; "), err)
		return r
	}

	sha := newSHA()
	rec := &recorder{t0: time.Now()}
	evCtx, stopEvents := context.WithCancel(ctx)
	defer stopEvents()
	evDone := b.watchEvents(evCtx, t, rec)
	probeCtx, stopProbe := context.WithDeadline(ctx, rec.t0.Add(b.cfg.serveTimeout))
	defer stopProbe()
	type served struct {
		at  time.Duration
		err error
	}
	servedCh := make(chan served, 1)
	go func() {
		at, err := b.probeServing(probeCtx, t, rec)
		servedCh <- served{at, err}
	}()

	up, out, err := b.command(ctx, t, name+"-up", t.up(sha), t.env(sha), rec)
	r.Up = up
	rec.add(up, "up returned")
	r.CacheHits, r.Uncached = buildSteps(out)
	if t.name == toolSlipway {
		r.BuildTimings, r.LabelledBy = parseBuildTimings(out)
	}
	if err != nil {
		stopProbe()
		r.Err = fmt.Sprintf("up: %v\n%s", err, tail(out, 15))
		return r
	}
	s := <-servedCh
	if s.err != nil {
		r.Err = fmt.Sprintf("after up: %v", s.err)
		return r
	}
	r.Serving = s.at
	rec.add(s.at, "web serving")
	// docker-compose returns before web is healthy: give the health event
	// a moment to arrive, for the breakdown.
	for deadline := time.Now().Add(5 * time.Second); !rec.has("web healthy") && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	stopEvents()
	<-evDone
	r.Marks = rec.marks()

	down, out, err := b.command(ctx, t, name+"-down", t.down, t.env(sha), nil)
	r.Down = down
	if err != nil {
		r.Err = fmt.Sprintf("down: %v\n%s", err, tail(out, 15))
		return r
	}
	if left, err := b.leftovers(ctx, t); err != nil || len(left) > 0 {
		r.Err = fmt.Sprintf("down left %s %v", strings.Join(left, "; "), err)
		return r
	}
	if cache == cacheCold {
		if err := b.removeRunLayers(ctx); err != nil {
			r.Err = fmt.Sprintf("after down: %v", err)
		}
	}
	return r
}

// reups times no-change re-ups: each tool brings the project up once, then
// runs the same up again -reups times; every container must keep its ID.
func (b *bench) reups(ctx context.Context) (map[string][]time.Duration, error) {
	out := map[string][]time.Duration{}
	for _, t := range b.tools {
		ds, err := b.reupTool(ctx, t)
		out[t.name] = ds
		if serr := b.settleAndSweep(ctx, t); serr != nil {
			err = errors.Join(err, serr)
		}
		if err != nil {
			return out, fmt.Errorf("%s no-change re-up: %w", t.label, err)
		}
	}
	return out, nil
}

func (b *bench) reupTool(ctx context.Context, t *tool) ([]time.Duration, error) {
	sha := newSHA()
	if _, out, err := b.command(ctx, t, "reup-"+t.name+"-first", t.up(sha), t.env(sha), nil); err != nil {
		return nil, fmt.Errorf("first up: %w\n%s", err, tail(out, 15))
	}
	before, err := b.containerIDs(ctx, t)
	if err != nil {
		return nil, err
	}
	var ds []time.Duration
	for i := 1; i <= b.cfg.reups; i++ {
		d, out, err := b.command(ctx, t, fmt.Sprintf("reup-%s-%d", t.name, i), t.up(sha), t.env(sha), nil)
		if err != nil {
			return ds, fmt.Errorf("re-up %d: %w\n%s", i, err, tail(out, 15))
		}
		after, err := b.containerIDs(ctx, t)
		if err != nil {
			return ds, err
		}
		if !maps.Equal(before, after) {
			return ds, fmt.Errorf("re-up %d changed the containers: before %v, after %v", i, before, after)
		}
		ds = append(ds, d)
		fmt.Fprintf(b.out, "  no-change re-up %d %-14s %s\n", i, t.label, benchkit.FmtDur(d))
	}
	if _, out, err := b.command(ctx, t, "reup-"+t.name+"-down", t.down, t.env(sha), nil); err != nil {
		return ds, fmt.Errorf("down: %w\n%s", err, tail(out, 15))
	}
	if left, err := b.leftovers(ctx, t); err != nil || len(left) > 0 {
		return ds, fmt.Errorf("down left %s %v", strings.Join(left, "; "), err)
	}
	return ds, nil
}
