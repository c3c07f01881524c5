package policy

import (
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/go-units"

	"github.com/slipwayhq/slipway/config"
)

// projectSize is what SW-RES-007 counts of a project.
type projectSize struct {
	services, containers, networks, volumes int
	// memory (bytes), cpus and pids add up every container's limit; a
	// container without any limit (none set, and none from the
	// controller) is not counted: it is unbounded either way.
	memory int64
	cpus   float64
	pids   int64
}

// projectCaps checks the project as a whole against the operator's caps.
func (c *checker) projectCaps() {
	caps := c.opts.ProjectCaps.Or(config.DefaultProjectCaps())
	size := measureProject(c.project, c.opts.containerLimits())
	sc := scope{prefix: "project."}
	over := func(field, got, limit string) {
		c.add(sc, ProjectCaps, field, got,
			fmt.Sprintf("above policy.project_caps.%s (%s): one preview may not take this much of a host every preview shares", field, limit))
	}
	if size.services > caps.Services {
		over("services", strconv.Itoa(size.services), strconv.Itoa(caps.Services))
	}
	if size.containers > caps.Containers {
		over("containers", strconv.Itoa(size.containers), strconv.Itoa(caps.Containers))
	}
	if size.networks > caps.Networks {
		over("networks", strconv.Itoa(size.networks), strconv.Itoa(caps.Networks))
	}
	if size.volumes > caps.Volumes {
		over("volumes", strconv.Itoa(size.volumes), strconv.Itoa(caps.Volumes))
	}
	if size.memory > int64(caps.Memory) {
		over("memory", units.BytesSize(float64(size.memory)), units.BytesSize(float64(caps.Memory)))
	}
	if size.cpus > caps.CPUs {
		over("cpus", strconv.FormatFloat(size.cpus, 'f', -1, 64), strconv.FormatFloat(caps.CPUs, 'f', -1, 64))
	}
	if size.pids > caps.PIDs {
		over("pids", strconv.FormatInt(size.pids, 10), strconv.FormatInt(caps.PIDs, 10))
	}
}

// containerLimits are the per-container limits the controller applies.
func (o Options) containerLimits() config.Limits {
	if o.ContainerLimits == (config.Limits{}) {
		return config.Defaults().Limits
	}
	return o.ContainerLimits
}

// measureProject counts a project's services, containers, networks and
// volumes, and adds up its containers' limits as the stack engine will
// apply them (the service's own, capped by the controller's).
func measureProject(p *types.Project, limits config.Limits) projectSize {
	size := projectSize{services: len(p.Services), networks: len(p.Networks), volumes: len(p.Volumes)}
	add := func(n int, s *types.ContainerSpec, d *types.DeployConfig) {
		size.containers += n
		mem, cpus, pids := EffectiveLimits(s, d, limits)
		size.memory += int64(n) * mem
		size.cpus += float64(n) * cpus
		size.pids += int64(n) * pids
	}
	for _, name := range slices.Sorted(maps.Keys(p.Services)) {
		s := p.Services[name]
		add(replicas(&s), &s.ContainerSpec, s.Deploy)
	}
	for _, name := range slices.Sorted(maps.Keys(p.Jobs)) {
		j := p.Jobs[name]
		add(1, &j.ContainerSpec, nil)
	}
	return size
}

// replicas is how many containers a service runs: the larger of scale and
// deploy.replicas (compose-go keeps them equal; the policy does not rely
// on it), at least 0.
func replicas(s *types.ServiceConfig) int {
	n := 1
	if s.Scale != nil || (s.Deploy != nil && s.Deploy.Replicas != nil) {
		n = 0
		if s.Scale != nil {
			n = *s.Scale
		}
		if s.Deploy != nil && s.Deploy.Replicas != nil {
			n = max(n, *s.Deploy.Replicas)
		}
	}
	return max(n, 0)
}

// EffectiveLimits is what a container gets: its own limit (service keys
// first, then deploy.resources.limits), capped by the controller's; with
// none, the controller's. The stack engine applies it and the project caps
// add it up, so the two never disagree.
func EffectiveLimits(s *types.ContainerSpec, d *types.DeployConfig, limits config.Limits) (mem int64, cpus float64, pids int64) {
	mem, cpus, pids = int64(s.MemLimit), float64(s.CPUS), s.PidsLimit
	if d != nil && d.Resources.Limits != nil {
		l := d.Resources.Limits
		if mem <= 0 {
			mem = int64(l.MemoryBytes)
		}
		if cpus <= 0 {
			cpus = float64(l.NanoCPUs)
		}
		if pids <= 0 {
			pids = l.Pids
		}
	}
	mem = capAt(mem, int64(limits.Memory))
	pids = capAt(pids, limits.PIDs)
	if limits.CPUs > 0 && (cpus <= 0 || cpus > limits.CPUs) {
		cpus = limits.CPUs
	}
	return max(mem, 0), max(cpus, 0), max(pids, 0)
}

// capAt returns v capped at limit; v <= 0 means unset and takes limit. A
// limit <= 0 means none.
func capAt(v, limit int64) int64 {
	if limit <= 0 {
		return v
	}
	if v <= 0 || v > limit {
		return limit
	}
	return v
}
