package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/slipwayhq/slipway/controller/github/githubfake"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
	"github.com/slipwayhq/slipway/internal/text"
)

// Kinds of delivery in a burst.
const (
	kindSync     = "synchronize"   // a push to a PR whose build is running
	kindOpened   = "opened"        // a new PR
	kindDupBurst = "dup (burst)"   // an ID sent in the same burst
	kindDupOld   = "dup (earlier)" // an ID delivered before the burst
	kindClosed   = "closed"        // the final closing burst
)

// slowBuildSeconds is how long a busy PR's build sleeps in its RUN step.
const slowBuildSeconds = 15

// ackSample is one delivery of a burst.
type ackSample struct {
	Kind    string        `json:"kind"`
	Status  int           `json:"status"`
	Latency time.Duration `json:"latency"`
	// Start is when its request started, from the burst's start.
	Start time.Duration `json:"start"`
	Err   string        `json:"error,omitempty"`
}

// burstResult is one burst of concurrent deliveries.
type burstResult struct {
	Burst int `json:"burst"`
	// Building is how many busy PRs' preview hosts showed a build in
	// progress just before the burst.
	Building int `json:"building"`
	// NetworkList is how long the engine took to list managed networks at
	// the burst (what serve's control-surface guard does every 5 s, in the
	// request path).
	NetworkList time.Duration `json:"network_list"`
	Samples     []ackSample   `json:"samples"`
	// Server is the delta of serve's slipway_webhook_handling_seconds
	// histogram (pull_request) over the burst: the handler's own time.
	Server histogram `json:"server"`
	// Wall is from the burst's start to its last response.
	Wall time.Duration `json:"wall"`
	// Floor is the same burst, from the same client at the same moment,
	// against a handler in the benchmark process that only answers 202:
	// what the machine allows, whatever the server does.
	Floor []ackSample `json:"floor,omitempty"`
}

// pacedResult is deliveries sent one at a time while builds run: the
// latency of a delivery that does not queue behind others of its burst.
type pacedResult struct {
	Interval time.Duration `json:"interval"`
	Samples  []ackSample   `json:"samples"`
	Server   histogram     `json:"server"`
}

// ack measures webhook acknowledgement latency: busy PRs build slow
// images, then bursts of concurrent deliveries are fired at serve; at the
// end every PR of the phase is closed (one more burst) and the benchmark
// waits until all of them are gone.
func (b *bench) ack(ctx context.Context, res *results) error {
	fmt.Printf("\nwebhook acknowledgement: %d busy PRs (RUN sleep %d), %d bursts of %d deliveries (%d synchronize, %d opened, %d duplicates)\n",
		b.cfg.busy, slowBuildSeconds, b.cfg.bursts, b.cfg.burst, b.cfg.burst-b.cfg.newPRs-b.cfg.dups, b.cfg.newPRs, b.cfg.dups)
	var busy []int
	for i := 0; i < b.cfg.busy; i++ {
		n, _ := b.gh.fake.OpenPR(b.repo, githubfake.PR{Author: author, Files: slowFiles(b.runID, fmt.Sprintf("busy-%s-%d-0", b.runID, i), slowBuildSeconds)})
		b.openPRs[n] = true
		busy = append(busy, n)
		d, err := b.hooks.pullRequest("opened", n)
		if err != nil {
			return err
		}
		if s := b.deliver(d); s.Err != nil || s.Status != http.StatusAccepted {
			return fmt.Errorf("opened delivery for busy pr-%d: status %d, %v", n, s.Status, s.Err)
		}
	}
	want := min(len(busy), b.buildSlots)
	if err := b.waitBuilding(ctx, busy, want); err != nil {
		return err
	}
	if b.cfg.paced > 0 {
		p, err := b.paced(ctx, busy)
		if p != nil {
			res.Paced = p
			fmt.Printf("  paced (%d deliveries, one every %s): %s\n", len(p.Samples), p.Interval, summarize(p.Samples))
		}
		if err != nil {
			return err
		}
	}
	floor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer floor.Close()
	floorSender := newSender(strings.TrimPrefix(floor.URL, "http://"))
	var errs []error
	for i := 1; i <= b.cfg.bursts; i++ {
		br, err := b.burst(ctx, i, busy, floorSender)
		if br != nil {
			res.Bursts = append(res.Bursts, br)
			fmt.Printf("  burst %d: %d building, %s; same burst to a bare 202 handler: %s\n", i, br.Building, summarize(br.Samples), summarize(br.Floor))
		}
		if err != nil {
			errs = append(errs, err)
			break
		}
		// Let the controller act on it (debounce, cancelled and restarted
		// builds) before the next burst.
		if err := b.waitBuilding(ctx, busy, 1); err != nil {
			errs = append(errs, err)
			break
		}
	}
	closing, err := b.closeAll(ctx)
	if closing != nil {
		res.Closing = closing
		fmt.Printf("  closing burst: %s\n", summarize(closing.Samples))
	}
	return errors.Join(append(errs, err)...)
}

