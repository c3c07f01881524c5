package stack

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/strslice"
	"github.com/docker/go-connections/nat"

	"github.com/slipwayhq/slipway/controller/stack/policy"
	"github.com/slipwayhq/slipway/internal/contract"
)

// containerSpec is everything needed to create one container.
type containerSpec struct {
	Name     string
	Service  string
	Number   int
	Config   *container.Config
	Host     *container.HostConfig
	Networks []networkAttachment // the first is the primary network
	// VolumesFromServices and NetworkModeService name services whose
	// containers must be resolved to IDs at create time.
	NetworkModeService string
	Hash               string
}

type networkAttachment struct {
	Network string // engine name, <project>_<key>
	Aliases []string
	Links   []string
}

// specFor computes the container for replica n of service, with imageID the
// image it will run. It is a pure function of its inputs.
func specFor(p *Plan, service string, n int, imageID string) (*containerSpec, error) {
	svc, ok := p.Project.Services[service]
	if !ok {
		return nil, fmt.Errorf("service %q not in project", service)
	}
	name := contract.ContainerName(p.Name, service, n)
	labels := containerLabels(p, svc, n)

	cfg := &container.Config{
		Hostname:     svc.Hostname,
		Domainname:   svc.DomainName,
		User:         svc.User,
		Tty:          svc.Tty,
		OpenStdin:    svc.StdinOpen,
		Env:          envList(svc.Environment),
		Cmd:          strslice.StrSlice(svc.Command),
		Entrypoint:   strslice.StrSlice(svc.Entrypoint),
		Image:        p.Image(service),
		WorkingDir:   svc.WorkingDir,
		Labels:       labels,
		StopSignal:   svc.StopSignal,
		ExposedPorts: exposedPorts(svc.Expose),
		Healthcheck:  healthcheck(svc.HealthCheck),
	}
	if svc.StopGracePeriod != nil {
		secs := int(time.Duration(*svc.StopGracePeriod).Seconds())
		cfg.StopTimeout = &secs
	}

	host := &container.HostConfig{
		RestartPolicy:  restartPolicy(svc),
		Init:           svc.Init,
		ReadonlyRootfs: svc.ReadOnly,
		DNS:            svc.DNS,
		DNSSearch:      svc.DNSSearch,
		DNSOptions:     svc.DNSOpts,
		ExtraHosts:     svc.ExtraHosts.AsList(":"),
		GroupAdd:       svc.GroupAdd,
		ShmSize:        int64(svc.ShmSize),
		Sysctls:        map[string]string(svc.Sysctls),
		Tmpfs:          tmpfsMap(svc.Tmpfs),
		CapDrop:        strslice.StrSlice{"ALL"},
		CapAdd:         capabilities(svc),
		SecurityOpt:    securityOpts(svc.SecurityOpt),
		LogConfig:      logConfig(p),
		Resources:      resources(p, svc),
		OomScoreAdj:    int(svc.OomScoreAdj),
		Privileged:     false,
	}
	for _, vf := range svc.VolumesFrom {
		host.VolumesFrom = append(host.VolumesFrom, volumesFrom(p.Name, vf))
	}
	mounts, err := mountsFor(p, svc)
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", service, err)
	}
	host.Mounts = mounts
	if len(svc.Ulimits) > 0 {
		for _, k := range slices.Sorted(maps.Keys(svc.Ulimits)) {
			u := svc.Ulimits[k]
			soft, hard := int64(u.Soft), int64(u.Hard)
			if u.Single != 0 {
				soft, hard = int64(u.Single), int64(u.Single)
			}
			host.Ulimits = append(host.Ulimits, &container.Ulimit{Name: k, Soft: soft, Hard: hard})
		}
	}

	spec := &containerSpec{Name: name, Service: service, Number: n, Config: cfg, Host: host}
	switch mode := svc.NetworkMode; {
	case mode == "none":
		host.NetworkMode = "none"
	case strings.HasPrefix(mode, "service:"):
		spec.NetworkModeService = strings.TrimPrefix(mode, "service:")
		cfg.Hostname, cfg.Domainname = "", ""
	case mode != "" && mode != "bridge" && mode != "default":
		return nil, fmt.Errorf("service %s: network_mode %q is not supported in previews", service, mode)
	default:
		for _, key := range svc.NetworksByPriority() {
			nw, ok := p.Project.Networks[key]
			if !ok {
				return nil, fmt.Errorf("service %s: network %q is not defined", service, key)
			}
			nc := svc.Networks[key]
			aliases := []string{name, service}
			if nc != nil {
				for _, a := range nc.Aliases {
					if !slices.Contains(aliases, a) {
						aliases = append(aliases, a)
					}
				}
			}
			spec.Networks = append(spec.Networks, networkAttachment{Network: nw.Name, Aliases: aliases})
		}
		if len(spec.Networks) > 0 {
			host.NetworkMode = container.NetworkMode(spec.Networks[0].Network)
			spec.Networks[0].Links = svc.Links
		}
	}
	spec.Hash = configHash(spec, imageID)
	spec.Config.Labels[contract.LabelConfigHash] = spec.Hash
	if imageID != "" {
		spec.Config.Labels[contract.LabelImage] = imageID
	}
	return spec, nil
}

