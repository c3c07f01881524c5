package policy

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/slipwayhq/slipway/internal/contract"
)

// maxReplicas caps scale and deploy.replicas (SW-RES-006).
const maxReplicas = 10

// maxNofile caps the nofile ulimit (SW-RES-004): the engine's own default
// hard limit, and the kernel's default fs.nr_open.
const maxNofile = 1 << 20

// Check inspects a project loaded by compose-go from the checkout root (with
// cli.WithWorkingDirectory(root) and cli.WithResolvedPaths(true), after
// PreLoad passed) and returns every violation, in a stable order. Run it on
// the project as the PR wrote it, before Slipway's rewrites add labels of
// its own. It reads the checkout (to follow symlinks, and the Dockerfiles
// of builds) and nothing else: no engine, no network.
func Check(project *types.Project, root string, opts Options) []Violation {
	given, err := filepath.Abs(root)
	if err != nil {
		given = root
	}
	c := &checker{
		project: project,
		given:   given,
		root:    realRoot(root),
		opts:    opts,
		allowed: opts.allowSet(),
	}
	for _, name := range slices.Sorted(maps.Keys(project.Services)) {
		s := project.Services[name]
		c.service(name, &s)
	}
	for _, name := range slices.Sorted(maps.Keys(project.Jobs)) {
		j := project.Jobs[name]
		sc := scope{prefix: "jobs." + name + "."}
		c.container(sc, &j.ContainerSpec)
		c.workload(sc, &j.WorkloadSpec)
		c.serviceImage(sc, &j.ContainerSpec, &j.WorkloadSpec)
		c.reservedNames(sc, "", "", &j.ContainerSpec, nil)
	}
	for _, key := range slices.Sorted(maps.Keys(project.Networks)) {
		c.network(key, project.Networks[key])
		c.networkIPv6(key, project.Networks[key])
	}
	c.projectCaps()
	for _, key := range slices.Sorted(maps.Keys(project.Volumes)) {
		c.volume(key, project.Volumes[key])
	}
	for _, key := range slices.Sorted(maps.Keys(project.Secrets)) {
		c.fileObject("secrets", key, types.FileObjectConfig(project.Secrets[key]))
	}
	for _, key := range slices.Sorted(maps.Keys(project.Configs)) {
		c.fileObject("configs", key, types.FileObjectConfig(project.Configs[key]))
	}
	for _, key := range slices.Sorted(maps.Keys(project.Models)) {
		c.add(scope{}, HostSideExtensions, "models."+key, project.Models[key].Model,
			"models run on the host's model runner, outside any container; Slipway does not run them")
	}
	c.checkNested()
	out := dropInherited(c.out)
	sortViolations(out)
	return out
}

// dropInherited removes violations of pre_start hooks that repeat one of
// their service: compose-go copies the service's attributes into its hooks,
// so one privileged: true would otherwise be reported once per hook.
func dropInherited(vs []Violation) []Violation {
	type key struct{ rule, service, field, value string }
	seen := map[key]bool{}
	for _, v := range vs {
		seen[key{v.Rule, v.Service, v.Field, v.Value}] = true
	}
	out := vs[:0]
	for _, v := range vs {
		if strings.HasPrefix(v.Field, "pre_start[") {
			if _, rest, ok := strings.Cut(v.Field, "]."); ok && seen[key{v.Rule, v.Service, rest, v.Value}] {
				continue
			}
		}
		out = append(out, v)
	}
	return out
}

