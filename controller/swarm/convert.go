package swarm

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/go-units"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/stack/policy"
	"github.com/slipwayhq/slipway/internal/contract"
)

// LabelNamespace is the label docker stack puts on every object of a
// stack; with it `docker stack ps|services|rm <project>` see a preview.
const LabelNamespace = "com.docker.stack.namespace"

// ServiceName is the swarm name of a compose service, as docker stack names it.
func ServiceName(project, service string) string { return project + "_" + service }

// objectRef names a swarm secret or config.
type objectRef struct{ ID, Name string }

// convertInput is everything the conversion needs beside the plan, decided
// beforehand by the engine (built images pushed, secrets created, nodes chosen).
type convertInput struct {
	// Images maps a service to the image reference its tasks run: built
	// services by digest, image-only services as the compose file wrote them.
	Images map[string]string
	// ImageLabels are the labels each service's image carries, where known:
	// reserved ones are cleared on the containers (see contract.ClearImageLabels).
	ImageLabels map[string]map[string]string
	// Secrets and Configs map the compose keys to the swarm objects holding them.
	Secrets map[string]objectRef
	Configs map[string]objectRef
	// ControllerSecrets maps the names of the controller's secrets the plan
	// gives its services to the swarm secrets holding them.
	ControllerSecrets map[string]objectRef
	// Pins maps each service that must stay on one node (it mounts a named
	// volume or a directory of the checkout, both node-local) to that node's ID.
	Pins map[string]string
}

// controllerSecrets are the controller's secrets the plan gives its
// services (none for an untrusted PR), by name, with their values. Load
// puts them in every service's environment. Pure.
func controllerSecrets(p *stack.Plan) map[string]string {
	out := map[string]string{}
	for _, name := range p.Repo.Secrets {
		if slices.Contains(p.WithheldSecrets, name) {
			continue
		}
		for _, svc := range p.Project.Services {
			if v, ok := svc.Environment[name]; ok && v != nil {
				out[name] = *v
				break
			}
		}
	}
	return out
}

// jobServices are the services another service waits for with
// service_completed_successfully: they run once, as replicated jobs.
func jobServices(p *types.Project) map[string]bool {
	out := map[string]bool{}
	for _, svc := range p.Services {
		for dep, d := range svc.DependsOn {
			if d.Condition == types.ServiceConditionCompletedSuccessfully {
				out[dep] = true
			}
		}
	}
	return out
}

// needsPin reports whether a service mounts something that lives on one
// node: a named (non-external) volume or a bind of the checkout.
func needsPin(svc types.ServiceConfig) bool {
	for _, v := range svc.Volumes {
		if (v.Type == types.VolumeTypeVolume && v.Source != "") || v.Type == types.VolumeTypeBind {
			return true
		}
	}
	return false
}

