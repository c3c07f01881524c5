package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/graph"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
)

// UpOptions tune one Up.
type UpOptions struct {
	// BuildLog receives the build output and deploy progress.
	BuildLog io.Writer
	// OnDeploying, if set, is called once the images are built, when Up
	// moves on to the containers.
	OnDeploying func()
	// BeforeDeploy, if set, is called once the images are built and before
	// anything running changes. An error aborts Up (rolling back the build):
	// the controller uses it to check that the SHA is still the PR's head,
	// so a superseded build is never published.
	BeforeDeploy func(ctx context.Context) error
	// ForceRecreate recreates every container even when its config is
	// unchanged (`/slipway redeploy`). Volumes are kept.
	ForceRecreate bool
}

// UpResult says what Up did.
type UpResult struct {
	Project string
	// Built lists the images built by this run.
	Built []string
	// Created lists containers created by this run (new or recreated).
	Created []string
	// Kept lists containers left running untouched.
	Kept []string
	// Removed lists containers removed (old replicas, orphan services).
	Removed []string
	// Convergence is what Up planned for the containers, and why; nil when
	// it failed before planning (in the build, say).
	Convergence *Convergence
}

// Changed reports whether the run changed any container.
func (r *UpResult) Changed() bool { return len(r.Created)+len(r.Removed) > 0 }

// Up builds p's images (making p's networks meanwhile) and converges the
// engine to p: volumes, then containers in dependency order, each recreated only when its config
// hash or image changed. It waits until every service is running (and
// healthy where it has a healthcheck), runs after_deploy jobs when anything
// changed, and removes what p no longer has.
//
// On failure it rolls back what this run did: an environment that was
// running stays as it was; a new one is removed entirely. Every error it
// returns is a contract.Failure naming the step ("build", "deploy" or
// "after_deploy") and the service, if one failed.
func (e *Engine) Up(ctx context.Context, p *Plan, opts UpOptions) (*UpResult, error) {
	res, err := e.up(ctx, p, opts)
	return res, upFailure(err)
}

func (e *Engine) up(ctx context.Context, p *Plan, opts UpOptions) (*UpResult, error) {
	log := opts.BuildLog
	if log == nil {
		log = io.Discard
	}
	for _, n := range p.Notes {
		fmt.Fprintf(log, "note: %s\n", n)
	}
	existing, err := e.projectContainers(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	// Fresh means nothing of the project exists: a failure then removes
	// everything. Volumes (a database's data) or networks left by an
	// environment whose containers were removed make it not fresh, and a
	// failure removes only what this run made.
	fresh := len(existing) == 0
	if fresh {
		if fresh, err = e.nothingOf(ctx, p.Name); err != nil {
			return nil, err
		}
	}
	res := &UpResult{Project: p.Name}
	tx := &transaction{engine: e, project: p.Name, fresh: fresh}

	fail := func(err error) (*UpResult, error) {
		// Roll back with a context of our own: the caller's may be what was cancelled.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if rerr := tx.rollback(rctx); rerr != nil {
			e.log.Error("roll back failed", "project", p.Name, "err", rerr)
			err = fmt.Errorf("%w (and rolling back: %v)", err, rerr)
		}
		if ctx.Err() != nil && fresh {
			// A build cancelled mid-step still commits that step on the
			// daemon after the connection is gone: sweep again once it has.
			select {
			case <-rctx.Done():
			case <-time.After(e.opts.LateCommitWait):
			}
			if rerr := e.Down(rctx, p.Name); rerr != nil {
				e.log.Warn("sweep after a cancelled build", "project", p.Name, "err", rerr)
			}
		}
		return res, err
	}

	// The project's networks do not depend on the build and change
	// nothing that runs: they are made while the images build, off the
	// way to the first container. A failed build rolls them back.
	networks := make(chan error, 1)
	go func() { networks <- e.ensureNetworks(ctx, p, tx) }()
	built, err := e.Build(ctx, p, log)
	netErr := <-networks
	res.Built = built
	tx.images = built
	if err != nil {
		return fail(err)
	}
	if netErr != nil {
		return fail(netErr)
	}
	images, err := e.ensureImages(ctx, p, log)
	if err != nil {
		return fail(err)
	}
	specs, err := e.specs(p, images)
	if err != nil {
		return fail(badInput(err))
	}
	if opts.BeforeDeploy != nil {
		if err := opts.BeforeDeploy(ctx); err != nil {
			return fail(err)
		}
	}

	if opts.OnDeploying != nil {
		opts.OnDeploying()
	}
	if err := e.ensureVolumes(ctx, p, tx, existing); err != nil {
		return fail(err)
	}
	conv := planConvergence(p.Name, convergeInput{specs: specs, observed: existing, force: opts.ForceRecreate})
	res.Convergence = conv
	lw := &lineWriter{w: log}
	for _, a := range conv.Actions {
		lw.Printf(a.Service, "plan: %s", a)
	}
	if err := e.removeInterrupted(ctx, conv); err != nil {
		return fail(err)
	}
	c := &converger{engine: e, plan: p, specs: specs, conv: conv, existing: existing, tx: tx, res: res, log: lw}
	c.precreate(ctx)
	err = graph.InDependencyOrder(ctx, p.Project, func(ctx context.Context, name string, svc types.ServiceConfig) error {
		return c.convergeService(ctx, name)
	})
	c.waitCreates()
	if err != nil {
		return fail(err)
	}
	if err := c.removeOrphans(ctx); err != nil {
		return fail(err)
	}

	if err := e.waitReady(ctx, c.current(), c.fresh()); err != nil {
		return fail(err)
	}
	if len(p.Repo.AfterDeploy) > 0 && (res.Changed() || fresh) {
		for i, job := range p.Repo.AfterDeploy {
			if err := e.runJob(ctx, p, i, job.Service, job.Command, specs, log); err != nil {
				return fail(err)
			}
		}
	}
	tx.commit(ctx)
	if err := e.removeStale(ctx, p); err != nil {
		// The environment is up; what could not be cleaned is logged, and the
		// next run or Down removes it.
		e.log.Warn("remove stale objects", "project", p.Name, "err", err)
	}
	return res, nil
}

