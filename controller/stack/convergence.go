package stack

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Action is what converging does to one container.
type Action string

// Actions.
const (
	// ActionCreate creates a replica that has no container yet.
	ActionCreate Action = "create"
	// ActionRecreate replaces a container: the old one is stopped and
	// renamed away, the new one created; the old one is removed once the
	// stack is ready, and comes back if the deploy fails.
	ActionRecreate Action = "recreate"
	// ActionStart keeps a container but starts it: it is not running.
	ActionStart Action = "start"
	// ActionKeep leaves a container as it is.
	ActionKeep Action = "keep"
	// ActionRemove removes a container the project no longer wants.
	ActionRemove Action = "remove"
)

// Reason says why a container gets its action.
type Reason string

// Reasons.
const (
	// ReasonNoContainer: the replica has no container (create).
	ReasonNoContainer Reason = "no container yet"
	// ReasonUpToDate: config and image are unchanged (keep).
	ReasonUpToDate Reason = "up to date"
	// ReasonCompleted: a one-shot that exited 0 is not started again (keep).
	ReasonCompleted Reason = "completed"
	// ReasonNotRunning: unchanged but stopped, exited or never started (start).
	ReasonNotRunning Reason = "not running"
	// ReasonImageChanged: the service's image is another one (recreate).
	ReasonImageChanged Reason = "image changed"
	// ReasonConfigChanged: the config hash differs, the image is the same (recreate).
	ReasonConfigChanged Reason = "config hash changed"
	// ReasonImagePending: the image is built or pulled by the run itself,
	// so a plan made beforehand cannot compare it (recreate). Up's own plan,
	// made once the images are there, never says this.
	ReasonImagePending Reason = "image not built or pulled yet"
	// ReasonNetworkRecreated: the container shares the network namespace
	// of a service (network_mode: service:X) whose containers change (recreate).
	ReasonNetworkRecreated Reason = "network namespace recreated"
	// ReasonVolumeReplaced: a volume the container mounts binds an old
	// checkout and is replaced first, which removes the container (recreate).
	ReasonVolumeReplaced Reason = "volume replaced"
	// ReasonForced: a redeploy recreates every container (recreate).
	ReasonForced Reason = "forced"
	// ReasonScaleDown: a replica above the service's scale (remove).
	ReasonScaleDown Reason = "scale down"
	// ReasonOrphan: the service is no longer in the compose project (remove).
	ReasonOrphan Reason = "orphan service"
	// ReasonInterrupted: a container a killed run left under a temporary
	// name (remove, before anything else).
	ReasonInterrupted Reason = "left by an interrupted run"
)

// ContainerAction is the plan for one container.
type ContainerAction struct {
	Action Action `json:"action"`
	Reason Reason `json:"reason"`
	// Detail says what the reason refers to: the images, the volume, the
	// service whose namespace is shared, the wanted scale.
	Detail  string `json:"detail,omitempty"`
	Service string `json:"service"`
	Number  int    `json:"number"`
	// Container is the container's name: <project>-<service>-<n>, or the
	// name the engine has for a container that is removed.
	Container string `json:"container"`
	// ID is the existing container's ID; "" for ActionCreate.
	ID string `json:"id,omitempty"`
}

// String reads "recreate acme-shop-pr-4-web-1: image changed (sha256:… → sha256:…)".
func (a ContainerAction) String() string {
	s := fmt.Sprintf("%s %s: %s", a.Action, a.Container, a.Reason)
	if a.Detail != "" {
		s += " (" + a.Detail + ")"
	}
	return s
}

// Convergence is what converging a project does to its containers, and
// why, computed before anything changes: Up carries it out, and
// ConvergencePlan returns it without changing anything.
type Convergence struct {
	Project string `json:"project"`
	// Actions lists, in the order Up carries them out: containers left by
	// an interrupted run; each service's replicas by number, then the
	// replicas above its scale (services by name here; Up walks them in
	// dependency order); the containers of orphan services.
	Actions []ContainerAction `json:"actions"`
}

// Changed reports whether the plan creates, recreates or removes a container.
func (c *Convergence) Changed() bool {
	return slices.ContainsFunc(c.Actions, func(a ContainerAction) bool {
		return a.Action == ActionCreate || a.Action == ActionRecreate || a.Action == ActionRemove
	})
}

// Count returns how many containers get action a.
func (c *Convergence) Count(a Action) int {
	n := 0
	for _, x := range c.Actions {
		if x.Action == a {
			n++
		}
	}
	return n
}

// ofService lists the actions Up takes while converging service: its
// replicas, then its scale-down.
func (c *Convergence) ofService(service string) []ContainerAction {
	var out []ContainerAction
	for _, a := range c.Actions {
		if a.Service == service && a.Reason != ReasonInterrupted && a.Reason != ReasonOrphan {
			out = append(out, a)
		}
	}
	return out
}