// realRoot resolves the checkout. A root that cannot be resolved leaves
// every path outside it: the check fails closed.
func realRoot(root string) string {
	abs, err := filepath.Abs(root)
	if err != nil {
		return root
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	return abs
}

type checker struct {
	project *types.Project
	given   string // checkout as given (absolute)
	root    string // checkout, symlinks resolved
	opts    Options
	allowed map[string]bool
	out     []Violation
	// refs are host paths inside the checkout that the engine opens when
	// it (re)creates a container, for SW-MNT-006.
	refs []hostRef
}

// scope locates a field: in a service (prefix for hooks), or at the top
// level (prefix such as "jobs.migrate.").
type scope struct {
	service string
	prefix  string
}

type hostRef struct {
	sc       scope
	field    string
	value    string
	real     string
	writable bool
}

func (c *checker) add(sc scope, rule, field, value, msg string) {
	if c.allowed[rule] {
		return
	}
	c.out = append(c.out, Violation{Rule: rule, Service: sc.service, Field: sc.prefix + field, Value: value, Message: msg})
}

// display shows a path of the checkout the way the compose file wrote it,
// relative ("./data"), and any other path as it is.
func (c *checker) display(p string) string {
	if !filepath.IsAbs(p) {
		return p
	}
	for _, base := range []string{c.given, c.root} {
		if within(base, filepath.Clean(p)) {
			rel, err := filepath.Rel(base, p)
			switch {
			case err != nil:
			case rel == ".":
				return "."
			default:
				return "./" + filepath.ToSlash(rel)
			}
		}
	}
	return p
}

// inProject reports whether a service of that name exists, enabled or not.
func (c *checker) inProject(service string) bool {
	if _, ok := c.project.Services[service]; ok {
		return true
	}
	_, ok := c.project.DisabledServices[service]
	return ok
}

func (c *checker) service(name string, s *types.ServiceConfig) {
	sc := scope{service: name}
	c.container(sc, &s.ContainerSpec)
	c.workload(sc, &s.WorkloadSpec)
	c.serviceImage(sc, &s.ContainerSpec, &s.WorkloadSpec)
	c.reservedNames(sc, name, s.ContainerName, &s.ContainerSpec, s.Links)
	if s.Net != "" {
		c.networkMode(sc, "net", s.Net)
	}
	for i := range s.PreStart {
		hook := scope{service: name, prefix: fmt.Sprintf("pre_start[%d].", i)}
		c.container(hook, &s.PreStart[i].ContainerSpec)
		if img := s.PreStart[i].Image; img != "" && img != s.Image {
			c.image(hook, "image", img)
		}
	}
	for _, hooks := range []struct {
		field string
		list  []types.ServiceHook
	}{{"post_start", s.PostStart}, {"pre_stop", s.PreStop}} {
		for i, h := range hooks.list {
			if h.Privileged {
				c.add(sc, Privileged, fmt.Sprintf("%s[%d].privileged", hooks.field, i), "true",
					"a privileged exec has every capability and no confinement")
			}
		}
	}
	for i, l := range s.ExternalLinks {
		c.add(sc, ExternalLinks, fmt.Sprintf("external_links[%d]", i), l,
			"links a container outside the project into this service")
	}
	if strings.Contains(name, ".") {
		c.add(sc, DottedName, "name", name, "a service name is a DNS name on the project's networks; with a dot it can shadow a real domain")
	}
	if strings.Contains(s.ContainerName, ".") {
		c.add(sc, DottedName, "container_name", s.ContainerName, "container_name becomes a DNS alias; with a dot it can shadow a real domain")
	}
	for i, l := range s.Links {
		if _, alias, ok := strings.Cut(l, ":"); ok && strings.Contains(alias, ".") {
			c.add(sc, DottedName, fmt.Sprintf("links[%d]", i), l, "a link alias is a DNS name; with a dot it can shadow a real domain")
		}
	}
	if s.Provider != nil {
		c.add(sc, HostSideExtensions, "provider.type", s.Provider.Type,
			"a provider service runs a plugin binary on the host, outside any container; Slipway does not run it")
	}
	switch {
	case s.Deploy != nil && s.Deploy.Replicas != nil && *s.Deploy.Replicas > maxReplicas:
		c.add(sc, Replicas, "deploy.replicas", strconv.Itoa(*s.Deploy.Replicas),
			fmt.Sprintf("more than %d replicas of one service", maxReplicas))
	case s.Scale != nil && *s.Scale > maxReplicas:
		c.add(sc, Replicas, "scale", strconv.Itoa(*s.Scale),
			fmt.Sprintf("more than %d replicas of one service", maxReplicas))
	}
	if d := s.Deploy; d != nil {
		c.labels(sc, "deploy.labels", d.Labels)
		for _, r := range []struct {
			field string
			res   *types.Resource
		}{{"deploy.resources.limits", d.Resources.Limits}, {"deploy.resources.reservations", d.Resources.Reservations}} {
			if r.res == nil {
				continue
			}
			for i, dev := range r.res.Devices {
				c.add(sc, GPUs, fmt.Sprintf("%s.devices[%d]", r.field, i), deviceRequest(dev),
					"requests host devices (GPUs) for the container")
			}
		}
	}
}

func deviceRequest(d types.DeviceRequest) string {
	var parts []string
	if d.Driver != "" {
		parts = append(parts, "driver="+d.Driver)
	}
	if len(d.Capabilities) > 0 {
		parts = append(parts, "capabilities="+strings.Join(d.Capabilities, ","))
	}
	if len(d.IDs) > 0 {
		parts = append(parts, "device_ids="+strings.Join(d.IDs, ","))
	}
	if d.Count != 0 {
		parts = append(parts, fmt.Sprintf("count=%d", d.Count))
	}
	return strings.Join(parts, " ")
}

// container checks what every container spec (service, pre_start hook,
// job) can set.
func (c *checker) container(sc scope, s *types.ContainerSpec) {
	if s.Privileged {
		c.add(sc, Privileged, "privileged", "true",
			"a privileged container has every capability, every host device and no seccomp or AppArmor: root on the host")
	}
	for i, capName := range s.CapAdd {
		field := fmt.Sprintf("cap_add[%d]", i)
		switch {
		case normalizeCap(capName) == "ALL":
			c.add(sc, Privileged, field, capName, "cap_add ALL grants every capability: privileged mode in all but name")
		case !c.opts.capAllowed(capName):
			c.add(sc, CapAdd, field, capName,
				"capability is not in the base set nor in the operator's policy.cap_add")
		}
	}
	for i, opt := range s.SecurityOpt {
		if msg := securityOptProblem(opt); msg != "" {
			c.add(sc, SecurityOpt, fmt.Sprintf("security_opt[%d]", i), opt, msg)
		}
	}
	if r := strings.TrimSpace(s.Runtime); r != "" && r != "runc" {
		c.add(sc, Runtime, "runtime", s.Runtime, "selects an OCI runtime other than the engine's default")
	}
	if iso := strings.TrimSpace(s.Isolation); iso != "" && iso != "default" {
		c.add(sc, Isolation, "isolation", s.Isolation, "changes the container's isolation technology")
	}
	for _, k := range slices.Sorted(maps.Keys(s.Sysctls)) {
		if msg := malformedSysctl(k); msg != "" {
			c.add(sc, Sysctls, "sysctls."+k, s.Sysctls[k], msg)
			continue
		}
		if !c.opts.sysctlAllowed(k) {
			c.add(sc, Sysctls, "sysctls."+k, s.Sysctls[k],
				"sysctl is not in the safe set nor in the operator's policy.sysctls")
		}
	}
	c.networkMode(sc, "network_mode", s.NetworkMode)
	c.sharedNamespace(sc, "pid", s.Pid, PIDHost, "")
	c.sharedNamespace(sc, "ipc", s.Ipc, IPCHost, "none private shareable")
	if s.Uts == "host" {
		c.add(sc, UTSHost, "uts", s.Uts, "shares the host's UTS namespace (hostname)")
	}
	if s.UserNSMode == "host" {
		c.add(sc, UsernsHost, "userns_mode", s.UserNSMode, "opts out of user-namespace remapping: container root is host root")
	}
	if s.Cgroup == "host" {
		c.add(sc, CgroupHost, "cgroup", s.Cgroup, "shares the host's cgroup namespace")
	}
	if s.CgroupParent != "" {
		c.add(sc, CgroupParent, "cgroup_parent", s.CgroupParent, "places the container outside the cgroup the controller limits")
	}
	for i, d := range s.Devices {
		c.add(sc, Devices, fmt.Sprintf("devices[%d]", i), d.Source+":"+d.Target,
			"gives the container a host device")
	}
	for i, r := range s.DeviceCgroupRules {
		c.add(sc, DeviceCgroupRules, fmt.Sprintf("device_cgroup_rules[%d]", i), r,
			"lets the container create and use host device nodes")
	}
	for i, g := range s.Gpus {
		c.add(sc, GPUs, fmt.Sprintf("gpus[%d]", i), deviceRequest(g), "requests host GPUs for the container")
	}
	if s.OomKillDisable {
		c.add(sc, OOMKillDisable, "oom_kill_disable", "true", "a container the OOM killer cannot kill hangs the host instead")
	}
	if s.OomScoreAdj < 0 {
		c.add(sc, OOMScoreAdj, "oom_score_adj", strconv.FormatInt(s.OomScoreAdj, 10),
			"makes the kernel kill host processes before this container")
	}
	c.ulimits(sc, "ulimits", s.Ulimits)
	if s.CPURTRuntime != 0 {
		c.add(sc, RealtimeCPU, "cpu_rt_runtime", strconv.FormatInt(s.CPURTRuntime, 10), "real-time scheduling can monopolise host CPUs")
	}
	if s.CPURTPeriod != 0 {
		c.add(sc, RealtimeCPU, "cpu_rt_period", strconv.FormatInt(s.CPURTPeriod, 10), "real-time scheduling can monopolise host CPUs")
	}
	if s.Logging != nil && !allowedLogDriver(s.Logging.Driver) {
		c.add(sc, LogDriver, "logging.driver", s.Logging.Driver,
			"only json-file and local keep logs on the host, where Slipway reads and caps them")
	}
	if !allowedLogDriver(s.LogDriver) {
		c.add(sc, LogDriver, "log_driver", s.LogDriver,
			"only json-file and local keep logs on the host, where Slipway reads and caps them")
	}
	if s.UseAPISocket {
		c.add(sc, EngineSocket, "use_api_socket", "true", "mounts the Docker engine socket (and registry credentials) into the container")
	}
	c.mounts(sc, s.Volumes)
	c.volumesFrom(sc, s.VolumesFrom)
	if d := s.VolumeDriver; d != "" && d != "local" {
		c.add(sc, VolumeDriver, "volume_driver", d, "volume plugins run with the engine's privileges")
	}
	for _, name := range slices.Sorted(maps.Keys(s.Networks)) {
		n := s.Networks[name]
		if n == nil {
			continue
		}
		field := "networks." + name
		for i, a := range n.Aliases {
			if strings.Contains(a, ".") {
				c.add(sc, DottedName, fmt.Sprintf("%s.aliases[%d]", field, i), a, "a network alias is a DNS name; with a dot it can shadow a real domain")
			}
		}
		if n.Ipv4Address != "" {
			c.add(sc, StaticAddressing, field+".ipv4_address", n.Ipv4Address, "fixed addresses collide across previews and need a custom subnet")
		}
		if n.Ipv6Address != "" {
			c.add(sc, StaticAddressing, field+".ipv6_address", n.Ipv6Address, "fixed addresses collide across previews and need a custom subnet")
		}
		for i, ip := range n.LinkLocalIPs {
			c.add(sc, StaticAddressing, fmt.Sprintf("%s.link_local_ips[%d]", field, i), ip,
				"a link-local address can impersonate host services such as the metadata address")
		}
		for _, k := range slices.Sorted(maps.Keys(n.DriverOpts)) {
			c.add(sc, NetworkDriverOpts, field+".driver_opts."+k, n.DriverOpts[k],
				"endpoint driver options set kernel and network parameters outside the policy")
		}
	}
	c.labels(sc, "labels", s.Labels)
	for i, ef := range s.EnvFiles {
		c.loadFile(sc, fmt.Sprintf("env_file[%d]", i), ef.Path)
	}
	for i, lf := range s.LabelFiles {
		c.loadFile(sc, fmt.Sprintf("label_file[%d]", i), lf)
	}
	for _, name := range slices.Sorted(maps.Keys(s.Models)) {
		c.add(sc, HostSideExtensions, "models."+name, name,
			"models run on the host's model runner, outside any container; Slipway does not run them")
	}
}

// workload checks the attributes of services and jobs beyond the container.
func (c *checker) workload(sc scope, w *types.WorkloadSpec) {
	if w.Build != nil {
		c.build(sc, w.Build)
	}
}

func allowedLogDriver(d string) bool {
	switch strings.TrimSpace(d) {
	case "", "json-file", "local":
		return true
	}
	return false
}

// securityOptProblem says what is wrong with a security_opt entry, or ""
// when it only tightens confinement.
func securityOptProblem(opt string) string {
	// Both "key=value" and the legacy "key:value" are accepted by the engine.
	o := strings.ToLower(strings.TrimSpace(opt))
	key, val := o, ""
	if i := strings.IndexAny(o, "=:"); i >= 0 {
		key, val = strings.TrimSpace(o[:i]), strings.TrimSpace(o[i+1:])
	}
	switch key {
	case "no-new-privileges":
		if val == "" || val == "true" {
			return ""
		}
		return "no-new-privileges must stay on: setuid binaries would regain dropped privileges"
	case "apparmor":
		if val == "docker-default" {
			return ""
		}
		return "disables or replaces the engine's AppArmor profile"
	case "seccomp":
		return "disables or replaces the engine's default seccomp profile"
	case "label":
		return "disables or changes SELinux confinement"
	case "systempaths":
		return "unmasks /proc and /sys paths the engine hides from containers"
	}
	return "only no-new-privileges is accepted in security_opt"
}

// networkMode checks network_mode (and the legacy net).
func (c *checker) networkMode(sc scope, field, mode string) {
	switch {
	case mode == "" || mode == "none":
	case strings.HasPrefix(mode, types.ServicePrefix):
		if target := strings.TrimPrefix(mode, types.ServicePrefix); !c.inProject(target) {
			c.add(sc, NetworkMode, field, mode, "joins the network namespace of a service that is not in the project")
		}
	case mode == "host":
		c.add(sc, NetworkMode, field, mode, "shares the host's network stack: every host port, localhost-only services, the metadata address")
	case strings.HasPrefix(mode, types.ContainerPrefix):
		c.add(sc, NetworkMode, field, mode, "joins the network namespace of a container outside the project")
	case mode == "bridge" || mode == "default":
		c.add(sc, NetworkMode, field, mode, "joins the engine's default bridge, shared with containers outside the project; use networks:")
	default:
		c.add(sc, NetworkMode, field, mode, "names a network the project does not own; use networks:")
	}
}

// sharedNamespace checks pid and ipc: host and container: are rejected,
// service: must name a service of the project; ok lists other fine values.
func (c *checker) sharedNamespace(sc scope, field, mode, rule, ok string) {
	switch {
	case mode == "" || slices.Contains(strings.Fields(ok), mode):
	case mode == "host":
		c.add(sc, rule, field, mode, fmt.Sprintf("shares the host's %s namespace", strings.ToUpper(field)))
	case strings.HasPrefix(mode, types.ContainerPrefix):
		c.add(sc, rule, field, mode, fmt.Sprintf("shares the %s namespace of a container outside the project", strings.ToUpper(field)))
	case strings.HasPrefix(mode, types.ServicePrefix):
		if !c.inProject(strings.TrimPrefix(mode, types.ServicePrefix)) {
			c.add(sc, rule, field, mode, fmt.Sprintf("shares the %s namespace of a service that is not in the project", strings.ToUpper(field)))
		}
	}
}

func (c *checker) ulimits(sc scope, field string, limits map[string]*types.UlimitsConfig) {
	for _, name := range slices.Sorted(maps.Keys(limits)) {
		u := limits[name]
		if u == nil {
			continue
		}
		values := []int{u.Single, u.Soft, u.Hard}
		switch name {
		case "nofile":
			for _, v := range values {
				if v > maxNofile || v < 0 {
					c.add(sc, Ulimits, field+".nofile", ulimitString(u),
						fmt.Sprintf("nofile above %d", maxNofile))
					break
				}
			}
		case "rtprio":
			for _, v := range values {
				if v != 0 {
					c.add(sc, Ulimits, field+".rtprio", ulimitString(u), "real-time priority can starve the host's CPUs")
					break
				}
			}
		}
	}
}

func ulimitString(u *types.UlimitsConfig) string {
	if u.Single != 0 {
		return strconv.Itoa(u.Single)
	}
	return fmt.Sprintf("soft=%d hard=%d", u.Soft, u.Hard)
}

// labels rejects the reserved label prefixes.
func (c *checker) labels(sc scope, field string, labels map[string]string) {
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		l := strings.ToLower(strings.TrimSpace(k))
		if strings.HasPrefix(l, contract.ComposeLabelPrefix) || strings.HasPrefix(l, contract.SlipwayLabelPrefix) {
			c.add(sc, ReservedLabel, fmt.Sprintf("%s[%s]", field, k), labels[k],
				fmt.Sprintf("labels under %s and %s are set by Slipway only", contract.ComposeLabelPrefix, contract.SlipwayLabelPrefix))
		}
	}
}

// loadFile re-checks a file compose-go read while loading (PreLoad's job;
// kept here as defence in depth for callers that skipped it).
func (c *checker) loadFile(sc scope, field, p string) {
	if p == "" {
		return
	}
	if hp := resolveHostPath(c.root, c.given, p); !hp.inside {
		c.add(sc, LoadFileOutside, field, p, "compose-go read this file while loading, and it "+hp.describe(p))
	}
}