// nothingOf reports whether the engine has no network or volume of project.
func (e *Engine) nothingOf(ctx context.Context, project string) (bool, error) {
	nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: projectFilter(project)})
	if err != nil {
		return false, fmt.Errorf("list networks of %s: %w", project, err)
	}
	vols, err := e.docker.VolumeList(ctx, volume.ListOptions{Filters: projectFilter(project)})
	if err != nil {
		return false, fmt.Errorf("list volumes of %s: %w", project, err)
	}
	return len(nets) == 0 && len(vols.Volumes) == 0, nil
}

// projectContainers returns the project's service containers (not one-off
// jobs), keyed by name.
func (e *Engine) projectContainers(ctx context.Context, project string) (map[string]container.Summary, error) {
	f := projectFilter(project)
	f.Add("label", contract.LabelOneoff+"=False")
	list, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w", project, err)
	}
	out := make(map[string]container.Summary, len(list))
	for _, c := range list {
		if len(c.Names) > 0 {
			out[strings.TrimPrefix(c.Names[0], "/")] = c
		}
	}
	return out, nil
}

// removeInterrupted removes the containers a run that was killed midway
// left under a temporary name (retired, never committed or rolled back).
func (e *Engine) removeInterrupted(ctx context.Context, conv *Convergence) error {
	for _, a := range conv.withReason(ReasonInterrupted) {
		e.log.Warn("removing a container left by an interrupted run", "container", a.Container)
		if err := e.docker.ContainerRemove(ctx, a.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("remove leftover container %s: %w", a.Container, err)
		}
	}
	return nil
}

// serviceImage is the image a service's containers run, as the engine has it.
type serviceImage struct {
	ID string
	// Labels are the image's own labels; the reserved ones among them are
	// overridden on every container (see contract.ClearImageLabels).
	Labels map[string]string
}