// serviceSpec computes the swarm service of one compose service of p. It is
// a pure function of its inputs. Inside a preview every service resolves
// by DNS round-robin to its tasks' addresses (endpoint_mode dnsrr): Swarm's
// virtual IPs need IPVS, which not every host has, and the proxy routes to
// task addresses anyway.
func serviceSpec(p *stack.Plan, name string, in convertInput) (swarm.ServiceSpec, error) {
	svc, ok := p.Project.Services[name]
	if !ok {
		return swarm.ServiceSpec{}, fmt.Errorf("service %q is not in the project", name)
	}
	if err := unsupported(svc); err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: %w", name, err)
	}
	image := in.Images[name]
	if image == "" {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: no image", name)
	}
	job := jobServices(p.Project)[name]

	cs := &swarm.ContainerSpec{
		Image:          image,
		Labels:         containerLabels(p, svc),
		Command:        svc.Entrypoint,
		Args:           svc.Command,
		Hostname:       svc.Hostname,
		Env:            envList(svc.Environment, in.ControllerSecrets),
		Dir:            svc.WorkingDir,
		User:           svc.User,
		Groups:         svc.GroupAdd,
		Privileges:     &swarm.Privileges{NoNewPrivileges: true},
		Init:           svc.Init,
		StopSignal:     svc.StopSignal,
		TTY:            svc.Tty,
		OpenStdin:      svc.StdinOpen,
		ReadOnly:       svc.ReadOnly,
		Healthcheck:    healthcheck(svc.HealthCheck),
		Hosts:          extraHosts(svc.ExtraHosts),
		Sysctls:        map[string]string(svc.Sysctls),
		CapabilityDrop: []string{"ALL"},
		CapabilityAdd:  capabilities(svc),
		Ulimits:        ulimits(svc.Ulimits),
		OomScoreAdj:    svc.OomScoreAdj,
	}
	contract.ClearImageLabels(cs.Labels, in.ImageLabels[name])
	if svc.StopGracePeriod != nil {
		d := time.Duration(*svc.StopGracePeriod)
		cs.StopGracePeriod = &d
	}
	if len(svc.DNS)+len(svc.DNSSearch)+len(svc.DNSOpts) > 0 {
		cs.DNSConfig = &swarm.DNSConfig{Nameservers: svc.DNS, Search: svc.DNSSearch, Options: svc.DNSOpts}
	}
	mounts, err := mountsFor(p, svc)
	if err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: %w", name, err)
	}
	cs.Mounts = mounts
	if cs.Secrets, err = secretRefs(svc, in.Secrets); err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: %w", name, err)
	}
	// The controller's secrets are files under /run/secrets, not
	// variables: a service's spec (its environment included) is readable
	// by anyone with access to a manager, a swarm secret is not.
	for _, name := range slices.Sorted(maps.Keys(in.ControllerSecrets)) {
		obj := in.ControllerSecrets[name]
		cs.Secrets = append(cs.Secrets, &swarm.SecretReference{
			File:     &swarm.SecretReferenceFileTarget{Name: name, UID: "0", GID: "0", Mode: 0o444},
			SecretID: obj.ID, SecretName: obj.Name,
		})
	}
	if cs.Configs, err = configRefs(svc, in.Configs); err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: %w", name, err)
	}
	if job {
		// A job's container ends; Swarm would wait for a healthy one first.
		cs.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	}

	nets, err := networks(p, svc)
	if err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: %w", name, err)
	}
	spec := swarm.ServiceSpec{
		Annotations: swarm.Annotations{Name: ServiceName(p.Name, name), Labels: serviceLabels(p, svc)},
		TaskTemplate: swarm.TaskSpec{
			ContainerSpec: cs,
			Resources:     resources(p, svc),
			RestartPolicy: restartPolicy(svc, job),
			Placement:     placement(svc, in.Pins[name]),
			Networks:      nets,
			LogDriver:     logDriver(p),
		},
		EndpointSpec: &swarm.EndpointSpec{Mode: swarm.ResolutionModeDNSRR},
	}
	spec.Mode, err = mode(svc, job)
	if err != nil {
		return swarm.ServiceSpec{}, fmt.Errorf("service %s: %w", name, err)
	}
	hash := specHash(spec)
	// On the service, for the next Up to compare; on its tasks'
	// containers, to tell the tasks of this spec from older ones.
	spec.Labels[contract.LabelConfigHash] = hash
	cs.Labels[contract.LabelConfigHash] = hash
	return spec, nil
}

