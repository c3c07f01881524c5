package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
	"github.com/slipwayhq/slipway/internal/text"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
)

// Cache modes of an open-to-live run.
const (
	cacheCold   = "cold"   // a new file in an early layer: every step after FROM builds
	cacheWarm   = "warm"   // the same content as a pull request already built: every step cached
	cacheAnchor = "anchor" // the first build of the warm content (cold), kept open for the warm runs
)

// mark is one timestamped point of a run, relative to the delivery that
// started it.
type mark struct {
	At   time.Duration `json:"at"`
	What string        `json:"what"`
}

// openRun is one pull request opened, served, closed and cleaned.
type openRun struct {
	Cache   string `json:"cache"`
	Run     int    `json:"run"`
	PR      int    `json:"pr"`
	Project string `json:"project"`
	SHA     string `json:"sha"`

	OpenedAt time.Time     `json:"opened_at"`
	OpenAck  time.Duration `json:"open_ack"`
	// Live is from sending opened to the first 200 with the PR's page.
	Live time.Duration `json:"live"`
	// GitHubCalls counts the API requests serve made between the opened
	// delivery and the first 200.
	GitHubCalls    int      `json:"github_calls"`
	GitHubCallList []string `json:"github_call_list"`
	// OpenMarks: phases the preview host showed, the history's phases and
	// Docker's events, from the opened delivery on.
	OpenMarks []mark `json:"open_marks"`

	ClosedAt time.Time     `json:"closed_at"`
	CloseAck time.Duration `json:"close_ack"`
	// Clean is from sending closed to the first poll finding no container,
	// network, volume or image with the project's label.
	Clean time.Duration `json:"clean"`
	// CleanMarks: the history's phases and Docker's events from the closed
	// delivery on.
	CleanMarks []mark `json:"clean_marks"`

	Err string `json:"error,omitempty"`
}

// openClose runs the open-to-live and close-to-clean measurements: an
// anchor pull request (whose layers make later builds of the same content
// warm), then -runs cold and -runs warm pull requests, alternating, each
// closed and cleaned before the next.
func (b *bench) openClose(ctx context.Context, res *results) error {
	warmNonce, warmPage := "warm-"+b.runID, "warm page "+b.runID
	fmt.Printf("open-to-live and close-to-clean: %d cold and %d warm runs (fixture: harness app() with a RUN step; healthcheck every 300ms)\n", b.cfg.runs, b.cfg.runs)
	anchor := &openRun{Cache: cacheAnchor}
	if err := b.open(ctx, anchor, appFiles(b.runID, warmNonce, warmPage), warmPage); err != nil {
		res.Open = append(res.Open, anchor)
		return fmt.Errorf("anchor pull request: %w", err)
	}
	res.Open = append(res.Open, anchor)
	b.printRun(anchor, false)
	var errs []error
	for i := 1; i <= b.cfg.runs && ctx.Err() == nil; i++ {
		order := []string{cacheCold, cacheWarm}
		if i%2 == 0 {
			order = []string{cacheWarm, cacheCold}
		}
		for _, mode := range order {
			if err := sleep(ctx, b.cfg.settleBetween); err != nil {
				return err
			}
			r := &openRun{Cache: mode, Run: i}
			files, page := appFiles(b.runID, warmNonce, warmPage), warmPage
			if mode == cacheCold {
				nonce := fmt.Sprintf("cold-%s-%d", b.runID, i)
				files, page = appFiles(b.runID, nonce, "cold page "+nonce), "cold page "+nonce
			}
			err := b.open(ctx, r, files, page)
			if err == nil {
				err = b.closeAndClean(ctx, r)
			} else {
				// Still close it, so that the next run starts clean.
				err = errors.Join(err, b.closeAndClean(ctx, r))
			}
			res.Open = append(res.Open, r)
			if err != nil {
				r.Err = err.Error()
				errs = append(errs, fmt.Errorf("%s run %d: %w", mode, i, err))
				if ctx.Err() != nil {
					return errors.Join(errs...)
				}
			}
			b.printRun(r, true)
		}
	}
	if err := b.closeAndClean(ctx, anchor); err != nil {
		errs = append(errs, fmt.Errorf("close the anchor: %w", err))
	}
	return errors.Join(errs...)
}

