package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"
	"gopkg.in/yaml.v3"

	"github.com/slipwayhq/slipway/bench/internal/benchkit"
	"github.com/slipwayhq/slipway/controller/github/githubfake"
	swarmengine "github.com/slipwayhq/slipway/controller/swarm"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// -engine swarm: the same warm open-to-live and close-to-clean with
// engine: docker and engine: swarm, side by side in one run. Both modes
// run Slipway in its container (the Dockerfile's offline target), as a
// swarm installation must (only a container attached to a preview's
// overlay reaches its tasks), so the docker mode pays the same published
// port and the same image. The engine is made a single-node swarm for the
// run (and leaves it afterwards only if the benchmark made it); a
// distribution registry listens on every interface: the daemon pushes to
// it as 127.0.0.1:<port> (a loopback registry needs no TLS), Slipway in
// its container reaches its API at the default bridge's gateway
// (registry.api), where the fake GitHub is exposed too.

// Engine modes (-engine).
const (
	engineDocker = "docker" // today's bench: serve as a host process, engine docker
	engineSwarm  = "swarm"  // side by side: both engines, Slipway in its container
)

// Fixture of the side-by-side runs: web (built) calls api (image-only) by
// service name on each request of /cgi-bin/page, so a page that says
// "<page> via api-ok" went through the proxy to web and from web to api.
const (
	pairPath   = "/cgi-bin/page"
	pairAPIOK  = "api-ok"
	pairAppDoc = "harness app() with a RUN step, calling an image-only api (healthchecks every 300ms; web depends on api being healthy)"
)

const pairCompose = `services:
  web:
    build: .
    ports: ["8080"]
    init: true
    stop_grace_period: 1s
    depends_on:
      api:
        condition: service_healthy
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"]
      interval: 300ms
      retries: 60
  api:
    image: slipway-test/busybox:1
    init: true
    stop_grace_period: 1s
    command: ["sh", "-c", "mkdir -p /srv && echo ` + pairAPIOK + ` > /srv/index.html && exec httpd -f -p 8081 -h /srv"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8081/"]
      interval: 300ms
      retries: 60
`

// pairFiles is the side-by-side fixture: appFiles' web with a CGI page
// that asks api.
func pairFiles(runID, nonce, page string) githubfake.Files {
	f := appFiles(runID, nonce, page)
	f["compose.yaml"] = pairCompose
	f["Dockerfile"] = strings.Replace(f["Dockerfile"], "COPY index.html /www/index.html\n",
		"COPY index.html /www/index.html\nCOPY page.sh /www/cgi-bin/page\n", 1)
	f["page.sh"] = githubfake.Executable + "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n'\nprintf '%s via %s\\n' \"$(cat /www/index.html)\" \"$(wget -q -O - http://api:8081/)\"\n"
	return f
}

// lane is one engine mode: its Slipway container, repository and domain,
// driven through a bench of its own (open, closeAndClean).
type lane struct {
	mode     string
	b        *bench
	ctr      *slipwayCtr
	stateDir string
	anchor   *openRun
	runs     []*openRun
}

