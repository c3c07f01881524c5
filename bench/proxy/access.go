package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipwayhq/slipway/access"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/proxy"
)

// The access cells: the in-process proxy with the access gate, public
// (what every slipway serve runs) and github with a valid session cookie
// (the hot path of a private preview: the cookie verified, the permission
// answered from the cache). Their ratio is printed side by side.
const (
	targetPublic = "access-public"
	targetGitHub = "access-github"
)

// readEveryone answers GitHub's permission question with "read" for every
// user: the gate asks once per user and repository, then answers from its
// cache, which is what the bench measures.
type readEveryone struct{}

func (readEveryone) Permission(context.Context, string, string) (string, error) { return "read", nil }

// startGated runs startInproc's proxy with the access gate in front, in
// mode (public or github). It returns the headers a client sends (the
// session cookie in github mode).
func startGated(ctx context.Context, mode access.Mode, backend, domain, host, repo, project string) (addr string, headers []string, stop func(), err error) {
	ip, port, err := net.SplitHostPort(backend)
	if err != nil {
		return "", nil, nil, err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	routes := proxy.NewRoutes(log, contract.DefaultHostTemplates(domain, false))
	routes.PutContainer(proxy.Container{
		ID: "bench", Name: contract.ContainerName(project, "web", 1), Project: project, Service: "web", Repo: repo, PR: 1,
		Host: host, Port: port, Running: true, IP: ip,
	})
	secret := make([]byte, 32)
	rand.Read(secret)
	keys, err := access.NewKeyring(secret)
	if err != nil {
		return "", nil, nil, err
	}
	gate, err := access.New(access.Options{
		Domain: domain, ControlURL: "http://" + domain, Keys: keys, Repos: []string{repo}, NoIndex: true,
		AccessFor:   func(string) access.RepoAccess { return access.RepoAccess{Mode: mode} },
		Permissions: readEveryone{}, Logger: log,
	})
	if err != nil {
		return "", nil, nil, err
	}
	m, err := proxy.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		return "", nil, nil, err
	}
	h := proxy.NewHandler(routes, proxy.HandlerOptions{Metrics: m, Gate: gate, Logger: log})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, nil, err
	}
	srv, err := proxy.NewServer(proxy.ServerOptions{Domain: domain, HTTPListener: ln, Proxy: h, Logger: log})
	if err != nil {
		return "", nil, nil, err
	}
	// Both cells send the same cookies (the application's own and the
	// session), so the difference is the gate's work alone.
	c := gate.Session("bench-user", 1)
	headers = []string{fmt.Sprintf("Cookie: app_session=abc123; %s=%s", c.Name, c.Value)}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Run(ctx); close(done) }()
	return srv.HTTPAddr().String(), headers, func() { cancel(); <-done; h.Close() }, nil
}

// printAccessRatios prints access-github's requests/s over access-public's
// in each cell (the bar: at least 0.9×).
func printAccessRatios(cfg config, byKey map[string]*cell) {
	get := func(size, conns int, t string) *cell { return byKey[fmt.Sprintf("%d/%d/%s", size, conns, t)] }
	printed := false
	for _, size := range cfg.sizes {
		for _, conns := range cfg.conns {
			g, p := get(size, conns, targetGitHub), get(size, conns, targetPublic)
			if g == nil || p == nil {
				continue
			}
			if !printed {
				fmt.Printf("\naccess: github (valid session cookie) vs access: public, requests/s: median of the rounds' ratios (lowest–highest round)\n")
				fmt.Printf("%-7s %-6s %12s %12s %20s\n", "size", "conns", "github", "public", "github/public")
				printed = true
			}
			med, lo, hi := pairedRatio(g, p)
			fmt.Printf("%-7s %-6d %12.0f %12.0f %20s\n", sizeName(size), conns, g.median().RPS, p.median().RPS, fmt.Sprintf("%.2f× (%.2f–%.2f)", med, lo, hi))
		}
	}
}
