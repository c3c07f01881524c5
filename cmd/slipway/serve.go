package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/docker/docker/client"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/slipwayhq/slipway/access"
	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller"
	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/dashboard"
	"github.com/slipwayhq/slipway/proxy"
	"github.com/slipwayhq/slipway/webhooks"
)

func newServeCmd(g *globals) *cobra.Command {
	var configPath string
	cmd := &cobra.Command{
		Use:   "serve --config slipway.yaml",
		Short: "Run the controller, the preview proxy and the dashboard",
		Long: `Run Slipway: the preview proxy for pr-<N>.<domain> (with automatic TLS
when configured), the GitHub webhook receiver and reconciler, /healthz,
/readyz and /metrics, and the dashboard.

Without a github section in the configuration, serve runs in local mode: the
proxy and dashboard serve the environments made by "slipway up".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.LoadController(configPath, nil)
			if err != nil {
				return err
			}
			if g.logFormat == "" {
				g.logFormat = cfg.LogFormat
			}
			log, err := g.logger()
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, log, serveOptions{})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", "", "slipway.yaml (SLIPWAY_* environment variables override it)")
	return cmd
}

// serveOptions let the demo and tests run serve on their own listeners.
type serveOptions struct {
	httpListener net.Listener
	// ready is called with the server's HTTP address once it serves.
	ready func(addr net.Addr)
}

// serve runs every part of Slipway until ctx ends, then shuts down
// gracefully.
func serve(ctx context.Context, cfg *config.Controller, log *slog.Logger, so serveOptions) error {
	p, err := buildParts(ctx, cfg, log, so)
	if err != nil {
		return err
	}
	defer p.close()
	return p.run(ctx)
}

// parts are the pieces of a running Slipway, built and wired together by
// buildParts and run by run. In local mode (no github section) there is no
// controller.
type parts struct {
	cfg *config.Controller
	log *slog.Logger
	so  serveOptions

	docker   *client.Client
	registry *prometheus.Registry
	engine   previewEngine
	masker   *controller.Masker
	hosts    stack.HostOptions // how preview URLs look: the scheme and port QA opens
	mux      *http.ServeMux    // the control surface, behind guard

	routes   *proxy.Routes
	observer routeObserver
	attacher *proxy.Attacher // nil unless Slipway runs in a container
	handler  *proxy.Handler
	tls      *proxy.TLS // nil with tls.mode off
	// wakes carries the sleeping projects the proxy was asked for, from the
	// proxy to the controller (nil in local mode, where nothing wakes them).
	wakes chan string

	controller *controller.Controller // nil in local mode
	history    dashboard.History      // nil in local mode: there is no controller history
	actions    dashboard.Actions
	stateDir   string // where the dashboard keeps its session key; empty in local mode
	dashboard  *dashboard.Server
	guard      *previewGuard
	server     *proxy.Server

	gate        *access.Gate   // who may open previews
	tokens      *access.Store  // bypass tokens and share links; nil while every preview is public
	permissions *ghPermissions // the gate's GitHub permission answers, filled by buildController

	closers []func() // what close releases, in the order it was acquired
}

// wakeBuffer is how many wake-ups the proxy can hand over before the
// controller takes them. The proxy asks again for a wake that has not
// started a container after a wake_timeout, so one dropped when the buffer
// is full is asked for again.
const wakeBuffer = 64

// buildParts makes every part of Slipway and wires them together; none of
// them runs until run. On error, what was made is released.
func buildParts(ctx context.Context, cfg *config.Controller, log *slog.Logger, so serveOptions) (_ *parts, err error) {
	p := &parts{cfg: cfg, log: log, so: so}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	if p.docker, err = dockerClient(ctx); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, func() { p.docker.Close() })
	p.registry = prometheus.NewRegistry()
	p.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	fw, err := firewallFor(ctx, cfg.Firewall, log)
	if err != nil {
		return nil, err
	}
	// The engine tells the route table (made by buildProxy, before anything
	// runs) when a starting container's own healthcheck first passes, so a
	// deployed or woken preview is served then, not one Docker health
	// interval later.
	p.engine = newPreviewEngine(cfg, p.docker, log, stack.EngineOptions{BuildParallelism: cfg.Limits.Builds, ReadyTimeout: cfg.ReadyTimeout.D(), Firewall: fw, BuildNetwork: buildNetworkFor(cfg.BuildNetwork, fw, log),
		OnCheckPassed: func(id string, started time.Time) { p.routes.CheckPassed(id, started) }},
		// On a swarm, the proxy's container joins a preview's routed
		// overlays while its images build, and keeps off them while they
		// are removed.
		attachedProxy{p})
	// Every secret Slipway holds is masked in what it shows: build and
	// service logs, comments, statuses, pages.
	p.masker = controller.NewMasker(cfg.HeldSecrets())
	p.hosts = stack.HostOptions{Domain: cfg.Domain, Scheme: "http", Port: portOf(cfg.Listen.HTTP, so.httpListener)}
	if cfg.TLS.Mode != config.TLSOff {
		p.hosts.Scheme, p.hosts.Port = "https", portOf(cfg.Listen.HTTPS, nil)
	}
	if p.hosts.Key, err = hostKey(cfg); err != nil {
		return nil, err
	}
	if err := p.buildProxy(ctx); err != nil {
		return nil, err
	}
	p.mux = http.NewServeMux()
	p.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	p.mux.Handle("GET /readyz", &readiness{docker: p.docker, synced: p.observer.Synced()})
	p.mux.Handle("GET /metrics", promhttp.HandlerFor(p.registry, promhttp.HandlerOpts{Registry: p.registry}))
	p.gate.Register(p.mux) // GitHub sign-in for private previews
	p.registerAccessAPI()
	p.actions = dashboard.EngineActions{Engine: p.engine}
	if cfg.GitHub != nil {
		if err := p.buildController(); err != nil {
			return nil, err
		}
	}
	if err := p.buildDashboard(); err != nil {
		return nil, err
	}
	p.guard = newPreviewGuard(p.docker, log, guardWait)
	p.server, err = proxy.NewServer(proxy.ServerOptions{
		Domain: cfg.Domain, HTTPAddr: cfg.Listen.HTTP, HTTPSAddr: cfg.Listen.HTTPS, HTTPListener: so.httpListener,
		Proxy: p.handler, Control: p.guard.Wrap(p.mux), TLS: p.tls, NoIndex: cfg.NoIndex, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// buildProxy makes the preview proxy: its route table, the observer that
// fills it from the engine, the attacher that keeps a containerised
// Slipway on the previews' networks, the handler and TLS.
func (p *parts) buildProxy(ctx context.Context) error {
	cfg, log := p.cfg, p.log
	// The proxy serves a container's route only when the host is one the
	// configured host templates give its own pull request (in local mode:
	// the defaults under localhost, or the configured domain).
	tmpl := cfg.HostTemplates()
	tmpl.Key = p.hosts.Key // hostname: random
	p.routes = proxy.NewRoutes(log, tmpl)
	onSwarm := cfg.Engine == config.EngineSwarm
	// In a container, the proxy reaches environments only over networks its
	// container joined: keep it on the project networks of its previews
	// (on a swarm, the overlays of the services it routes to, wherever
	// their tasks run).
	attachOpts := proxy.AttacherOptions{ContainerID: os.Getenv(proxy.EnvContainerID), Domain: cfg.Domain, Logger: log}
	if onSwarm {
		attachOpts.Services = p.docker
	}
	attacher, err := proxy.NewAttacher(ctx, p.docker, attachOpts)
	if err != nil {
		return err
	}
	var backendIP func(string, map[string]string) string
	if attacher != nil {
		log.Info("running in a container: joining project networks", "container", attacher.ContainerID()[:12])
		backendIP = attacher.BackendIP
		p.attacher = attacher
	}
	// On a swarm the routes come from the services' tasks, at their own
	// addresses on the preview's overlay network.
	if onSwarm {
		log.Info("engine swarm: routes come from the services' tasks, at their addresses on the preview overlays")
		if attacher == nil {
			log.Warn("engine swarm, but Slipway does not run in a container: the host cannot reach the tasks' overlay addresses, so previews will not answer; run Slipway in a container on a manager (examples/swarm, docs/swarm.md)")
		}
		p.observer = proxy.NewSwarmObserver(p.docker, p.routes, proxy.SwarmObserverOptions{BackendIP: backendIP, Logger: log})
	} else {
		p.observer = proxy.NewObserver(p.docker, p.routes, proxy.ObserverOptions{BackendIP: backendIP, Logger: log})
	}
	pm, err := proxy.NewMetrics(p.registry)
	if err != nil {
		return err
	}
	trusted, err := proxy.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("trusted_proxies: %w", err)
	}
	p.permissions = &ghPermissions{cfg: cfg}
	if err := p.buildGate(trusted); err != nil {
		return err
	}
	handlerOpts := proxy.HandlerOptions{TrustedProxies: trusted, Metrics: pm, Gate: p.gate, Logger: log}
	if cfg.GitHub != nil {
		wakes := make(chan string, wakeBuffer)
		p.wakes = wakes
		handlerOpts.OnWake = func(project string) {
			select {
			case wakes <- project:
			default: // full: the proxy asks again after a wake_timeout
			}
		}
		handlerOpts.WakeTimeout = cfg.WakeTimeout.D()
	}
	p.handler = proxy.NewHandler(p.routes, handlerOpts)
	p.closers = append(p.closers, p.handler.Close)
	if cfg.TLS.Mode == config.TLSOff {
		return nil
	}
	var root []byte
	if cfg.TLS.CARoot != "" {
		if root, err = os.ReadFile(cfg.TLS.CARoot); err != nil {
			return fmt.Errorf("tls.ca_root: %w", err)
		}
	}
	p.tls, err = proxy.NewTLS(p.routes, proxy.TLSOptions{
		Mode: cfg.TLS.Mode, Domain: cfg.Domain, Email: cfg.TLS.Email, CA: cfg.TLS.CA, CARootPEM: root,
		StorageDir: filepath.Join(cfg.StateDir, "certmagic"), DNSProvider: cfg.TLS.DNSProvider, DNSAPIToken: cfg.TLS.DNSAPIToken,
		// The CA asks on port 80; when the HTTP listener is elsewhere (port
		// 80 forwarded to it), certmagic must not try to bind :80 itself.
		HTTPChallengePort: portOf(cfg.Listen.HTTP, p.so.httpListener),
		Metrics:           pm, Logger: log,
	})
	if err != nil {
		return err
	}
	p.closers = append(p.closers, p.tls.Stop)
	return nil
}

// buildController makes what the github section asks for: the history
// store, the GitHub client and reporter, the controller and the webhook
// receiver on the control surface.
func (p *parts) buildController() error {
	cfg, log := p.cfg, p.log
	st, err := store.Open(filepath.Join(cfg.StateDir, store.FileName), store.Options{})
	if err != nil {
		return err
	}
	p.closers = append(p.closers, func() { st.Close() })
	p.history, p.stateDir = st, cfg.StateDir
	// Webhook dedupe without a disk sync on the request path.
	deliveries := st.DeliveryLog(log)
	p.closers = append(p.closers, func() { deliveries.Close() })
	ghc, err := gh.New(gh.Options{APIURL: cfg.GitHub.APIURL, Token: cfg.GitHub.Token, AppID: cfg.GitHub.AppID, PrivateKey: []byte(cfg.GitHub.PrivateKey), Logger: log})
	if err != nil {
		return err
	}
	p.permissions.c = ghc
	reporter := gh.NewReporter(ghc, gh.ReporterOptions{Mask: p.masker.String, Logger: log})
	dash := cfg.GitHub.DashboardURL
	if dash == "" {
		dash = p.hosts.URL(cfg.Domain)
	}
	p.controller, err = controller.New(controller.Options{
		Config: cfg, GitHub: ghc, Reporter: reporter, Engine: p.engine, Store: st, Routes: p.routes, Masker: p.masker,
		LastRequest: p.handler.LastRequest, Hosts: p.hosts, Shares: shareLinks{cfg: cfg, tokens: p.tokens},
		DashboardURL: dash, Logger: log, Registerer: p.registry,
	})
	if err != nil {
		return err
	}
	wh, err := webhooks.NewHandler(webhooks.Options{
		Secrets:    cfg.GitHub.WebhookSecrets(),
		AllowRepo:  func(name string) bool { _, ok := cfg.Repo(name); return ok },
		Deliveries: deliveries,
		Enqueuer:   webhooks.EnqueueFunc(p.controller.HandleEvent),
		Journal:    p.controller, // commands are written before they are acknowledged
		Logger:     log,
		Registerer: p.registry,
	})
	if err != nil {
		return err
	}
	p.mux.Handle(webhooks.Path, wh)
	p.actions = controllerActions{p.controller}
	return nil
}

// buildDashboard makes the dashboard and puts it behind every path of the
// control surface the others do not take.
func (p *parts) buildDashboard() error {
	cfg := p.cfg
	noCredentials := cfg.Dashboard.Token == "" && cfg.Dashboard.Password == "" && cfg.Dashboard.User == ""
	var tokens dashboard.TokenAdmin
	if p.tokens != nil { // a nil *access.Store must not become a non-nil interface
		tokens = p.tokens
	}
	var err error
	p.dashboard, err = dashboard.New(dashboard.Options{
		Engine: maskedLogs{p.engine, p.masker}, History: p.history, Stats: p.docker, Requests: p.handler, Routes: p.routes, Actions: p.actions,
		Token: cfg.Dashboard.Token, User: cfg.Dashboard.User, Password: cfg.Dashboard.Password,
		Public: cfg.Dashboard.Public, PublicLogs: cfg.Dashboard.PublicLogs,
		// Local mode without credentials: the dashboard answers loopback clients only.
		Insecure:   cfg.GitHub == nil && noCredentials,
		SessionKey: sessionKey(p.stateDir),
		BaseURL:    p.hosts.URL(cfg.Domain) + "/",
		PreviewURL: p.hosts.URL,
		RepoTTL:    repoTTL(cfg),
		AccessNote: accessNote(cfg),
		Grants:     tokens,
		Logger:     p.log,
	})
	if err != nil {
		return err
	}
	p.mux.Handle("/", p.dashboard)
	return nil
}

// leaveTimeout bounds leaving the project networks at a stop, within
// Docker's stop grace period.
const leaveTimeout = 5 * time.Second

// run runs the parts until ctx ends or one fails, then stops them all.
func (p *parts) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if p.attacher != nil {
		// Deferred first, so it runs last: once the attacher has stopped,
		// leave every project network (a stopped container on a swarm
		// overlay that goes away meanwhile cannot start again).
		defer func() {
			lctx, lcancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
			defer lcancel()
			if err := p.attacher.LeaveAll(lctx); err != nil {
				p.log.Warn("leave project networks before stopping", "err", err)
			}
		}()
		defer p.attacher.Start(ctx)()
	}
	g, gctx := errgroup.WithContext(ctx)
	if p.controller != nil {
		g.Go(func() error { return p.controller.Run(gctx) })
		g.Go(func() error { p.relayWakes(gctx); return nil })
	} else {
		p.log.Info("no github section: local mode, serving environments made by slipway up")
	}
	g.Go(func() error { return p.dashboard.Run(gctx) })
	g.Go(func() error { return p.guard.Run(gctx) })
	g.Go(func() error { return p.observer.Run(gctx) })
	if p.tls != nil {
		if err := p.tls.Start(gctx); err != nil {
			cancel() // stop what already runs before releasing what it uses
			g.Wait()
			return err
		}
	}
	g.Go(func() error { return p.server.Run(gctx) })
	p.log.Info("slipway serving", "http", p.server.HTTPAddr().String(), "domain", p.cfg.Domain, "tls", p.cfg.TLS.Mode, "version", version)
	if p.so.ready != nil {
		p.so.ready(p.server.HTTPAddr())
	}
	err := g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}

// relayWakes hands the projects the proxy was asked for while asleep to
// the controller until ctx ends.
func (p *parts) relayWakes(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case project := <-p.wakes:
			p.controller.OnWake(project)
		}
	}
}

// close releases what buildParts acquired, the latest first.
func (p *parts) close() {
	for i := len(p.closers) - 1; i >= 0; i-- {
		p.closers[i]()
	}
	p.closers = nil
}

// routeObserver fills the route table from the engine: proxy.Observer
// from the Docker host's containers, proxy.SwarmObserver from a swarm's
// tasks.
type routeObserver interface {
	Run(ctx context.Context) error
	Synced() <-chan struct{}
}

// readiness answers /readyz: the engine answers and the route table has
// been filled once.
type readiness struct {
	docker client.SystemAPIClient
	synced <-chan struct{}
}

func (r *readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	ctx, cancel := context.WithTimeout(req.Context(), 2*time.Second)
	defer cancel()
	select {
	case <-r.synced:
	default:
		http.Error(w, "route table not synced with the engine yet", http.StatusServiceUnavailable)
		return
	}
	if _, err := r.docker.Ping(ctx); err != nil {
		http.Error(w, "docker engine unreachable", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ready")
}

// portOf is the port of a listen address (or of a listener when given).
func portOf(addr string, ln net.Listener) int {
	if ln != nil {
		if a, ok := ln.Addr().(*net.TCPAddr); ok {
			return a.Port
		}
	}
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0
	}
	var n int
	fmt.Sscanf(p, "%d", &n)
	return n
}