// open opens a pull request with files, sends the opened delivery and
// waits until the preview host serves page.
func (b *bench) open(ctx context.Context, r *openRun, files githubfake.Files, page string) error {
	n, sha := b.gh.fake.OpenPR(b.repo, githubfake.PR{Author: author, Files: files})
	b.openPRs[n] = true
	r.PR, r.SHA, r.Project = n, sha, b.project(n)
	d, err := b.hooks.pullRequest("opened", n)
	if err != nil {
		return err
	}
	calls := b.gh.requestCount()
	r.OpenedAt = time.Now()
	s := b.deliver(d)
	r.OpenAck = s.Latency
	if s.Err != nil || s.Status != http.StatusAccepted {
		return fmt.Errorf("opened delivery: status %d, %v", s.Status, s.Err)
	}
	marks, err := b.waitServes(ctx, n, page, r.OpenedAt)
	r.OpenMarks = marks
	if err != nil {
		return err
	}
	r.Live = marks[len(marks)-1].At
	r.GitHubCallList = b.gh.apiCallsSince(calls)
	r.GitHubCalls = len(r.GitHubCallList)
	// Close only a settled environment: wait until GitHub shows the
	// deployment successful (the controller reports it once the deploy
	// has finished, a little after the first 200).
	at, err := b.waitDeployment(ctx, r.SHA, "success", r.OpenedAt)
	if err != nil {
		return err
	}
	r.OpenMarks = append(r.OpenMarks, mark{At: at, What: "github: success"})
	return nil
}

