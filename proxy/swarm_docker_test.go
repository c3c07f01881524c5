package proxy

import (
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// createOverlay creates a preview's attachable overlay network, labelled
// as the swarm engine labels it, removed at cleanup (once its tasks are
// gone).
func createOverlay(t *testing.T, cli *client.Client, project string) (id, name string) {
	t.Helper()
	name = contract.ResourceName(project, "default")
	resp, err := cli.NetworkCreate(context.Background(), name, network.CreateOptions{
		Driver: "overlay", Scope: "swarm", Attachable: true,
		Labels: map[string]string{contract.LabelManaged: "true", contract.LabelProject: project, contract.LabelNetwork: "default", "com.docker.stack.namespace": project},
	})
	if err != nil {
		t.Fatalf("create overlay network: %v", err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(time.Minute)
		for {
			removeNetwork(cli, resp.ID)
			_, err := cli.NetworkInspect(context.Background(), resp.ID, network.InspectOptions{})
			if errdefs.IsNotFound(err) || time.Now().After(deadline) {
				return
			}
			time.Sleep(200 * time.Millisecond) // a task's endpoint is still going
		}
	})
	return resp.ID, name
}

// createWebService creates project's web service: busybox httpd on 8080
// with a healthcheck, DNS round-robin, the labels Slipway's swarm engine
// sets, exposed at host; removed at cleanup.
func createWebService(t *testing.T, cli *client.Client, img, project, netID, host string, replicas uint64, mods ...func(*swarm.ServiceSpec)) string {
	t.Helper()
	labels := map[string]string{
		contract.LabelManaged:   "true",
		contract.LabelProject:   project,
		contract.LabelService:   "web",
		contract.LabelRepo:      contract.LocalOwner + "/" + project,
		contract.LabelPR:        "1",
		contract.LabelRouteHost: host,
		contract.LabelRoutePort: "8080",
	}
	svcLabels := map[string]string{contract.LabelManaged: "true", contract.LabelProject: project, "com.docker.stack.namespace": project}
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: project + "_web", Labels: svcLabels},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: &swarm.ContainerSpec{
				Image:           img,
				Command:         []string{"httpd", "-f", "-p", "8080", "-h", "/etc"},
				Labels:          labels,
				Healthcheck:     &container.HealthConfig{Test: []string{"CMD", "true"}, Interval: 200 * time.Millisecond, StartPeriod: time.Second},
				StopGracePeriod: func() *time.Duration { d := time.Second; return &d }(),
			},
			Networks: []swarm.NetworkAttachmentConfig{{Target: netID}},
		},
		Mode:         swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &replicas}},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	for _, m := range mods {
		m(&spec)
	}
	resp, err := cli.ServiceCreate(context.Background(), spec, swarm.ServiceCreateOptions{})
	if err != nil {
		t.Fatalf("create service: %v", err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		_ = cli.ServiceRemove(ctx, resp.ID)
		// Swarm removes the task containers after the service; wait for it.
		waitFor(t, time.Minute, "the service's containers to go", func() (bool, string) {
			cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "com.docker.swarm.service.id="+resp.ID))})
			return err == nil && len(cs) == 0, "containers left"
		})
	})
	return resp.ID
}

// scale sets a service's replicas.
func scale(t *testing.T, cli *client.Client, id string, replicas uint64) {
	t.Helper()
	updateService(t, cli, id, func(s *swarm.ServiceSpec) { s.Mode.Replicated.Replicas = &replicas })
}

// updateService changes a service's spec with fn.
func updateService(t *testing.T, cli *client.Client, id string, fn func(*swarm.ServiceSpec)) {
	t.Helper()
	ctx := context.Background()
	s, _, err := cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fn(&s.Spec)
	if _, err := cli.ServiceUpdate(ctx, id, s.Version, s.Spec, swarm.ServiceUpdateOptions{}); err != nil {
		t.Fatalf("scale service: %v", err)
	}
}

// runningTaskIPs are the addresses of id's running tasks on network name.
func runningTaskIPs(t *testing.T, cli *client.Client, id, name string) []string {
	t.Helper()
	tasks, err := cli.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("service", id), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, tk := range tasks {
		if tk.Status.State != swarm.TaskStateRunning {
			continue
		}
		for _, a := range tk.NetworksAttachments {
			if a.Network.Spec.Name == name && len(a.Addresses) > 0 {
				ips = append(ips, strings.SplitN(a.Addresses[0], "/", 2)[0])
			}
		}
	}
	sort.Strings(ips)
	return ips
}

