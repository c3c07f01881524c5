package swarm

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// A secret whose file changed becomes a new secret, the service using it
// is updated, and the old secret goes. An update that fails rolls the
// service back to the spec it had: the preview keeps running as it was.
func TestSecretChangeAndFailedUpdate(t *testing.T) {
	e, cli, reg := testEngine(t)
	dir := t.TempDir()
	compose := func(cmd string) string {
		return `
services:
  app:
    image: slipway-test/busybox:1
    init: true
    stop_grace_period: 1s
    restart: "no"
    command: ["sh", "-c", "` + cmd + `"]
    secrets: [token]
secrets:
  token: {file: ./token.txt}
`

	}
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": compose("cat /run/secrets/token; echo; exec sleep 86400"), "token.txt": "one"})
	src := stack.Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("upd"), PR: 4, SHA: strings.Repeat("5", 40)}
	project := src.Project()
	downAtCleanup(t, e, cli, reg, project)
	ctx := context.Background()
	secretNames := func() []string {
		list, err := cli.SecretList(ctx, swarm.SecretListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelNamespace+"="+project))})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, s := range list {
			out = append(out, s.Spec.Name)
		}
		slices.Sort(out)
		return out
	}
	up(t, e, load(t, src))
	first := secretNames()
	if len(first) != 1 {
		t.Fatalf("secrets %v", first)
	}

	// A redeploy (ForceRecreate) replaces the task of an unchanged service.
	before := taskIDs(t, cli, ServiceName(project, "app"))
	if res, err := e.Up(ctx, load(t, src), stack.UpOptions{ForceRecreate: true}); err != nil || !slices.Contains(res.Created, ServiceName(project, "app")) {
		t.Fatalf("redeploy: %+v %v", res, err)
	}
	if after := taskIDs(t, cli, ServiceName(project, "app")); len(after) != 1 || slices.Equal(after, before) {
		t.Errorf("redeploy kept the task: %v → %v", before, after)
	}

	if err := os.WriteFile(filepath.Join(dir, "token.txt"), []byte("two"), 0o644); err != nil {
		t.Fatal(err)
	}
	res := up(t, e, load(t, src))
	if !slices.Contains(res.Created, ServiceName(project, "app")) {
		t.Errorf("a new secret did not update the service: %+v", res)
	}
	second := secretNames()
	if len(second) != 1 || second[0] == first[0] {
		t.Errorf("secrets after the change: %v (before: %v): want only the new one", second, first)
	}
	var logs strings.Builder
	if err := e.Logs(ctx, project, stack.LogOptions{Service: "app"}, &logs); err != nil || !strings.Contains(logs.String(), "two") {
		t.Errorf("logs %q %v: the task did not read the new secret", logs.String(), err)
	}

	// A command that fails at once, and nothing restarts it, on a new
	// network as well, which the rollback removes though a container that
	// is not a task (the holder, as the proxy's) joined it meanwhile.
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": strings.Replace(compose("exit 3"), "    secrets: [token]\n",
		"    secrets: [token]\n    networks: [default, extra]\n", 1) + "networks:\n  extra: {}\n"})
	// The proxy keeps off that network before the rollback touches a
	// service: at the first exclusion the service still has the failed
	// update's command.
	extra := contract.ResourceName(project, "extra")
	holder := startHolder(t, cli)
	joined := joinWhenCreated(t, cli, extra, holder)
	var argsAtExclusion []string
	proxy := &testProxy{cli: cli, holder: holder, project: project, services: -1, atExclude: func(ctx context.Context) {
		if argsAtExclusion != nil {
			return
		}
		if s, _, err := cli.ServiceInspectWithRaw(ctx, ServiceName(project, "app"), swarm.ServiceInspectOptions{}); err == nil {
			argsAtExclusion = s.Spec.TaskTemplate.ContainerSpec.Args
		}
	}}
	e.opts.Proxy = proxy
	if _, err := e.Up(ctx, load(t, src), stack.UpOptions{}); err == nil {
		t.Fatal("an update to a service that exits 3 succeeded")
	} else if strings.Contains(err.Error(), "rolling back") {
		t.Errorf("the rollback failed: %v", err)
	}
	if err := <-joined; err != nil {
		t.Errorf("the holder did not join %s: %v", extra, err)
	}
	if _, err := cli.NetworkInspect(ctx, extra, network.InspectOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("the network the failed update made is still there (%v)", err)
	}
	proxy.mu.Lock()
	if !slices.Contains(proxy.excluded, extra) || !slices.Contains(argsAtExclusion, "exit 3") {
		t.Errorf("the rollback excluded %q first while the service ran %q; want %s excluded while it still had the failed command",
			proxy.excluded, argsAtExclusion, extra)
	}
	if proxy.excluding != 0 {
		t.Errorf("%d exclusions not done when the failed Up returned", proxy.excluding)
	}
	proxy.mu.Unlock()
	svc, _, err := cli.ServiceInspectWithRaw(ctx, ServiceName(project, "app"), swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if args := svc.Spec.TaskTemplate.ContainerSpec.Args; !slices.Contains(args, "cat /run/secrets/token; echo; exec sleep 86400") {
		t.Errorf("after the failed update the service runs %q, want its previous command", args)
	}
	if err := e.waitService(ctx, svc.ID, conditionReady, ""); err != nil {
		t.Errorf("the rolled-back service does not run: %v", err)
	}
	if got := secretNames(); !slices.Equal(got, second) {
		t.Errorf("secrets after the failed update: %v, want %v", got, second)
	}
}

