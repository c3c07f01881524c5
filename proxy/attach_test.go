package proxy

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

const (
	idA = "8fd02449047df2ee956fde314c80fa8c41ae390b0260668cbc67de9690108cb6"
	idB = "1012563eb12c60f9d95b51f8434a79eb0d41ada5c1b2491adad586f78fe85d9a"
)

func TestContainerIDsFromMountInfo(t *testing.T) {
	tests := []struct {
		name, table string
		want        []string
	}{
		{
			name: "docker container",
			table: `69 50 0:60 / / rw,relatime - overlay overlay rw,lowerdir=/a
86 69 254:0 /var/lib/docker/containers/` + idA + `/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda rw
87 69 254:0 /var/lib/docker/containers/` + idA + `/hostname /etc/hostname rw,relatime - ext4 /dev/vda rw
88 69 254:0 /var/lib/docker/containers/` + idA + `/hosts /etc/hosts rw,relatime - ext4 /dev/vda rw
`,
			want: []string{idA},
		},
		{
			name:  "custom data-root",
			table: "87 69 254:0 /srv/docker/containers/" + idA + "/hostname /etc/hostname rw - ext4 /dev/vda rw\n",
			want:  []string{idA},
		},
		{
			name:  "podman",
			table: "87 69 0:5 /containers/storage/overlay-containers/" + idB + "/userdata/hostname /etc/hostname rw - tmpfs tmpfs rw\n",
			want:  []string{idB},
		},
		{
			name:  "host: the engine's own files mounted elsewhere do not count",
			table: "87 69 254:0 /var/lib/docker/containers/" + idA + "/hostname /mnt/hostname rw - ext4 /dev/vda rw\n",
		},
		{
			name:  "host without containers",
			table: "22 1 0:21 / /sys rw,nosuid - sysfs sysfs rw\n25 1 254:0 / / rw - ext4 /dev/vda rw\n",
		},
		{
			name:  "short or malformed lines",
			table: "garbage\n\n87 69 254:0\n87 69 254:0 /var/lib/docker/containers/abc/hostname /etc/hostname rw - ext4 /dev/vda rw\n",
		},
		{
			name: "two IDs: first seen first",
			table: "1 0 0:1 /x/containers/" + idB + "/hosts /etc/hosts rw - ext4 d rw\n" +
				"2 0 0:1 /x/containers/" + idA + "/hostname /etc/hostname rw - ext4 d rw\n" +
				"3 0 0:1 /x/containers/" + idB + "/resolv.conf /etc/resolv.conf rw - ext4 d rw\n",
			want: []string{idB, idA},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ContainerIDsFromMountInfo(strings.NewReader(tt.table))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestIsHostnameOf(t *testing.T) {
	inspected := func(id, hostname string) container.InspectResponse {
		return container.InspectResponse{
			ContainerJSONBase: &container.ContainerJSONBase{ID: id},
			Config:            &container.Config{Hostname: hostname},
		}
	}
	tests := []struct {
		name     string
		ins      container.InspectResponse
		hostname string
		want     bool
	}{
		{"default hostname is the short ID", inspected(idA, idA[:12]), idA[:12], true},
		{"a container named like the host", inspected(idA, idA[:12]), "web1", false},
		{"hostname set to the short ID of another container", inspected(idA, "web1"), idA[:12], false},
		{"too short to be an ID", inspected(idA, idA[:4]), idA[:4], false},
		{"nothing inspected", container.InspectResponse{}, idA[:12], false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsHostnameOf(tt.ins, tt.hostname); got != tt.want {
				t.Errorf("IsHostnameOf = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestOwnNetworkStack(t *testing.T) {
	withMode := func(mode string) container.InspectResponse {
		return container.InspectResponse{ContainerJSONBase: &container.ContainerJSONBase{
			HostConfig: &container.HostConfig{NetworkMode: container.NetworkMode(mode)},
		}}
	}
	for mode, want := range map[string]bool{
		"0-slipway": true, "bridge": true, "default": true,
		"host": false, "container:" + idB: false, "none": false,
	} {
		if got := OwnNetworkStack(withMode(mode)); got != want {
			t.Errorf("network_mode %s: OwnNetworkStack = %v, want %v", mode, got, want)
		}
	}
}

func TestSharedNetworkIP(t *testing.T) {
	joinedOf := func(names ...string) func(string) bool {
		return func(n string) bool { return slices.Contains(names, n) }
	}
	tests := []struct {
		name     string
		networks map[string]string
		joined   func(string) bool
		want     string
	}{
		{
			name:     "the project network, joined",
			networks: map[string]string{"p_default": "10.0.0.2"},
			joined:   joinedOf("slipway_default", "p_default"),
			want:     "10.0.0.2",
		},
		{
			name:     "a shared external network wins over an unjoined project network",
			networks: map[string]string{"p_back": "10.0.1.2", "edge": "10.9.0.7"},
			joined:   joinedOf("edge"),
			want:     "10.9.0.7",
		},
		{
			name:     "of two shared networks, the project's own first",
			networks: map[string]string{"edge": "10.9.0.7", "p_web": "10.0.2.2"},
			joined:   joinedOf("edge", "p_web"),
			want:     "10.0.2.2",
		},
		{
			name:     "of two joined project networks, the first by name",
			networks: map[string]string{"p_web": "10.0.2.2", "p_back": "10.0.1.2"},
			joined:   joinedOf("p_web", "p_back"),
			want:     "10.0.1.2",
		},
		{
			name:     "nothing shared yet: the project network it is about to join",
			networks: map[string]string{"p_default": "10.0.0.2", "other": "10.5.0.2"},
			joined:   joinedOf("slipway_default"),
			want:     "10.0.0.2",
		},
		{
			name:     "a joined network without an address is skipped",
			networks: map[string]string{"p_a": "", "p_b": "10.0.3.2"},
			joined:   joinedOf("p_a", "p_b"),
			want:     "10.0.3.2",
		},
		{
			name:     "no networks",
			networks: map[string]string{},
			joined:   joinedOf("p_default"),
			want:     "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SharedNetworkIP("p", tt.networks, tt.joined); got != tt.want {
				t.Errorf("SharedNetworkIP = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAttacherFollowsProjectNetworks runs the Attacher for a stand-in
// "self" container on the real engine. It joins the network of an exposed
// container that ran before it started, and of one started while it runs;
// never a network without an exposed container (a database's), one whose
// container is exposed under another domain, nor an unmanaged one. When
// the exposed containers have stopped it leaves, so a plain NetworkRemove
// (what docker compose down does) succeeds; and the stack engine's Down
// removes a network it is still on.
func TestAttacherFollowsProjectNetworks(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.Busybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	domain := dockertest.UniqueName("attach") + ".localhost"

	selfID := startSleeper(t, cli, img, dockertest.UniqueName("slipway-attach-self-"), "")
	before := dockertest.UniqueName("attach-before")
	later := dockertest.UniqueName("attach-later")
	dbOnly := dockertest.UniqueName("attach-db")
	other := dockertest.UniqueName("attach-other")
	beforeNet := createManagedNetwork(t, cli, before, true)
	laterNet := createManagedNetwork(t, cli, later, true)
	dbNet := createManagedNetwork(t, cli, dbOnly, true)
	otherNet := createManagedNetwork(t, cli, other, true)
	unmanagedNet := createManagedNetwork(t, cli, dockertest.UniqueName("attach-unmanaged"), false)
	startProjectContainer(t, cli, img, before, beforeNet, "pr-1."+domain)
	startProjectContainer(t, cli, img, dbOnly, dbNet, "")
	startProjectContainer(t, cli, img, other, otherNet, "pr-1.other-"+domain)
	startProjectContainer(t, cli, img, dockertest.UniqueName("attach-unmanaged"), unmanagedNet, "pr-2."+domain)

	// Found by its hostname (the short ID), as in a container by default;
	// the mount table of this test process names no container of this engine.
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	a, err := NewAttacher(ctx, cli, AttacherOptions{
		Domain: domain, Hostname: selfID[:12], MountInfo: "/nonexistent",
		Retry: 100 * time.Millisecond, LeaveAfter: 2 * time.Second, Logger: log,
	})
	if err != nil || a == nil {
		t.Fatalf("NewAttacher by hostname = %v, %v; want an attacher", a, err)
	}
	if a.ContainerID() != selfID {
		t.Fatalf("ContainerID = %s, want %s", a.ContainerID(), selfID)
	}
	stop := a.Start(ctx)
	defer stop()

	waitNetworks(t, cli, selfID, func(nets map[string]*network.EndpointSettings) bool { return nets[beforeNet] != nil })
	laterID := startProjectContainer(t, cli, img, later, laterNet, "pr-3."+domain)
	waitNetworks(t, cli, selfID, func(nets map[string]*network.EndpointSettings) bool { return nets[laterNet] != nil })
	ins, err := cli.ContainerInspect(ctx, selfID)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{dbNet, otherNet, unmanagedNet} {
		if ins.NetworkSettings.Networks[n] != nil {
			t.Errorf("joined %s", n)
		}
	}
	if ins.NetworkSettings.Networks[laterNet].IPAddress == "" {
		t.Errorf("no address on %s after joining", laterNet)
	}
	backend := map[string]string{laterNet: "10.200.0.9", "elsewhere": "10.201.0.9"}
	if got := a.BackendIP(later, backend); got != "10.200.0.9" {
		t.Errorf("BackendIP = %q, want the address on the joined %s", got, laterNet)
	}

	// The stand-in runs on the default "bridge" network, which sorts after
	// the project networks: on engines before API 1.48 they become its
	// gateway, which the operator is told once.
	if got := strings.Count(logs.String(), "sorts before Slipway's own network"); got != 1 {
		t.Errorf("gateway warning logged %d times, want once:\n%s", got, logs.String())
	}
	if !strings.Contains(logs.String(), "own_network=bridge") {
		t.Errorf("gateway warning does not name the own network:\n%s", logs.String())
	}

	// Down of a project whose network the stand-in is still on: Down
	// force-disconnects it, within the Attacher's pause before leaving.
	engine := stack.NewEngine(cli, nil, stack.EngineOptions{})
	if err := engine.Down(ctx, before); err != nil {
		t.Fatalf("down %s with the proxy attached: %v", before, err)
	}

	// A stopped environment removed as docker compose down does: the
	// Attacher has left the network once its containers stopped.
	if err := cli.ContainerStop(ctx, laterID, container.StopOptions{Timeout: new(int)}); err != nil {
		t.Fatal(err)
	}
	waitNetworks(t, cli, selfID, func(nets map[string]*network.EndpointSettings) bool { return nets[laterNet] == nil })
	// The engine has the container off the network a moment before the
	// Attacher's call returns and it logs.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), "left project network"); {
		if time.Now().After(deadline) {
			t.Fatalf("leaving not logged:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cli.ContainerRemove(ctx, laterID, container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if err := cli.NetworkRemove(ctx, laterNet); err != nil {
		t.Errorf("remove %s after its containers: %v", laterNet, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for slices.ContainsFunc(a.Networks(), func(n string) bool { return n == beforeNet || n == laterNet }) {
		if time.Now().After(deadline) {
			t.Fatalf("attacher still lists removed networks as joined: %v", a.Networks())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestServesNetwork(t *testing.T) {
	exposed := func(id, host string) container.Summary {
		return container.Summary{ID: id, Labels: map[string]string{contract.LabelRouteHost: host}}
	}
	tests := []struct {
		name    string
		running []container.Summary
		domain  string
		want    bool
	}{
		{"nothing running", nil, "p.example.com", false},
		{"a preview under the domain", []container.Summary{exposed(idB, "pr-1.p.example.com")}, "p.example.com", true},
		{"the host label in another case", []container.Summary{exposed(idB, "PR-1.P.Example.com")}, "p.example.com", true},
		{"the domain itself", []container.Summary{exposed(idB, "p.example.com")}, "p.example.com", true},
		{"another Slipway's domain", []container.Summary{exposed(idB, "pr-1.other.example.com")}, "p.example.com", false},
		{"a look-alike suffix", []container.Summary{exposed(idB, "pr-1.xp.example.com")}, "p.example.com", false},
		{"not exposed (a database)", []container.Summary{{ID: idB, Labels: map[string]string{}}}, "p.example.com", false},
		{"only the proxy itself", []container.Summary{exposed(idA, "pr-1.p.example.com")}, "p.example.com", false},
		{"any domain", []container.Summary{exposed(idB, "pr-1.anything.test")}, "", true},
		{"stopped (asleep)", []container.Summary{{ID: idB, State: container.StateExited, Labels: map[string]string{contract.LabelRouteHost: "pr-1.p.example.com"}}}, "p.example.com", false},
		{"starting", []container.Summary{{ID: idB, State: container.StateCreated, Labels: map[string]string{contract.LabelRouteHost: "pr-1.p.example.com"}}}, "p.example.com", true},
		{"one stopped, one running", []container.Summary{
			{ID: idB, State: container.StateExited, Labels: map[string]string{contract.LabelRouteHost: "pr-1.p.example.com"}},
			{ID: idA[:10] + "ff", State: container.StateRunning, Labels: map[string]string{contract.LabelRouteHost: "api-pr-1.p.example.com"}},
		}, "p.example.com", true},
		{"a malformed host", []container.Summary{exposed(idB, "bad host!")}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := servesNetwork(tt.running, idA, tt.domain); got != tt.want {
				t.Errorf("servesNetwork = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewAttacherOutsideAContainer(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.Busybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	name := dockertest.UniqueName("slipway-attach-named-")
	startSleeper(t, cli, img, name, "")

	// A host whose name happens to be a container's name is not that container.
	for _, hostname := range []string{name, "no-such-container-" + name} {
		a, err := NewAttacher(ctx, cli, AttacherOptions{Hostname: hostname, MountInfo: "/nonexistent"})
		if err != nil || a != nil {
			t.Errorf("hostname %s: NewAttacher = %v, %v; want nil, nil", hostname, a, err)
		}
	}
	// An explicit ID that names nothing is a configuration error.
	if _, err := NewAttacher(ctx, cli, AttacherOptions{ContainerID: "no-such-container-" + name}); err == nil || !strings.Contains(err.Error(), EnvContainerID) {
		t.Errorf("NewAttacher with a wrong explicit ID: err = %v, want one naming %s", err, EnvContainerID)
	}
	// A container on the host's network stack needs no joining.
	hostNet := dockertest.UniqueName("slipway-attach-hostnet-")
	startSleeper(t, cli, img, hostNet, "host")
	if a, err := NewAttacher(ctx, cli, AttacherOptions{ContainerID: hostNet}); err != nil || a != nil {
		t.Errorf("network_mode host: NewAttacher = %v, %v; want nil, nil", a, err)
	}
	// An explicit name is trusted.
	a, err := NewAttacher(ctx, cli, AttacherOptions{ContainerID: name, MountInfo: "/nonexistent"})
	if err != nil || a == nil || !slices.Contains(a.Networks(), "bridge") {
		t.Errorf("NewAttacher by explicit name = %v, %v; want one on the bridge network", a, err)
	}
}

// syncBuffer is a bytes.Buffer safe for the Attacher's goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startSleeper runs a busybox container that sleeps, on netName (or the
// default bridge), removed at cleanup.
func startSleeper(t *testing.T, cli *client.Client, img, name, netName string) string {
	t.Helper()
	return startContainer(t, cli, &container.Config{Image: img, Cmd: []string{"sleep", "300"}}, name, netName)
}

// startProjectContainer runs a sleeping service container of project on
// netName, labelled as the stack engine labels it; exposed at host unless
// host is empty.
func startProjectContainer(t *testing.T, cli *client.Client, img, project, netName, host string) string {
	t.Helper()
	labels := map[string]string{contract.LabelManaged: "true", contract.LabelProject: project, contract.LabelService: "web"}
	if host != "" {
		labels[contract.LabelRouteHost] = host
		labels[contract.LabelRoutePort] = "8080"
	}
	return startContainer(t, cli, &container.Config{Image: img, Cmd: []string{"sleep", "300"}, Labels: labels},
		contract.ContainerName(project, "web", 1), netName)
}

func startContainer(t *testing.T, cli *client.Client, cfg *container.Config, name, netName string) string {
	t.Helper()
	ctx := context.Background()
	hc := &container.HostConfig{}
	if netName != "" {
		hc.NetworkMode = container.NetworkMode(netName)
	}
	resp, err := cli.ContainerCreate(ctx, cfg, hc, nil, nil, name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
		if err != nil && !errdefs.IsNotFound(err) {
			t.Errorf("remove %s: %v", name, err)
		}
	})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	return resp.ID
}

// createManagedNetwork creates <project>_default labelled as the stack
// engine labels it (managed or not), removed at cleanup; it returns its name.
func createManagedNetwork(t *testing.T, cli *client.Client, project string, managed bool) string {
	t.Helper()
	name := contract.ResourceName(project, "default")
	labels := map[string]string{contract.LabelProject: project, contract.LabelNetwork: "default"}
	if managed {
		labels[contract.LabelManaged] = "true"
	}
	if _, err := cli.NetworkCreate(context.Background(), name, network.CreateOptions{Driver: "bridge", Labels: labels}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		ins, err := cli.NetworkInspect(ctx, name, network.InspectOptions{})
		if err != nil {
			return // removed by the test
		}
		for id := range ins.Containers {
			_ = cli.NetworkDisconnect(ctx, name, id, true)
		}
		if err := cli.NetworkRemove(ctx, name); err != nil {
			t.Errorf("remove network %s: %v", name, err)
		}
	})
	return name
}

// waitNetworks waits until the container's networks satisfy ok.
func waitNetworks(t *testing.T, cli *client.Client, id string, ok func(map[string]*network.EndpointSettings) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ins, err := cli.ContainerInspect(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if ok(ins.NetworkSettings.Networks) {
			return
		}
		if time.Now().After(deadline) {
			names := make([]string, 0)
			for n := range ins.NetworkSettings.Networks {
				names = append(names, n)
			}
			t.Fatalf("container networks never as expected: %v", names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Before Slipway stops, its container leaves every project network (an
// overlay removed while it is stopped would keep it from starting again)
// and keeps its own.
func TestAttacherLeavesEveryProjectNetworkOnStop(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.Busybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	domain := dockertest.UniqueName("leave") + ".localhost"
	selfID := startSleeper(t, cli, img, dockertest.UniqueName("slipway-leave-self-"), "")
	project := dockertest.UniqueName("leave-p")
	projectNet := createManagedNetwork(t, cli, project, true)
	startProjectContainer(t, cli, img, project, projectNet, "pr-1."+domain)
	a, err := NewAttacher(ctx, cli, AttacherOptions{Domain: domain, ContainerID: selfID, Retry: 100 * time.Millisecond})
	if err != nil || a == nil {
		t.Fatalf("NewAttacher = %v, %v", a, err)
	}
	stop := a.Start(ctx)
	waitNetworks(t, cli, selfID, func(nets map[string]*network.EndpointSettings) bool { return nets[projectNet] != nil })
	stop()
	if err := a.LeaveAll(ctx); err != nil {
		t.Fatal(err)
	}
	ins, err := cli.ContainerInspect(ctx, selfID)
	if err != nil {
		t.Fatal(err)
	}
	if ins.NetworkSettings.Networks[projectNet] != nil {
		t.Errorf("still on %s", projectNet)
	}
	if ins.NetworkSettings.Networks["bridge"] == nil {
		t.Errorf("left its own network too: %v", ins.NetworkSettings.Networks)
	}
	if err := a.LeaveAll(ctx); err != nil {
		t.Errorf("leaving again: %v", err)
	}
}
