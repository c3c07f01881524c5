package swarm

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// testEngine returns an engine on the real engine (a swarm manager, see
// TestMain) with a real registry, and the busybox base image.
func testEngine(t *testing.T) (*Engine, *client.Client, *Registry) {
	t.Helper()
	dockertest.NeedSwarmTests(t)
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	reg := &Registry{Address: dockertest.StartRegistry(t)}
	e := NewEngine(cli, nil, Options{Registry: reg, ReadyTimeout: 2 * time.Minute, PollInterval: 100 * time.Millisecond,
		Build: stack.EngineOptions{StopTimeout: 2 * time.Second}})
	return e, cli, reg
}

func copyFixture(t *testing.T, name string) string {
	return dockertest.CopyFixture(t, filepath.Join("testdata", name))
}

func load(t *testing.T, src stack.Source) *stack.Plan {
	t.Helper()
	p, err := stack.Load(context.Background(), src, stack.LoadOptions{Limits: config.Defaults().Limits})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

func up(t *testing.T, e *Engine, p *stack.Plan) *stack.UpResult {
	t.Helper()
	var log bytes.Buffer
	res, err := e.Up(context.Background(), p, stack.UpOptions{BuildLog: &log})
	if err != nil {
		t.Fatalf("up %s: %v\nlog:\n%s", p.Name, err, log.String())
	}
	return res
}

// downAtCleanup takes project down at the end of the test, and fails it if
// anything of the project is left after.
func downAtCleanup(t *testing.T, e *Engine, cli *client.Client, reg *Registry, project string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := e.Down(ctx, project); err != nil {
			t.Errorf("cleanup down: %v", err)
		}
		if left := leftovers(t, cli, reg, project); len(left) > 0 {
			t.Errorf("left behind: %v", left)
		}
	})
}

// leftovers lists every swarm object and every local container, network,
// volume and image of project, and the project's registry repositories
// that still hold a tag.
func leftovers(t *testing.T, cli *client.Client, reg *Registry, project string) []string {
	t.Helper()
	ctx := context.Background()
	f := filters.NewArgs(filters.Arg("label", LabelNamespace+"="+project))
	var out []string
	svcs, err := cli.ServiceList(ctx, swarm.ServiceListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range svcs {
		out = append(out, "service "+s.Spec.Name)
	}
	secrets, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		out = append(out, "secret "+s.Spec.Name)
	}
	configs, err := cli.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range configs {
		out = append(out, "config "+c.Spec.Name)
	}
	nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nets {
		out = append(out, "network "+n.Name)
	}
	vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vols.Volumes {
		out = append(out, "volume "+v.Name)
	}
	local, err := dockertest.Leftovers(ctx, cli, contract.LabelProject+"="+project)
	if err != nil {
		t.Fatal(err)
	}
	out = append(out, local...)
	repos, err := reg.repositories(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range repos {
		var tags struct{ Tags []string }
		if _, err := reg.getJSON(ctx, "/v2/"+r+"/tags/list", nil, &tags); err == nil && len(tags.Tags) > 0 {
			out = append(out, "registry "+r+":"+strings.Join(tags.Tags, ","))
		}
	}
	return out
}

// probe runs a busybox container on the project's overlay network with
// script and returns its output: how a test reaches task addresses, which
// the host cannot route to.
func probe(t *testing.T, cli *client.Client, networkName, script string) string {
	t.Helper()
	return run(t, cli, &container.HostConfig{NetworkMode: container.NetworkMode(networkName)}, script)
}

// run runs script in a busybox container and returns its output.
func run(t *testing.T, cli *client.Client, host *container.HostConfig, script string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := cli.ContainerCreate(ctx, &container.Config{Image: dockertest.BusyboxImage, Cmd: []string{"sh", "-c", script}},
		host, nil, nil, dockertest.UniqueName("slipway-probe-"))
	if err != nil {
		t.Fatalf("create probe: %v", err)
	}
	defer cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatalf("start probe: %v", err)
	}
	waitC, errC := cli.ContainerWait(ctx, resp.ID, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		t.Fatalf("wait probe: %v", err)
	}
	rc, err := cli.ContainerLogs(ctx, resp.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, rc); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return out.String()
}