// jobSpec is the service that runs after_deploy[index]: the service's own
// spec with command as its arguments, run once, serving no route.
func jobSpec(p *stack.Plan, index int, service string, command []string, in convertInput) (swarm.ServiceSpec, error) {
	spec, err := serviceSpec(p, service, in)
	if err != nil {
		return spec, fmt.Errorf("after_deploy[%d]: %w", index, err)
	}
	spec.Name = ServiceName(p.Name, service+"-after-deploy-"+strconv.Itoa(index))
	spec.Labels = maps.Clone(spec.Labels)
	spec.Labels[contract.LabelJob] = strconv.Itoa(index)
	spec.Labels[contract.LabelOneoff] = "True"
	cs := *spec.TaskTemplate.ContainerSpec
	cs.Labels = maps.Clone(cs.Labels)
	for _, k := range []string{contract.LabelRouteHost, contract.LabelRoutePort, contract.LabelPrimary} {
		cs.Labels[k] = ""
	}
	cs.Labels[contract.LabelOneoff] = "True"
	cs.Labels[contract.LabelJob] = strconv.Itoa(index)
	cs.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	if len(command) > 0 {
		cs.Args = command
	}
	spec.TaskTemplate.ContainerSpec = &cs
	spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
	one := uint64(1)
	spec.Mode = swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: &one, TotalCompletions: &one}}
	// The job's tasks join the service's networks under no alias of the service.
	spec.TaskTemplate.Networks = slices.Clone(spec.TaskTemplate.Networks)
	for i := range spec.TaskTemplate.Networks {
		spec.TaskTemplate.Networks[i].Aliases = nil
	}
	return spec, nil
}

// unsupported names the compose settings Swarm cannot honour in a preview.
// They are refused rather than dropped: a stack that silently lost its
// network_mode or links would fail in ways far from the cause.
func unsupported(svc types.ServiceConfig) error {
	switch {
	case svc.NetworkMode != "" && svc.NetworkMode != "default" && svc.NetworkMode != "bridge":
		return fmt.Errorf("network_mode %q is not supported by the swarm engine", svc.NetworkMode)
	case len(svc.VolumesFrom) > 0:
		return fmt.Errorf("volumes_from is not supported by the swarm engine; use a named volume")
	case len(svc.Links) > 0:
		return fmt.Errorf("links are not supported by the swarm engine; services reach each other by name")
	case svc.Ipc != "" || svc.Pid != "":
		return fmt.Errorf("ipc and pid modes are not supported by the swarm engine")
	case svc.Deploy != nil && len(svc.Deploy.Placement.Constraints) > 0:
		// Which nodes run previews is the operator's choice (a pull
		// request could otherwise ask for the managers).
		return fmt.Errorf("deploy.placement.constraints: a pull request does not choose the nodes its services run on")
	case svc.Deploy != nil && svc.Deploy.Mode == "global":
		return fmt.Errorf("deploy.mode global: a preview's service does not get a task on every node; use replicas")
	}
	return nil
}

// mode is replicated with the service's scale, global for deploy.mode
// global, or a one-completion replicated job for a job service.
func mode(svc types.ServiceConfig, job bool) (swarm.ServiceMode, error) {
	if job {
		one := uint64(1)
		return swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: &one, TotalCompletions: &one}}, nil
	}
	m := "replicated"
	if svc.Deploy != nil && svc.Deploy.Mode != "" {
		m = svc.Deploy.Mode
	}
	switch m {
	case "replicated":
		n := uint64(svc.GetScale())
		return swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: &n}}, nil
	case "global":
		return swarm.ServiceMode{Global: &swarm.GlobalService{}}, nil
	}
	return swarm.ServiceMode{}, fmt.Errorf("deploy.mode %q: want replicated or global", m)
}

// projectLabels are on every object of the project: the ones the docker
// engine puts there, and the stack namespace.
func projectLabels(p *stack.Plan) map[string]string {
	return map[string]string{
		LabelNamespace:            p.Name,
		contract.LabelProject:     p.Name,
		contract.LabelWorkingDir:  p.Source.Dir,
		contract.LabelConfigFiles: strings.Join(p.ConfigFiles, ","),
		contract.LabelVersion:     contract.ComposeVersion,
		contract.LabelManaged:     "true",
		contract.LabelRepo:        p.Source.FullName(),
		contract.LabelPR:          strconv.Itoa(p.Source.PR),
		contract.LabelSHA:         p.Source.SHA,
	}
}

