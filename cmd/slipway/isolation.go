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
	"sync"
	"sync/atomic"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

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

// guardEngine is what the preview guard needs of the engine.
type guardEngine interface {
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, networkID string, options network.InspectOptions) (network.Inspect, error)
	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
}

// previewGuard refuses control-surface requests (webhooks, dashboard,
// metrics) that come from a preview's network: a preview reaches other
// previews only the way everyone does, through the proxy, and never
// Slipway's own endpoints.
//
// It knows the subnets of the managed networks by listing them and then
// following the engine's network events, so a preview network is known as
// soon as the engine reports it. It fails closed: while it has no current
// listing (before the first one, and after the event stream broke until it
// has listed again) or is still inspecting a network just created, a
// source it cannot classify — an address in the ranges the engine gives
// container networks (private and CGNAT ranges) outside the subnets known
// to be previews — waits a moment for the guard to catch up, then is
// refused with 503. Public and loopback sources (GitHub's webhooks, an
// operator on the host) are never held back: the engine gives no container
// network such addresses unless its address pools were configured so.
// Requests only read a snapshot.
type previewGuard struct {
	docker guardEngine
	log    *slog.Logger
	// wait bounds how long a request from an unclassified source waits for
	// the guard to catch up before it is refused.
	wait time.Duration

	view atomic.Pointer[guardView]

	mu       sync.Mutex
	previews map[string][]netip.Prefix // subnets of managed networks, by network ID
	synced   bool                      // listed since the current subscription
	settling bool                      // a network just created is being inspected
	changed  chan struct{}             // closed and replaced at every change of view
}

// guardView is what a request is judged by.
type guardView struct {
	previews []netip.Prefix
	// certain: the guard has listed since its current subscription and
	// has applied every event received.
	certain bool
	// next is closed at the guard's next change of view; nil when certain.
	next <-chan struct{}
}

// newPreviewGuard returns a guard that refuses every source it cannot
// classify until Run has listed the managed networks.
func newPreviewGuard(docker guardEngine, log *slog.Logger, wait time.Duration) *previewGuard {
	g := &previewGuard{docker: docker, log: log, wait: wait, previews: map[string][]netip.Prefix{}, changed: make(chan struct{})}
	g.publish()
	return g
}

func (g *previewGuard) Wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch g.judge(r.Context(), r.RemoteAddr) {
		case verdictPreview:
			http.Error(w, "forbidden: requests from preview environments cannot reach Slipway's control surface", http.StatusForbidden)
		case verdictUnclassified:
			w.Header().Set("Retry-After", "5")
			http.Error(w, "Slipway has not yet read the engine's preview networks, so it cannot tell whether this address is a preview's; try again shortly", http.StatusServiceUnavailable)
		default:
			next.ServeHTTP(w, r)
		}
	})
}

// judge classifies a request's remote address, waiting up to g.wait (or
// until ctx ends) for the guard to become certain when it cannot yet.
func (g *previewGuard) judge(ctx context.Context, remote string) verdict {
	v := g.view.Load()
	got := classify(remote, v)
	if got != verdictUnclassified || g.wait <= 0 {
		return got
	}
	t := time.NewTimer(g.wait)
	defer t.Stop()
	for got == verdictUnclassified {
		select {
		case <-v.next:
		case <-t.C:
			return got
		case <-ctx.Done():
			return got
		}
		v = g.view.Load()
		got = classify(remote, v)
	}
	return got
}

// verdict is what the guard makes of a request's source.
type verdict int

const (
	verdictPass         verdict = iota
	verdictPreview              // in a managed network's subnet: 403
	verdictUnclassified         // maybe a container network the guard does not know yet: 503
)

// cgnat is the shared address space (RFC 6598), which engines' address
// pools may use like the private ranges.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// classify judges remote (host:port, or a bare address) by v. Pure.
func classify(remote string, v *guardView) verdict {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return verdictPass // not an IP peer (a unix socket): not a container network
	}
	ip = ip.Unmap().WithZone("") // a zone (fe80::1%br-x) never matches a prefix
	if ip.IsLinkLocalUnicast() {
		// A container on an IPv6 preview network reaches the host's
		// bridge (and, in container mode, Slipway's own address) at a
		// link-local address no listing names; nothing legitimate calls
		// the control surface from one.
		return verdictPreview
	}
	for _, p := range v.previews {
		if p.Contains(ip) {
			return verdictPreview
		}
	}
	if !v.certain && (ip.IsPrivate() || cgnat.Contains(ip)) {
		return verdictUnclassified
	}
	return verdictPass
}