// sideBySide runs -engine swarm.
func sideBySide(ctx context.Context, cfg config) (err error) {
	cli, err := benchkit.Docker(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	root, err := filepath.Abs(cfg.root)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("-root %s: no go.mod (run from the repository root): %w", root, err)
	}
	if err := dockertest.EnsureBusybox(ctx, cli); err != nil {
		return fmt.Errorf("base image %s (needs Debian's busybox-static): %w", dockertest.BusyboxImage, err)
	}
	runID := benchkit.RandomHex(4)
	dir, err := os.MkdirTemp("", "slipway-bench-loop-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	gw, err := dockertest.BridgeGateway(ctx, cli)
	if err != nil {
		return err
	}
	created, err := dockertest.EnsureSwarm(ctx, cli)
	if err != nil {
		return err
	}
	if created {
		defer func() {
			if lerr := dockertest.LeaveSwarm(context.WithoutCancel(ctx), cli); lerr != nil {
				err = errors.Join(err, lerr)
			} else {
				fmt.Println("cleanup: the engine left the swarm the benchmark made")
			}
		}()
	}
	reg, err := startRegistry(ctx, dir, gw)
	if err != nil {
		return err
	}
	defer reg.stop()
	gh, err := newGitHub(0, true)
	if err != nil {
		return err
	}
	defer gh.close()
	apiURL, closeExposed, err := exposeGitHub(gh.fake, gw)
	if err != nil {
		return err
	}
	defer closeExposed()

	labels := map[string]string{benchLabel: runID}
	tag := "slipway-bench/slipway:" + runID
	fmt.Fprintf(os.Stderr, "building Slipway's image (offline target) from %s\n", root)
	if err := buildSlipwayImage(ctx, cli, root, tag, labels); err != nil {
		return err
	}
	// "0-" sorts before every project network (docs/container.md).
	netName := "0-slipway-bench-" + runID
	if _, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{Driver: "bridge", Labels: labels}); err != nil {
		return fmt.Errorf("create network %s: %w", netName, err)
	}

	var lanes []*lane
	defer func() {
		err = errors.Join(err, cleanupLanes(cli, lanes, netName, runID, reg))
	}()
	for _, mode := range []string{engineDocker, engineSwarm} {
		l, err := startLane(ctx, cli, cfg, mode, runID, dir, tag, netName, gh, apiURL, reg, gw, labels)
		if l != nil {
			lanes = append(lanes, l)
		}
		if err != nil {
			return fmt.Errorf("%s mode: %w", mode, err)
		}
	}
	fmt.Printf("loop benchmark, -engine swarm: Slipway (%s) in its container, engine docker and engine swarm side by side\n", gitDescribe(root))
	fmt.Printf("registry %s (API for Slipway %s), fake GitHub for Slipway at %s\n", reg.addr, reg.api, apiURL)
	fmt.Printf("fixture: %s; page %s\n", pairAppDoc, pairPath)
	fmt.Printf("machine: %d CPUs, load average at start %s (shared: figures are noisy)\n\n", numCPU(), loadAvg())

	runErr := runLanes(ctx, cfg, lanes, runID)
	fmt.Printf("\nload average at end %s\n", loadAvg())
	reportLanes(lanes)
	for _, l := range lanes {
		if p := l.ctr.problems(context.WithoutCancel(ctx)); len(p) > 0 && cfg.trace {
			fmt.Printf("\n%s mode: Slipway logged %d warning(s) or error(s); the first: %s\n", l.mode, len(p), p[0])
		}
	}
	return runErr
}

// startLane starts Slipway in its container with engine mode, on a
// repository and domain of its own.
func startLane(ctx context.Context, cli *client.Client, cfg config, mode, runID, dir, image, netName string, gh *gitHub, apiURL string, reg *registryProc, gw string, labels map[string]string) (*lane, error) {
	b := &bench{
		cfg: cfg, cli: cli, dir: dir, runID: runID, gh: gh,
		owner: "bench", name: "loop" + runID + "-" + mode,
		preview: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 4}},
		openPRs: map[int]bool{},
		path:    pairPath,
	}
	b.repo = b.owner + "/" + b.name
	b.domain = "loop" + runID + mode + ".localhost"
	gh.fake.AddRepo(b.repo, githubfake.RepoOptions{})
	gh.fake.SetPermission(b.repo, author, githubfake.Write)
	b.hooks = &deliveries{fake: gh.fake, repo: b.repo, prefix: "bench-" + runID + "-" + mode}
	l := &lane{mode: mode, b: b}
	if mode == engineSwarm {
		b.isClean = func(ctx context.Context, project string) (bool, []string, error) {
			left, err := swarmLeftovers(ctx, cli, reg, project)
			return err == nil && len(left) == 0, left, err
		}
	}

	// state_dir from the host at the same path, owned by the image's user.
	stateDir, err := os.MkdirTemp("", "slipway-bench-loop-state-")
	if err != nil {
		return nil, err
	}
	l.stateDir = stateDir
	if err := os.Chown(stateDir, 10001, 10001); err != nil {
		if err := os.Chmod(stateDir, 0o777); err != nil {
			return l, err
		}
	}
	sc := map[string]any{
		"domain":    b.domain,
		"listen":    map[string]string{"http": ":8080"},
		"github":    map[string]string{"api_url": apiURL, "token": gh.fake.Token, "webhook_secret": webhookSecret},
		"repos":     []map[string]string{{"name": b.repo}},
		"state_dir": stateDir,
		"engine":    mode,
	}
	if mode == engineSwarm {
		sc["registry"] = map[string]string{"address": reg.addr, "api": reg.api}
	}
	y, err := yaml.Marshal(sc)
	if err != nil {
		return l, err
	}
	cfgPath := filepath.Join(dir, "slipway-"+mode+".yaml")
	if err := os.WriteFile(cfgPath, y, 0o644); err != nil {
		return l, err
	}
	l.ctr, err = runSlipwayContainer(ctx, cli, image, "0-slipway-bench-"+runID+"-"+mode, netName, cfgPath, stateDir,
		filepath.Join(dir, "serve-"+mode+".log"), labels)
	if err != nil {
		return l, err
	}
	b.serve = &serveProc{addr: l.ctr.addr, dbPath: filepath.Join(stateDir, "slipway.db")}
	b.send = newSender(l.ctr.addr)
	if err := b.waitReady(ctx); err != nil {
		return l, fmt.Errorf("%w; its log:\n%s", err, strings.Join(l.ctr.problems(ctx), "\n"))
	}
	return l, nil
}