// serviceLabels are the service's own labels: deploy.labels (without
// reserved keys) and the project's.
func serviceLabels(p *stack.Plan, svc types.ServiceConfig) map[string]string {
	labels := map[string]string{}
	if svc.Deploy != nil {
		contract.CopyUnreserved(labels, svc.Deploy.Labels)
	}
	maps.Copy(labels, projectLabels(p))
	labels[contract.LabelService] = svc.Name
	labels[contract.LabelOneoff] = "False"
	if p.IsBuilt(svc.Name) {
		labels[contract.LabelBuilt] = "true"
	}
	return labels
}

// containerLabels are on every task's container: as on a single host.
func containerLabels(p *stack.Plan, svc types.ServiceConfig) map[string]string {
	labels := map[string]string{}
	contract.CopyUnreserved(labels, svc.Labels)
	maps.Copy(labels, projectLabels(p))
	labels[contract.LabelService] = svc.Name
	labels[contract.LabelOneoff] = "False"
	labels[contract.LabelDependsOn] = dependsOnLabel(svc.DependsOn)
	if p.IsBuilt(svc.Name) {
		labels[contract.LabelBuilt] = "true"
	}
	if r, ok := p.RouteFor(svc.Name); ok {
		labels[contract.LabelRouteHost] = r.Host
		labels[contract.LabelRoutePort] = strconv.Itoa(r.Port)
		if r.Primary {
			labels[contract.LabelPrimary] = "true"
		}
	}
	return labels
}

func dependsOnLabel(deps types.DependsOnConfig) string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(deps)) {
		d := deps[name]
		out = append(out, fmt.Sprintf("%s:%s:%t", name, d.Condition, d.Restart))
	}
	return strings.Join(out, ",")
}

// specHash hashes what decides whether a service must be updated: the
// whole spec but the labels that change with every push without changing
// what runs (the SHA, the checkout's directory and file names). An
// image-only service that a push leaves alone keeps its tasks.
func specHash(spec swarm.ServiceSpec) string {
	strip := func(l map[string]string) map[string]string {
		l = maps.Clone(l)
		for _, k := range []string{contract.LabelSHA, contract.LabelConfigHash, contract.LabelWorkingDir, contract.LabelConfigFiles} {
			delete(l, k)
		}
		return l
	}
	spec.Labels = strip(spec.Labels)
	if cs := spec.TaskTemplate.ContainerSpec; cs != nil {
		c := *cs
		c.Labels = strip(c.Labels)
		c.Mounts = slices.Clone(c.Mounts)
		for i, m := range c.Mounts {
			if m.VolumeOptions != nil {
				vo := *m.VolumeOptions
				vo.Labels = strip(vo.Labels)
				c.Mounts[i].VolumeOptions = &vo
			}
		}
		spec.TaskTemplate.ContainerSpec = &c
	}
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// envList is the service's environment, without the controller's secrets
// (they are files under /run/secrets).
func envList(env types.MappingWithEquals, secrets map[string]objectRef) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if _, secret := secrets[k]; secret {
			continue
		}
		if v := env[k]; v != nil {
			out = append(out, k+"="+*v)
		}
	}
	return out
}

func healthcheck(h *types.HealthCheckConfig) *container.HealthConfig {
	if h == nil {
		return nil
	}
	if h.Disable {
		return &container.HealthConfig{Test: []string{"NONE"}}
	}
	hc := &container.HealthConfig{Test: h.Test}
	if h.Interval != nil {
		hc.Interval = time.Duration(*h.Interval)
	}
	if h.Timeout != nil {
		hc.Timeout = time.Duration(*h.Timeout)
	}
	if h.StartPeriod != nil {
		hc.StartPeriod = time.Duration(*h.StartPeriod)
	}
	if h.Retries != nil {
		hc.Retries = int(*h.Retries)
	}
	return hc
}

