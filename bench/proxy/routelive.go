package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
	"github.com/slipwayhq/slipway/proxy"
)

// routeLiveRun is one measurement: from Docker's health_status: healthy
// event to the route in the table, and to the first 200 through the proxy.
type routeLiveRun struct {
	ToTable time.Duration
	To200   time.Duration
}

// measureRouteLive starts Slipway's observer and proxy against the real
// engine, then runs busybox httpd containers with a healthcheck one after
// another, polling the proxy back to back until each answers 200.
func measureRouteLive(ctx context.Context, runs int) ([]routeLiveRun, error) {
	cli, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err != nil {
		return nil, fmt.Errorf("docker client: %w", err)
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx); err != nil {
		return nil, fmt.Errorf("ping docker: %w", err)
	}
	if err := dockertest.EnsureBusybox(ctx, cli); err != nil {
		return nil, fmt.Errorf("busybox image: %w", err)
	}

	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// Each run's host is <project>.localhost, the primary host of the
	// repository local/<project>'s PR 1 under this template.
	routes := proxy.NewRoutes(log, contract.HostTemplates{Domain: "localhost", Primary: "{{.Repo}}.{{.Domain}}"})
	obsCtx, stopObs := context.WithCancel(ctx)
	defer stopObs()
	obs := proxy.NewObserver(cli, routes, proxy.ObserverOptions{Logger: log})
	go obs.Run(obsCtx)
	<-obs.Synced()
	h := proxy.NewHandler(routes, proxy.HandlerOptions{Logger: log})
	defer h.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv, err := proxy.NewServer(proxy.ServerOptions{Domain: "localhost", HTTPListener: ln, Proxy: h, Logger: log})
	if err != nil {
		return nil, err
	}
	srvCtx, stopSrv := context.WithCancel(ctx)
	srvDone := make(chan struct{})
	go func() { srv.Run(srvCtx); close(srvDone) }()
	defer func() { stopSrv(); <-srvDone }()
	url := "http://" + srv.HTTPAddr().String() + "/"

	var out []routeLiveRun
	for i := 0; i < runs; i++ {
		r, err := routeLiveOnce(ctx, cli, routes, url)
		if err != nil {
			return out, fmt.Errorf("run %d: %w", i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}

func routeLiveOnce(ctx context.Context, cli *client.Client, routes *proxy.Routes, url string) (routeLiveRun, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	project := dockertest.UniqueName("slipway-bench-")
	host := project + ".localhost"
	netName := contract.ResourceName(project, "default")
	if _, err := cli.NetworkCreate(ctx, netName, network.CreateOptions{
		Labels: map[string]string{contract.LabelManaged: "true", contract.LabelProject: project},
	}); err != nil {
		return routeLiveRun{}, fmt.Errorf("create network: %w", err)
	}
	defer cli.NetworkRemove(context.Background(), netName)

	// When the table first shows the host running.
	var tableMu sync.Mutex
	var tableAt time.Time
	unsub := routes.Subscribe(func(t *proxy.Table) {
		if r := t.Lookup(host); r != nil && r.Phase == proxy.PhaseRunning {
			tableMu.Lock()
			if tableAt.IsZero() {
				tableAt = time.Now()
			}
			tableMu.Unlock()
		}
	})
	defer unsub()

	evs, errs := cli.Events(ctx, events.ListOptions{Filters: filters.NewArgs(
		filters.Arg("type", "container"),
		filters.Arg("event", "health_status"),
		filters.Arg("label", contract.LabelProject+"="+project),
	)})
	healthyAt := make(chan time.Time, 1)
	go func() {
		for {
			select {
			case m := <-evs:
				if m.Action == events.ActionHealthStatusHealthy {
					healthyAt <- time.Unix(0, m.TimeNano)
					return
				}
			case <-errs:
				return
			}
		}
	}()

	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image: dockertest.BusyboxImage,
		Cmd:   []string{"sh", "-c", "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"},
		Labels: map[string]string{
			contract.LabelManaged:   "true",
			contract.LabelProject:   project,
			contract.LabelService:   "web",
			contract.LabelNumber:    "1",
			contract.LabelRepo:      contract.LocalOwner + "/" + project,
			contract.LabelPR:        "1",
			contract.LabelRouteHost: host,
			contract.LabelRoutePort: "8080",
		},
		Healthcheck: &container.HealthConfig{
			Test:     []string{"CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/"},
			Interval: 250 * time.Millisecond,
			Timeout:  2 * time.Second,
			Retries:  20,
		},
	}, &container.HostConfig{}, &network.NetworkingConfig{
		EndpointsConfig: map[string]*network.EndpointSettings{netName: {}},
	}, nil, contract.ContainerName(project, "web", 1))
	if err != nil {
		return routeLiveRun{}, fmt.Errorf("create container: %w", err)
	}
	defer cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return routeLiveRun{}, fmt.Errorf("start container: %w", err)
	}

	// Poll back to back until the first 200.
	httpc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}, Timeout: 5 * time.Second}
	defer httpc.CloseIdleConnections()
	var okAt time.Time
	for okAt.IsZero() {
		if ctx.Err() != nil {
			return routeLiveRun{}, fmt.Errorf("no 200 for %s before the deadline", host)
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		req.Host = host
		r, err := httpc.Do(req)
		if err != nil {
			continue
		}
		io.Copy(io.Discard, r.Body)
		r.Body.Close()
		if r.StatusCode == 200 {
			okAt = time.Now()
		}
	}
	var healthy time.Time
	select {
	case healthy = <-healthyAt:
	case <-ctx.Done():
		return routeLiveRun{}, fmt.Errorf("no health_status: healthy event for %s", host)
	}
	tableMu.Lock()
	defer tableMu.Unlock()
	return routeLiveRun{ToTable: tableAt.Sub(healthy), To200: okAt.Sub(healthy)}, nil
}

// durationStats returns min, median, p90 and max of ds.
func durationStats(ds []time.Duration) (lo, med, p90, hi time.Duration) {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s) == 0 {
		return
	}
	idx := func(q float64) time.Duration { return s[int(q*float64(len(s)-1)+0.5)] }
	return s[0], idx(0.5), idx(0.9), s[len(s)-1]
}