// joinWhenCreated connects container to the network name as soon as it is
// created; the channel gets the outcome.
func joinWhenCreated(t *testing.T, cli *client.Client, name, container string) <-chan error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	// Since now: what happens before the stream is up is replayed.
	msgs, errs := cli.Events(ctx, events.ListOptions{Since: strconv.FormatInt(time.Now().Unix(), 10), Filters: filters.NewArgs(
		filters.Arg("type", string(events.NetworkEventType)), filters.Arg("event", string(events.ActionCreate)))})
	out := make(chan error, 1)
	go func() {
		for {
			select {
			case m := <-msgs:
				if m.Actor.Attributes["name"] == name {
					out <- cli.NetworkConnect(ctx, m.Actor.ID, container, nil)
					return
				}
			case err := <-errs:
				out <- err
				return
			}
		}
	}()
	return out
}

// A controller secret given to a trusted PR is a file under /run/secrets
// in the task, and not in its environment.
func TestControllerSecretIsAFile(t *testing.T) {
	e, cli, reg := testEngine(t)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": `
services:
  app:
    image: slipway-test/busybox:1
    init: true
    stop_grace_period: 1s
    command: ["sh", "-c", "echo file=$(cat /run/secrets/STRIPE_KEY) env=$${STRIPE_KEY:-unset}; exec sleep 86400"]
x-slipway:
  secrets: [STRIPE_KEY]
`})
	src := stack.Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("sec"), PR: 5, SHA: strings.Repeat("6", 40)}
	project := src.Project()
	downAtCleanup(t, e, cli, reg, project)
	ctx := context.Background()
	p, err := stack.Load(ctx, src, stack.LoadOptions{Secrets: map[string]string{"STRIPE_KEY": "sk_test_42"}})
	if err != nil {
		t.Fatal(err)
	}
	up(t, e, p)
	// A preview whose services are gone but whose secret is left is still
	// listed, for the resync to finish it off.
	svc, _, err := cli.ServiceInspectWithRaw(ctx, ServiceName(project, "app"), swarm.ServiceInspectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	if err := e.Logs(ctx, project, stack.LogOptions{Service: "app"}, &logs); err != nil || !strings.Contains(logs.String(), "file=sk_test_42 env=unset") {
		t.Errorf("logs %q %v: want the secret as a file and not as a variable", logs.String(), err)
	}
	if err := cli.ServiceRemove(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
	if err := e.waitTasksGone(ctx, project); err != nil {
		t.Fatal(err)
	}
	if err := e.removeNetworks(ctx, e.projectNetworks(project)); err != nil {
		t.Fatal(err)
	}
	if refs, err := e.Projects(ctx); err != nil || refs[project].PR != 5 {
		t.Errorf("projects %v %v: the preview with only its secret left is not listed", refs, err)
	}
}

// A push that drops a network moves the services off it and removes it,
// the proxy kept off it (and what else is not a task detached) before a
// service moves: at the first exclusion the service is still on both
// networks.
func TestPushThatDropsANetworkKeepsTheProxyOffItFirst(t *testing.T) {
	e, cli, reg := testEngine(t)
	dir := t.TempDir()
	compose := func(networks string) string {
		return `
services:
  app:
    image: slipway-test/busybox:1
    init: true
    stop_grace_period: 1s
    command: ["sh", "-c", "exec sleep 86400"]
` + networks
	}
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": compose("    networks: [default, extra]\nnetworks:\n  extra: {}\n")})
	src := stack.Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("dropnet"), PR: 2, SHA: strings.Repeat("6", 40)}
	project := src.Project()
	downAtCleanup(t, e, cli, reg, project)
	ctx := context.Background()
	up(t, e, load(t, src))
	extra := contract.ResourceName(project, "extra")
	holder := startHolder(t, cli)
	if err := cli.NetworkConnect(ctx, extra, holder, nil); err != nil {
		t.Fatalf("connect the holder to %s: %v", extra, err)
	}

	netsAtExclusion := -1
	proxy := &testProxy{cli: cli, holder: holder, project: project, services: -1, atExclude: func(ctx context.Context) {
		if netsAtExclusion >= 0 {
			return
		}
		if s, _, err := cli.ServiceInspectWithRaw(ctx, ServiceName(project, "app"), swarm.ServiceInspectOptions{}); err == nil {
			netsAtExclusion = len(s.Spec.TaskTemplate.Networks)
		}
	}}
	e.opts.Proxy = proxy
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": compose("")})
	up(t, e, load(t, src))

	if _, err := cli.NetworkInspect(ctx, extra, network.InspectOptions{}); !errdefs.IsNotFound(err) {
		t.Errorf("the network the push dropped is still there (%v)", err)
	}
	proxy.mu.Lock()
	defer proxy.mu.Unlock()
	if !slices.Contains(proxy.excluded, extra) || netsAtExclusion != 2 {
		t.Errorf("excluded %q first while the service was on %d networks; want %s excluded while it was still on both",
			proxy.excluded, netsAtExclusion, extra)
	}
	if proxy.excluding != 0 || proxy.doneWith != 1 {
		t.Errorf("%d exclusions not done when Up returned; the most networks left at a done: %d, want 1 (default)", proxy.excluding, proxy.doneWith)
	}
}
