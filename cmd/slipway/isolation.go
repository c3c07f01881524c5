package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
)

// firewallFor returns the firewall the configuration asks for: in auto
// mode iptables when Slipway runs as root in the network namespace of the
// engine's bridges (on the host), else none with a warning (in a container
// of its own, rules would guard that container, not the host).
func firewallFor(ctx context.Context, mode string, log *slog.Logger) (stack.Firewall, error) {
	if mode == config.FirewallOff {
		return nil, nil
	}
	if mode == config.FirewallAuto && !bridgesHere() {
		log.Warn("the engine's bridges are not in this network namespace (Slipway runs in a container): preview networks are not firewalled from the host; add the host rules from docs/security.md")
		return nil, nil
	}
	fw, err := stack.NewIPTables(ctx, log)
	switch {
	case err == nil:
		return fw, nil
	case mode == config.FirewallIPTables:
		return nil, fmt.Errorf("firewall: iptables: %w", err)
	case errors.Is(err, stack.ErrNoFirewall):
		log.Warn("preview networks are not firewalled from the host", "why", err.Error())
		return nil, nil
	}
	return nil, err
}

// buildNetworkFor returns the engine's build network mode for the
// configured build_network, warning when builds get no network or an
// unfirewalled one.
func buildNetworkFor(mode string, fw stack.Firewall, log *slog.Logger) string {
	switch {
	case fw != nil:
	case mode == config.BuildNetworkAuto || mode == "":
		log.Warn("builds run without a network: preview networks are not firewalled here; set build_network: bridge once host rules (docs/security.md) keep br-+ interfaces from the host and the metadata address")
	case mode == config.BuildNetworkBridge:
		log.Warn("build_network is bridge without Slipway's firewall: builds reach the host unless the host's own rules stop them")
	}
	switch mode {
	case config.BuildNetworkBridge:
		return stack.BuildNetworkBridge
	case config.BuildNetworkNone:
		return stack.BuildNetworkNone
	}
	return stack.BuildNetworkAuto
}

// bridgesHere reports whether the engine's default bridge is an interface
// of this network namespace, where iptables rules then apply to it.
func bridgesHere() bool {
	_, err := os.Stat("/sys/class/net/docker0")
	return err == nil
}

// networkLister is what the guard needs of the engine.
type networkLister interface {
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
}

// previewGuard refuses control-surface requests (webhooks, dashboard,
// metrics) that come from a preview's network: a preview reaches other
// previews only the way everyone does, through the proxy, and never
// Slipway's own endpoints. It keeps the subnets of managed networks,
// refreshed in the background, so a request only reads a snapshot.
type previewGuard struct {
	docker  networkLister
	log     *slog.Logger
	subnets atomic.Pointer[[]netip.Prefix]
}

// newPreviewGuard lists the managed networks once, then every `every`
// until ctx ends.
func newPreviewGuard(ctx context.Context, docker networkLister, log *slog.Logger, every time.Duration) *previewGuard {
	g := &previewGuard{docker: docker, log: log}
	g.refresh(ctx)
	go func() {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				g.refresh(ctx)
			}
		}
	}()
	return g
}

func (g *previewGuard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.fromPreview(r.RemoteAddr) {
			http.Error(w, "forbidden: requests from preview environments cannot reach Slipway's control surface", http.StatusForbidden)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (g *previewGuard) fromPreview(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	subnets := g.subnets.Load()
	if subnets == nil {
		return false
	}
	for _, p := range *subnets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// refresh lists the managed networks; on failure the last known subnets stay.
func (g *previewGuard) refresh(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	nets, err := g.docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", contract.ManagedFilter))})
	if err != nil {
		g.log.Warn("list preview networks for the control-surface guard", "err", err)
		return
	}
	subnets := previewSubnets(nets)
	g.subnets.Store(&subnets)
}

// previewSubnets returns the subnets of networks. Pure.
func previewSubnets(nets []network.Summary) []netip.Prefix {
	var out []netip.Prefix
	for _, n := range nets {
		for _, c := range n.IPAM.Config {
			if p, err := netip.ParsePrefix(c.Subnet); err == nil {
				out = append(out, p.Masked())
			}
		}
	}
	return out
}