// withReason lists the actions of one reason.
func (c *Convergence) withReason(r Reason) []ContainerAction {
	var out []ContainerAction
	for _, a := range c.Actions {
		if a.Reason == r {
			out = append(out, a)
		}
	}
	return out
}

// ConvergeOptions tune a convergence plan.
type ConvergeOptions struct {
	// ForceRecreate recreates every container (UpOptions.ForceRecreate).
	ForceRecreate bool
}

// convergeInput is what a convergence plan is computed from.
type convergeInput struct {
	// specs are the containers the plan wants, by service, replicas in
	// order. Every service of the project has a key, also one scaled to 0.
	specs map[string][]*containerSpec
	// observed are the project's service containers, by name.
	observed map[string]container.Summary
	force    bool
	// pendingImages says, by service, why the image is not known yet
	// (a plan made before the build); empty in Up.
	pendingImages map[string]string
	// replacedVolumes names the volumes Up replaces before converging
	// (they bind an old checkout); empty in Up, which has replaced them.
	replacedVolumes map[string]bool
}

// planConvergence decides, for every container wanted and observed, what
// converging does and why. It is pure: Up executes its result exactly.
//
// A replica is kept when its config hash (which covers the image ID) is
// unchanged, unless the run is forced or it shares the network namespace
// of a service that changes; a kept container that is not running is
// started, unless it completed (exited 0). Replicas above the scale and
// containers of services the project no longer has are removed.
func planConvergence(project string, in convergeInput) *Convergence {
	conv := &Convergence{Project: project}
	// Only canonical <project>-<service>-<n> names are matched to the plan;
	// anything else was left under a temporary name by a killed run.
	current := map[string]container.Summary{}
	for _, name := range slices.Sorted(maps.Keys(in.observed)) {
		c := in.observed[name]
		n, _ := strconv.Atoi(c.Labels[contract.LabelNumber])
		if name == contract.ContainerName(c.Labels[contract.LabelProject], c.Labels[contract.LabelService], n) {
			current[name] = c
			continue
		}
		conv.Actions = append(conv.Actions, observedAction(c, name, ActionRemove, ReasonInterrupted, ""))
	}

	services := map[string][]ContainerAction{}
	visiting := map[string]bool{}
	// decide plans one service, after the service whose network namespace
	// its containers share.
	var decide func(service string) []ContainerAction
	decide = func(service string) []ContainerAction {
		if acts, done := services[service]; done || visiting[service] {
			return acts
		}
		visiting[service] = true
		var acts []ContainerAction
		for _, spec := range in.specs[service] {
			parentChanged := false
			if parent := spec.NetworkModeService; parent != "" {
				parentChanged = changes(decide(parent))
			}
			acts = append(acts, decideContainer(spec, current, in, parentChanged))
		}
		want := len(in.specs[service])
		for _, name := range slices.Sorted(maps.Keys(current)) {
			c := current[name]
			if c.Labels[contract.LabelService] != service {
				continue
			}
			if n, _ := strconv.Atoi(c.Labels[contract.LabelNumber]); n > want {
				acts = append(acts, observedAction(c, name, ActionRemove, ReasonScaleDown, fmt.Sprintf("%s wants %d", service, want)))
			}
		}
		services[service] = acts
		return acts
	}
	for _, service := range slices.Sorted(maps.Keys(in.specs)) {
		conv.Actions = append(conv.Actions, decide(service)...)
	}

	for _, name := range slices.Sorted(maps.Keys(current)) {
		c := current[name]
		if _, ok := in.specs[c.Labels[contract.LabelService]]; !ok {
			conv.Actions = append(conv.Actions, observedAction(c, name, ActionRemove, ReasonOrphan,
				c.Labels[contract.LabelService]+" is not in the compose project"))
		}
	}
	return conv
}

