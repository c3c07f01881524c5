package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

func summary(id string, managed bool, subnets ...string) network.Summary {
	s := network.Summary{ID: id, Labels: map[string]string{}}
	if managed {
		s.Labels[contract.LabelManaged] = "true"
	}
	for _, sn := range subnets {
		s.IPAM.Config = append(s.IPAM.Config, network.IPAMConfig{Subnet: sn})
	}
	return s
}

func TestClassify(t *testing.T) {
	previews := []netip.Prefix{netip.MustParsePrefix("172.20.0.0/16"), netip.MustParsePrefix("fd00:1::/64")}
	certain := &guardView{previews: previews, certain: true}
	unsure := &guardView{previews: previews}
	tests := []struct {
		remote  string
		certain verdict // once the guard knows every managed network
		unsure  verdict // before its first listing, or while it catches up
	}{
		{"172.20.3.4:5555", verdictPreview, verdictPreview},
		{"[fd00:1::9]:80", verdictPreview, verdictPreview},
		{"[::ffff:172.20.0.7]:1", verdictPreview, verdictPreview},
		{"172.20.3.4", verdictPreview, verdictPreview},
		// Addresses the engine may give a network the guard does not know yet.
		{"172.21.0.1:5555", verdictPass, verdictUnclassified},
		{"10.1.2.3:80", verdictPass, verdictUnclassified},
		{"192.168.64.2:80", verdictPass, verdictUnclassified},
		{"100.64.0.9:80", verdictPass, verdictUnclassified},
		{"[fd00:2::1]:80", verdictPass, verdictUnclassified},
		{"[::ffff:10.0.0.1]:80", verdictPass, verdictUnclassified},
		// Never a container network's: GitHub, the internet, the host itself.
		{"127.0.0.1:1234", verdictPass, verdictPass},
		{"[::1]:1234", verdictPass, verdictPass},
		{"203.0.113.9:443", verdictPass, verdictPass},
		{"140.82.112.1:443", verdictPass, verdictPass},
		{"[2001:db8::1]:443", verdictPass, verdictPass},
		// Link-local: how a container on an IPv6 network reaches the host's bridge.
		{"169.254.1.1:80", verdictPreview, verdictPreview},
		{"[fe80::1%br-1234]:80", verdictPreview, verdictPreview},
		{"[fe80::42:acff:fe14:7]:80", verdictPreview, verdictPreview},
		{"not-an-address", verdictPass, verdictPass},
	}
	for _, tt := range tests {
		if got := classify(tt.remote, certain); got != tt.certain {
			t.Errorf("%s, networks known: %v, want %v", tt.remote, got, tt.certain)
		}
		if got := classify(tt.remote, unsure); got != tt.unsure {
			t.Errorf("%s, networks not known yet: %v, want %v", tt.remote, got, tt.unsure)
		}
	}
}

// scriptedEngine is an engine whose listings, inspections and event
// streams the test releases one by one.
type scriptedEngine struct {
	lists    chan []network.Summary // each NetworkList answers the next one
	inspects chan network.Inspect   // each NetworkInspect answers the next one (ID "": not found)
	listing  chan struct{}          // receives when a NetworkList call starts
	mu       sync.Mutex
	streams  []chan error // error channel of each subscription
	msgs     chan events.Message
	subs     chan struct{} // receives when a subscription is made
}

func newScriptedEngine() *scriptedEngine {
	return &scriptedEngine{
		lists: make(chan []network.Summary), inspects: make(chan network.Inspect), listing: make(chan struct{}, 10),
		msgs: make(chan events.Message), subs: make(chan struct{}, 10),
	}
}

