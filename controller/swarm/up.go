package swarm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/graph"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
)

// Up builds p's images, pushes them, and converges the swarm to p:
// networks, secrets and configs, then services in dependency order (each
// created, updated only when its spec changed, or kept), waiting for each
// depends_on condition. It then waits until every service runs (healthy
// where it has a healthcheck), runs the after_deploy jobs when anything
// changed, and removes what p no longer has.
//
// A failed Up of a new environment removes it entirely; a failed update
// rolls the services it changed back to their previous spec and removes
// the ones it created. Every error it returns is a contract.Failure.
func (e *Engine) Up(ctx context.Context, p *stack.Plan, opts stack.UpOptions) (*stack.UpResult, error) {
	res, err := e.up(ctx, p, opts)
	return res, failure(contract.StepDeploy, "", err)
}

func (e *Engine) up(ctx context.Context, p *stack.Plan, opts stack.UpOptions) (*stack.UpResult, error) {
	log := opts.BuildLog
	if log == nil {
		log = io.Discard
	}
	for _, n := range p.Notes {
		fmt.Fprintf(log, "note: %s\n", n)
	}
	if e.opts.Registry == nil || e.opts.Registry.Address == "" {
		return nil, errors.New("the swarm engine needs a registry")
	}
	info, err := e.docker.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the engine's swarm state: %w", err)
	}
	if !info.Swarm.ControlAvailable {
		return nil, fmt.Errorf("the engine is not a swarm manager (node state %q): run Slipway against a manager", info.Swarm.LocalNodeState)
	}
	if f := e.opts.Firewall; f != nil {
		if err := f.Isolate(ctx, firewallProject, GatewayBridge); err != nil {
			return nil, fmt.Errorf("firewall the node's %s: %w", GatewayBridge, err)
		}
	}
	if note := privilegeNote(e.apiVersion(ctx)); note != "" {
		fmt.Fprintf(log, "note: %s\n", note)
		e.log.Warn("no-new-privileges is not applied to swarm tasks", "project", p.Name, "note", note)
	}
	existing, err := e.services(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	// Fresh means nothing of the project exists: a failure then removes
	// everything. Volumes (a database's data) or networks left by a
	// preview whose services were removed make it not fresh.
	fresh := len(existing) == 0
	if fresh {
		if fresh, err = e.nothingOf(ctx, p.Name); err != nil {
			return nil, err
		}
	}
	res := &stack.UpResult{Project: p.Name}
	tx := &transaction{engine: e, project: p.Name, fresh: fresh}
	// The project's networks change nothing that runs: they are made
	// while the images build and push, and the proxy's container joins
	// the routed ones meanwhile. A failed build rolls them back.
	nets := e.prepareNetworks(ctx, p, tx)
	defer nets.releaseHold()
	fail := func(err error) (*stack.UpResult, error) {
		// Released first: the rollback's Down disconnects the proxy from
		// the networks it removes.
		nets.releaseHold()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
		defer cancel()
		if rerr := tx.rollback(rctx); rerr != nil {
			e.log.Error("roll back failed", "project", p.Name, "err", rerr)
			err = fmt.Errorf("%w (and rolling back: %v)", err, rerr)
		}
		return res, err
	}

	built, err := e.builder.Build(ctx, p, log)
	netErr := nets.wait()
	res.Built = built
	if err != nil {
		return fail(err)
	}
	if netErr != nil {
		return fail(netErr)
	}
	in := convertInput{Images: map[string]string{}, ImageLabels: map[string]map[string]string{}, Pins: map[string]string{}}
	// Each distinct built image is pushed once, all at the same time: the
	// pushes are independent, and each is mostly round trips to the
	// registry.
	pushes := map[string]*pushResult{} // local image → its push
	var pushing sync.WaitGroup
	// An early return waits for the pushes under way: the rollback's Down
	// deletes the project's tags, and a push finishing after it would
	// leave one behind.
	failEarly := func(err error) (*stack.UpResult, error) {
		pushing.Wait()
		return fail(err)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Project.Services)) {
		local := p.Image(name)
		if local == "" {
			return failEarly(badInput(fmt.Errorf("service %s: no image and no build section", name)))
		}
		img, err := e.docker.ImageInspect(ctx, local)
		if err == nil && img.Config != nil {
			in.ImageLabels[name] = img.Config.Labels
		} else if err != nil && !errdefs.IsNotFound(err) {
			return failEarly(fmt.Errorf("service %s: inspect image %s: %w", name, local, err))
		}
		if !p.IsBuilt(name) {
			// Every node pulls an image-only service's image itself, by
			// digest where this node knows it (pinnedImage).
			in.Images[name] = pinnedImage(local, img, err == nil)
			continue
		}
		if _, ok := pushes[local]; ok {
			continue
		}
		r := &pushResult{}
		pushes[local] = r
		pushing.Add(1)
		go func(name, local string) {
			defer pushing.Done()
			var buf bytes.Buffer
			r.ref, r.err = e.push(ctx, local, e.opts.Registry.Repository(p.Name, name), contract.ShortSHA(p.Source.SHA), &buf)
			r.log = buf.String()
			if r.err != nil {
				r.err = failure(contract.StepBuild, name, r.err)
			}
		}(name, local)
	}
	pushing.Wait()
	for _, name := range slices.Sorted(maps.Keys(p.Project.Services)) {
		r := pushes[p.Image(name)]
		if r == nil || !p.IsBuilt(name) {
			continue
		}
		if r.err != nil {
			return fail(r.err)
		}
		io.WriteString(log, r.log)
		r.log = "" // once per image
		in.Images[name] = r.ref
	}
	if opts.BeforeDeploy != nil {
		if err := opts.BeforeDeploy(ctx); err != nil {
			return fail(err)
		}
	}
	if opts.OnDeploying != nil {
		opts.OnDeploying()
	}

	if in.Secrets, err = e.ensureFileObjects(ctx, p, secretKind, tx); err != nil {
		return fail(err)
	}
	if in.Configs, err = e.ensureFileObjects(ctx, p, configKind, tx); err != nil {
		return fail(err)
	}
	if in.ControllerSecrets, err = e.ensureControllerSecrets(ctx, p, tx); err != nil {
		return fail(err)
	}
	for name, svc := range p.Project.Services {
		if !needsPin(svc) {
			continue
		}
		node := info.Swarm.NodeID
		if cur, ok := existing[name]; ok {
			if pinned := pinnedNode(cur.Spec.TaskTemplate.Placement); pinned != "" {
				node = pinned // where its volume is
			}
		}
		in.Pins[name] = node
	}
	specs := map[string]swarm.ServiceSpec{}
	for name := range p.Project.Services {
		spec, err := serviceSpec(p, name, in)
		if err != nil {
			return fail(badInput(err))
		}
		specs[name] = spec
	}
	fmt.Fprintf(log, "networks, secrets and configs ready\n")
	decisions := planServices(specs, existing, opts.ForceRecreate)
	for _, d := range decisions {
		fmt.Fprintf(log, "%s | plan: %s\n", d.Service, d)
	}

	// The first task on a network is created once the proxy's container
	// is on it: the node has its copy of the network then. Created while
	// the proxy's join is still under way, the task waits for the same
	// setting up, and starts later than after the join (seen: about a
	// second on a loaded node).
	nets.waitHeld()
	// Services move off the networks the plan no longer has (removed
	// once they are off, removeStale): the proxy's container, and what
	// else is not a task, leave those first, as in Down.
	if !fresh {
		stale, err := e.staleNetworks(p)(ctx)
		if err != nil {
			return fail(err)
		}
		done, err := e.keepOff(ctx, stale)
		defer done()
		if err != nil {
			e.log.Warn("detach from the networks the project no longer has", "project", p.Name, "err", err)
		}
	}
	c := &converger{engine: e, plan: p, specs: specs, decisions: decisions, existing: existing, tx: tx, res: res, log: log, node: info.Swarm.NodeID}
	if err := graph.InDependencyOrder(ctx, p.Project, func(ctx context.Context, name string, _ types.ServiceConfig) error {
		return c.convergeService(ctx, name)
	}); err != nil {
		return fail(err)
	}
	for _, d := range decisions {
		if d.Action != actionRemove {
			continue
		}
		if err := e.docker.ServiceRemove(ctx, d.ID); err != nil && !errdefs.IsNotFound(err) {
			return fail(fmt.Errorf("remove service %s: %w", d.Name, err))
		}
		res.Removed = append(res.Removed, d.Name)
	}
	if err := e.waitReady(ctx, p.Name, specs, info.Swarm.NodeID, log); err != nil {
		return fail(err)
	}
	if len(p.Repo.AfterDeploy) > 0 && (res.Changed() || fresh) {
		for i, job := range p.Repo.AfterDeploy {
			spec, err := jobSpec(p, i, job.Service, job.Command, in)
			if err != nil {
				return fail(badInput(err))
			}
			if err := e.runJob(ctx, spec, log); err != nil {
				return fail(failure(contract.StepAfterDeploy, job.Service, fmt.Errorf("after_deploy[%d]: %w", i, err)))
			}
		}
	}
	if err := e.removeStale(ctx, p, in); err != nil {
		e.log.Warn("remove stale objects", "project", p.Name, "err", err)
	}
	return res, nil
}