// waitBuilding waits until at least want of prs show a build in progress
// on their preview hosts.
func (b *bench) waitBuilding(ctx context.Context, prs []int, want int) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for {
		if n := b.countBuilding(ctx, prs); n >= want {
			return nil
		}
		if err := sleep(ctx, 100*time.Millisecond); err != nil {
			return fmt.Errorf("waiting for %d busy builds: %w", want, err)
		}
	}
}

func (b *bench) countBuilding(ctx context.Context, prs []int) int {
	n := 0
	for _, pr := range prs {
		if what, _, err := b.getPreview(ctx, pr); err == nil && what == "page: building" {
			n++
		}
	}
	return n
}

// burst pushes to every busy PR, opens new PRs, and fires the burst's
// deliveries at once.
func (b *bench) burst(ctx context.Context, i int, busy []int, floor *sender) (*burstResult, error) {
	var ds []delivery
	var kinds []string
	for j, n := range busy {
		b.gh.fake.Push(b.repo, n, slowFiles(b.runID, fmt.Sprintf("busy-%s-%d-%d", b.runID, j, i), slowBuildSeconds))
	}
	earlier := len(b.history)
	nSync := b.cfg.burst - b.cfg.newPRs - b.cfg.dups
	for k := 0; k < nSync; k++ {
		d, err := b.hooks.pullRequest("synchronize", busy[k%len(busy)])
		if err != nil {
			return nil, err
		}
		ds, kinds = append(ds, d), append(kinds, kindSync)
	}
	for k := 0; k < b.cfg.newPRs; k++ {
		nonce := fmt.Sprintf("new-%s-%d-%d", b.runID, i, k)
		n, _ := b.gh.fake.OpenPR(b.repo, githubfake.PR{Author: author, Files: appFiles(b.runID, nonce, "page "+nonce)})
		b.openPRs[n] = true
		d, err := b.hooks.pullRequest("opened", n)
		if err != nil {
			return nil, err
		}
		ds, kinds = append(ds, d), append(kinds, kindOpened)
	}
	fresh := len(ds)
	for k := 0; k < b.cfg.dups; k++ {
		if k%2 == 0 || earlier == 0 {
			ds, kinds = append(ds, ds[rand.IntN(fresh)]), append(kinds, kindDupBurst)
		} else {
			ds, kinds = append(ds, b.history[rand.IntN(earlier)]), append(kinds, kindDupOld)
		}
	}
	for k := range ds[:fresh] {
		b.history = append(b.history, ds[k])
	}
	rand.Shuffle(len(ds), func(x, y int) { ds[x], ds[y] = ds[y], ds[x]; kinds[x], kinds[y] = kinds[y], kinds[x] })

	br := &burstResult{Burst: i}
	br.Floor, _ = fire(floor, ds, kinds)
	if err := sleep(ctx, 200*time.Millisecond); err != nil {
		return nil, err
	}
	br.Building = b.countBuilding(ctx, busy)
	before, err := b.scrapeHandling(ctx)
	if err != nil {
		return nil, err
	}
	var nl time.Duration
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // what the control-surface guard asks the engine, timed at the burst
		defer wg.Done()
		start := time.Now()
		_, err := b.cli.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", contract.ManagedFilter))})
		if err == nil {
			nl = time.Since(start)
		}
	}()
	br.Samples, br.Wall = fire(b.send, ds, kinds)
	wg.Wait()
	br.NetworkList = nl
	after, err := b.scrapeHandling(ctx)
	if err != nil {
		return br, err
	}
	br.Server = after.minus(before)
	return br, checkStatuses(br.Samples)
}