// ensureImages makes sure every image-only service's image is on the engine,
// pulling it as docker compose does (honouring pull_policy), and returns the
// image of every service.
func (e *Engine) ensureImages(ctx context.Context, p *Plan, log io.Writer) (map[string]serviceImage, error) {
	ids := map[string]serviceImage{}
	var errs []error
	for _, name := range slices.Sorted(maps.Keys(p.Project.Services)) {
		svc := p.Project.Services[name]
		ref := p.Image(name)
		if ref == "" {
			errs = append(errs, fmt.Errorf("service %s: no image and no build section", name))
			continue
		}
		id, err := e.ensureImage(ctx, name, ref, svc.PullPolicy, p.IsBuilt(name), log)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		ids[name] = id
	}
	return ids, errors.Join(errs...)
}

func (e *Engine) ensureImage(ctx context.Context, service, ref, policy string, built bool, log io.Writer) (serviceImage, error) {
	img, err := e.docker.ImageInspect(ctx, ref)
	present := err == nil
	if err != nil && !errdefs.IsNotFound(err) {
		return serviceImage{}, fmt.Errorf("service %s: inspect image %s: %w", service, ref, err)
	}
	if built {
		if !present {
			return serviceImage{}, fmt.Errorf("service %s: built image %s is missing", service, ref)
		}
		return imageOf(img), nil
	}
	switch policy {
	case types.PullPolicyNever:
		if !present {
			return serviceImage{}, badInput(fmt.Errorf("service %s: image %s is not present locally and pull_policy is never", service, ref))
		}
		return imageOf(img), nil
	case types.PullPolicyAlways:
	default:
		if present {
			return imageOf(img), nil
		}
	}
	fmt.Fprintf(log, "%s | pulling %s\n", service, ref)
	if err := e.pull(ctx, ref); err != nil {
		if present {
			e.log.Warn("pull failed; using the local image", "service", service, "image", ref, "err", err)
			return imageOf(img), nil
		}
		return serviceImage{}, badInput(fmt.Errorf("service %s: image %s is not present locally and could not be pulled: %w", service, ref, err))
	}
	img, err = e.docker.ImageInspect(ctx, ref)
	if err != nil {
		return serviceImage{}, fmt.Errorf("service %s: inspect pulled image %s: %w", service, ref, err)
	}
	return imageOf(img), nil
}

func imageOf(img image.InspectResponse) serviceImage {
	si := serviceImage{ID: img.ID}
	if img.Config != nil {
		si.Labels = img.Config.Labels
	}
	return si
}

func (e *Engine) pull(ctx context.Context, ref string) error {
	rc, err := e.docker.ImagePull(ctx, ref, image.PullOptions{})
	if err != nil {
		return err
	}
	defer rc.Close()
	return decodeBuildStream(rc, func(string) {})
}

// specs computes every container of the plan, by service (every service
// has a key, also one scaled to 0). The reserved labels each image
// carries are overridden (see contract.ClearImageLabels).
func (e *Engine) specs(p *Plan, images map[string]serviceImage) (map[string][]*containerSpec, error) {
	out := map[string][]*containerSpec{}
	for name, svc := range p.Project.Services {
		out[name] = nil
		n := svc.GetScale()
		for i := 1; i <= n; i++ {
			s, err := specFor(p, name, i, images[name].ID)
			if err != nil {
				return nil, err
			}
			contract.ClearImageLabels(s.Config.Labels, images[name].Labels)
			out[name] = append(out[name], s)
		}
	}
	return out, nil
}