// pushResult is the outcome of one image's push.
type pushResult struct {
	ref string // by digest
	log string
	err error
}

// nothingOf reports whether the swarm has no network and this node no
// volume of project.
func (e *Engine) nothingOf(ctx context.Context, project string) (bool, error) {
	nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: namespaceFilter(project)})
	if err != nil {
		return false, fmt.Errorf("list networks of %s: %w", project, err)
	}
	vols, err := e.docker.VolumeList(ctx, volume.ListOptions{Filters: namespaceFilter(project)})
	if err != nil {
		return false, fmt.Errorf("list volumes of %s: %w", project, err)
	}
	return len(nets) == 0 && len(vols.Volumes) == 0, nil
}

// services returns the project's long-running and job services by compose
// name (after_deploy job services are left out).
func (e *Engine) services(ctx context.Context, project string) (map[string]swarm.Service, error) {
	list, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Filters: namespaceFilter(project)})
	if err != nil {
		return nil, fmt.Errorf("list services of %s: %w", project, err)
	}
	out := map[string]swarm.Service{}
	for _, s := range list {
		if s.Spec.Labels[contract.LabelOneoff] == "True" {
			continue
		}
		out[s.Spec.Labels[contract.LabelService]] = s
	}
	return out, nil
}

// Actions on a service.
const (
	actionCreate = "create"
	actionUpdate = "update"
	actionKeep   = "keep"
	actionRemove = "remove"
)

