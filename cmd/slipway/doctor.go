package main

import (
	"cmp"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/bradleyfalzon/ghinstallation/v2"
	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack/loader"
	"github.com/slipwayhq/slipway/controller/stack/policy"
	"github.com/slipwayhq/slipway/proxy"
)

func newDoctorCmd(g *globals) *cobra.Command {
	var configPath string
	var noGitHubAPI bool
	cmd := &cobra.Command{
		Use:   "doctor [--config slipway.yaml]",
		Short: "Check that this host is ready to run Slipway, and say what to fix",
		Long: `Check what slipway serve needs: the Docker Engine (reachable, its version),
free disk under state_dir and Docker's root directory, the configuration
(it loads and validates, policy relaxations name real rules), the GitHub
credentials and webhook secret (present, and accepted by the GitHub API when
it is reachable), wildcard DNS for the domain, and the listen ports. With
engine: swarm, also that the engine is a swarm manager, that the registry
accepts a push and a delete, and that an attachable overlay network can be
made.

One line per check: ok, warn, or FAIL with what to fix. The exit status is
1 when any check fails. Run it inside Slipway's container as well:
docker exec slipway /slipway doctor --config /etc/slipway/slipway.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d := newDoctor()
			d.skipGitHubAPI = noGitHubAPI
			defer d.close()
			results := d.run(cmd.Context(), configPath)
			failed := printResults(g.stdout, results)
			if failed > 0 {
				return &exitError{code: 1, err: fmt.Errorf("doctor: %d check(s) failed", failed)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "slipway.yaml to check (SLIPWAY_* environment variables override it)")
	cmd.Flags().BoolVar(&noGitHubAPI, "no-github-api", false, "do not call the GitHub API to check the credentials")
	return cmd
}

// checkStatus is the verdict of one check.
type checkStatus string

const (
	statusOK   checkStatus = "ok"
	statusWarn checkStatus = "warn"
	statusFail checkStatus = "FAIL"
	statusSkip checkStatus = "skip"
)

// checkResult is one line of the doctor's report.
type checkResult struct {
	Name   string
	Status checkStatus
	// Detail says what was found.
	Detail string
	// Fix says what to do (for warn and FAIL).
	Fix string
}

func checkOK(name, format string, args ...any) checkResult {
	return checkResult{Name: name, Status: statusOK, Detail: fmt.Sprintf(format, args...)}
}

func checkWarn(name, fix, format string, args ...any) checkResult {
	return checkResult{Name: name, Status: statusWarn, Detail: fmt.Sprintf(format, args...), Fix: fix}
}

func checkFail(name, fix, format string, args ...any) checkResult {
	return checkResult{Name: name, Status: statusFail, Detail: fmt.Sprintf(format, args...), Fix: fix}
}

func checkSkip(name, why string) checkResult {
	return checkResult{Name: name, Status: statusSkip, Detail: why}
}

// printResults writes one line per result and returns how many failed.
func printResults(w io.Writer, results []checkResult) int {
	failed := 0
	for _, r := range results {
		line := fmt.Sprintf("%-4s  %-13s %s", r.Status, r.Name, r.Detail)
		if r.Fix != "" && (r.Status == statusWarn || r.Status == statusFail) {
			line += " — fix: " + r.Fix
		}
		fmt.Fprintln(w, line)
		if r.Status == statusFail {
			failed++
		}
	}
	if failed == 0 {
		fmt.Fprintln(w, "no problems found")
	} else {
		fmt.Fprintf(w, "%d problem(s) to fix\n", failed)
	}
	return failed
}

// doctorDocker is what the doctor asks of the engine.
type doctorDocker interface {
	Ping(ctx context.Context) (types.Ping, error)
	ServerVersion(ctx context.Context) (types.Version, error)
	Info(ctx context.Context) (system.Info, error)
	DaemonHost() string
}

// hostResolver resolves names; *net.Resolver satisfies it.
type hostResolver interface {
	LookupHost(ctx context.Context, host string) ([]string, error)
}

// doctor gathers facts through its dependencies; the judge* functions
// turn facts into results.
type doctor struct {
	docker    doctorDocker // nil when the client could not be made
	dockerErr error
	resolver  hostResolver
	http      *http.Client
	listen    func(network, address string) (net.Listener, error)
	diskFree  func(path string) (uint64, error)
	env       func(string) (string, bool)
	// findSelf inspects the container doctor runs in; ok is false outside
	// a container (nil: not looked for).
	findSelf      func(ctx context.Context) (self container.InspectResponse, ok bool, err error)
	skipGitHubAPI bool
	timeout       time.Duration
	closeDocker   func()
}

func newDoctor() *doctor {
	d := &doctor{
		resolver: net.DefaultResolver,
		http:     &http.Client{Timeout: 5 * time.Second},
		listen:   net.Listen,
		diskFree: doctorDiskFree,
		env:      os.LookupEnv,
		timeout:  5 * time.Second,
	}
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		d.dockerErr = err
	} else {
		d.docker = cli
		d.closeDocker = func() { cli.Close() }
		d.findSelf = func(ctx context.Context) (container.InspectResponse, bool, error) {
			a, err := proxy.NewAttacher(ctx, cli, proxy.AttacherOptions{ContainerID: os.Getenv(proxy.EnvContainerID)})
			if err != nil || a == nil {
				return container.InspectResponse{}, false, err
			}
			self, err := cli.ContainerInspect(ctx, a.ContainerID())
			return self, err == nil, err
		}
	}
	return d
}

func (d *doctor) close() {
	if d.closeDocker != nil {
		d.closeDocker()
	}
}

// run performs every check in order.
func (d *doctor) run(ctx context.Context, configPath string) []checkResult {
	var out []checkResult
	cfg, cfgErr := config.LoadController(configPath, d.env)
	out = append(out, judgeConfig(configPath, cfg, cfgErr))
	if cfgErr == nil {
		out = append(out, judgePolicy(cfg))
		out = append(out, judgeAccess(cfg))
		abi := loader.KernelConfinement()
		var nsErr error
		if abi == 0 {
			nsErr = loader.NamespaceConfinement(ctx, "")
		}
		out = append(out, judgeLoader(abi, nsErr, cfg.Loader.Confinement))
	}

	engine, info := d.checkEngine(ctx)
	out = append(out, engine)
	if cfgErr == nil && cfg.Engine == config.EngineSwarm {
		out = append(out, d.checkSwarm(ctx, cfg, info)...)
	}

	if cfgErr != nil {
		out = append(out, checkSkip("state_dir", "the configuration did not load"))
	} else {
		out = append(out, d.checkStateDir(cfg.StateDir))
		if info != nil && d.findSelf != nil {
			ctx, cancel := context.WithTimeout(ctx, d.timeout)
			if self, inContainer, err := d.findSelf(ctx); err != nil {
				out = append(out, checkWarn("state mount", "set "+proxy.EnvContainerID+" to this container's ID or name", "cannot tell whether doctor runs in a container: %v", err))
			} else if inContainer {
				out = append(out, judgeStateMount(cfg.StateDir, self.Mounts))
			}
			cancel()
		}
	}
	if info != nil {
		out = append(out, d.checkDockerRoot(info.DockerRootDir))
	} else {
		out = append(out, checkSkip("docker disk", "the engine did not answer"))
	}

	if cfgErr != nil {
		for _, name := range []string{"github", "webhook", "dns", "ports"} {
			out = append(out, checkSkip(name, "the configuration did not load"))
		}
		return out
	}
	out = append(out, judgeCredentials(cfg.GitHub)...)
	if cfg.GitHub != nil && !d.skipGitHubAPI {
		out = append(out, d.checkGitHubAPI(ctx, cfg.GitHub))
	}
	out = append(out, d.checkDNS(ctx, cfg.Domain))
	out = append(out, d.checkPorts(ctx, cfg)...)
	return out
}

// --- configuration ---

// judgeConfig reports whether the configuration loaded and validated.
func judgeConfig(path string, cfg *config.Controller, err error) checkResult {
	where := path
	if where == "" {
		where = "(no --config: defaults and SLIPWAY_* variables)"
	}
	if err != nil {
		fix := "correct the configuration (docs/configuration.md)"
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
			fix = "a file it names is missing or unreadable: create it, or make it readable by the user Slipway runs as (uid 10001 in the container)"
		}
		return checkFail("config", fix, "%s: %v", where, err)
	}
	mode := "local mode (no github section)"
	if cfg.GitHub != nil {
		mode = fmt.Sprintf("%d repo(s)", len(cfg.Repos))
	}
	return checkOK("config", "%s: domain %s, %s, tls %s", where, cfg.Domain, mode, cfg.TLS.Mode)
}

// judgePolicy validates the policy relaxations, global and per repo.
func judgePolicy(cfg *config.Controller) checkResult {
	var errs []error
	n := 0
	count := func(p config.Policy) int {
		return len(p.Allow) + len(p.CapAdd) + len(p.Sysctls) + len(p.ExternalNetworks) + len(p.ExternalVolumes)
	}
	if err := policy.FromConfig(cfg.Policy).Validate(); err != nil {
		errs = append(errs, err)
	}
	n += count(cfg.Policy)
	for _, repo := range cfg.Repos {
		if err := policy.FromConfig(repo.Policy).Validate(); err != nil {
			errs = append(errs, fmt.Errorf("repos %s: %w", repo.Name, err))
		}
		n += count(repo.Policy)
	}
	if len(errs) > 0 {
		return checkFail("policy", "name rule IDs from docs/security.md, or remove the relaxation",
			"%s", strings.ReplaceAll(errors.Join(errs...).Error(), "\n", "; "))
	}
	if n == 0 {
		return checkOK("policy", "every rule enforced (no relaxations)")
	}
	return checkOK("policy", "%d relaxation(s), all valid", n)
}

// judgeLoader says what confines the process that loads pull requests'
// compose files, given the kernel's Landlock ABI (0: none), whether a child
// could confine itself in a mount namespace instead (nsErr, asked only
// without Landlock) and loader.confinement.
func judgeLoader(abi int, nsErr error, mode string) checkResult {
	const name = "loader"
	switch {
	case abi >= 4:
		return checkOK(name, "compose files load in a child confined by Landlock ABI %d: it reads only the checkout and opens no TCP connection", abi)
	case abi > 0:
		return checkWarn(name, "a kernel of 6.7 or later adds the TCP restriction (Landlock ABI 4)",
			"compose files load in a child confined by Landlock ABI %d: it reads only the checkout, but this kernel cannot stop it opening TCP connections", abi)
	case nsErr == nil:
		return checkOK(name, "this kernel has no Landlock; compose files load in a child confined to a mount namespace that holds only the checkout, with no network")
	case mode == config.LoaderRequired:
		return checkFail(name, "run on a Linux kernel with Landlock (5.13 or later, with landlock in the lsm= list), or set loader.confinement: auto",
			"loader.confinement is required, but this kernel has no Landlock and the loader cannot use a mount namespace (%v): every deploy will be refused", nsErr)
	default:
		return checkWarn(name, "run on a Linux kernel with Landlock (5.13 or later, with landlock in the lsm= list); loader.confinement: required refuses to load without it",
			"this kernel has no Landlock and the loader cannot use a mount namespace (%v): compose files load without kernel confinement, and only the pre-load path checks keep compose-go from reading host files", nsErr)
	}
}

// --- engine ---

// minAPIVersion is the oldest Engine API Slipway is tested against.
const minAPIVersion = "1.41"

// engineFacts is what the doctor learnt from the engine.
type engineFacts struct {
	Host      string
	ClientErr error
	PingErr   error
	Version   types.Version
}

func (d *doctor) checkEngine(ctx context.Context) (checkResult, *system.Info) {
	if d.docker == nil {
		return judgeEngine(engineFacts{ClientErr: d.dockerErr}), nil
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	f := engineFacts{Host: d.docker.DaemonHost()}
	if _, err := d.docker.Ping(ctx); err != nil {
		f.PingErr = err
		return judgeEngine(f), nil
	}
	v, err := d.docker.ServerVersion(ctx)
	if err != nil {
		f.PingErr = err
		return judgeEngine(f), nil
	}
	f.Version = v
	var info *system.Info
	if i, err := d.docker.Info(ctx); err == nil {
		info = &i
	}
	return judgeEngine(f), info
}

// judgeEngine reports engine access and version.
func judgeEngine(f engineFacts) checkResult {
	const name = "engine"
	switch {
	case f.ClientErr != nil:
		return checkFail(name, "set DOCKER_HOST to the engine's address (unix:///var/run/docker.sock, tcp://host:2376)", "docker client: %v", f.ClientErr)
	case f.PingErr != nil:
		msg := f.PingErr.Error()
		switch {
		case strings.Contains(msg, "permission denied"):
			return checkFail(name, "run Slipway as a member of the socket's group; in a container: --group-add (group_add:) $(stat -c %g /var/run/docker.sock)",
				"no access to the Docker socket at %s: %v", f.Host, f.PingErr)
		case strings.Contains(msg, "no such file") || strings.Contains(msg, "connection refused") || strings.Contains(msg, "Cannot connect"):
			return checkFail(name, "start the Docker Engine, or point DOCKER_HOST at it; in a container, mount the socket: -v /var/run/docker.sock:/var/run/docker.sock",
				"cannot reach the Docker Engine at %s: %v", f.Host, f.PingErr)
		}
		return checkFail(name, "check that the Docker Engine at DOCKER_HOST is running and answers", "engine at %s: %v", f.Host, f.PingErr)
	}
	v := f.Version
	if v.APIVersion != "" && versions.LessThan(v.APIVersion, minAPIVersion) {
		return checkWarn(name, "upgrade the Docker Engine to 20.10 or later",
			"Docker Engine %s (API %s) at %s: older than API %s, which Slipway is tested with", v.Version, v.APIVersion, f.Host, minAPIVersion)
	}
	return checkOK(name, "Docker Engine %s (API %s, %s/%s) at %s", v.Version, v.APIVersion, v.Os, v.Arch, f.Host)
}

// --- disk ---

// Free-space thresholds.
const (
	stateDirWarn   = 1 << 30
	stateDirFail   = 100 << 20
	dockerRootWarn = 10 << 30
	dockerRootFail = 2 << 30
)

// diskFree returns the bytes available to unprivileged users under path.
func doctorDiskFree(path string) (uint64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(path, &st); err != nil {
		return 0, err
	}
	return uint64(st.Bavail) * uint64(st.Bsize), nil
}

// existingParent returns path or its nearest existing ancestor.
func existingParent(path string) (string, bool) {
	p := filepath.Clean(path)
	for {
		if _, err := os.Stat(p); err == nil {
			return p, p == filepath.Clean(path)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return p, false
		}
		p = parent
	}
}

// checkStateDir checks that state_dir (or the directory it will be created
// in) is writable and has room.
func (d *doctor) checkStateDir(dir string) checkResult {
	at, exists := existingParent(dir)
	var writeErr error
	if f, err := os.CreateTemp(at, ".slipway-doctor-*"); err != nil {
		writeErr = err
	} else {
		f.Close()
		os.Remove(f.Name())
	}
	free, statErr := d.diskFree(at)
	return judgeStateDir(dir, exists, writeErr, free, statErr)
}

// judgeStateDir reports on state_dir.
func judgeStateDir(dir string, exists bool, writeErr error, free uint64, statErr error) checkResult {
	const name = "state_dir"
	if writeErr != nil {
		where := dir
		if !exists {
			where = "the parent directory of " + dir
		}
		return checkFail(name, fmt.Sprintf("make %s writable by the user Slipway runs as (in the container, uid 10001: mount a volume at %s)", where, dir),
			"%s is not writable: %v", where, writeErr)
	}
	note := ""
	if !exists {
		note = " (will be created)"
	}
	if statErr != nil {
		return checkWarn(name, "check the free space by hand (df)", "%s%s is writable; free space unknown: %v", dir, note, statErr)
	}
	return judgeFree(name, dir+note, free, stateDirWarn, stateDirFail)
}

// judgeStateMount reports how state_dir reaches a containerised Slipway.
// Previews may bind-mount files of their checkout, which lives under
// state_dir; the engine resolves bind sources on the host, so state_dir
// must be the same path on the host and in the container.
func judgeStateMount(stateDir string, mounts []container.MountPoint) checkResult {
	const name = "state mount"
	fix := fmt.Sprintf("mount the host's %s at the same path: -v %s:%s (docker-compose.yml does)", stateDir, stateDir, stateDir)
	var best *container.MountPoint
	for i, m := range mounts {
		rel, err := filepath.Rel(m.Destination, stateDir)
		if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			continue
		}
		if best == nil || len(m.Destination) > len(best.Destination) {
			best = &mounts[i]
		}
	}
	switch {
	case best == nil:
		return checkWarn(name, fix, "%s is in the container's own filesystem: lost with the container, and previews that bind-mount files of their checkout fail", stateDir)
	case best.Type != "bind":
		return checkWarn(name, fix, "%s is on %s %s: previews that bind-mount files of their checkout fail (the engine looks for them on the host)", stateDir, best.Type, best.Name)
	}
	rel, _ := filepath.Rel(best.Destination, stateDir)
	if host := filepath.Join(best.Source, rel); host != filepath.Clean(stateDir) {
		return checkWarn(name, fix, "%s is the host's %s: previews that bind-mount files of their checkout fail (the engine looks for them at %s on the host)", stateDir, host, stateDir)
	}
	if !best.RW {
		return checkFail(name, "mount it read-write", "%s is mounted read-only", stateDir)
	}
	return checkOK(name, "%s is the host's %s, at the same path", stateDir, stateDir)
}

// checkDockerRoot checks the free space under Docker's root directory, when
// this process can see it (not from inside a container or for a remote engine).
func (d *doctor) checkDockerRoot(root string) checkResult {
	const name = "docker disk"
	if root == "" {
		return checkSkip(name, "the engine did not say where its root directory is")
	}
	free, err := d.diskFree(root)
	if err != nil {
		return checkWarn(name, "check its free space on the engine's host: df "+root,
			"cannot see Docker's root directory %s from here (a remote engine, or Slipway in a container): %v", root, err)
	}
	return judgeFree(name, "Docker's root directory "+root, free, dockerRootWarn, dockerRootFail)
}

// judgeFree turns free space into a verdict.
func judgeFree(name, what string, free, warnBelow, failBelow uint64) checkResult {
	size := units.BytesSize(float64(free))
	switch {
	case free < failBelow:
		return checkFail(name, "free disk space (docker system prune, or a larger disk)", "%s: only %s free", what, size)
	case free < warnBelow:
		return checkWarn(name, "free disk space soon (docker system prune, or a larger disk)", "%s: %s free", what, size)
	}
	return checkOK(name, "%s: %s free", what, size)
}

// --- GitHub ---

// judgeCredentials reports on the GitHub token or App key and the webhook
// secret. The configuration has already refused to load when a named file
// is missing.
func judgeCredentials(g *config.GitHub) []checkResult {
	if g == nil {
		return []checkResult{
			checkOK("github", "local mode: no github section, no credentials needed"),
			checkOK("webhook", "local mode: no webhooks are received"),
		}
	}
	var out []checkResult
	switch {
	case g.AppID != 0:
		if err := checkAppKey(g.PrivateKey); err != nil {
			out = append(out, checkFail("github", "set github.private_key_file to the App's private key (the .pem file GitHub generated)",
				"GitHub App %d: private key unusable: %v", g.AppID, err))
		} else {
			out = append(out, checkOK("github", "GitHub App %d with a readable RSA private key", g.AppID))
		}
	case g.Token != "":
		out = append(out, checkOK("github", "token set (%d characters)", len(g.Token)))
	default:
		out = append(out, checkFail("github", "set github.token_file (or app_id and private_key_file)", "no GitHub credentials"))
	}
	secrets := g.WebhookSecrets()
	switch {
	case len(secrets) == 0:
		out = append(out, checkFail("webhook", "set github.webhook_secret_file to the secret entered in the webhook's settings", "no webhook secret"))
	case slices.ContainsFunc(secrets, func(s string) bool { return len(s) < 16 }):
		out = append(out, checkWarn("webhook", "use a long random secret: openssl rand -hex 32", "webhook secret set, but shorter than 16 characters"))
	default:
		out = append(out, checkOK("webhook", "%d webhook secret(s) set", len(secrets)))
	}
	return out
}

// checkAppKey parses a GitHub App private key (PKCS#1 or PKCS#8 RSA).
func checkAppKey(key string) error {
	block, _ := pem.Decode([]byte(key))
	if block == nil {
		return errors.New("no PEM block")
	}
	if _, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return nil
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return fmt.Errorf("not an RSA private key: %w", err)
	}
	if _, isRSA := k.(*rsa.PrivateKey); !isRSA {
		return errors.New("not an RSA private key")
	}
	return nil
}

// githubAnswer is what a GET /user or /app returned.
type githubAnswer struct {
	URL    string
	Status int
	Who    string
	Err    error
}

// checkGitHubAPI asks GitHub who the credentials belong to.
func (d *doctor) checkGitHubAPI(ctx context.Context, g *config.GitHub) checkResult {
	base := strings.TrimSuffix(g.APIURL, "/") + "/"
	hc := *d.http
	path := "user"
	if g.AppID != 0 {
		path = "app"
		atr, err := ghinstallation.NewAppsTransport(transportOf(d.http), g.AppID, []byte(g.PrivateKey))
		if err != nil {
			return checkSkip("github api", "the App key is unusable")
		}
		atr.BaseURL = strings.TrimSuffix(base, "/")
		hc.Transport = atr
	} else if g.Token == "" {
		return checkSkip("github api", "no credentials")
	}
	a := githubAnswer{URL: base + path}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		a.Err = err
		return judgeGitHubAPI(a)
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("User-Agent", "slipway-doctor")
	if g.AppID == 0 {
		req.Header.Set("Authorization", "Bearer "+g.Token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		a.Err = err
		return judgeGitHubAPI(a)
	}
	defer resp.Body.Close()
	a.Status = resp.StatusCode
	var who struct{ Login, Slug, Name string }
	if json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&who) == nil {
		a.Who = cmp.Or(who.Login, who.Slug, who.Name)
	}
	return judgeGitHubAPI(a)
}

func transportOf(c *http.Client) http.RoundTripper {
	if c.Transport != nil {
		return c.Transport
	}
	return http.DefaultTransport
}

// judgeGitHubAPI reports whether GitHub accepted the credentials. An
// unreachable GitHub is a warning: doctor may run before the network is.
func judgeGitHubAPI(a githubAnswer) checkResult {
	const name = "github api"
	switch {
	case a.Err != nil:
		return checkWarn(name, "check outbound HTTPS to github.api_url (firewall, proxy: HTTPS_PROXY)", "could not reach %s: %v", a.URL, a.Err)
	case a.Status == http.StatusOK:
		who := a.Who
		if who == "" {
			who = "(unnamed)"
		}
		return checkOK(name, "%s accepted the credentials: %s", a.URL, who)
	case a.Status == http.StatusUnauthorized:
		return checkFail(name, "the token (or App key) is wrong, expired or revoked: make a new one", "%s answered 401 Unauthorized", a.URL)
	case a.Status == http.StatusForbidden || a.Status == http.StatusTooManyRequests:
		return checkWarn(name, "wait for the rate limit, or check the token's permissions", "%s answered %d", a.URL, a.Status)
	}
	return checkWarn(name, "check github.api_url (GitHub Enterprise: https://HOST/api/v3/)", "%s answered %d", a.URL, a.Status)
}

// --- DNS ---

// dnsProbeLabel is the name looked up under the domain to test the wildcard.
const dnsProbeLabel = "slipway-doctor-check"

// dnsFacts is what resolving the domain and a name under it gave.
type dnsFacts struct {
	Domain       string
	Wildcard     []string
	WildcardErr  error
	Apex         []string
	ApexErr      error
	LocalhostTLD bool
}

func (d *doctor) checkDNS(ctx context.Context, domain string) checkResult {
	f := dnsFacts{Domain: domain}
	if domain == "localhost" || strings.HasSuffix(domain, ".localhost") {
		f.LocalhostTLD = true
		return judgeDNS(f)
	}
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	f.Wildcard, f.WildcardErr = d.resolver.LookupHost(ctx, dnsProbeLabel+"."+domain)
	f.Apex, f.ApexErr = d.resolver.LookupHost(ctx, domain)
	return judgeDNS(f)
}

// judgeDNS reports whether preview hosts resolve.
func judgeDNS(f dnsFacts) checkResult {
	const name = "dns"
	probe := dnsProbeLabel + "." + f.Domain
	if f.LocalhostTLD {
		return checkOK(name, "*.%s is loopback in browsers and curl: previews on this machine only", f.Domain)
	}
	if f.WildcardErr != nil || len(f.Wildcard) == 0 {
		return checkFail(name, fmt.Sprintf("add a wildcard DNS record *.%s (A/AAAA) pointing at this host", f.Domain),
			"%s does not resolve: previews at pr-<N>.%s will not either (%v)", probe, f.Domain, f.WildcardErr)
	}
	wild := strings.Join(f.Wildcard, ", ")
	if f.ApexErr != nil || len(f.Apex) == 0 {
		return checkWarn(name, fmt.Sprintf("add a record for %s itself (the dashboard and webhooks live there), or set github.dashboard_url", f.Domain),
			"*.%s resolves to %s, but %s itself does not", f.Domain, wild, f.Domain)
	}
	if !slices.ContainsFunc(f.Apex, func(a string) bool { return slices.Contains(f.Wildcard, a) }) {
		return checkWarn(name, "point *."+f.Domain+" and "+f.Domain+" at the same host, unless a proxy in front routes them",
			"*.%s resolves to %s but %s to %s", f.Domain, wild, f.Domain, strings.Join(f.Apex, ", "))
	}
	return checkOK(name, "*.%s resolves to %s, as %s does", f.Domain, wild, f.Domain)
}

// --- ports ---

// portFacts is what trying to bind one listen address gave.
type portFacts struct {
	Key     string // listen.http or listen.https
	Addr    string
	BindErr error
	// Slipway is true when the address is taken by a Slipway that answers
	// /healthz (doctor run next to a running server).
	Slipway bool
}

func (d *doctor) checkPorts(ctx context.Context, cfg *config.Controller) []checkResult {
	keys := []struct{ key, addr string }{{"listen.http", cfg.Listen.HTTP}}
	if cfg.TLS.Mode != config.TLSOff {
		keys = append(keys, struct{ key, addr string }{"listen.https", cfg.Listen.HTTPS})
	}
	var out []checkResult
	httpIsSlipway := false
	for i, k := range keys {
		f := portFacts{Key: k.key, Addr: k.addr}
		ln, err := d.listen("tcp", k.addr)
		if err == nil {
			ln.Close()
		} else {
			f.BindErr = err
			if errors.Is(err, syscall.EADDRINUSE) {
				if i == 0 {
					f.Slipway = d.answersHealthz(ctx, k.addr)
					httpIsSlipway = f.Slipway
				} else {
					f.Slipway = httpIsSlipway // the HTTPS port of the Slipway found on the HTTP port
				}
			}
		}
		out = append(out, judgePort(f))
	}
	return out
}

// answersHealthz reports whether a Slipway answers /healthz at addr.
func (d *doctor) answersHealthz(ctx context.Context, addr string) bool {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/healthz", nil)
	if err != nil {
		return false
	}
	// A redirect to HTTPS (TLS on) is followed without verifying the
	// certificate: only the local /healthz answer is read.
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	resp, err := hc.Do(req)
	if err != nil {
		return false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	return resp.StatusCode == http.StatusOK && strings.TrimSpace(string(b)) == "ok"
}

// judgePort reports whether a listen address can be bound.
func judgePort(f portFacts) checkResult {
	const name = "ports"
	switch {
	case f.BindErr == nil:
		return checkOK(name, "%s %s is free", f.Key, f.Addr)
	case f.Slipway:
		return checkOK(name, "%s %s is in use by a running Slipway (its /healthz answers)", f.Key, f.Addr)
	case errors.Is(f.BindErr, syscall.EADDRINUSE):
		return checkFail(name, fmt.Sprintf("stop what listens there (ss -ltnp), or set %s to another address", f.Key),
			"%s %s is in use by another program", f.Key, f.Addr)
	case errors.Is(f.BindErr, syscall.EACCES) || errors.Is(f.BindErr, syscall.EPERM):
		return checkFail(name, "ports below 1024 need privilege: run as root, or setcap cap_net_bind_service=+ep on the binary, or in a container sysctl net.ipv4.ip_unprivileged_port_start=0 (docker-compose.yml sets it)",
			"%s %s cannot be bound: %v", f.Key, f.Addr, f.BindErr)
	}
	return checkFail(name, fmt.Sprintf("check %s (host:port)", f.Key), "%s %s cannot be bound: %v", f.Key, f.Addr, f.BindErr)
}