// ensureNetworks creates the project's networks that do not exist.
func (e *Engine) ensureNetworks(ctx context.Context, p *Plan, tx *transaction) error {
	for _, key := range slices.Sorted(maps.Keys(p.Project.Networks)) {
		n := p.Project.Networks[key]
		if n.External {
			if _, err := e.docker.NetworkInspect(ctx, n.Name, network.InspectOptions{}); err != nil {
				return badInput(fmt.Errorf("external network %s: %w", n.Name, err))
			}
			continue
		}
		if ins, err := e.docker.NetworkInspect(ctx, n.Name, network.InspectOptions{}); err == nil {
			// Rules vanish with a reboot of the host; an Up puts them back.
			if err := e.isolate(ctx, p.Name, ins.ID, ins.Driver, ins.Options); err != nil {
				return err
			}
			continue
		} else if !errdefs.IsNotFound(err) {
			return fmt.Errorf("inspect network %s: %w", n.Name, err)
		}
		if e.opts.Firewall != nil && n.EnableIPv6 != nil && *n.EnableIPv6 {
			return badInput(fmt.Errorf("network %s: enable_ipv6 is not supported while the firewall is on (its rules are IPv4)", key))
		}
		labels := map[string]string{}
		contract.CopyUnreserved(labels, n.Labels)
		maps.Copy(labels, projectLabels(p))
		labels[contract.LabelNetwork] = key
		opts := network.CreateOptions{
			Driver:     "bridge",
			Internal:   n.Internal,
			Attachable: true,
			Labels:     labels,
			Options:    n.DriverOpts,
		}
		if n.Driver != "" && n.Driver != "default" {
			opts.Driver = n.Driver
		}
		if n.EnableIPv6 != nil {
			opts.EnableIPv6 = n.EnableIPv6
		}
		created, err := e.docker.NetworkCreate(ctx, n.Name, opts)
		if err != nil {
			return fmt.Errorf("create network %s: %w", n.Name, err)
		}
		tx.networks = append(tx.networks, n.Name)
		if err := e.isolate(ctx, p.Name, created.ID, opts.Driver, opts.Options); err != nil {
			return err
		}
	}
	return nil
}

// isolate applies the firewall to a bridge network of the project.
func (e *Engine) isolate(ctx context.Context, project, id, driver string, options map[string]string) error {
	if e.opts.Firewall == nil || (driver != "" && driver != "bridge") {
		return nil
	}
	if err := e.opts.Firewall.Isolate(ctx, project, bridgeName(id, options)); err != nil {
		return fmt.Errorf("isolate network of %s: %w", project, err)
	}
	return nil
}

// release removes the firewall rules of a bridge network.
func (e *Engine) release(ctx context.Context, id string, options map[string]string) {
	if e.opts.Firewall == nil {
		return
	}
	if err := e.opts.Firewall.Release(ctx, bridgeName(id, options)); err != nil {
		e.log.Warn("release firewall rules", "network", id, "err", err)
	}
}

// ensureVolumes creates the project's volumes that do not exist, and
// replaces those that bind a directory other than the plan's (see
// replaceBindVolume). Containers it removes on the way are dropped from
// existing.
func (e *Engine) ensureVolumes(ctx context.Context, p *Plan, tx *transaction, existing map[string]container.Summary) error {
	for _, key := range slices.Sorted(maps.Keys(p.Project.Volumes)) {
		v := p.Project.Volumes[key]
		if v.External {
			if _, err := e.docker.VolumeInspect(ctx, v.Name); err != nil {
				return badInput(fmt.Errorf("external volume %s: %w", v.Name, err))
			}
			continue
		}
		if cur, err := e.docker.VolumeInspect(ctx, v.Name); err == nil {
			if !staleBind(cur.Options, v.DriverOpts) {
				continue
			}
			if err := e.replaceBindVolume(ctx, p.Name, v.Name, existing); err != nil {
				return err
			}
		} else if !errdefs.IsNotFound(err) {
			return fmt.Errorf("inspect volume %s: %w", v.Name, err)
		}
		labels := map[string]string{}
		contract.CopyUnreserved(labels, v.Labels)
		maps.Copy(labels, projectLabels(p))
		labels[contract.LabelVolume] = key
		if _, err := e.docker.VolumeCreate(ctx, volume.CreateOptions{Name: v.Name, Driver: v.Driver, DriverOpts: v.DriverOpts, Labels: labels}); err != nil {
			return fmt.Errorf("create volume %s: %w", v.Name, err)
		}
		tx.volumes = append(tx.volumes, v.Name)
	}
	return nil
}

// staleBind reports whether an existing volume binds a host directory and
// the plan's volume binds another one (or the same differently). Such a
// volume holds no data of its own, only the checkout copy it binds: a new
// copy (a new SHA, or one made because a container could write the old
// one) must replace it, or the next container mounting it would get the
// old copy, whatever a container wrote there. Pure.
func staleBind(current, planned map[string]string) bool {
	if !bindOption(current["o"]) && !bindOption(planned["o"]) {
		return false
	}
	return !maps.Equal(current, planned)
}