// serviceDecision is what Up does with one service, and why.
type serviceDecision struct {
	Service string // compose name
	Name    string // swarm name
	ID      string // of the existing service
	Action  string
	Reason  string
}

func (d serviceDecision) String() string {
	if d.Reason == "" {
		return d.Action + " " + d.Name
	}
	return d.Action + " " + d.Name + " (" + d.Reason + ")"
}

// planServices decides, for every service, whether to create, update or
// keep it, and which existing services to remove. Pure.
func planServices(specs map[string]swarm.ServiceSpec, existing map[string]swarm.Service, force bool) []serviceDecision {
	var out []serviceDecision
	for _, name := range slices.Sorted(maps.Keys(specs)) {
		spec := specs[name]
		cur, ok := existing[name]
		d := serviceDecision{Service: name, Name: spec.Name}
		switch {
		case !ok:
			d.Action = actionCreate
		case force:
			d.ID, d.Action, d.Reason = cur.ID, actionUpdate, "forced"
		case cur.Spec.Labels[contract.LabelConfigHash] != spec.Labels[contract.LabelConfigHash]:
			d.ID, d.Action, d.Reason = cur.ID, actionUpdate, "spec changed"
		case replicas(cur.Spec.Mode) != replicas(spec.Mode):
			d.ID, d.Action, d.Reason = cur.ID, actionUpdate, "scaled"
		default:
			d.ID, d.Action = cur.ID, actionKeep
		}
		out = append(out, d)
	}
	for _, name := range slices.Sorted(maps.Keys(existing)) {
		if _, ok := specs[name]; !ok {
			cur := existing[name]
			out = append(out, serviceDecision{Service: name, Name: cur.Spec.Name, ID: cur.ID, Action: actionRemove, Reason: "not in the project"})
		}
	}
	return out
}