// runLanes opens each lane's anchor (the warm content's cold build, kept
// open), then -runs rounds of one warm pull request per lane, the order
// alternating round by round, each closed and cleaned before the next.
func runLanes(ctx context.Context, cfg config, lanes []*lane, runID string) error {
	warmNonce, warmPage := "warm-"+runID, "warm page "+runID
	want := warmPage + " via " + pairAPIOK
	for _, l := range lanes {
		l.anchor = &openRun{Cache: cacheAnchor}
		if err := l.b.open(ctx, l.anchor, pairFiles(runID, warmNonce, warmPage), want); err != nil {
			return fmt.Errorf("%s mode: anchor pull request: %w", l.mode, err)
		}
		fmt.Printf("%-6s ", l.mode)
		l.b.printRun(l.anchor, false)
	}
	var errs []error
	for i := 1; i <= cfg.runs && ctx.Err() == nil; i++ {
		order := slices.Clone(lanes)
		if i%2 == 0 {
			slices.Reverse(order)
		}
		for _, l := range order {
			if err := sleep(ctx, cfg.settleBetween); err != nil {
				return errors.Join(append(errs, err)...)
			}
			r := &openRun{Cache: cacheWarm, Run: i}
			err := l.b.open(ctx, r, pairFiles(runID, warmNonce, warmPage), want)
			err = errors.Join(err, l.b.closeAndClean(ctx, r))
			l.runs = append(l.runs, r)
			if err != nil {
				r.Err = err.Error()
				errs = append(errs, fmt.Errorf("%s mode, run %d: %w", l.mode, i, err))
			}
			fmt.Printf("%-6s ", l.mode)
			l.b.printRun(r, true)
		}
	}
	for _, l := range lanes {
		if err := l.b.closeAndClean(ctx, l.anchor); err != nil {
			errs = append(errs, fmt.Errorf("%s mode: close the anchor: %w", l.mode, err))
		} else {
			fmt.Printf("%-6s anchor closed: close-to-clean %s\n", l.mode, benchkit.FmtDur(l.anchor.Clean))
		}
	}
	return errors.Join(errs...)
}

// reportLanes prints each mode's medians and the swarm/docker ratios,
// each the median of the rounds' paired ratios (both modes of a round see
// about the same load).
func reportLanes(lanes []*lane) {
	if len(lanes) != 2 {
		return
	}
	fmt.Printf("\nwarm open-to-live and close-to-clean, Slipway in its container (median, min–max of the successful runs)\n\n")
	fmt.Printf("%-8s %-5s %-24s %-24s\n", "engine", "runs", "open-to-live", "close-to-clean")
	figures := map[string][2][]time.Duration{}
	for _, l := range lanes {
		var live, clean []time.Duration
		for _, r := range l.runs {
			if r.Err == "" {
				live, clean = append(live, r.Live), append(clean, r.Clean)
			}
		}
		figures[l.mode] = [2][]time.Duration{live, clean}
		fmt.Printf("%-8s %-5d %-24s %-24s\n", l.mode, len(live),
			benchkit.FmtDur(benchkit.Median(live))+" "+benchkit.Spread(live),
			benchkit.FmtDur(benchkit.Median(clean))+" "+benchkit.Spread(clean))
	}
	ratio := func(k int) string {
		var rs []float64
		d, s := lanes[0].runs, lanes[1].runs
		for i := range min(len(d), len(s)) {
			if d[i].Err != "" || s[i].Err != "" {
				continue
			}
			a, b := []time.Duration{d[i].Live, d[i].Clean}[k], []time.Duration{s[i].Live, s[i].Clean}[k]
			rs = append(rs, float64(b)/float64(a))
		}
		if len(rs) == 0 {
			return "n/a"
		}
		slices.Sort(rs)
		m := rs[len(rs)/2]
		if len(rs)%2 == 0 {
			m = (rs[len(rs)/2-1] + rs[len(rs)/2]) / 2
		}
		verdict := "met"
		if m > 1.5 {
			verdict = "NOT met"
		}
		return fmt.Sprintf("%.2f× (target ≤ 1.5×: %s)", m, verdict)
	}
	fmt.Printf("\nswarm/docker, median of the paired ratios: open-to-live %s, close-to-clean %s\n", ratio(0), ratio(1))
}

