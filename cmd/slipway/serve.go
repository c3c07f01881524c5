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
	cli, err := dockerClient(ctx)
	if err != nil {
		return err
	}
	defer cli.Close()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	fw, err := firewallFor(ctx, cfg.Firewall, log)
	if err != nil {
		return err
	}
	engine := stack.NewEngine(cli, log, stack.EngineOptions{BuildParallelism: cfg.Limits.Builds, ReadyTimeout: cfg.ReadyTimeout.D(), Firewall: fw, BuildNetwork: buildNetworkFor(cfg.BuildNetwork, fw, log)})
	// The proxy serves a container's route only when the host is one the
	// configured host templates give its own pull request (in local mode:
	// the defaults under localhost, or the configured domain).
	routes := proxy.NewRoutes(log, cfg.HostTemplates())
	observerOpts := proxy.ObserverOptions{Logger: log}
	// In a container, the proxy reaches environments only over networks its
	// container joined: keep it on the project networks of its previews.
	attacher, err := proxy.NewAttacher(ctx, cli, proxy.AttacherOptions{ContainerID: os.Getenv(proxy.EnvContainerID), Domain: cfg.Domain, Logger: log})
	if err != nil {
		return err
	}
	if attacher != nil {
		log.Info("running in a container: joining project networks", "container", attacher.ContainerID()[:12])
		observerOpts.BackendIP = attacher.BackendIP
		defer attacher.Start(ctx)()
	}
	observer := proxy.NewObserver(cli, routes, observerOpts)
	pm, err := proxy.NewMetrics(reg)
	if err != nil {
		return err
	}
	trusted, err := proxy.ParseTrustedProxies(cfg.TrustedProxies)
	if err != nil {
		return fmt.Errorf("trusted_proxies: %w", err)
	}
	var ctrl *controller.Controller
	handler := proxy.NewHandler(routes, proxy.HandlerOptions{
		TrustedProxies: trusted, Metrics: pm, Logger: log,
		OnWake: func(project string) {
			if ctrl != nil {
				go ctrl.OnWake(project)
			}
		},
	})
	defer handler.Close()

	var tlsm *proxy.TLS
	if cfg.TLS.Mode != config.TLSOff {
		var root []byte
		if cfg.TLS.CARoot != "" {
			if root, err = os.ReadFile(cfg.TLS.CARoot); err != nil {
				return fmt.Errorf("tls.ca_root: %w", err)
			}
		}
		tlsm, err = proxy.NewTLS(routes, proxy.TLSOptions{
			Mode: cfg.TLS.Mode, Domain: cfg.Domain, Email: cfg.TLS.Email, CA: cfg.TLS.CA, CARootPEM: root,
			StorageDir: filepath.Join(cfg.StateDir, "certmagic"), DNSProvider: cfg.TLS.DNSProvider, DNSAPIToken: cfg.TLS.DNSAPIToken,
			// The CA asks on port 80; when the HTTP listener is elsewhere (port
			// 80 forwarded to it), certmagic must not try to bind :80 itself.
			HTTPChallengePort: portOf(cfg.Listen.HTTP, so.httpListener),
			Metrics:           pm, Logger: log,
		})
		if err != nil {
			return err
		}
		defer tlsm.Stop()
	}

	mux := http.NewServeMux()
	ready := &readiness{docker: cli, synced: observer.Synced()}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.Handle("GET /readyz", ready)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))

	// Every secret Slipway holds is masked in what it shows: build and
	// service logs, comments, statuses, pages.
	secrets := map[string]string{"dashboard token": cfg.Dashboard.Token, "dashboard password": cfg.Dashboard.Password, "dns token": cfg.TLS.DNSAPIToken}
	if g := cfg.GitHub; g != nil {
		secrets["github token"], secrets["webhook secret"], secrets["private key"] = g.Token, g.WebhookSecret, g.PrivateKey
	}
	for name, s := range cfg.Secrets {
		secrets[name] = s.Value
	}
	masker := controller.NewMasker(secrets)

	// How preview URLs look: the scheme and port QA opens.
	hostOpts := stack.HostOptions{Domain: cfg.Domain, Scheme: "http", Port: portOf(cfg.Listen.HTTP, so.httpListener)}
	if cfg.TLS.Mode != config.TLSOff {
		hostOpts.Scheme, hostOpts.Port = "https", portOf(cfg.Listen.HTTPS, nil)
	}
	g, gctx := errgroup.WithContext(ctx)
	var history dashboard.History // nil in local mode: there is no controller history
	var actions dashboard.Actions = dashboard.EngineActions{Engine: engine}
	var stateDir string
	if cfg.GitHub != nil {
		st, err := store.Open(filepath.Join(cfg.StateDir, store.FileName), store.Options{})
		if err != nil {
			return err
		}
		defer st.Close()
		history, stateDir = st, cfg.StateDir
		// Webhook dedupe without a disk sync on the request path.
		deliveries := st.DeliveryLog(log)
		defer deliveries.Close()
		ghc, err := gh.New(gh.Options{APIURL: cfg.GitHub.APIURL, Token: cfg.GitHub.Token, AppID: cfg.GitHub.AppID, PrivateKey: []byte(cfg.GitHub.PrivateKey), Logger: log})
		if err != nil {
			return err
		}
		reporter := gh.NewReporter(ghc, gh.ReporterOptions{Mask: masker.String, Logger: log})
		dash := cfg.GitHub.DashboardURL
		if dash == "" {
			dash = hostOpts.URL(cfg.Domain)
		}
		ctrl, err = controller.New(controller.Options{
			Config: cfg, GitHub: ghc, Reporter: reporter, Engine: engine, Store: st, Routes: routes, Masker: masker,
			LastRequest: handler.LastRequest, Hosts: hostOpts,
			DashboardURL: dash, Logger: log, Registerer: reg,
		})
		if err != nil {
			return err
		}
		wh, err := webhooks.NewHandler(webhooks.Options{
			Secrets:    cfg.GitHub.WebhookSecrets(),
			AllowRepo:  func(name string) bool { _, ok := cfg.Repo(name); return ok },
			Deliveries: deliveries,
			Enqueuer:   webhooks.EnqueueFunc(ctrl.HandleEvent),
			Logger:     log,
			Registerer: reg,
		})
		if err != nil {
			return err
		}
		mux.Handle(webhooks.Path, wh)
		actions = controllerActions{ctrl}
		g.Go(func() error { return ctrl.Run(gctx) })
	} else {
		log.Info("no github section: local mode, serving environments made by slipway up")
	}

	noCredentials := cfg.Dashboard.Token == "" && cfg.Dashboard.Password == "" && cfg.Dashboard.User == ""
	dash, err := dashboard.New(dashboard.Options{
		Engine: maskedLogs{engine, masker}, History: history, Stats: cli, Requests: handler, Routes: routes, Actions: actions,
		Token: cfg.Dashboard.Token, User: cfg.Dashboard.User, Password: cfg.Dashboard.Password,
		Public: cfg.Dashboard.Public, PublicLogs: cfg.Dashboard.PublicLogs,
		// Local mode without credentials: the dashboard answers loopback clients only.
		Insecure:   cfg.GitHub == nil && noCredentials,
		SessionKey: sessionKey(stateDir),
		BaseURL:    hostOpts.URL(cfg.Domain) + "/",
		PreviewURL: hostOpts.URL,
		RepoTTL:    repoTTL(cfg),
		Logger:     log,
	})
	if err != nil {
		return err
	}
	mux.Handle("/", dash)
	g.Go(func() error { return dash.Run(gctx) })

	guard := newPreviewGuard(cli, log, guardWait)
	g.Go(func() error { return guard.Run(gctx) })
	srv, err := proxy.NewServer(proxy.ServerOptions{
		Domain: cfg.Domain, HTTPAddr: cfg.Listen.HTTP, HTTPSAddr: cfg.Listen.HTTPS, HTTPListener: so.httpListener,
		Proxy: handler, Control: guard.Wrap(mux), TLS: tlsm, Logger: log,
	})
	if err != nil {
		return err
	}
	g.Go(func() error { return observer.Run(gctx) })
	if tlsm != nil {
		if err := tlsm.Start(gctx); err != nil {
			return err
		}
	}
	g.Go(func() error { return srv.Run(gctx) })
	log.Info("slipway serving", "http", srv.HTTPAddr().String(), "domain", cfg.Domain, "tls", cfg.TLS.Mode, "version", version)
	if so.ready != nil {
		so.ready(srv.HTTPAddr())
	}
	err = g.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
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