// containerLabels are the labels docker compose would set, plus ours.
func containerLabels(p *Plan, svc types.ServiceConfig, n int) map[string]string {
	labels := map[string]string{}
	contract.CopyUnreserved(labels, svc.Labels)
	maps.Copy(labels, projectLabels(p))
	labels[contract.LabelService] = svc.Name
	labels[contract.LabelNumber] = strconv.Itoa(n)
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

// projectLabels are on every object of the project.
func projectLabels(p *Plan) map[string]string {
	return map[string]string{
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

// dependsOnLabel is compose's com.docker.compose.depends_on value:
// "svc:condition:restart" entries, sorted, comma-separated.
func dependsOnLabel(deps types.DependsOnConfig) string {
	var out []string
	for _, name := range slices.Sorted(maps.Keys(deps)) {
		d := deps[name]
		out = append(out, fmt.Sprintf("%s:%s:%t", name, d.Condition, d.Restart))
	}
	return strings.Join(out, ",")
}

// configHash hashes what decides whether a container must be recreated:
// the whole create request and the image ID, but not the SHA label (an
// image-only service left untouched by a push keeps running).
func configHash(s *containerSpec, imageID string) string {
	labels := maps.Clone(s.Config.Labels)
	delete(labels, contract.LabelSHA)
	delete(labels, contract.LabelConfigHash)
	delete(labels, contract.LabelImage)
	delete(labels, contract.LabelConfigFiles)
	delete(labels, contract.LabelWorkingDir)
	cfg := *s.Config
	cfg.Labels = labels
	b, _ := json.Marshal(struct {
		Config   container.Config
		Host     *container.HostConfig
		Networks []networkAttachment
		NetSvc   string
		Image    string
	}{cfg, s.Host, s.Networks, s.NetworkModeService, imageID})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func envList(env types.MappingWithEquals) []string {
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		if v := env[k]; v != nil {
			out = append(out, k+"="+*v)
		}
	}
	return out
}

func exposedPorts(expose []string) nat.PortSet {
	if len(expose) == 0 {
		return nil
	}
	set := nat.PortSet{}
	for _, e := range expose {
		port, proto, ok := strings.Cut(e, "/")
		if !ok {
			proto = "tcp"
		}
		set[nat.Port(port+"/"+proto)] = struct{}{}
	}
	return set
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
	if h.StartInterval != nil {
		// Kept where the engine has start_interval (see createConfig).
		hc.StartInterval = time.Duration(*h.StartInterval)
	}
	if h.Retries != nil {
		hc.Retries = int(*h.Retries)
	}
	return hc
}

func restartPolicy(svc types.ServiceConfig) container.RestartPolicy {
	r := svc.Restart
	if r == "" && svc.Deploy != nil && svc.Deploy.RestartPolicy != nil {
		switch svc.Deploy.RestartPolicy.Condition {
		case "any":
			r = "always"
		case "on-failure":
			r = "on-failure"
			if m := svc.Deploy.RestartPolicy.MaxAttempts; m != nil {
				r += ":" + strconv.FormatUint(*m, 10)
			}
		}
	}
	name, count, _ := strings.Cut(r, ":")
	switch name {
	case "always", "unless-stopped":
		return container.RestartPolicy{Name: container.RestartPolicyMode(name)}
	case "on-failure":
		n, _ := strconv.Atoi(count)
		return container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: n}
	default:
		return container.RestartPolicy{Name: container.RestartPolicyDisabled}
	}
}

func tmpfsMap(list []string) map[string]string {
	if len(list) == 0 {
		return nil
	}
	out := map[string]string{}
	for _, t := range list {
		dst, opts, _ := strings.Cut(t, ":")
		out[dst] = opts
	}
	return out
}

func capabilities(svc types.ServiceConfig) strslice.StrSlice {
	caps := map[string]bool{}
	// Every capability is dropped but the base set (Docker's defaults
	// without NET_RAW); a compose file adds more only where the operator's
	// policy allows (policy.cap_add), which the policy checked.
	for _, c := range policy.BaseCapabilities() {
		caps[c] = true
	}
	for _, c := range svc.CapAdd {
		caps[normalizeCap(c)] = true
	}
	for _, c := range svc.CapDrop {
		if normalizeCap(c) == "ALL" {
			clear(caps)
		}
		delete(caps, normalizeCap(c))
	}
	delete(caps, "ALL")
	return slices.Sorted(maps.Keys(caps))
}

func normalizeCap(c string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(c)), "CAP_")
}

