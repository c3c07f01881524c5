package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/text"
)

// Wake modes: how serve answers a request for a sleeping preview.
const (
	// wakeHold: serve as configured by default (wake_timeout 30s): the
	// request is held until the preview answers.
	wakeHold = "hold"
	// wakeReload: serve with wake_timeout 0, the old behaviour: the waiting
	// page at once, which the browser reloads every few seconds.
	wakeReload = "reload"
	// wakeBaseline: another slipway binary (-wake-baseline), e.g. built
	// from main before requests were held and wakes were sped up.
	wakeBaseline = "baseline"
)

// shopFixture is the wake fixture: bench/stack's shop (web behind a
// healthcheck every 1 s, depending on a healthy api, which waits for a
// one-off migrate job and a db).
const shopFixture = "controller/stack/testdata/shop"

// dashboardToken lets the benchmark put the preview to sleep through
// serve's API.
const dashboardToken = "bench-wake-token"

// wakeRun is one wake of the sleeping shop, as a browser sees it.
type wakeRun struct {
	Mode string `json:"mode"`
	Run  int    `json:"run"`
	// Page is from the first request to the shop's real page (200).
	Page time.Duration `json:"page"`
	// Requests is how many requests the client sent (it follows the
	// waiting page's reloads).
	Requests int `json:"requests"`
	// Marks are the answers the client got and Docker's events, from the
	// first request on.
	Marks []mark `json:"marks"`
	Err   string `json:"error,omitempty"`
}