// restartPolicy maps compose's restart (or deploy.restart_policy) onto
// Swarm's. Without either, a service is restarted whenever it stops, as
// docker stack does; a job is not restarted unless it asks for on-failure.
func restartPolicy(svc types.ServiceConfig, job bool) *swarm.RestartPolicy {
	if d := svc.Deploy; d != nil && d.RestartPolicy != nil {
		rp := d.RestartPolicy
		out := &swarm.RestartPolicy{Condition: swarm.RestartPolicyCondition(rp.Condition), MaxAttempts: rp.MaxAttempts}
		if rp.Delay != nil {
			v := time.Duration(*rp.Delay)
			out.Delay = &v
		}
		if rp.Window != nil {
			v := time.Duration(*rp.Window)
			out.Window = &v
		}
		if out.Condition == "" {
			out.Condition = swarm.RestartPolicyConditionAny
		}
		if job && out.Condition == swarm.RestartPolicyConditionAny {
			out.Condition = swarm.RestartPolicyConditionOnFailure
		}
		return out
	}
	name, count, _ := strings.Cut(svc.Restart, ":")
	switch name {
	case "no":
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
	case "on-failure":
		out := &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure}
		if n, err := strconv.ParseUint(count, 10, 64); err == nil {
			out.MaxAttempts = &n
		}
		return out
	case "always", "unless-stopped":
		if job {
			return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionOnFailure}
		}
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}
	}
	if job {
		return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionNone}
	}
	return &swarm.RestartPolicy{Condition: swarm.RestartPolicyConditionAny}
}

// resources applies the service's limits capped by the controller's, as on
// a single host: a service may ask for less, never more.
func resources(p *stack.Plan, svc types.ServiceConfig) *swarm.ResourceRequirements {
	mem, cpus, pids := policy.EffectiveLimits(&svc.ContainerSpec, svc.Deploy, p.Limits)
	r := &swarm.ResourceRequirements{Limits: &swarm.Limit{MemoryBytes: mem, NanoCPUs: int64(cpus * 1e9), Pids: pids}}
	if d := svc.Deploy; d != nil && d.Resources.Reservations != nil {
		res := d.Resources.Reservations
		rv := &swarm.Resources{MemoryBytes: int64(res.MemoryBytes), NanoCPUs: int64(float64(res.NanoCPUs) * 1e9)}
		if mem > 0 && rv.MemoryBytes > mem {
			rv.MemoryBytes = mem
		}
		if lim := r.Limits.NanoCPUs; lim > 0 && rv.NanoCPUs > lim {
			rv.NanoCPUs = lim
		}
		if rv.MemoryBytes > 0 || rv.NanoCPUs > 0 {
			r.Reservations = rv
		}
	}
	return r
}

// placement keeps the PR's own spread preferences and max replicas per
// node (constraints are refused, see unsupported), and pins a stateful
// service to node.
func placement(svc types.ServiceConfig, node string) *swarm.Placement {
	pl := &swarm.Placement{}
	if d := svc.Deploy; d != nil {
		pl.Constraints = slices.Clone(d.Placement.Constraints)
		for _, pref := range d.Placement.Preferences {
			pl.Preferences = append(pl.Preferences, swarm.PlacementPreference{Spread: &swarm.SpreadOver{SpreadDescriptor: pref.Spread}})
		}
		if d.Placement.MaxReplicas > 0 {
			pl.MaxReplicas = d.Placement.MaxReplicas
		}
	}
	if node != "" {
		pl.Constraints = append(pl.Constraints, "node.id=="+node)
	}
	if len(pl.Constraints) == 0 && len(pl.Preferences) == 0 && pl.MaxReplicas == 0 {
		return nil
	}
	return pl
}