// The SwarmObserver routes a preview's host to its tasks' own addresses on
// the overlay network (replicas are backends; no virtual IP), which a
// container on that network reaches; a service scaled to 0 keeps its host
// as stopped; a removed one leaves the table.
func TestSwarmObserverRoutesRealTasks(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.Busybox(t)
	dockertest.UseSwarm(t, cli)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	project := dockertest.UniqueName("slipway-swarmroute-")
	host := project + ".localhost"
	netID, netName := createOverlay(t, cli, project)

	routes := NewRoutes(nil, projectHosts)
	obs := NewSwarmObserver(cli, routes, SwarmObserverOptions{Poll: 200 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- obs.Run(ctx) }()
	defer func() { cancel(); <-done }()
	select {
	case <-obs.Synced():
	case <-time.After(30 * time.Second):
		t.Fatal("swarm observer never listed the services")
	}

	id := createWebService(t, cli, img, project, netID, host, 2)
	var backends []string
	waitFor(t, 2*time.Minute, "two running backends", func() (bool, string) {
		r := routes.Lookup(host)
		if r == nil {
			return false, "no route"
		}
		backends = nil
		for _, b := range r.Backends {
			backends = append(backends, b.Addr)
		}
		return r.Phase == PhaseRunning && len(r.Backends) == 2, string(r.Phase) + " " + strings.Join(backends, ",")
	})
	var want []string
	for _, ip := range runningTaskIPs(t, cli, id, netName) {
		want = append(want, ip+":8080")
	}
	sort.Strings(backends)
	if strings.Join(backends, ",") != strings.Join(want, ",") {
		t.Errorf("backends %v, want the tasks' addresses %v", backends, want)
	}
	svc, _, err := cli.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, vip := range svc.Endpoint.VirtualIPs {
		for _, b := range backends {
			if strings.HasPrefix(b, strings.SplitN(vip.Addr, "/", 2)[0]+":") {
				t.Errorf("backend %s is a virtual IP", b)
			}
		}
	}

	// A container on the overlay network (where a containerised Slipway
	// sits) reaches every backend.
	for _, b := range backends {
		probeFrom(t, cli, img, netName, "http://"+b+"/hostname")
	}

	scale(t, cli, id, 0)
	waitFor(t, 2*time.Minute, "the route stopped after scaling to 0", func() (bool, string) {
		r := routes.Lookup(host)
		if r == nil {
			return false, "no route"
		}
		return r.Phase == PhaseStopped, string(r.Phase)
	})

	if err := cli.ServiceRemove(ctx, id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "the route gone with the service", func() (bool, string) {
		r := routes.Lookup(host)
		if r == nil {
			return true, ""
		}
		return false, string(r.Phase)
	})
}

// probeFrom fetches url with wget from a container on network netName and
// fails the test unless it succeeds.
func probeFrom(t *testing.T, cli *client.Client, img, netName, url string) {
	t.Helper()
	ctx := context.Background()
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"wget", "-q", "-O", "/dev/null", url}},
		&container.HostConfig{}, &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{netName: {}}}, nil, "")
	if err != nil {
		t.Fatalf("create probe: %v", err)
	}
	defer cli.ContainerRemove(ctx, resp.ID, container.RemoveOptions{Force: true})
	waitCh, errCh := cli.ContainerWait(ctx, resp.ID, container.WaitConditionNextExit)
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start probe: %v", err)
	}
	select {
	case w := <-waitCh:
		if w.StatusCode != 0 {
			t.Errorf("wget %s from network %s: exit %d", url, netName, w.StatusCode)
		}
	case err := <-errCh:
		t.Fatalf("wait for probe: %v", err)
	}
}