// cleanupLanes stops the Slipway containers, removes whatever of the
// lanes' repositories is left (services, secrets and configs first, then
// containers, networks, volumes and images, the bench-labelled ones too),
// and says whether anything is still there.
func cleanupLanes(cli *client.Client, lanes []*lane, netName, runID string, reg *registryProc) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var errs []error
	for _, l := range lanes {
		if l.ctr != nil {
			if err := l.ctr.stop(); err != nil {
				errs = append(errs, err)
			}
			if l.b.cfg.logDir != "" {
				if err := os.MkdirAll(l.b.cfg.logDir, 0o755); err == nil {
					if b, err := os.ReadFile(l.ctr.logPath); err == nil {
						_ = os.WriteFile(filepath.Join(l.b.cfg.logDir, "serve-"+l.mode+".log"), b, 0o644)
					}
				}
			}
		}
	}
	var left []string
	for _, l := range lanes {
		f := filters.NewArgs(filters.Arg("label", contract.LabelRepo+"="+l.b.repo))
		if svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f}); err == nil {
			for _, s := range svcs {
				if err := cli.ServiceRemove(ctx, s.ID); err != nil && !errdefs.IsNotFound(err) {
					errs = append(errs, err)
				}
				fmt.Printf("cleanup: removed service %s\n", s.Spec.Name)
			}
		}
		if ss, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: f}); err == nil {
			for _, s := range ss {
				_ = cli.SecretRemove(ctx, s.ID)
			}
		}
		if cs, err := cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: f}); err == nil {
			for _, c := range cs {
				_ = cli.ConfigRemove(ctx, c.ID)
			}
		}
	}
	// Task containers go a moment after their service.
	for i := 0; i < 100; i++ {
		n := 0
		for _, l := range lanes {
			if left, err := dockertest.Leftovers(ctx, cli, contract.LabelRepo+"="+l.b.repo); err == nil {
				for _, s := range left {
					if strings.HasPrefix(s, "container ") {
						n++
					}
				}
			}
		}
		if n == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, l := range lanes {
		if _, err := sweep(ctx, cli, l.b.repo, runID); err != nil {
			errs = append(errs, err)
		}
	}
	if err := cli.NetworkRemove(ctx, netName); err != nil && !errdefs.IsNotFound(err) {
		errs = append(errs, fmt.Errorf("remove network %s: %w", netName, err))
	}
	for _, l := range lanes {
		more, err := leftovers(ctx, cli, l.b.repo, runID)
		if err != nil {
			errs = append(errs, err)
		}
		left = append(left, more...)
		if l.mode == engineSwarm {
			f := filters.NewArgs(filters.Arg("label", contract.LabelRepo+"="+l.b.repo))
			if svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f}); err == nil {
				for _, s := range svcs {
					left = append(left, "service "+s.Spec.Name)
				}
			}
		}
		if l.stateDir != "" {
			if err := os.RemoveAll(l.stateDir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	slices.Sort(left)
	left = slices.Compact(left)
	if len(left) > 0 {
		errs = append(errs, fmt.Errorf("left behind after cleanup: %s", strings.Join(left, "; ")))
	} else {
		fmt.Println("cleanup: nothing of the benchmark left on the engine")
	}
	return errors.Join(errs...)
}

// swarmLeftovers lists what of project is on the swarm or in the
// registry: services, secrets, configs, networks and volumes of its stack
// namespace, containers, networks, volumes and images with its compose
// label, and registry repositories of the project that still hold a tag.
func swarmLeftovers(ctx context.Context, cli client.APIClient, reg *registryProc, project string) ([]string, error) {
	f := filters.NewArgs(filters.Arg("label", swarmengine.LabelNamespace+"="+project))
	var out []string
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	for _, s := range svcs {
		out = append(out, "service "+s.Spec.Name)
	}
	secrets, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	for _, s := range secrets {
		out = append(out, "secret "+s.Spec.Name)
	}
	configs, err := cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	for _, c := range configs {
		out = append(out, "config "+c.Spec.Name)
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	for _, n := range nets {
		out = append(out, "network "+n.Name)
	}
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		return nil, err
	}
	for _, v := range vols.Volumes {
		out = append(out, "volume "+v.Name)
	}
	local, err := dockertest.Leftovers(ctx, cli, contract.LabelProject+"="+project)
	if err != nil {
		return nil, err
	}
	out = append(out, local...)
	tags, err := reg.tagsOf(ctx, project)
	if err != nil {
		return nil, err
	}
	return append(out, tags...), nil
}

// exposeGitHub serves the fake GitHub (API and archives) on every
// interface, through proxies that rewrite the fake's own addresses in
// Location and Link headers, and returns the API's URL at gw.
func exposeGitHub(fake *githubfake.Fake, gw string) (string, func(), error) {
	var servers []*http.Server
	closeAll := func() {
		for _, s := range servers {
			s.Close()
		}
	}
	serve := func(target string, rewrite func(string) string) (string, error) {
		u, err := url.Parse(target)
		if err != nil {
			return "", err
		}
		l, err := net.Listen("tcp", "0.0.0.0:0")
		if err != nil {
			return "", err
		}
		rp := &httputil.ReverseProxy{
			Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) },
			ModifyResponse: func(r *http.Response) error {
				for _, h := range []string{"Location", "Link"} {
					if v := r.Header.Get(h); v != "" && rewrite != nil {
						r.Header.Set(h, rewrite(v))
					}
				}
				return nil
			},
		}
		s := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second}
		servers = append(servers, s)
		go func() { _ = s.Serve(l) }()
		return fmt.Sprintf("http://%s:%d", gw, l.Addr().(*net.TCPAddr).Port), nil
	}
	codeload, err := serve(fake.CodeloadURL, nil)
	if err != nil {
		closeAll()
		return "", nil, err
	}
	var api string
	api, err = serve(fake.URL, func(v string) string {
		v = strings.ReplaceAll(v, strings.TrimSuffix(fake.CodeloadURL, "/"), codeload)
		return strings.ReplaceAll(v, strings.TrimSuffix(fake.URL, "/"), api)
	})
	if err != nil {
		closeAll()
		return "", nil, err
	}
	return api + "/", closeAll, nil
}