// waitDeployment waits until the fake's deployment of sha has state as
// its latest status, and returns when it was first seen, from t0.
func (b *bench) waitDeployment(ctx context.Context, sha, state string, t0 time.Time) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.liveTimeout)
	defer cancel()
	tick := time.NewTicker(b.cfg.pollInterval)
	defer tick.Stop()
	last := "no deployment"
	for {
		for _, d := range b.gh.fake.Deployments(b.repo) {
			if d.SHA != sha {
				continue
			}
			if last = d.LatestState(); last == state {
				return time.Since(t0), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("deployment of %.7s never became %s on GitHub (last: %q): %w", sha, state, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// deliver sends d and remembers it for redeliveries.
func (b *bench) deliver(d delivery) sent {
	b.history = append(b.history, d)
	return b.send.send(d)
}

// pageTitles tell the proxy's phase pages apart.
var pageTitles = []struct{ title, phase string }{
	{"Preview queued", "page: queued"},
	{"Preview building", "page: building"},
	{"Preview starting", "page: starting"},
	{"Preview unhealthy", "page: unhealthy"},
	{"Deploy failed", "page: failed"},
	{"Environment removed", "page: removed"},
}

// getPreview fetches / on PR n's preview host through serve's proxy and
// names what it got: "200", "page: building", "404", ...
func (b *bench) getPreview(ctx context.Context, n int) (string, string, error) {
	path := b.path
	if path == "" {
		path = "/"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.serve.addr+path, nil)
	if err != nil {
		return "", "", err
	}
	req.Host = b.host(n)
	resp, err := b.preview.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", "", err
	}
	what := fmt.Sprint(resp.StatusCode)
	if resp.StatusCode != http.StatusOK {
		for _, t := range pageTitles {
			if strings.Contains(string(body), t.title) {
				what = t.phase
				break
			}
		}
	}
	return what, string(body), nil
}

// waitServes polls PR n's preview host until it answers 200 with page in
// the body, and returns each new state it showed (the last is the 200).
func (b *bench) waitServes(ctx context.Context, n int, page string, t0 time.Time) ([]mark, error) {
	ctx, cancel := context.WithTimeout(ctx, b.cfg.liveTimeout)
	defer cancel()
	var marks []mark
	last := ""
	tick := time.NewTicker(b.cfg.pollInterval)
	defer tick.Stop()
	for {
		what, body, err := b.getPreview(ctx, n)
		at := time.Since(t0)
		if err != nil && ctx.Err() == nil {
			what = "error: " + err.Error()
		}
		if what == "200" && !strings.Contains(body, page) {
			what = "200 with another page"
		}
		if what != last && ctx.Err() == nil {
			marks = append(marks, mark{At: at, What: what})
			last = what
		}
		if what == "200" {
			return marks, nil
		}
		if what == "page: failed" {
			return marks, fmt.Errorf("the deploy failed: %s", text.FirstLine(textOf(body), 160))
		}
		select {
		case <-ctx.Done():
			return marks, fmt.Errorf("pr-%d did not serve its page within %s (last: %s): %w", n, b.cfg.liveTimeout, last, ctx.Err())
		case <-tick.C:
		}
	}
}

// closeAndClean closes the PR on the fake, sends the closed delivery and
// waits until nothing with the project's label is left.
func (b *bench) closeAndClean(ctx context.Context, r *openRun) error {
	if r.PR == 0 {
		return nil
	}
	b.gh.fake.ClosePR(b.repo, r.PR)
	delete(b.openPRs, r.PR)
	d, err := b.hooks.pullRequest("closed", r.PR)
	if err != nil {
		return err
	}
	r.ClosedAt = time.Now()
	s := b.deliver(d)
	r.CloseAck = s.Latency
	if s.Err != nil || s.Status != http.StatusAccepted {
		return fmt.Errorf("closed delivery: status %d, %v", s.Status, s.Err)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.cleanTimeout)
	defer cancel()
	tick := time.NewTicker(b.cfg.pollInterval)
	defer tick.Stop()
	var left []string
	for {
		isClean := b.isClean
		if isClean == nil {
			isClean = func(ctx context.Context, project string) (bool, []string, error) { return clean(ctx, b.cli, project) }
		}
		ok, l, err := isClean(ctx, r.Project)
		if ok {
			r.Clean = time.Since(r.ClosedAt)
			// When GitHub learns of it (not part of the figure).
			if at, err := b.waitDeployment(ctx, r.SHA, "inactive", r.ClosedAt); err == nil {
				r.CleanMarks = append(r.CleanMarks, mark{At: at, What: "github: inactive"})
			}
			return nil
		}
		if err == nil {
			left = l
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not clean %s after closed (left: %s): %w", r.Project, b.cfg.cleanTimeout, strings.Join(left, ", "), ctx.Err())
		case <-tick.C:
		}
	}
}

// printRun prints one run's figures as it finishes.
func (b *bench) printRun(r *openRun, closed bool) {
	line := fmt.Sprintf("  %-6s run %d  pr-%-3d  open-to-live %s", r.Cache, r.Run, r.PR, benchkit.FmtDur(r.Live))
	if closed {
		line += fmt.Sprintf("  close-to-clean %s", benchkit.FmtDur(r.Clean))
	}
	line += fmt.Sprintf("  (GitHub API calls before live: %d)", r.GitHubCalls)
	if r.Err != "" {
		line += "  FAILED: " + text.FirstLine(r.Err, 160)
	}
	fmt.Println(line)
	if b.cfg.trace {
		for _, m := range r.OpenMarks {
			fmt.Fprintf(os.Stdout, "      +%7.3fs  %s\n", m.At.Seconds(), m.What)
		}
		fmt.Fprintf(os.Stdout, "      GitHub API calls in order: %s\n", strings.Join(r.GitHubCallList, ", "))
	}
}

// textOf strips the tags of an HTML page, roughly, for an error message.
func textOf(html string) string {
	var sb strings.Builder
	in := false
	for _, r := range html {
		switch {
		case r == '<':
			in = true
		case r == '>':
			in = false
			sb.WriteByte(' ')
		case !in:
			sb.WriteRune(r)
		}
	}
	return strings.Join(strings.Fields(sb.String()), " ")
}