// paced sends synchronize deliveries for the busy PRs' current heads (so
// no build is cancelled) one at a time, -pace apart: each delivery's own
// latency, with builds running, without a burst to queue behind. Spread
// over several seconds, it also crosses the control-surface guard's
// refresh (every 5 s).
func (b *bench) paced(ctx context.Context, busy []int) (*pacedResult, error) {
	p := &pacedResult{Interval: b.cfg.pace}
	before, err := b.scrapeHandling(ctx)
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(b.cfg.pace)
	defer tick.Stop()
	for k := 0; k < b.cfg.paced; k++ {
		d, err := b.hooks.pullRequest("synchronize", busy[k%len(busy)])
		if err != nil {
			return p, err
		}
		s := b.deliver(d)
		smp := ackSample{Kind: kindSync, Status: s.Status, Latency: s.Latency}
		if s.Err != nil {
			smp.Err = s.Err.Error()
		}
		p.Samples = append(p.Samples, smp)
		select {
		case <-ctx.Done():
			return p, ctx.Err()
		case <-tick.C:
		}
	}
	after, err := b.scrapeHandling(ctx)
	if err != nil {
		return p, err
	}
	p.Server = after.minus(before)
	return p, checkStatuses(p.Samples)
}

// fire sends every delivery at once, one goroutine and one connection
// each, and times each from its request to its response.
func fire(s *sender, ds []delivery, kinds []string) ([]ackSample, time.Duration) {
	out := make([]ackSample, len(ds))
	start := make(chan struct{})
	var ready, done sync.WaitGroup
	var t0 time.Time
	for k := range ds {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			ready.Done()
			<-start
			at := time.Since(t0)
			r := s.send(ds[k])
			out[k] = ackSample{Kind: kinds[k], Status: r.Status, Latency: r.Latency, Start: at}
			if r.Err != nil {
				out[k].Err = r.Err.Error()
			}
		}()
	}
	ready.Wait()
	t0 = time.Now()
	close(start)
	done.Wait()
	return out, time.Since(t0)
}

// checkStatuses reports deliveries answered with anything but 202 (first
// seen) or 200 (a duplicate).
func checkStatuses(ss []ackSample) error {
	bad := map[string]int{}
	for _, s := range ss {
		if s.Err != "" {
			bad["error: "+text.FirstLine(s.Err, 160)]++
		} else if s.Status != http.StatusAccepted && s.Status != http.StatusOK {
			bad[fmt.Sprintf("%s answered %d", s.Kind, s.Status)]++
		}
	}
	if len(bad) == 0 {
		return nil
	}
	var parts []string
	for k, v := range bad {
		parts = append(parts, fmt.Sprintf("%d× %s", v, k))
	}
	return fmt.Errorf("unexpected answers: %s", strings.Join(parts, ", "))
}

// closeAll closes every PR still open on the fake, sends their closed
// deliveries at once, and waits until nothing of the repository is left.
func (b *bench) closeAll(ctx context.Context) (*burstResult, error) {
	var ds []delivery
	var kinds []string
	for n := range b.openPRs {
		b.gh.fake.ClosePR(b.repo, n)
		d, err := b.hooks.pullRequest("closed", n)
		if err != nil {
			return nil, err
		}
		ds, kinds = append(ds, d), append(kinds, kindClosed)
	}
	clear(b.openPRs)
	if len(ds) == 0 {
		return nil, nil
	}
	br := &burstResult{}
	br.Samples, br.Wall = fire(b.send, ds, kinds)
	err := checkStatuses(br.Samples)
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	start := time.Now()
	for {
		left, lerr := dockertest.Leftovers(wctx, b.cli, contract.LabelRepo+"="+b.repo)
		if lerr == nil && len(left) == 0 {
			fmt.Printf("  all %d pull requests closed: nothing of the repository left %.1fs after the closing burst\n", len(ds), time.Since(start).Seconds())
			return br, err
		}
		if serr := sleep(wctx, 250*time.Millisecond); serr != nil {
			return br, errors.Join(err, fmt.Errorf("after closing every pull request, still left: %d objects (%v): %w", len(left), lerr, serr))
		}
	}
}

// scrapeHandling reads serve's webhook handling-time histogram for
// pull_request deliveries.
func (b *bench) scrapeHandling(ctx context.Context) (histogram, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+b.serve.addr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := b.preview.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape /metrics: status %d", resp.StatusCode)
	}
	var lines []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scrape /metrics: %w", err)
	}
	return parseHistogram(lines, "slipway_webhook_handling_seconds", `event="pull_request"`), nil
}