// wake measures waking a sleeping shop: its pull request is opened and
// served once, then, -wake-runs times per mode, put to sleep through the
// dashboard API and woken by a browser-like client's first request. The
// modes alternate, their order rotating each round; serve is restarted
// over the same state whenever the mode changes (reload: wake_timeout 0,
// the behaviour before requests were held; baseline: another binary).
func (b *bench) wake(ctx context.Context, res *results) error {
	files, err := shopFiles(filepath.Join(b.cfg.root, shopFixture), b.runID)
	if err != nil {
		return err
	}
	fmt.Printf("wake: the shop fixture (%s: web → healthy api → migrate, db; healthchecks every 1s), %d runs per mode %v\n", shopFixture, b.cfg.wakeRuns, b.cfg.wakeModes)
	r := &openRun{Cache: "wake"}
	if err := b.open(ctx, r, files, "PR="); err != nil {
		return fmt.Errorf("open the shop: %w", err)
	}
	defer func() {
		if err := b.closeAndClean(context.WithoutCancel(ctx), r); err != nil {
			fmt.Println("  close the shop:", err)
		}
	}()
	page := fmt.Sprintf("PR=%d SHA=", r.PR)
	var errs []error
	current := wakeHold // what serve runs now
	modes := b.cfg.wakeModes
	for i := 1; i <= b.cfg.wakeRuns && ctx.Err() == nil; i++ {
		for k := range modes {
			mode := modes[(k+i-1)%len(modes)]
			if mode != current {
				if err := b.serveAs(ctx, mode); err != nil {
					return errors.Join(append(errs, err)...)
				}
				current = mode
			}
			w := &wakeRun{Mode: mode, Run: i}
			err := b.sleepPreview(ctx, r.Project)
			if err == nil {
				err = sleep(ctx, b.cfg.settleBetween)
			}
			if err == nil {
				err = b.wakeOnce(ctx, w, r.PR, r.Project, page)
			}
			if err != nil {
				w.Err = err.Error()
				errs = append(errs, fmt.Errorf("%s run %d: %w", mode, i, err))
			}
			res.Wake = append(res.Wake, w)
			b.printWake(w)
			if ctx.Err() != nil {
				return errors.Join(errs...)
			}
		}
	}
	if current != wakeHold {
		// The shop is closed by this binary's serve, as it was opened.
		if err := b.serveAs(ctx, wakeHold); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// serveAs restarts serve for mode.
func (b *bench) serveAs(ctx context.Context, mode string) error {
	switch mode {
	case wakeReload:
		return b.restartServe(ctx, b.bin, "SLIPWAY_WAKE_TIMEOUT=0")
	case wakeBaseline:
		return b.restartServe(ctx, b.cfg.wakeBaseline)
	}
	return b.restartServe(ctx, b.bin)
}

// shopFiles reads the fixture into pull request files, each Dockerfile
// labelled with the run (see benchLabel) right after its FROM.
func shopFiles(dir, runID string) (githubfake.Files, error) {
	files := githubfake.Files{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		s := string(b)
		if filepath.Base(rel) == "Dockerfile" {
			first, rest, _ := strings.Cut(s, "\n")
			s = first + fmt.Sprintf("\nLABEL %s=%s\n", benchLabel, runID) + rest
		}
		files[filepath.ToSlash(rel)] = s
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the wake fixture: %w", err)
	}
	return files, nil
}

// sleepPreview puts project to sleep through serve's API and waits until
// serve says it sleeps and none of its containers runs.
func (b *bench) sleepPreview(ctx context.Context, project string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+b.serve.addr+"/api/v1/environments/"+project+"/actions/sleep", nil)
	req.Header.Set("Authorization", "Bearer "+dashboardToken)
	resp, err := b.preview.Do(req)
	if err != nil {
		return fmt.Errorf("sleep action: %w", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted && resp.StatusCode != http.StatusOK {
		return fmt.Errorf("sleep action: %d %s", resp.StatusCode, strings.TrimSpace(string(body)))
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.liveTimeout)
	defer cancel()
	tick := time.NewTicker(b.cfg.pollInterval)
	defer tick.Stop()
	last := ""
	for {
		phase, err := b.phaseOf(ctx, project)
		running := -1
		if err == nil {
			running, err = b.runningContainers(ctx, project)
		}
		if err == nil && phase == "sleeping" && running == 0 {
			return nil
		}
		last = fmt.Sprintf("phase %q, %d running, %v", phase, running, err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not asleep (last: %s): %w", project, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// phaseOf is the environment's phase as serve's API shows it.
func (b *bench) phaseOf(ctx context.Context, project string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.serve.addr+"/api/v1/environments/"+project, nil)
	req.Header.Set("Authorization", "Bearer "+dashboardToken)
	resp, err := b.preview.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var env struct {
		Phase string `json:"phase"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return "", fmt.Errorf("environment %s: %d: %w", project, resp.StatusCode, err)
	}
	return env.Phase, nil
}

// runningContainers counts project's running containers.
func (b *bench) runningContainers(ctx context.Context, project string) (int, error) {
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{Filters: filters.NewArgs(
		filters.Arg("label", contract.LabelProject+"="+project), filters.Arg("status", "running"))})
	return len(cs), err
}

// wakeOnce is one browser-like visit of the sleeping preview: GET /, and
// while the answer is the waiting page, reload it after the time it asks
// for (Retry-After, as its meta refresh), until the shop's page arrives.
func (b *bench) wakeOnce(ctx context.Context, w *wakeRun, n int, project, page string) error {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.liveTimeout)
	defer cancel()
	client := &http.Client{} // no timeout of its own: a held request lasts
	t0 := time.Now()
	defer func() {
		for _, e := range b.events.of(project, t0, time.Now().Add(eventMargin)) {
			if m := e.mark(); m != "" {
				w.Marks = append(w.Marks, mark{At: e.At.Sub(t0), What: "docker: " + m})
			}
		}
	}()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.serve.addr+"/", nil)
		req.Host = b.host(n)
		w.Requests++
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("request %d: %w", w.Requests, err)
		}
		body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("request %d: read: %w", w.Requests, err)
		}
		at := time.Since(t0)
		w.Marks = append(w.Marks, mark{At: at, What: fmt.Sprintf("answer %d (%s)", resp.StatusCode, text.FirstLine(textOf(string(body)), 40))})
		if resp.StatusCode == http.StatusOK {
			if !strings.Contains(string(body), page) {
				return fmt.Errorf("200 with another page: %q", text.FirstLine(string(body), 80))
			}
			w.Page = at
			return nil
		}
		retry, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if resp.StatusCode != http.StatusServiceUnavailable || err != nil {
			return fmt.Errorf("request %d: %d %q, not the preview's page nor a waiting page", w.Requests, resp.StatusCode, text.FirstLine(textOf(string(body)), 80))
		}
		if err := sleep(ctx, time.Duration(retry)*time.Second); err != nil {
			return err
		}
	}
}

// restartServe stops serve and starts bin over the same state with extra
// environment.
func (b *bench) restartServe(ctx context.Context, bin string, extraEnv ...string) error {
	if err := b.serve.stop(); err != nil {
		return fmt.Errorf("stop serve: %w", err)
	}
	env := append(append([]string(nil), b.cfg.slipwayEnv...), extraEnv...)
	p, err := startServe(ctx, bin, b.dir, b.serveState, b.sc, env, b.cfg.verbose)
	if err != nil {
		return err
	}
	p.version = b.serve.version
	b.serve = p
	b.send = newSender(p.addr)
	if b.cfg.trace {
		fmt.Printf("  serve restarted: %s %s\n", bin, strings.Join(extraEnv, " "))
	}
	return b.waitReady(ctx)
}

func (b *bench) printWake(w *wakeRun) {
	line := fmt.Sprintf("  %-6s run %d  first request to the shop's page %s  (%d request(s))", w.Mode, w.Run, benchkit.FmtDur(w.Page), w.Requests)
	if w.Err != "" {
		line += "  FAILED: " + text.FirstLine(w.Err, 160)
	}
	fmt.Println(line)
	if b.cfg.trace {
		for _, m := range w.Marks {
			fmt.Printf("      +%7.3fs  %s\n", m.At.Seconds(), m.What)
		}
	}
}

// wakeTimes are the page times of the successful runs of mode.
func wakeTimes(runs []*wakeRun, mode string) []time.Duration {
	var out []time.Duration
	for _, w := range runs {
		if w.Mode == mode && w.Err == "" {
			out = append(out, w.Page)
		}
	}
	return out
}

// targetWake is issue 15's target: a sleeping shop's first request gets
// the real page within a second (median).
const targetWake = time.Second