// replicas is a replicated service's count, -1 for other modes.
func replicas(m swarm.ServiceMode) int64 {
	if m.Replicated != nil && m.Replicated.Replicas != nil {
		return int64(*m.Replicated.Replicas)
	}
	return -1
}

// converger carries out the decisions, service by service in dependency order.
type converger struct {
	engine    *Engine
	plan      *stack.Plan
	specs     map[string]swarm.ServiceSpec
	decisions []serviceDecision
	existing  map[string]swarm.Service
	tx        *transaction
	res       *stack.UpResult
	log       io.Writer
	// node is the node Slipway talks to: its tasks' healthchecks can be
	// run through exec while a dependent waits (fastcheck.go).
	node string

	mu sync.Mutex
}

func (c *converger) record(list *[]string, name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	*list = append(*list, name)
}

func (c *converger) decision(service string) serviceDecision {
	for _, d := range c.decisions {
		if d.Service == service && d.Action != actionRemove {
			return d
		}
	}
	return serviceDecision{}
}

func (c *converger) convergeService(ctx context.Context, service string) error {
	e := c.engine
	svc := c.plan.Project.Services[service]
	for _, dep := range slices.Sorted(maps.Keys(svc.DependsOn)) {
		cond := svc.DependsOn[dep].Condition
		if cond == "" {
			cond = types.ServiceConditionStarted
		}
		fmt.Fprintf(c.log, "%s | waiting for %s (%s)\n", service, dep, cond)
		if err := e.waitService(ctx, c.specs[dep].Name, cond, c.node); err != nil {
			return failure(contract.StepDeploy, service, fmt.Errorf("service %s: dependency %s: %w", service, dep, err))
		}
		fmt.Fprintf(c.log, "%s | %s is %s\n", service, dep, strings.TrimPrefix(cond, "service_"))
	}
	d := c.decision(service)
	spec := c.specs[service]
	switch d.Action {
	case actionKeep:
		c.record(&c.res.Kept, d.Name)
		return nil
	case actionCreate:
		resp, err := e.docker.ServiceCreate(ctx, spec, e.createOptions(spec))
		if err != nil {
			return failure(contract.StepDeploy, service, fmt.Errorf("create service %s: %w", spec.Name, err))
		}
		c.tx.add(&c.tx.created, resp.ID)
	case actionUpdate:
		cur := c.existing[service]
		if d.Reason == "forced" {
			spec.TaskTemplate.ForceUpdate = cur.Spec.TaskTemplate.ForceUpdate + 1
		}
		if _, err := e.docker.ServiceUpdate(ctx, cur.ID, cur.Version, spec, e.updateOptions(spec)); err != nil {
			return failure(contract.StepDeploy, service, fmt.Errorf("update service %s: %w", spec.Name, err))
		}
		c.tx.add(&c.tx.updated, cur.ID)
	}
	fmt.Fprintf(c.log, "%s | %sd %s\n", service, d.Action, spec.Name)
	c.record(&c.res.Created, spec.Name)
	return nil
}