// bindOption reports whether a local volume's o option binds a directory.
func bindOption(o string) bool {
	for _, tok := range strings.Split(o, ",") {
		if t := strings.TrimSpace(tok); t == "bind" || t == "rbind" {
			return true
		}
	}
	return false
}

// replaceBindVolume removes a volume that binds a stale directory, and
// first the project's containers that mount it: the engine removes no
// volume a container still references, and those containers ran on the
// old copy anyway. They are created again by the converge; a failed deploy
// does not bring them back on the old copy.
func (e *Engine) replaceBindVolume(ctx context.Context, project, name string, existing map[string]container.Summary) error {
	f := projectFilter(project)
	f.Add("volume", name)
	users, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers mounting volume %s: %w", name, err)
	}
	for _, c := range users {
		if err := e.removeContainer(ctx, c.ID); err != nil {
			return fmt.Errorf("remove container %s to replace volume %s: %w", containerName(c), name, err)
		}
		delete(existing, containerName(c))
	}
	if err := e.docker.VolumeRemove(ctx, name, false); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("replace volume %s that binds an old checkout: %w", name, err)
	}
	e.log.Info("replaced a volume that bound an old checkout", "project", project, "volume", name, "containers", len(users))
	return nil
}

// converger carries out a convergence plan, walking the services in
// dependency order.
type converger struct {
	engine   *Engine
	plan     *Plan
	specs    map[string][]*containerSpec
	conv     *Convergence
	existing map[string]container.Summary
	tx       *transaction
	res      *UpResult
	log      *lineWriter

	mu  sync.Mutex
	ids map[string][]string // service → container IDs now in place
	creatingState
}

func (c *converger) setIDs(service string, ids []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ids == nil {
		c.ids = map[string][]string{}
	}
	c.ids[service] = ids
}

func (c *converger) idsOf(service string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ids[service]
}

// record appends a container name to one of the result's lists; services
// without dependencies between them converge in parallel.
func (c *converger) record(list *[]string, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*list = append(*list, name)
}

// fresh is the set of containers this run created.
func (c *converger) fresh() map[string]bool {
	c.tx.mu.Lock()
	defer c.tx.mu.Unlock()
	out := make(map[string]bool, len(c.tx.created))
	for _, id := range c.tx.created {
		out[id] = true
	}
	return out
}

// current lists every container the environment now has, for readiness.
func (c *converger) current() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, ids := range c.ids {
		out = append(out, ids...)
	}
	return out
}

// convergeService carries out the plan's actions for one service, once
// its dependencies meet their conditions: its replicas in order, then the
// replicas above its scale.
func (c *converger) convergeService(ctx context.Context, service string) error {
	svc := c.plan.Project.Services[service]
	if err := c.waitDependencies(ctx, service, svc.DependsOn); err != nil {
		return err
	}
	var ids []string
	for _, a := range c.conv.ofService(service) {
		if a.Action == ActionRemove {
			if err := c.tx.retire(ctx, c.existing[a.Container]); err != nil {
				return err
			}
			c.record(&c.res.Removed, a.Container)
			continue
		}
		id, err := c.convergeContainer(ctx, a)
		if err != nil {
			return err
		}
		ids = append(ids, id)
	}
	c.setIDs(service, ids)
	return nil
}

// convergeContainer carries out the action for one replica and returns
// the ID of its container.
func (c *converger) convergeContainer(ctx context.Context, a ContainerAction) (string, error) {
	e := c.engine
	switch a.Action {
	case ActionKeep:
		c.record(&c.res.Kept, a.Container)
		return a.ID, nil
	case ActionStart:
		c.record(&c.res.Kept, a.Container)
		if err := e.docker.ContainerStart(ctx, a.ID, container.StartOptions{}); err != nil {
			return "", fmt.Errorf("start container %s: %w", a.Container, err)
		}
		return a.ID, nil
	case ActionRecreate:
		if err := c.tx.retire(ctx, c.existing[a.Container]); err != nil {
			return "", err
		}
	}
	spec := c.specs[a.Service][a.Number-1]
	id, err := c.created(ctx, spec)
	if err != nil {
		return "", err
	}
	if err := e.docker.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return "", fmt.Errorf("start container %s: %w", spec.Name, err)
	}
	c.log.Printf(spec.Service, "started %s", spec.Name)
	c.record(&c.res.Created, spec.Name)
	return id, nil
}