// A containerised Slipway on a swarm joins a preview's overlay network as
// soon as an exposed service with replicas is attached to it, even before
// any of its tasks runs on this node (here: none can be placed yet), and
// then reaches the task addresses the route table names; a preview scaled
// to 0 is left.
func TestSwarmAttacherJoinsPreviewOverlay(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.Busybox(t)
	dockertest.UseSwarm(t, cli)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	project := dockertest.UniqueName("slipway-swarmattach-")
	host := project + ".localhost"
	selfID := startSleeper(t, cli, img, dockertest.UniqueName("slipway-swarmattach-self-"), "")
	netID, netName := createOverlay(t, cli, project)
	// Removed before the network's cleanup runs (cleanups run last first).
	t.Cleanup(func() { _ = cli.ContainerRemove(context.Background(), selfID, container.RemoveOptions{Force: true}) })

	a, err := NewAttacher(ctx, cli, AttacherOptions{
		ContainerID: selfID, Domain: "localhost", Services: cli,
		Retry: 100 * time.Millisecond, LeaveAfter: time.Second,
	})
	if err != nil || a == nil {
		t.Fatalf("NewAttacher = %v, %v", a, err)
	}
	stop := a.Start(ctx)
	defer stop()
	routes := NewRoutes(nil, projectHosts)
	obs := NewSwarmObserver(cli, routes, SwarmObserverOptions{Poll: 200 * time.Millisecond, BackendIP: a.BackendIP})
	done := make(chan error, 1)
	go func() { done <- obs.Run(ctx) }()
	defer func() { cancel(); <-done }()

	// No node has the label: the task stays pending, no container exists.
	id := createWebService(t, cli, img, project, netID, host, 1, func(s *swarm.ServiceSpec) {
		s.TaskTemplate.Placement = &swarm.Placement{Constraints: []string{"node.labels.slipway-test-nowhere==1"}}
	})
	waitNetworks(t, cli, selfID, func(nets map[string]*network.EndpointSettings) bool { return nets[netName] != nil })

	updateService(t, cli, id, func(s *swarm.ServiceSpec) { s.TaskTemplate.Placement = nil })
	var backend string
	waitFor(t, 2*time.Minute, "a running backend", func() (bool, string) {
		r := routes.Lookup(host)
		if r == nil {
			return false, "no route"
		}
		if r.Phase == PhaseRunning {
			backend = r.Backends[0].Addr
		}
		return r.Phase == PhaseRunning, string(r.Phase)
	})
	if code, out := execIn(t, cli, selfID, "wget", "-q", "-O", "-", "http://"+backend+"/hostname"); code != 0 {
		t.Errorf("Slipway's container cannot reach the backend %s: exit %d: %s", backend, code, out)
	}

	scale(t, cli, id, 0)
	waitNetworks(t, cli, selfID, func(nets map[string]*network.EndpointSettings) bool { return nets[netName] == nil })
}

// execIn runs cmd in container id and returns its exit code and output.
func execIn(t *testing.T, cli *client.Client, id string, cmd ...string) (int, string) {
	t.Helper()
	ctx := context.Background()
	ex, err := cli.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	out, _ := io.ReadAll(att.Reader)
	ins, err := cli.ContainerExecInspect(ctx, ex.ID)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Running {
		t.Fatalf("exec %v still running after its output ended", cmd)
	}
	return ins.ExitCode, string(out)
}

// A broken events stream is subscribed to again and the swarm listed
// again: a service created while the observer was cut off (and polling is
// an hour away) reaches the table.
func TestSwarmObserverRelistsAfterTheEventStreamBreaks(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.Busybox(t)
	dockertest.UseSwarm(t, cli)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	project := dockertest.UniqueName("slipway-swarmflaky-")
	host := project + ".localhost"
	netID, _ := createOverlay(t, cli, project)

	flaky := &flakyEvents{Client: cli, breakCh: make(chan error, 1), allow: make(chan struct{})}
	routes := NewRoutes(nil, projectHosts)
	obs := NewSwarmObserver(flaky, routes, SwarmObserverOptions{Poll: time.Hour})
	done := make(chan error, 1)
	go func() { done <- obs.Run(ctx) }()
	defer func() { cancel(); <-done }()
	<-obs.Synced()

	flaky.breakCh <- errors.New("connection reset by test")
	createWebService(t, cli, img, project, netID, host, 1)
	time.Sleep(300 * time.Millisecond)
	if routes.Lookup(host) != nil {
		t.Fatal("route appeared while the observer had no stream: the test proves nothing")
	}
	close(flaky.allow)
	waitFor(t, 2*time.Minute, "the route after resubscribing", func() (bool, string) {
		r := routes.Lookup(host)
		if r == nil {
			return false, "no route"
		}
		return true, string(r.Phase)
	})
}