func taskIDs(t *testing.T, cli *client.Client, serviceName string) []string {
	t.Helper()
	tasks, err := cli.TaskList(context.Background(), swarm.TaskListOptions{Filters: filters.NewArgs(
		filters.Arg("service", serviceName), filters.Arg("desired-state", "running"))})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, tk := range tasks {
		ids = append(ids, tk.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestUpPushStopStartDown(t *testing.T) {
	e, cli, reg := testEngine(t)
	dir := copyFixture(t, "pair")
	src := stack.Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("pair"), PR: 1, SHA: strings.Repeat("1", 40)}
	project := src.Project()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := e.Down(ctx, project); err != nil {
			t.Errorf("cleanup down: %v", err)
		}
	})
	ctx := context.Background()
	netName := contract.ResourceName(project, "default")

	// Up: web answers on its task address, and reaches api by service name.
	p := load(t, src)
	res := up(t, e, p)
	if !slices.Contains(res.Built, p.Image("web")) {
		t.Errorf("built %v", res.Built)
	}
	env, err := e.Inspect(ctx, project)
	if err != nil || env == nil {
		t.Fatalf("inspect: %v %v", env, err)
	}
	if env.Phase() != "running" || env.SHA != src.SHA || env.PR != 1 {
		t.Fatalf("environment %+v phase %s", env, env.Phase())
	}
	var webIP string
	for _, s := range env.Services {
		if s.Service == "web" && len(s.Containers) == 1 {
			webIP = s.Containers[0].IP
		}
	}
	if webIP == "" {
		t.Fatalf("no task address for web: %+v", env.Services)
	}
	if len(env.Routes) != 1 || env.Routes[0].Host != "pr-1.localhost" || env.Routes[0].Port != 8080 {
		t.Errorf("routes %+v", env.Routes)
	}
	out := probe(t, cli, netName, "wget -q -O - http://"+webIP+":8080/ && wget -q -O - http://"+webIP+":8080/cgi-bin/api && nslookup web")
	if !strings.Contains(out, "web v1") || !strings.Contains(out, "token-ok") || !strings.Contains(out, "conf-ok") {
		t.Fatalf("through web's task address: %q (want web's page, then api's answer through web)", out)
	}
	if !strings.Contains(out, webIP) {
		t.Errorf("the service name web does not resolve to its task address %s (dnsrr): %q", webIP, out)
	}
	svc, _, err := cli.ServiceInspectWithRaw(ctx, ServiceName(project, "web"), swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if img := svc.Spec.TaskTemplate.ContainerSpec.Image; !strings.HasPrefix(img, reg.Address+"/"+project+"-web:111111111111@sha256:") {
		t.Errorf("web runs %q, want the pushed image by digest", img)
	}
	var logs bytes.Buffer
	if err := e.Logs(ctx, project, stack.LogOptions{Service: "api"}, &logs); err != nil || !strings.Contains(logs.String(), "api | api booted") {
		t.Errorf("logs of api: %q %v", logs.String(), err)
	}
	if envs, err := e.List(ctx); err != nil || !slices.ContainsFunc(envs, func(env stack.Environment) bool { return env.Project == project }) {
		t.Errorf("list: %v %v", envs, err)
	}
	projects, err := e.Projects(ctx)
	if err != nil || projects[project] != (stack.ProjectRef{Repo: src.FullName(), PR: 1}) {
		t.Errorf("projects %v %v", projects, err)
	}

	// A push that changes only the built service keeps api's task.
	apiTasks := taskIDs(t, cli, ServiceName(project, "api"))
	if err := os.WriteFile(filepath.Join(dir, "web", "www", "index.html"), []byte("web v2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src.SHA = strings.Repeat("2", 40)
	p = load(t, src)
	res = up(t, e, p)
	if !slices.Contains(res.Kept, ServiceName(project, "api")) || !slices.Contains(res.Created, ServiceName(project, "web")) {
		t.Errorf("second up: created %v kept %v", res.Created, res.Kept)
	}
	if got := taskIDs(t, cli, ServiceName(project, "api")); !slices.Equal(got, apiTasks) {
		t.Errorf("api's tasks changed on a push that changed only web: %v → %v", apiTasks, got)
	}
	env, err = e.Inspect(ctx, project)
	if err != nil {
		t.Fatal(err)
	}
	if env.SHA != src.SHA {
		t.Errorf("environment SHA %s, want the built service's %s", env.SHA, src.SHA)
	}
	if out := probe(t, cli, netName, "wget -q -O - http://web:8080/"); !strings.Contains(out, "web v2") {
		t.Errorf("after the push: %q", out)
	}

	// Sleep and wake.
	if err := e.Stop(ctx, project); err != nil {
		t.Fatal(err)
	}
	if env, err = e.Inspect(ctx, project); err != nil || env.Phase() != "stopped" {
		t.Fatalf("after stop: %+v %v", env, err)
	}
	if err := e.Start(ctx, project); err != nil {
		t.Fatal(err)
	}
	if env, err = e.Inspect(ctx, project); err != nil || env.Phase() != "running" {
		t.Fatalf("after start: %+v %v", env, err)
	}
	if out := probe(t, cli, netName, "wget -q -O - http://web:8080/cgi-bin/api"); !strings.Contains(out, "token-ok") {
		t.Errorf("after start: %q", out)
	}
	if out := probe(t, cli, netName, "wget -q -O - http://web:8080/cgi-bin/api"); !strings.Contains(out, "token-ok") {
		t.Errorf("after start: %q", out)
	}

	// Down leaves nothing: no service, network, volume, secret, config,
	// image or registry tag of the project.
	if err := e.Down(ctx, project); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(t, cli, reg, project); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
	if env, err := e.Inspect(ctx, project); err != nil || env != nil {
		t.Errorf("inspect after down: %+v %v", env, err)
	}
}