// completed reports whether a container ran to a successful end and is
// not meant to be restarted (a one-shot job).
func completed(c container.Summary) bool {
	return c.State == container.StateExited && strings.HasPrefix(c.Status, "Exited (0)")
}

// createContainer creates spec's container and connects its networks.
func (e *Engine) createContainer(ctx context.Context, spec *containerSpec, idsOf func(string) []string) (string, error) {
	host := *spec.Host
	if spec.NetworkModeService != "" {
		ids := idsOf(spec.NetworkModeService)
		if len(ids) == 0 {
			return "", fmt.Errorf("service %s: network_mode service:%s has no container", spec.Service, spec.NetworkModeService)
		}
		host.NetworkMode = container.NetworkMode("container:" + ids[0])
	}
	var netCfg *network.NetworkingConfig
	if len(spec.Networks) > 0 {
		first := spec.Networks[0]
		netCfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			first.Network: {Aliases: first.Aliases, Links: first.Links},
		}}
	}
	resp, err := e.docker.ContainerCreate(ctx, e.createConfig(ctx, spec.Config), &host, netCfg, nil, spec.Name)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return "", badInput(fmt.Errorf("create container %s: %w", spec.Name, err))
		}
		return "", fmt.Errorf("create container %s: %w", spec.Name, err)
	}
	// API 1.41 creates a container on one network; the rest are connected
	// before it starts.
	for _, n := range spec.Networks[min(1, len(spec.Networks)):] {
		if err := e.docker.NetworkConnect(ctx, n.Network, resp.ID, &network.EndpointSettings{Aliases: n.Aliases}); err != nil {
			return resp.ID, fmt.Errorf("connect %s to network %s: %w", spec.Name, n.Network, err)
		}
	}
	return resp.ID, nil
}

// waitDependencies blocks until every dependency of a service meets its
// depends_on condition.
func (c *converger) waitDependencies(ctx context.Context, service string, deps types.DependsOnConfig) error {
	for _, dep := range slices.Sorted(maps.Keys(deps)) {
		d := deps[dep]
		ids := c.idsOf(dep)
		if len(ids) == 0 {
			if !d.Required {
				continue
			}
			return badInput(fmt.Errorf("service %s depends on %s, which has no containers", service, dep))
		}
		cond := d.Condition
		if cond == "" {
			cond = types.ServiceConditionStarted
		}
		if cond == types.ServiceConditionStarted {
			continue // started by the dependency's own converge
		}
		c.log.Printf(service, "waiting for %s (%s)", dep, cond)
		if err := c.engine.waitCondition(ctx, dep, ids, cond, c.fresh()); err != nil {
			return fmt.Errorf("service %s: dependency %w", service, err)
		}
	}
	return nil
}

// removeOrphans retires containers of services the plan no longer has.
func (c *converger) removeOrphans(ctx context.Context) error {
	for _, a := range c.conv.withReason(ReasonOrphan) {
		if err := c.tx.retire(ctx, c.existing[a.Container]); err != nil {
			return err
		}
		c.record(&c.res.Removed, a.Container)
	}
	return nil
}

