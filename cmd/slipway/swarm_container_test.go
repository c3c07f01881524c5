package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	swarmengine "github.com/slipwayhq/slipway/controller/swarm"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// Slipway in its container (the Dockerfile's offline target), with engine:
// swarm, serves a preview deployed on the swarm: its proxy routes the host
// to the web task's address on the preview's overlay network, which its
// container joined by itself, and web calls api by service name (DNS
// round-robin, no virtual IP). `docker stack ps` shows the preview while
// it lives; a push that changes only web keeps api's task and serves the
// new web; asleep, its host shows the stopped page and it is served again
// once woken (the overlay left and joined again); after Down the host answers 404 and nothing of the project is
// left: services, networks, volumes, secrets, configs, registry tags.
// Run in .ci/run's swarm step.
//
// The preview is deployed by the swarm engine from the test process (local
// mode, no GitHub), as TestContainerImageServesPreviews deploys with the
// stack engine: what this covers beyond TestSwarmE2EServesPullRequests
// (webhooks, Slipway's own engine) is the stopped page of a preview asleep
// (there a request wakes it), an engine in another process than the proxy,
// and a Down while the proxy is attached to the overlay.
func TestSwarmContainerServesPreviews(t *testing.T) {
	dockertest.NeedSwarmTests(t)
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	tag := "slipway-test/slipway:" + dockertest.UniqueName("swarmimg")
	buildOfflineImage(t, cli, tag)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	dockertest.UseSwarm(t, cli)
	reg := dockertest.StartRegistry(t)
	socket, gid := engineSocket(t, cli)

	domain := dockertest.UniqueName("swctr") + ".localhost"
	stateDir := stateDirFor(t, 10001)
	cfgFile := filepath.Join(t.TempDir(), "slipway.yaml")
	writeFile(t, cfgFile, fmt.Sprintf("domain: %s\nlisten: {http: \":8080\"}\nstate_dir: %s\nengine: swarm\nregistry: {address: %q}\n", domain, stateDir, reg), 0o644)
	run := runSlipwayContainer(t, ctx, cli, slipwayContainer{image: tag, socket: socket, groupAdd: []string{gid}, config: cfgFile, stateDir: stateDir})
	base := "http://127.0.0.1:" + run.hostPort
	waitHTTP(t, ctx, base+"/readyz", "", http.StatusOK, "ready", run)
	if logs := run.logs(t); !strings.Contains(logs, "joining project networks") || !strings.Contains(logs, "routes come from the services' tasks") {
		t.Fatalf("slipway did not find its own container, or does not route from swarm tasks:\n%s", logs)
	}

	dir := t.TempDir()
	if err := dockertest.CopyTree(filepath.Join("..", "..", "controller", "swarm", "testdata", "pair"), dir); err != nil {
		t.Fatal(err)
	}
	src := stack.Source{Dir: dir, Owner: contract.LocalOwner, Repo: dockertest.UniqueName("swctr"), PR: 7, SHA: strings.Repeat("5", 40)}
	project := src.Project()
	engine := swarmengine.NewEngine(cli, nil, swarmengine.Options{Registry: &swarmengine.Registry{Address: reg}, ReadyTimeout: 2 * time.Minute,
		PollInterval: 100 * time.Millisecond, Build: stack.EngineOptions{StopTimeout: 2 * time.Second}})
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := engine.Down(ctx, project); err != nil {
			t.Errorf("cleanup down %s: %v", project, err)
		}
	})
	plan, err := stack.Load(ctx, src, stack.LoadOptions{Hosts: stack.HostOptions{Domain: domain}, Limits: config.Defaults().Limits})
	if err != nil {
		t.Fatal(err)
	}
	var buildLog bytes.Buffer
	if _, err := engine.Up(ctx, plan, stack.UpOptions{BuildLog: &buildLog}); err != nil {
		t.Fatalf("up: %v\n%s", err, buildLog.String())
	}
	host := "pr-7." + domain
	// web's CGI fetches http://api:8081/: the service name resolves to
	// api's task on the overlay.
	waitHTTP(t, ctx, base+"/cgi-bin/api", host, http.StatusOK, "token-ok", run)

	ins, err := cli.ContainerInspect(ctx, run.id)
	if err != nil {
		t.Fatal(err)
	}
	overlay := contract.ResourceName(project, "default")
	if ins.NetworkSettings.Networks[overlay] == nil {
		t.Errorf("slipway's container is not on the preview's overlay %s: %v", overlay, keys(ins.NetworkSettings.Networks))
	}
	if out, err := exec.CommandContext(ctx, "docker", "stack", "ps", project, "--format", "{{.Name}} {{.CurrentState}}").CombinedOutput(); err != nil ||
		!strings.Contains(string(out), project+"_web.1") || !strings.Contains(string(out), "Running") {
		t.Errorf("docker stack ps %s: %v\n%s", project, err, out)
	}

	// A push that changes only web's build: api's task keeps running (its
	// spec did not change) and the new web is served.
	apiTasks := func() []string {
		tasks, err := cli.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(
			filters.Arg("service", project+"_api"), filters.Arg("desired-state", "running"))})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, tk := range tasks {
			ids = append(ids, tk.ID)
		}
		return ids
	}
	before := apiTasks()
	writeFile(t, filepath.Join(dir, "web", "www", "index.html"), "web v2\n", 0o644)
	src.SHA = strings.Repeat("6", 40)
	if plan, err = stack.Load(ctx, src, stack.LoadOptions{Hosts: stack.HostOptions{Domain: domain}, Limits: config.Defaults().Limits}); err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Up(ctx, plan, stack.UpOptions{BuildLog: &buildLog}); err != nil {
		t.Fatalf("push: %v\n%s", err, buildLog.String())
	}
	waitHTTP(t, ctx, base+"/", host, http.StatusOK, "web v2", run)
	waitHTTP(t, ctx, base+"/cgi-bin/api", host, http.StatusOK, "token-ok", run)
	if after := apiTasks(); len(before) != 1 || strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("api's tasks %v before the push, %v after: the image-only service was not kept", before, after)
	}

	// Asleep (every service scaled to 0, no task left), the host stays in
	// the route table as stopped: its page, not a 404. (Only the routes of
	// a swarm observer keep it: on one host the stopped containers do.)
	if err := engine.Stop(ctx, project); err != nil {
		t.Fatalf("sleep: %v", err)
	}
	waitHTTP(t, ctx, base+"/", host, http.StatusServiceUnavailable, "was asleep", run)
	if err := engine.Start(ctx, project); err != nil {
		t.Fatalf("wake: %v", err)
	}
	waitHTTP(t, ctx, base+"/cgi-bin/api", host, http.StatusOK, "token-ok", run)

	if err := engine.Down(ctx, project); err != nil {
		t.Fatalf("down with the proxy attached: %v", err)
	}
	waitHTTP(t, ctx, base+"/", host, http.StatusNotFound, "", run)
	if left := swarmLeftovers(t, ctx, cli, reg, project); len(left) > 0 {
		t.Errorf("left behind: %v", left)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// swarmLeftovers lists project's services, networks, volumes, secrets,
// configs, local containers and the registry repositories of the project
// that still hold a tag.
func swarmLeftovers(t *testing.T, ctx context.Context, cli *client.Client, reg, project string) []string {
	t.Helper()
	f := filters.NewArgs(filters.Arg("label", swarmengine.LabelNamespace+"="+project))
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
	var catalog struct{ Repositories []string }
	getJSON(t, "http://"+reg+"/v2/_catalog", &catalog)
	for _, r := range catalog.Repositories {
		if !strings.Contains(r, project) {
			continue
		}
		var tags struct{ Tags []string }
		getJSON(t, "http://"+reg+"/v2/"+r+"/tags/list", &tags)
		if len(tags.Tags) > 0 {
			out = append(out, "registry "+r+":"+strings.Join(tags.Tags, ","))
		}
	}
	return out
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return // a repository whose tags are all gone
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %d: %v", url, resp.StatusCode, err)
	}
}