// ensureNetworks creates the project's overlay networks that do not exist:
// attachable, so the proxy (and tests) can join them.
func (e *Engine) ensureNetworks(ctx context.Context, p *stack.Plan, tx *transaction) error {
	for _, key := range slices.Sorted(maps.Keys(p.Project.Networks)) {
		n := p.Project.Networks[key]
		if n.External {
			if _, err := e.docker.NetworkInspect(ctx, n.Name, network.InspectOptions{}); err != nil {
				return badInput(fmt.Errorf("external network %s: %w", n.Name, err))
			}
			continue
		}
		switch n.Driver {
		case "", "default", "overlay", "bridge":
		default:
			return badInput(fmt.Errorf("network %s: driver %q is not supported by the swarm engine (networks are overlays)", key, n.Driver))
		}
		if ins, err := e.docker.NetworkInspect(ctx, n.Name, network.InspectOptions{}); err == nil {
			// Reused only if it is this project's: the proxy joins the
			// routed ones, and the tasks would share it with whatever
			// made it.
			if owner := ins.Labels[LabelNamespace]; owner != p.Name || ins.Labels[contract.LabelManaged] != "true" {
				return badInput(fmt.Errorf("network %s: a network named %s exists and is not one Slipway made for %s (its %s is %q)", key, n.Name, p.Name, LabelNamespace, owner))
			}
			continue
		} else if !errdefs.IsNotFound(err) {
			return fmt.Errorf("inspect network %s: %w", n.Name, err)
		}
		labels := map[string]string{}
		contract.CopyUnreserved(labels, n.Labels)
		maps.Copy(labels, projectLabels(p))
		labels[contract.LabelNetwork] = key
		opts := network.CreateOptions{Driver: "overlay", Scope: "swarm", Attachable: true, Internal: n.Internal, Labels: labels}
		if v, ok := n.DriverOpts["encrypted"]; ok {
			opts.Options = map[string]string{"encrypted": v}
		}
		created, err := e.docker.NetworkCreate(ctx, n.Name, opts)
		if err != nil {
			return fmt.Errorf("create network %s: %w", n.Name, err)
		}
		tx.add(&tx.networks, created.ID)
	}
	return nil
}

// fileKind is secrets or configs: both are immutable swarm objects made
// from a file of the checkout.
type fileKind struct {
	name string
	list func(p *types.Project) map[string]types.FileObjectConfig
}

var (
	secretKind = fileKind{"secret", func(p *types.Project) map[string]types.FileObjectConfig {
		out := map[string]types.FileObjectConfig{}
		for k, v := range p.Secrets {
			out[k] = types.FileObjectConfig(v)
		}
		return out
	}}
	configKind = fileKind{"config", func(p *types.Project) map[string]types.FileObjectConfig {
		out := map[string]types.FileObjectConfig{}
		for k, v := range p.Configs {
			out[k] = types.FileObjectConfig(v)
		}
		return out
	}}
)

// objectName names a secret or config by its content: swarm objects
// cannot change, so new content is a new object, and the services using
// it are updated.
func objectName(project, key string, content []byte) string {
	sum := sha256.Sum256(content)
	return contract.ResourceName(project, key) + "_" + hex.EncodeToString(sum[:])[:12]
}

// ensureFileObjects creates the secrets or configs of the project that do
// not exist, from the files the compose file names.
func (e *Engine) ensureFileObjects(ctx context.Context, p *stack.Plan, kind fileKind, tx *transaction) (map[string]objectRef, error) {
	out := map[string]objectRef{}
	objs := kind.list(p.Project)
	for _, key := range slices.Sorted(maps.Keys(objs)) {
		obj := objs[key]
		if obj.File == "" {
			return nil, badInput(fmt.Errorf("%s %q: only file-based %ss are supported in previews", kind.name, key, kind.name))
		}
		content, err := os.ReadFile(obj.File)
		if err != nil {
			return nil, badInput(fmt.Errorf("%s %q: %w", kind.name, key, err))
		}
		name := objectName(p.Name, key, content)
		labels := projectLabels(p)
		labels["dev.slipway."+kind.name] = key
		id, err := e.ensureObject(ctx, kind.name, name, labels, content, tx)
		if err != nil {
			return nil, err
		}
		out[key] = objectRef{ID: id, Name: name}
	}
	return out, nil
}