// removeStale removes project images no container uses and that are not
// the current build (images of older SHAs), and project networks the plan
// no longer has.
func (e *Engine) removeStale(ctx context.Context, p *Plan) error {
	current := map[string]bool{}
	for _, s := range p.Built {
		current[p.Image(s)] = true
	}
	imgs, err := e.docker.ImageList(ctx, image.ListOptions{Filters: projectFilter(p.Name)})
	if err != nil {
		return fmt.Errorf("list images: %w", err)
	}
	var errs []error
	for _, img := range imgs {
		// Untag what is stale one tag at a time (an image shared by services
		// has several); the last untag removes the image unless a container
		// still uses it.
		refs := []string{}
		for _, t := range img.RepoTags {
			if !current[t] && t != "<none>:<none>" {
				refs = append(refs, t)
			}
		}
		if len(img.RepoTags) == 0 {
			refs = append(refs, img.ID)
		}
		for _, ref := range refs {
			if _, err := e.docker.ImageRemove(ctx, ref, image.RemoveOptions{}); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
				errs = append(errs, fmt.Errorf("remove image %s: %w", ref, err))
			}
		}
	}
	nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: projectFilter(p.Name)})
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list networks: %w", err))...)
	}
	wanted := map[string]bool{}
	for _, n := range p.Project.Networks {
		wanted[n.Name] = true
	}
	for _, n := range nets {
		if !wanted[n.Name] {
			// Remove first, release after: a network that could not be
			// removed keeps its firewall rules.
			if err := e.docker.NetworkRemove(ctx, n.ID); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
				continue
			}
			e.release(ctx, n.ID, n.Options)
		}
	}
	return errors.Join(errs...)
}

// transaction records what one Up changed, to undo it on failure.
type transaction struct {
	engine  *Engine
	project string
	fresh   bool

	mu       sync.Mutex
	created  []string // container IDs
	retired  []retired
	networks []string
	volumes  []string
	images   []string
}

type retired struct {
	id, name   string
	wasRunning bool
}

// retire stops an old container and renames it out of the way; commit
// removes it, rollback restores it.
func (t *transaction) retire(ctx context.Context, old container.Summary) error {
	e := t.engine
	name := strings.TrimPrefix(old.Names[0], "/")
	running := old.State == container.StateRunning
	if running {
		timeout := int(e.opts.StopTimeout.Seconds())
		if err := e.docker.ContainerStop(ctx, old.ID, container.StopOptions{Timeout: &timeout}); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("stop container %s: %w", name, err)
		}
	}
	tmp := old.ID[:12] + "_" + name
	if err := e.docker.ContainerRename(ctx, old.ID, tmp); err != nil {
		return fmt.Errorf("rename container %s: %w", name, err)
	}
	t.mu.Lock()
	t.retired = append(t.retired, retired{id: old.ID, name: name, wasRunning: running})
	t.mu.Unlock()
	return nil
}

// commit removes the retired containers.
func (t *transaction) commit(ctx context.Context) {
	for _, r := range t.retired {
		if err := t.engine.docker.ContainerRemove(ctx, r.id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			t.engine.log.Warn("remove replaced container", "container", r.name, "err", err)
		}
	}
}

// rollback undoes the run: new containers go, retired ones come back as
// they were, networks and volumes this run created go, images this run
// built go. A project that did not exist before is removed entirely.
func (t *transaction) rollback(ctx context.Context) error {
	e := t.engine
	var errs []error
	for _, id := range slices.Backward(t.created) {
		if err := e.docker.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove container %s: %w", id[:12], err))
		}
	}
	for _, r := range slices.Backward(t.retired) {
		if err := e.docker.ContainerRename(ctx, r.id, r.name); err != nil {
			errs = append(errs, fmt.Errorf("restore container %s: %w", r.name, err))
			continue
		}
		if r.wasRunning {
			if err := e.docker.ContainerStart(ctx, r.id, container.StartOptions{}); err != nil {
				errs = append(errs, fmt.Errorf("restart container %s: %w", r.name, err))
			}
		}
	}
	if t.fresh {
		if err := e.Down(ctx, t.project); err != nil {
			errs = append(errs, err)
		}
		return errors.Join(errs...)
	}
	for _, n := range t.networks {
		ins, inspectErr := e.docker.NetworkInspect(ctx, n, network.InspectOptions{})
		if err := e.docker.NetworkRemove(ctx, n); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n, err))
			continue // it keeps its firewall rules while it exists
		}
		if inspectErr == nil {
			e.release(ctx, ins.ID, ins.Options)
		}
	}
	for _, v := range t.volumes {
		if err := e.docker.VolumeRemove(ctx, v, true); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v, err))
		}
	}
	for _, img := range t.images {
		if _, err := e.docker.ImageRemove(ctx, img, image.RemoveOptions{}); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
			errs = append(errs, fmt.Errorf("remove image %s: %w", img, err))
		}
	}
	return errors.Join(errs...)
}