// decideContainer plans one replica.
func decideContainer(spec *containerSpec, current map[string]container.Summary, in convergeInput, parentChanged bool) ContainerAction {
	old, exists := current[spec.Name]
	if !exists {
		return ContainerAction{Action: ActionCreate, Reason: ReasonNoContainer, Service: spec.Service, Number: spec.Number, Container: spec.Name}
	}
	act := func(a Action, r Reason, detail string) ContainerAction {
		return ContainerAction{Action: a, Reason: r, Detail: detail, Service: spec.Service, Number: spec.Number, Container: spec.Name, ID: old.ID}
	}
	oldImage, newImage := old.Labels[contract.LabelImage], spec.Config.Labels[contract.LabelImage]
	switch {
	case replacedVolume(old, in.replacedVolumes) != "":
		return act(ActionRecreate, ReasonVolumeReplaced, replacedVolume(old, in.replacedVolumes)+" binds an old checkout")
	case in.pendingImages[spec.Service] != "":
		return act(ActionRecreate, ReasonImagePending, in.pendingImages[spec.Service])
	case old.Labels[contract.LabelConfigHash] != spec.Hash && oldImage != newImage:
		return act(ActionRecreate, ReasonImageChanged, shortImageID(oldImage)+" → "+shortImageID(newImage))
	case old.Labels[contract.LabelConfigHash] != spec.Hash:
		return act(ActionRecreate, ReasonConfigChanged, "")
	case parentChanged:
		return act(ActionRecreate, ReasonNetworkRecreated, "network_mode: service:"+spec.NetworkModeService)
	case in.force:
		return act(ActionRecreate, ReasonForced, "")
	case completed(old):
		return act(ActionKeep, ReasonCompleted, "")
	case old.State != container.StateRunning:
		return act(ActionStart, ReasonNotRunning, string(old.State))
	}
	return act(ActionKeep, ReasonUpToDate, "")
}

// changes reports whether a service's actions change its containers (what
// recreates the containers that share its network namespace).
func changes(acts []ContainerAction) bool {
	return slices.ContainsFunc(acts, func(a ContainerAction) bool {
		return a.Action == ActionCreate || a.Action == ActionRecreate || a.Action == ActionRemove
	})
}

func observedAction(c container.Summary, name string, a Action, r Reason, detail string) ContainerAction {
	n, _ := strconv.Atoi(c.Labels[contract.LabelNumber])
	return ContainerAction{Action: a, Reason: r, Detail: detail, Service: c.Labels[contract.LabelService], Number: n, Container: name, ID: c.ID}
}

// replacedVolume returns the first of replaced that c mounts, else "".
func replacedVolume(c container.Summary, replaced map[string]bool) string {
	for _, m := range c.Mounts {
		if m.Type == mount.TypeVolume && replaced[m.Name] {
			return "volume " + m.Name
		}
	}
	return ""
}

func shortImageID(id string) string {
	if id == "" {
		return "unknown image"
	}
	if hex, ok := strings.CutPrefix(id, "sha256:"); ok && len(hex) > 12 {
		return "sha256:" + hex[:12]
	}
	return id
}

// ConvergencePlan returns what Up would do to the containers of p's
// project now, with reasons, and changes nothing: it reads the project's
// containers, images and volumes from the engine.
//
// Made before the build, it cannot know the ID of an image the build
// makes: a service whose image Build would (re)build, or whose image is
// not present and would be pulled, is recreated with ReasonImagePending.
// It never pulls, so an image with pull_policy: always counts as the one
// present.
func (e *Engine) ConvergencePlan(ctx context.Context, p *Plan, opts ConvergeOptions) (*Convergence, error) {
	observed, err := e.projectContainers(ctx, p.Name)
	if err != nil {
		return nil, err
	}
	images := map[string]serviceImage{}
	pending := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(p.Project.Services)) {
		svc := p.Project.Services[name]
		ref := p.Image(name)
		if ref == "" {
			return nil, fmt.Errorf("service %s: no image and no build section", name)
		}
		img, err := e.docker.ImageInspect(ctx, ref)
		switch {
		case err != nil && !errdefs.IsNotFound(err):
			return nil, fmt.Errorf("service %s: inspect image %s: %w", name, ref, err)
		case p.IsBuilt(name) && (err != nil || img.Config == nil || img.Config.Labels[contract.LabelBuildHash] != buildHash(p.Source.SHA, svc.Build)):
			pending[name] = "image " + ref + " will be built"
		case err == nil:
			images[name] = imageOf(img)
		case svc.PullPolicy == types.PullPolicyNever:
			return nil, badInput(fmt.Errorf("service %s: image %s is not present locally and pull_policy is never", name, ref))
		default:
			pending[name] = "image " + ref + " will be pulled"
		}
	}
	specs, err := e.specs(p, images)
	if err != nil {
		return nil, badInput(err)
	}
	replaced := map[string]bool{}
	for _, key := range slices.Sorted(maps.Keys(p.Project.Volumes)) {
		v := p.Project.Volumes[key]
		if v.External {
			continue
		}
		cur, err := e.docker.VolumeInspect(ctx, v.Name)
		switch {
		case errdefs.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("inspect volume %s: %w", v.Name, err)
		case staleBind(cur.Options, v.DriverOpts):
			replaced[v.Name] = true
		}
	}
	return planConvergence(p.Name, convergeInput{
		specs: specs, observed: observed, force: opts.ForceRecreate,
		pendingImages: pending, replacedVolumes: replaced,
	}), nil
}