// Run follows the managed networks until ctx ends: it subscribes to the
// engine's network events, lists the managed networks, then applies each
// event; when the stream breaks it subscribes and lists again (events may
// have been missed), uncertain meanwhile. It returns nil when ctx ends.
func (g *previewGuard) Run(ctx context.Context) error {
	const first, most = 100 * time.Millisecond, 5 * time.Second
	backoff := first
	for ctx.Err() == nil {
		if g.watch(ctx) {
			backoff = first
		}
		g.update(func() { g.synced = false })
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, most)
	}
	return nil
}

// networkEvents selects the events that change the set of networks.
// Network events carry no labels: a created network is inspected to learn
// whether it is managed.
func networkEvents() filters.Args {
	return filters.NewArgs(
		filters.Arg("type", string(events.NetworkEventType)),
		filters.Arg("event", string(events.ActionCreate)),
		filters.Arg("event", string(events.ActionDestroy)),
	)
}

// watch subscribes, lists, and applies events until the stream breaks or
// ctx ends. It reports whether the listing succeeded.
func (g *previewGuard) watch(ctx context.Context) bool {
	evCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Subscribe before listing, so that a network created during the
	// listing is not missed.
	msgs, errs := g.docker.Events(evCtx, events.ListOptions{Filters: networkEvents()})
	if err := g.relist(ctx); err != nil {
		if ctx.Err() == nil {
			g.log.Warn("list preview networks for the control-surface guard; refusing unclassified sources until it can", "err", err)
		}
		return false
	}
	for {
		select {
		case <-ctx.Done():
			return true
		case m := <-msgs:
			if err := g.apply(ctx, m); err != nil {
				if ctx.Err() == nil {
					g.log.Warn("control-surface guard: inspect a new network; listing again", "err", err)
				}
				return true
			}
		case err := <-errs:
			if ctx.Err() == nil {
				g.log.Warn("docker network events stream ended for the control-surface guard; subscribing again", "err", err)
			}
			return true
		}
	}
}

// relist replaces the known managed networks with a fresh listing.
func (g *previewGuard) relist(ctx context.Context) error {
	nets, err := g.docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", contract.ManagedFilter))})
	if err != nil {
		return err
	}
	previews := make(map[string][]netip.Prefix, len(nets))
	for _, n := range nets {
		previews[n.ID] = networkSubnets(n)
	}
	g.update(func() { g.previews, g.synced = previews, true })
	return nil
}

// apply applies one network event: a destroyed network is forgotten, a
// created one inspected and kept if it is managed. Until the inspection
// answers the guard is uncertain.
func (g *previewGuard) apply(ctx context.Context, m events.Message) error {
	id := m.Actor.ID
	switch m.Action {
	case events.ActionDestroy:
		g.update(func() { delete(g.previews, id) })
		return nil
	case events.ActionCreate:
	default:
		return nil
	}
	g.update(func() { g.settling = true })
	defer g.update(func() { g.settling = false })
	n, err := g.docker.NetworkInspect(ctx, id, network.InspectOptions{})
	if errdefs.IsNotFound(err) {
		return nil // removed meanwhile; its destroy event follows
	}
	if err != nil {
		return fmt.Errorf("inspect network %s: %w", id, err)
	}
	if n.Labels[contract.LabelManaged] == "true" {
		subnets := networkSubnets(n)
		g.update(func() { g.previews[id] = subnets })
	}
	return nil
}

// update changes the guard's state under its lock and publishes the view
// requests read.
func (g *previewGuard) update(change func()) {
	g.mu.Lock()
	defer g.mu.Unlock()
	change()
	g.publish()
}

// publish stores the view of the current state and wakes whoever waits
// for a change. Called with g.mu held (or before the guard is shared).
func (g *previewGuard) publish() {
	v := &guardView{certain: g.synced && !g.settling}
	for _, subnets := range g.previews {
		v.previews = append(v.previews, subnets...)
	}
	close(g.changed)
	g.changed = make(chan struct{})
	if !v.certain {
		v.next = g.changed
	}
	g.view.Store(v)
}

// nextChange returns a channel closed at the guard's next change of view.
func (g *previewGuard) nextChange() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.changed
}

// networkSubnets returns the subnets of a network. Pure.
func networkSubnets(n network.Summary) []netip.Prefix {
	var out []netip.Prefix
	for _, c := range n.IPAM.Config {
		if p, err := netip.ParsePrefix(c.Subnet); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}

// guardWait is how long a control-surface request from an address the
// guard cannot classify yet waits for it to catch up with the engine (its
// first listing takes milliseconds) before it is refused.
const guardWait = 3 * time.Second