func (f *scriptedEngine) NetworkList(ctx context.Context, _ network.ListOptions) ([]network.Summary, error) {
	f.listing <- struct{}{}
	select {
	case nets := <-f.lists:
		return nets, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (f *scriptedEngine) NetworkInspect(ctx context.Context, id string, _ network.InspectOptions) (network.Inspect, error) {
	select {
	case n := <-f.inspects:
		if n.ID == "" {
			return n, errdefs.NotFound(errors.New("no such network"))
		}
		return n, nil
	case <-ctx.Done():
		return network.Inspect{}, ctx.Err()
	}
}

func (f *scriptedEngine) Events(ctx context.Context, _ events.ListOptions) (<-chan events.Message, <-chan error) {
	errs := make(chan error, 1)
	f.mu.Lock()
	f.streams = append(f.streams, errs)
	f.mu.Unlock()
	f.subs <- struct{}{}
	return f.msgs, errs
}

// breakStream ends the latest subscription, as a restarted engine does.
func (f *scriptedEngine) breakStream() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.streams[len(f.streams)-1] <- errors.New("unexpected EOF")
}

func networkEvent(action events.Action, id string) events.Message {
	return events.Message{Type: events.NetworkEventType, Action: action, Actor: events.Actor{ID: id}}
}

// until waits for the guard's view to satisfy ok, woken by its changes.
func until(t *testing.T, ctx context.Context, g *previewGuard, what string, ok func(*guardView) bool) {
	t.Helper()
	for {
		next := g.nextChange()
		if ok(g.view.Load()) {
			return
		}
		select {
		case <-next:
		case <-ctx.Done():
			t.Fatalf("the guard never got to: %s", what)
		}
	}
}

func code(g *previewGuard, remote string) int {
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	r := httptest.NewRequest("POST", "/webhooks/github", nil)
	r.RemoteAddr = remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code
}

// The guard fails closed until it has listed the managed networks, while it
// inspects a network just created, and after a lost event stream until it
// has listed again; public and loopback sources always pass.
func TestPreviewGuardFailsClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng := newScriptedEngine()
	g := newPreviewGuard(eng, slog.New(slog.DiscardHandler), 0)
	const lan, github, host, preview = "10.0.0.5:40000", "140.82.112.1:443", "127.0.0.1:5555", "172.20.3.4:5555"
	check := func(when string, want map[string]int) {
		t.Helper()
		for remote, status := range want {
			if got := code(g, remote); got != status {
				t.Errorf("%s: from %s %d, want %d", when, remote, got, status)
			}
		}
	}
	check("before Run", map[string]int{lan: 503, preview: 503, github: 204, host: 204})

	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- g.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	<-eng.subs
	<-eng.listing
	check("while the first listing is under way", map[string]int{lan: 503, preview: 503, github: 204, host: 204})

	eng.lists <- []network.Summary{summary("n1", true, "172.20.0.0/16")}
	until(t, ctx, g, "certain after the first listing", func(v *guardView) bool { return v.certain })
	check("after the first listing", map[string]int{lan: 204, preview: 403, github: 204, host: 204})

	// A network just created: uncertain until its inspection answers.
	eng.msgs <- networkEvent(events.ActionCreate, "n2")
	until(t, ctx, g, "uncertain while inspecting", func(v *guardView) bool { return !v.certain })
	check("while a new network is inspected", map[string]int{lan: 503, "10.99.0.7:1": 503, preview: 403, github: 204})
	eng.inspects <- summary("n2", true, "10.99.0.0/24")
	until(t, ctx, g, "certain after the inspection", func(v *guardView) bool { return v.certain })
	check("a new preview network", map[string]int{"10.99.0.7:1": 403, lan: 204})

	// Networks Slipway does not manage change nothing; one that vanished
	// before its inspection neither.
	eng.msgs <- networkEvent(events.ActionCreate, "n3")
	eng.inspects <- summary("n3", false, "10.0.0.0/24")
	eng.msgs <- networkEvent(events.ActionCreate, "gone")
	eng.inspects <- network.Inspect{}
	until(t, ctx, g, "certain", func(v *guardView) bool { return v.certain })
	check("an unmanaged network", map[string]int{lan: 204, "10.99.0.7:1": 403})

	eng.msgs <- networkEvent(events.ActionDestroy, "n2")
	until(t, ctx, g, "forgot n2", func(v *guardView) bool { return len(v.previews) == 1 })
	check("a removed preview network", map[string]int{"10.99.0.7:1": 204})

	// A lost stream: uncertain (known previews still refused) until the
	// guard has subscribed and listed again.
	eng.breakStream()
	until(t, ctx, g, "uncertain after a lost stream", func(v *guardView) bool { return !v.certain })
	check("after a lost stream", map[string]int{lan: 503, preview: 403, github: 204, host: 204})
	<-eng.subs
	<-eng.listing
	eng.lists <- []network.Summary{summary("n1", true, "172.20.0.0/16"), summary("n4", true, "192.168.16.0/20")}
	until(t, ctx, g, "certain after listing again", func(v *guardView) bool { return v.certain })
	check("after listing again", map[string]int{lan: 204, preview: 403, "192.168.16.9:1": 403})
}