// ensureObject returns the ID of the secret or config named name, creating
// it with content when it does not exist.
func (e *Engine) ensureObject(ctx context.Context, kind, name string, labels map[string]string, content []byte, tx *transaction) (string, error) {
	f := filters.NewArgs(filters.Arg("name", name))
	if kind == "secret" {
		list, err := e.docker.SecretList(ctx, swarm.SecretListOptions{Filters: f})
		if err != nil {
			return "", fmt.Errorf("list secrets: %w", err)
		}
		for _, s := range list {
			if s.Spec.Name == name {
				return s.ID, nil
			}
		}
		resp, err := e.docker.SecretCreate(ctx, swarm.SecretSpec{Annotations: swarm.Annotations{Name: name, Labels: labels}, Data: content})
		if err != nil {
			return "", fmt.Errorf("create secret %s: %w", name, err)
		}
		tx.add(&tx.secrets, resp.ID)
		return resp.ID, nil
	}
	list, err := e.docker.ConfigList(ctx, swarm.ConfigListOptions{Filters: f})
	if err != nil {
		return "", fmt.Errorf("list configs: %w", err)
	}
	for _, c := range list {
		if c.Spec.Name == name {
			return c.ID, nil
		}
	}
	resp, err := e.docker.ConfigCreate(ctx, swarm.ConfigSpec{Annotations: swarm.Annotations{Name: name, Labels: labels}, Data: content})
	if err != nil {
		return "", fmt.Errorf("create config %s: %w", name, err)
	}
	tx.add(&tx.configs, resp.ID)
	return resp.ID, nil
}

// ensureControllerSecrets makes a swarm secret of each controller secret
// the plan gives its services (trusted PRs only: Load withholds them from
// the others), named by its content.
func (e *Engine) ensureControllerSecrets(ctx context.Context, p *stack.Plan, tx *transaction) (map[string]objectRef, error) {
	out := map[string]objectRef{}
	for name, value := range controllerSecrets(p) {
		objName := objectName(p.Name, "slipway-secret-"+name, []byte(value))
		labels := projectLabels(p)
		labels["dev.slipway.secret"] = name
		id, err := e.ensureObject(ctx, "secret", objName, labels, []byte(value), tx)
		if err != nil {
			return nil, err
		}
		out[name] = objectRef{ID: id, Name: objName}
	}
	return out, nil
}

// removeStale removes the project's secrets and configs no service uses
// any more, and networks the plan no longer has.
func (e *Engine) removeStale(ctx context.Context, p *stack.Plan, in convertInput) error {
	var errs []error
	keep := map[string]bool{}
	for _, o := range in.Secrets {
		keep[o.ID] = true
	}
	for _, o := range in.Configs {
		keep[o.ID] = true
	}
	for _, o := range in.ControllerSecrets {
		keep[o.ID] = true
	}
	secrets, err := e.docker.SecretList(ctx, swarm.SecretListOptions{Filters: namespaceFilter(p.Name)})
	if err != nil {
		errs = append(errs, fmt.Errorf("list secrets: %w", err))
	}
	for _, s := range secrets {
		if !keep[s.ID] {
			if err := e.docker.SecretRemove(ctx, s.ID); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove secret %s: %w", s.Spec.Name, err))
			}
		}
	}
	configs, err := e.docker.ConfigList(ctx, swarm.ConfigListOptions{Filters: namespaceFilter(p.Name)})
	if err != nil {
		errs = append(errs, fmt.Errorf("list configs: %w", err))
	}
	for _, c := range configs {
		if !keep[c.ID] {
			if err := e.docker.ConfigRemove(ctx, c.ID); err != nil && !errdefs.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("remove config %s: %w", c.Spec.Name, err))
			}
		}
	}
	// Bounded more tightly than a deploy: a task of another node that
	// still holds one (a stale endpoint this node cannot force off)
	// must not keep the deploy waiting. A network left is logged, and
	// goes with the next deploy or the teardown.
	ctx, cancel := context.WithTimeout(ctx, staleNetworksTimeout)
	defer cancel()
	if err := e.removeNetworks(ctx, e.staleNetworks(p)); err != nil {
		errs = append(errs, fmt.Errorf("remove the networks the project no longer has: %w", err))
	}
	return errors.Join(errs...)
}