func securityOpts(opts []string) []string {
	out := slices.Clone(opts)
	for _, o := range out {
		if strings.HasPrefix(o, "no-new-privileges") {
			return out
		}
	}
	return append(out, "no-new-privileges:true")
}

func logConfig(p *Plan) container.LogConfig {
	size := int64(p.Limits.LogSize)
	if size <= 0 {
		size = 10 << 20
	}
	return container.LogConfig{Type: "json-file", Config: map[string]string{
		"max-size": strconv.FormatInt(size, 10),
		"max-file": "2",
	}}
}

// resources applies the service's own limits, capped by the controller's:
// a service may ask for less, never more.
func resources(p *Plan, svc types.ServiceConfig) container.Resources {
	mem, cpus, pids := policy.EffectiveLimits(&svc.ContainerSpec, svc.Deploy, p.Limits)
	var memRes int64 = int64(svc.MemReservation)
	if d := svc.Deploy; d != nil {
		if r := d.Resources.Reservations; r != nil && memRes == 0 {
			memRes = int64(r.MemoryBytes)
		}
	}
	if memRes > mem && mem > 0 {
		memRes = mem
	}
	r := container.Resources{
		Memory:            mem,
		MemoryReservation: memRes,
		NanoCPUs:          int64(cpus * 1e9),
		CPUShares:         svc.CPUShares,
		CpusetCpus:        svc.CPUSet,
	}
	if pids > 0 {
		r.PidsLimit = &pids
	}
	return r
}

func volumesFrom(project, vf string) string {
	ref, mode, _ := strings.Cut(vf, ":")
	if ref == "container" {
		return vf // the policy rejects containers outside the project
	}
	name := contract.ContainerName(project, ref, 1)
	if mode != "" {
		return name + ":" + mode
	}
	return name
}

// mountsFor turns volumes, secrets and configs into mounts.
func mountsFor(p *Plan, svc types.ServiceConfig) ([]mount.Mount, error) {
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
			}
			if v.Volume != nil {
				m.VolumeOptions = &mount.VolumeOptions{NoCopy: v.Volume.NoCopy, Subpath: v.Volume.Subpath}
			}
		case types.VolumeTypeBind:
			m.Type = mount.TypeBind
			m.Source = v.Source
			m.BindOptions = &mount.BindOptions{Propagation: mount.PropagationRPrivate}
			if v.Bind != nil && v.Bind.CreateHostPath {
				m.BindOptions.CreateMountpoint = true
			}
		case types.VolumeTypeTmpfs:
			m.Type = mount.TypeTmpfs
			if v.Tmpfs != nil {
				m.TmpfsOptions = &mount.TmpfsOptions{SizeBytes: int64(v.Tmpfs.Size), Mode: os.FileMode(v.Tmpfs.Mode)}
			}
		default:
			return nil, fmt.Errorf("volume type %q (target %s) is not supported in previews", v.Type, v.Target)
		}
		out = append(out, m)
	}
	refs := func(kind, defaultDir string, list []types.FileReferenceConfig, lookup func(string) (types.FileObjectConfig, bool)) error {
		for _, r := range list {
			obj, ok := lookup(r.Source)
			if !ok {
				return fmt.Errorf("%s %q is not defined", kind, r.Source)
			}
			if obj.File == "" {
				return fmt.Errorf("%s %q: only file-based %ss are supported in previews", kind, r.Source, kind)
			}
			target := r.Target
			if target == "" {
				target = path.Join(defaultDir, r.Source)
			} else if !path.IsAbs(target) {
				target = path.Join(defaultDir, target)
			}
			out = append(out, mount.Mount{Type: mount.TypeBind, Source: obj.File, Target: target, ReadOnly: true,
				BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate}})
		}
		return nil
	}
	secretRefs := make([]types.FileReferenceConfig, len(svc.Secrets))
	for i, s := range svc.Secrets {
		secretRefs[i] = types.FileReferenceConfig(s)
	}
	if err := refs("secret", "/run/secrets", secretRefs, func(n string) (types.FileObjectConfig, bool) {
		s, ok := p.Project.Secrets[n]
		return types.FileObjectConfig(s), ok
	}); err != nil {
		return nil, err
	}
	configRefs := make([]types.FileReferenceConfig, len(svc.Configs))
	for i, c := range svc.Configs {
		configRefs[i] = types.FileReferenceConfig(c)
	}
	if err := refs("config", "/", configRefs, func(n string) (types.FileObjectConfig, bool) {
		c, ok := p.Project.Configs[n]
		return types.FileObjectConfig(c), ok
	}); err != nil {
		return nil, err
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out, nil
}