// A request the guard cannot classify yet waits for it to catch up rather
// than failing at once, and is refused when its wait ends first.
func TestPreviewGuardWaitsToClassify(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	eng := newScriptedEngine()
	g := newPreviewGuard(eng, slog.New(slog.DiscardHandler), time.Hour)
	h := g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	serve := func(ctx context.Context, remote string) <-chan int {
		out := make(chan int, 1)
		go func() {
			r := httptest.NewRequest("GET", "/", nil).WithContext(ctx)
			r.RemoteAddr = remote
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			out <- w.Code
		}()
		return out
	}
	gaveUp, giveUp := context.WithCancel(ctx)
	impatient := serve(gaveUp, "10.0.0.5:1")
	giveUp()
	if got := <-impatient; got != http.StatusServiceUnavailable {
		t.Errorf("a request that stopped waiting: %d, want 503", got)
	}

	lan, preview := serve(ctx, "10.0.0.5:1"), serve(ctx, "172.20.0.9:1")
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); g.Run(runCtx) }()
	defer func() { stop(); <-done }()
	<-eng.listing
	eng.lists <- []network.Summary{summary("n1", true, "172.20.0.0/16")}
	if got := <-lan; got != http.StatusNoContent {
		t.Errorf("a LAN request that waited for the listing: %d, want 204", got)
	}
	if got := <-preview; got != http.StatusForbidden {
		t.Errorf("a preview's request that waited for the listing: %d, want 403", got)
	}
}

// countingEngine counts the guard's listings.
type countingEngine struct {
	guardEngine
	lists atomic.Int32
}

func (c *countingEngine) NetworkList(ctx context.Context, o network.ListOptions) ([]network.Summary, error) {
	c.lists.Add(1)
	return c.guardEngine.NetworkList(ctx, o)
}

// Against the engine: a container on a preview network created after the
// guard started is refused as soon as the engine reports the network (its
// event, not a new listing), while one on a network Slipway does not
// manage gets through.
func TestPreviewGuardFollowsEngine(t *testing.T) {
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	eng := &countingEngine{guardEngine: cli}
	g := newPreviewGuard(eng, slog.New(slog.DiscardHandler), 0)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); g.Run(runCtx) }()
	defer func() { stop(); <-done }()
	until(t, ctx, g, "certain after the first listing", func(v *guardView) bool { return v.certain })

	project := dockertest.UniqueName("guard")
	previewNet := createNetwork(t, ctx, cli, project+"_default", map[string]string{contract.LabelManaged: "true", contract.LabelProject: project})
	otherNet := createNetwork(t, ctx, cli, project+"-other", map[string]string{"test": project})
	until(t, ctx, g, "knows the new preview network", func(v *guardView) bool {
		for _, p := range v.previews {
			if p == previewNet.subnet {
				return true
			}
		}
		return false
	})
	if n := eng.lists.Load(); n != 1 {
		t.Errorf("the guard listed networks %d times, want once: the new network came by its event", n)
	}

	for _, tt := range []struct {
		net  testNetwork
		want string
	}{
		{previewNet, "403 Forbidden"},
		{otherNet, "control surface"},
	} {
		url := serveControl(t, tt.net.gateway, g)
		id := runIdle(t, ctx, cli, tt.net.name)
		out, _ := execInContainer(t, ctx, cli, id, "wget", "-q", "-O", "-", url)
		if !strings.Contains(out, tt.want) {
			t.Errorf("from %s: %q, want %q", tt.net.name, out, tt.want)
		}
	}
}

type testNetwork struct {
	name    string
	subnet  netip.Prefix
	gateway netip.Addr
}

// createNetwork creates a bridge network, removed at the end of the test.
func createNetwork(t *testing.T, ctx context.Context, cli *client.Client, name string, labels map[string]string) testNetwork {
	t.Helper()
	created, err := cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.NetworkRemove(context.Background(), created.ID) })
	ins, err := cli.NetworkInspect(ctx, created.ID, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range ins.IPAM.Config {
		sub, err1 := netip.ParsePrefix(c.Subnet)
		gw, err2 := netip.ParseAddr(c.Gateway)
		if err1 == nil && err2 == nil && sub.Addr().Is4() {
			return testNetwork{name: name, subnet: sub.Masked(), gateway: gw}
		}
	}
	t.Fatalf("network %s has no IPv4 subnet and gateway: %+v", name, ins.IPAM.Config)
	return testNetwork{}
}

// serveControl serves a stand-in control surface behind the guard on the
// host's address on a network, and returns its URL.
func serveControl(t *testing.T, host netip.Addr, g *previewGuard) string {
	t.Helper()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(host, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(g.Wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "control surface")
	})))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL + "/"
}

// runIdle starts a busybox container that idles on a network, removed at
// the end of the test.
func runIdle(t *testing.T, ctx context.Context, cli *client.Client, net string) string {
	t.Helper()
	c, err := cli.ContainerCreate(ctx,
		&container.Config{Image: dockertest.BusyboxImage, Cmd: []string{"sleep", "600"}},
		&container.HostConfig{NetworkMode: container.NetworkMode(net), Init: ptr(true)}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}) })
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func ptr[T any](v T) *T { return &v }