// staleNetworksTimeout bounds removeStale's removal of networks.
const staleNetworksTimeout = 30 * time.Second

// staleNetworks lists project p's networks that the plan no longer has,
// for keepOff and removeNetworks.
func (e *Engine) staleNetworks(p *stack.Plan) func(context.Context) ([]network.Summary, error) {
	wanted := map[string]bool{}
	for _, n := range p.Project.Networks {
		wanted[n.Name] = true
	}
	return func(ctx context.Context) ([]network.Summary, error) {
		nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: namespaceFilter(p.Name)})
		if err != nil {
			return nil, fmt.Errorf("list networks of %s: %w", p.Name, err)
		}
		return slices.DeleteFunc(nets, func(n network.Summary) bool { return wanted[n.Name] }), nil
	}
}

// networksByID lists those of the networks ids that are still there, for
// removeNetworks.
func (e *Engine) networksByID(ids []string) func(context.Context) ([]network.Summary, error) {
	return func(ctx context.Context) ([]network.Summary, error) {
		var nets []network.Summary
		for _, id := range ids {
			ins, err := e.docker.NetworkInspect(ctx, id, network.InspectOptions{})
			if errdefs.IsNotFound(err) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("inspect network %s: %w", id, err)
			}
			nets = append(nets, ins)
		}
		return nets, nil
	}
}

// transaction records what one Up changed, to undo it on failure.
type transaction struct {
	engine  *Engine
	project string
	fresh   bool

	mu                         sync.Mutex
	created, updated           []string // service IDs
	networks, secrets, configs []string
}

func (t *transaction) add(list *[]string, id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	*list = append(*list, id)
}

// rollback removes a new environment entirely; otherwise it rolls updated
// services back to their previous spec and removes what this run created.
func (t *transaction) rollback(ctx context.Context) error {
	e := t.engine
	if t.fresh {
		return e.Down(ctx, t.project)
	}
	var errs []error
	// The networks this run made go at the end: the proxy's container
	// (its hold released just now) and what else is not a task leave
	// them before a task on them is removed, as in Down.
	made, err := e.networksByID(t.networks)(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	done, err := e.keepOff(ctx, made)
	defer done()
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range t.updated {
		s, _, err := e.docker.ServiceInspectWithRaw(ctx, id, swarm.ServiceInspectOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("inspect service %s: %w", id, err))
			continue
		}
		if s.PreviousSpec == nil {
			continue
		}
		if _, err := e.docker.ServiceUpdate(ctx, id, s.Version, *s.PreviousSpec, e.updateOptions(*s.PreviousSpec)); err != nil {
			errs = append(errs, fmt.Errorf("roll back service %s: %w", s.Spec.Name, err))
		}
	}
	for _, id := range t.created {
		if err := e.docker.ServiceRemove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove service %s: %w", id, err))
		}
	}
	for _, id := range t.secrets {
		if err := e.docker.SecretRemove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove secret %s: %w", id, err))
		}
	}
	for _, id := range t.configs {
		if err := e.docker.ConfigRemove(ctx, id); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove config %s: %w", id, err))
		}
	}
	if err := e.removeNetworks(ctx, e.networksByID(t.networks)); err != nil {
		errs = append(errs, fmt.Errorf("remove the networks this run made: %w", err))
	}
	return errors.Join(errs...)
}
