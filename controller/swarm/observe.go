package swarm

import (
	"context"
	"fmt"
	"maps"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
)

// Inspect returns project's environment, read from its services and their
// tasks, or nil when it has no service.
func (e *Engine) Inspect(ctx context.Context, project string) (*stack.Environment, error) {
	svcs, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Filters: namespaceFilter(project)})
	if err != nil {
		return nil, fmt.Errorf("list services of %s: %w", project, err)
	}
	if len(svcs) == 0 {
		return nil, nil
	}
	tasks, err := e.docker.TaskList(ctx, swarm.TaskListOptions{Filters: filters.NewArgs(filters.Arg("label", LabelNamespace+"="+project))})
	if err != nil {
		return nil, fmt.Errorf("list tasks of %s: %w", project, err)
	}
	return environment(project, svcs, tasks), nil
}

// environment turns a project's services and tasks into an Environment:
// each task the swarm wants running (or that completed, for a job) is one
// container, numbered by its slot. Pure.
func environment(project string, svcs []swarm.Service, tasks []swarm.Task) *stack.Environment {
	env := &stack.Environment{Project: project}
	byID := map[string]swarm.Service{}
	for _, s := range svcs {
		l := s.Spec.Labels
		if l[contract.LabelOneoff] == "True" {
			continue // a running after_deploy job is not part of the environment
		}
		byID[s.ID] = s
		if env.Repo == "" {
			env.Repo = l[contract.LabelRepo]
			env.PR, _ = strconv.Atoi(l[contract.LabelPR])
		}
		if env.Created.IsZero() || s.CreatedAt.Before(env.Created) {
			env.Created = s.CreatedAt.UTC()
		}
	}
	states := map[string]*stack.ServiceState{}
	for _, s := range byID {
		name := s.Spec.Labels[contract.LabelService]
		states[s.ID] = &stack.ServiceState{Service: name}
		if cs := s.Spec.TaskTemplate.ContainerSpec; cs != nil {
			if host := cs.Labels[contract.LabelRouteHost]; host != "" {
				port, _ := strconv.Atoi(cs.Labels[contract.LabelRoutePort])
				env.Routes = append(env.Routes, stack.ObservedRoute{Host: host, Service: name, Port: port, Primary: cs.Labels[contract.LabelPrimary] == "true"})
			}
		}
	}
	for _, t := range tasks {
		s, ok := byID[t.ServiceID]
		if !ok || (t.DesiredState != swarm.TaskStateRunning && t.DesiredState != swarm.TaskStateComplete) {
			continue
		}
		st := states[t.ServiceID]
		cs := stack.ContainerState{
			Name:   fmt.Sprintf("%s.%d.%s", s.Spec.Name, t.Slot, t.ID),
			Number: t.Slot,
			SHA:    s.Spec.Labels[contract.LabelSHA],
			Built:  s.Spec.Labels[contract.LabelBuilt] == "true",
			IP:     taskIP(project, t),
		}
		if t.Spec.ContainerSpec != nil {
			cs.Image = t.Spec.ContainerSpec.Image
		}
		if t.Status.ContainerStatus != nil {
			cs.ID = t.Status.ContainerStatus.ContainerID
			cs.ExitCode = t.Status.ContainerStatus.ExitCode
		}
		cs.State, cs.Health = containerState(t, hasHealthcheck(s))
		st.Containers = append(st.Containers, cs)
	}
	list := slices.Collect(maps.Values(states))
	sort.Slice(list, func(i, j int) bool { return list[i].Service < list[j].Service })
	for _, st := range list {
		sort.Slice(st.Containers, func(i, j int) bool { return st.Containers[i].Number < st.Containers[j].Number })
		env.Services = append(env.Services, *st)
	}
	for _, s := range byID {
		if s.Spec.Labels[contract.LabelBuilt] == "true" {
			env.SHA = s.Spec.Labels[contract.LabelSHA]
		} else if env.SHA == "" {
			env.SHA = s.Spec.Labels[contract.LabelSHA]
		}
	}
	sort.Slice(env.Routes, func(i, j int) bool {
		if env.Routes[i].Primary != env.Routes[j].Primary {
			return env.Routes[i].Primary
		}
		return env.Routes[i].Host < env.Routes[j].Host
	})
	return env
}