// registryProc is a distribution registry on every interface, deletes
// enabled.
type registryProc struct {
	addr string // 127.0.0.1:<port>, as the daemon pushes and pulls
	api  string // http://<bridge gateway>:<port>, as Slipway in its container reaches it
	cmd  *exec.Cmd
	done chan struct{}
}

// startRegistry runs the registry (dockertest.RegistryBinary finds it) with
// its storage under dir; Slipway reaches its API at gw.
func startRegistry(ctx context.Context, dir, gw string) (*registryProc, error) {
	bin, err := dockertest.RegistryBinary()
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cfgPath := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf("version: 0.1\nlog: {level: warn, accesslog: {disabled: true}}\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\nhttp: {addr: \"0.0.0.0:%d\"}\n",
		filepath.Join(dir, "registry"), port)), 0o600); err != nil {
		return nil, err
	}
	r := &registryProc{addr: fmt.Sprintf("127.0.0.1:%d", port), api: fmt.Sprintf("http://%s:%d", gw, port), cmd: exec.Command(bin, "serve", cfgPath), done: make(chan struct{})}
	if err := r.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start registry: %w", err)
	}
	go func() { _ = r.cmd.Wait(); close(r.done) }()
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := http.Get("http://" + r.addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r, nil
			}
		}
		select {
		case <-r.done:
			return nil, errors.New("the registry exited at start")
		case <-ctx.Done():
			r.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.stop()
			return nil, fmt.Errorf("the registry did not answer on %s", r.addr)
		}
	}
}

func (r *registryProc) stop() {
	_ = r.cmd.Process.Kill()
	<-r.done
}

// tagsOf lists the registry repositories named <project>-… that still
// hold a tag, as "registry <repository>:<tags>".
func (r *registryProc) tagsOf(ctx context.Context, project string) ([]string, error) {
	var catalog struct{ Repositories []string }
	if err := r.getJSON(ctx, "/v2/_catalog?n=1000", &catalog); err != nil {
		return nil, err
	}
	var out []string
	for _, repo := range catalog.Repositories {
		if !strings.HasPrefix(repo, project+"-") {
			continue
		}
		var tags struct{ Tags []string }
		if err := r.getJSON(ctx, "/v2/"+repo+"/tags/list", &tags); err != nil {
			return nil, err
		}
		if len(tags.Tags) > 0 {
			out = append(out, "registry "+repo+":"+strings.Join(tags.Tags, ","))
		}
	}
	return out, nil
}

func (r *registryProc) getJSON(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.addr+path, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("registry GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil // a repository whose tags are all gone
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("registry GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