// pinnedNode reads the node a service was pinned to from its placement.
func pinnedNode(pl *swarm.Placement) string {
	if pl == nil {
		return ""
	}
	for _, c := range pl.Constraints {
		if id, ok := strings.CutPrefix(c, "node.id=="); ok {
			return id
		}
	}
	return ""
}

// networks attaches the service to its networks under its compose name
// (and the aliases it asks for), so `http://api` works as on one host.
func networks(p *stack.Plan, svc types.ServiceConfig) ([]swarm.NetworkAttachmentConfig, error) {
	var out []swarm.NetworkAttachmentConfig
	for _, key := range svc.NetworksByPriority() {
		nw, ok := p.Project.Networks[key]
		if !ok {
			return nil, fmt.Errorf("network %q is not defined", key)
		}
		aliases := []string{svc.Name}
		if nc := svc.Networks[key]; nc != nil {
			for _, a := range nc.Aliases {
				if !slices.Contains(aliases, a) {
					aliases = append(aliases, a)
				}
			}
		}
		out = append(out, swarm.NetworkAttachmentConfig{Target: nw.Name, Aliases: aliases})
	}
	return out, nil
}

func logDriver(p *stack.Plan) *swarm.Driver {
	size := int64(p.Limits.LogSize)
	if size <= 0 {
		size = 10 << 20
	}
	return &swarm.Driver{Name: "json-file", Options: map[string]string{"max-size": strconv.FormatInt(size, 10), "max-file": "2"}}
}

// extraHosts writes extra_hosts as Swarm wants them: "IP host".
func extraHosts(h types.HostsList) []string {
	var out []string
	for _, host := range slices.Sorted(maps.Keys(h)) {
		for _, ip := range h[host] {
			out = append(out, ip+" "+host)
		}
	}
	return out
}

func ulimits(u map[string]*types.UlimitsConfig) []*container.Ulimit {
	var out []*container.Ulimit
	for _, k := range slices.Sorted(maps.Keys(u)) {
		l := u[k]
		soft, hard := int64(l.Soft), int64(l.Hard)
		if l.Single != 0 {
			soft, hard = int64(l.Single), int64(l.Single)
		}
		out = append(out, &container.Ulimit{Name: k, Soft: soft, Hard: hard})
	}
	return out
}