func hasHealthcheck(s swarm.Service) bool {
	cs := s.Spec.TaskTemplate.ContainerSpec
	if cs == nil || cs.Healthcheck == nil || len(cs.Healthcheck.Test) == 0 {
		return false
	}
	return cs.Healthcheck.Test[0] != "NONE"
}

// containerState maps a task's state onto the container states
// Environment.Phase reads. Swarm reports a task with a healthcheck as
// running only once it is healthy; before, it is starting.
func containerState(t swarm.Task, health bool) (state, healthState string) {
	switch t.Status.State {
	case swarm.TaskStateRunning:
		if health {
			return "running", "healthy"
		}
		return "running", ""
	case swarm.TaskStateStarting:
		if health {
			return "running", "starting"
		}
		return "created", ""
	case swarm.TaskStateComplete:
		return "exited", ""
	case swarm.TaskStateFailed, swarm.TaskStateRejected, swarm.TaskStateShutdown, swarm.TaskStateOrphaned, swarm.TaskStateRemove:
		return "dead", ""
	}
	return "created", ""
}

// taskIP is the task's address on the first (by name) of the project's
// networks.
func taskIP(project string, t swarm.Task) string {
	atts := slices.Clone(t.NetworksAttachments)
	sort.Slice(atts, func(i, j int) bool { return atts[i].Network.Spec.Name < atts[j].Network.Spec.Name })
	for _, a := range atts {
		if a.Network.Spec.Labels[LabelNamespace] != project || len(a.Addresses) == 0 {
			continue
		}
		if ip, _, err := net.ParseCIDR(a.Addresses[0]); err == nil {
			return ip.String()
		}
		return a.Addresses[0]
	}
	return ""
}

// Projects lists every managed project with any service, network, secret
// or config left on the swarm, so that a half-removed environment is still
// found and finished off.
func (e *Engine) Projects(ctx context.Context) (map[string]stack.ProjectRef, error) {
	out := map[string]stack.ProjectRef{}
	add := func(l map[string]string) {
		if p := l[LabelNamespace]; p != "" {
			pr, _ := strconv.Atoi(l[contract.LabelPR])
			out[p] = stack.ProjectRef{Repo: l[contract.LabelRepo], PR: pr}
		}
	}
	svcs, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Filters: managedFilter()})
	if err != nil {
		return nil, fmt.Errorf("list services: %w", err)
	}
	for _, s := range svcs {
		add(s.Spec.Labels)
	}
	nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: managedFilter()})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range nets {
		add(n.Labels)
	}
	secrets, err := e.docker.SecretList(ctx, swarm.SecretListOptions{Filters: managedFilter()})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	for _, s := range secrets {
		add(s.Spec.Labels)
	}
	configs, err := e.docker.ConfigList(ctx, swarm.ConfigListOptions{Filters: managedFilter()})
	if err != nil {
		return nil, fmt.Errorf("list configs: %w", err)
	}
	for _, c := range configs {
		add(c.Spec.Labels)
	}
	return out, nil
}

// WritableBinds lists the host paths project's services can write: the
// sources of read-write bind mounts, and the directories local volumes
// bind (driver_opts o=bind, device=<dir>) mounted read-write.
func (e *Engine) WritableBinds(ctx context.Context, project string) ([]string, error) {
	svcs, err := e.docker.ServiceList(ctx, swarm.ServiceListOptions{Filters: namespaceFilter(project)})
	if err != nil {
		return nil, fmt.Errorf("list services of %s: %w", project, err)
	}
	var out []string
	for _, s := range svcs {
		cs := s.Spec.TaskTemplate.ContainerSpec
		if cs == nil {
			continue
		}
		out = append(out, writableBinds(cs.Mounts)...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// writableBinds is WritableBinds for one service's mounts. Pure.
func writableBinds(mounts []mount.Mount) []string {
	var out []string
	for _, m := range mounts {
		if m.ReadOnly {
			continue
		}
		switch m.Type {
		case mount.TypeBind:
			out = append(out, m.Source)
		case mount.TypeVolume:
			if vo := m.VolumeOptions; vo != nil && vo.DriverConfig != nil {
				if dev := vo.DriverConfig.Options["device"]; dev != "" && bindOption(vo.DriverConfig.Options["o"]) {
					out = append(out, dev)
				}
			}
		}
	}
	return out
}

func bindOption(o string) bool {
	for _, tok := range strings.Split(o, ",") {
		if tok = strings.TrimSpace(tok); tok == "bind" || tok == "rbind" {
			return true
		}
	}
	return false
}