// capabilities: every capability is dropped but the base set and what the
// policy allowed the file to add, as on a single host.
func capabilities(svc types.ServiceConfig) []string {
	caps := map[string]bool{}
	for _, c := range policy.BaseCapabilities() {
		caps[c] = true
	}
	norm := func(c string) string { return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_") }
	for _, c := range svc.CapAdd {
		caps[norm(c)] = true
	}
	for _, c := range svc.CapDrop {
		if norm(c) == "ALL" {
			clear(caps)
		}
		delete(caps, norm(c))
	}
	delete(caps, "ALL")
	return slices.Sorted(maps.Keys(caps))
}

// volumeLabels are on every volume of the project.
func volumeLabels(p *stack.Plan, key string, own map[string]string) map[string]string {
	labels := map[string]string{}
	contract.CopyUnreserved(labels, own)
	maps.Copy(labels, projectLabels(p))
	labels[contract.LabelVolume] = key
	return labels
}

// mountsFor turns the service's volumes and tmpfs into mounts. Named
// volumes are created by the node that runs the task, with the project's
// labels (Down finds them by label).
func mountsFor(p *stack.Plan, svc types.ServiceConfig) ([]mount.Mount, error) {
	var out []mount.Mount
	for _, v := range svc.Volumes {
		m := mount.Mount{Target: v.Target, ReadOnly: v.ReadOnly}
		switch v.Type {
		case types.VolumeTypeVolume:
			m.Type = mount.TypeVolume
			if v.Source != "" {
				vol, ok := p.Project.Volumes[v.Source]
				if !ok {
					return nil, fmt.Errorf("volume %q is not defined", v.Source)
				}
				m.Source = vol.Name
				m.VolumeOptions = &mount.VolumeOptions{Labels: volumeLabels(p, v.Source, vol.Labels)}
				if vol.External {
					m.VolumeOptions = &mount.VolumeOptions{}
				} else if vol.Driver != "" || len(vol.DriverOpts) > 0 {
					m.VolumeOptions.DriverConfig = &mount.Driver{Name: vol.Driver, Options: vol.DriverOpts}
				}
			} else {
				m.VolumeOptions = &mount.VolumeOptions{}
			}
			if v.Volume != nil {
				m.VolumeOptions.NoCopy = v.Volume.NoCopy
			}
		case types.VolumeTypeBind:
			m.Type = mount.TypeBind
			m.Source = v.Source
			m.BindOptions = &mount.BindOptions{Propagation: mount.PropagationRPrivate}
		case types.VolumeTypeTmpfs:
			m.Type = mount.TypeTmpfs
			if v.Tmpfs != nil {
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(v.Tmpfs.Size), Mode: os.FileMode(v.Tmpfs.Mode)}
			}
		default:
			return nil, fmt.Errorf("volume type %q (target %s) is not supported by the swarm engine", v.Type, v.Target)
		}
		out = append(out, m)
	}
	for _, t := range svc.Tmpfs {
		dst, opts, _ := strings.Cut(t, ":")
		m := mount.Mount{Type: mount.TypeTmpfs, Target: dst}
		for _, o := range strings.Split(opts, ",") {
			if size, ok := strings.CutPrefix(o, "size="); ok {
				n, err := units.RAMInBytes(size)
				if err != nil {
					return nil, fmt.Errorf("tmpfs %s: size %q: %w", dst, size, err)
				}
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: n}
			}
		}
		out = append(out, m)
	}
	slices.SortStableFunc(out, func(a, b mount.Mount) int { return strings.Compare(a.Target, b.Target) })
	return out, nil
}

// secretRefs mounts the service's secrets as files under /run/secrets
// (or the target it names), read-only for everyone in the container.
func secretRefs(svc types.ServiceConfig, objs map[string]objectRef) ([]*swarm.SecretReference, error) {
	var out []*swarm.SecretReference
	for _, s := range svc.Secrets {
		obj, ok := objs[s.Source]
		if !ok {
			return nil, fmt.Errorf("secret %q is not defined", s.Source)
		}
		target := s.Target
		if target == "" {
			target = s.Source
		}
		out = append(out, &swarm.SecretReference{
			File:     &swarm.SecretReferenceFileTarget{Name: target, UID: uidOr(s.UID), GID: uidOr(s.GID), Mode: fileMode(s.Mode)},
			SecretID: obj.ID, SecretName: obj.Name,
		})
	}
	return out, nil
}

// configRefs mounts the service's configs at their targets (default /<key>).
func configRefs(svc types.ServiceConfig, objs map[string]objectRef) ([]*swarm.ConfigReference, error) {
	var out []*swarm.ConfigReference
	for _, c := range svc.Configs {
		obj, ok := objs[c.Source]
		if !ok {
			return nil, fmt.Errorf("config %q is not defined", c.Source)
		}
		target := c.Target
		if target == "" {
			target = "/" + c.Source
		} else if !path.IsAbs(target) {
			target = "/" + target
		}
		out = append(out, &swarm.ConfigReference{
			File:     &swarm.ConfigReferenceFileTarget{Name: target, UID: uidOr(c.UID), GID: uidOr(c.GID), Mode: fileMode(c.Mode)},
			ConfigID: obj.ID, ConfigName: obj.Name,
		})
	}
	return out, nil
}

func uidOr(s string) string {
	if s == "" {
		return "0"
	}
	return s
}

func fileMode(m *types.FileMode) os.FileMode {
	if m == nil {
		return 0o444
	}
	return os.FileMode(*m)
}
