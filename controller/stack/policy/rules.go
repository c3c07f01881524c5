package policy

import (
	"fmt"
	"strings"
)

// Rule IDs. docs/security.md documents each one (see Rules).
const (
	NetworkMode = "SW-NS-001"
	PIDHost     = "SW-NS-002"
	IPCHost     = "SW-NS-003"
	UTSHost     = "SW-NS-004"
	UsernsHost  = "SW-NS-005"
	CgroupHost  = "SW-NS-006"

	Privileged  = "SW-PRIV-001"
	CapAdd      = "SW-PRIV-002"
	SecurityOpt = "SW-PRIV-003"
	Runtime     = "SW-PRIV-004"
	Isolation   = "SW-PRIV-005"
	Sysctls     = "SW-PRIV-006"

	Devices           = "SW-DEV-001"
	DeviceCgroupRules = "SW-DEV-002"
	GPUs              = "SW-DEV-003"

	CgroupParent   = "SW-RES-001"
	OOMKillDisable = "SW-RES-002"
	OOMScoreAdj    = "SW-RES-003"
	Ulimits        = "SW-RES-004"
	RealtimeCPU    = "SW-RES-005"
	Replicas       = "SW-RES-006"

	LogDriver = "SW-LOG-001"

	BindOutside       = "SW-MNT-001"
	EngineSocket      = "SW-MNT-002"
	HostSystemPath    = "SW-MNT-003"
	BindPropagation   = "SW-MNT-004"
	VolumesFrom       = "SW-MNT-005"
	BindUnderWritable = "SW-MNT-006"

	VolumeHostMount = "SW-VOL-001"
	VolumeDriver    = "SW-VOL-002"
	ExternalVolume  = "SW-VOL-003"
	VolumeName      = "SW-VOL-004"
	VolumeSubpath   = "SW-VOL-005"

	ExternalNetwork   = "SW-NET-001"
	NetworkDriver     = "SW-NET-002"
	NetworkDriverOpts = "SW-NET-003"
	StaticAddressing  = "SW-NET-004"
	NetworkName       = "SW-NET-005"
	ExternalLinks     = "SW-NET-006"
	DottedName        = "SW-NET-007"

	LoadFileOutside       = "SW-FILE-001"
	RemoteResource        = "SW-FILE-002"
	YAMLForm              = "SW-FILE-005"
	ObjectFileOutside     = "SW-FILE-003"
	ObjectFromEnvironment = "SW-FILE-004"

	BuildPrivileged   = "SW-BLD-001"
	BuildNetwork      = "SW-BLD-002"
	BuildEntitlements = "SW-BLD-003"
	BuildSSH          = "SW-BLD-004"
	BuildPathOutside  = "SW-BLD-005"
	BuildRemote       = "SW-BLD-006"
	BuildCache        = "SW-BLD-007"
	BuildTags         = "SW-BLD-008"

	ReservedLabel = "SW-LBL-001"

	// ProjectName is retired (see RetiredRules).
	ProjectName        = "SW-PROJ-001"
	HostSideExtensions = "SW-PROJ-002"
)

// Rule IDs of images, Dockerfiles, project size and names (issue 14).
const (
	ForeignImage        = "SW-IMG-001"
	PrivateRegistry     = "SW-IMG-002"
	RemoteAdd           = "SW-BLD-009"
	DockerfileUnchecked = "SW-BLD-010"
	AdditionalContexts  = "SW-BLD-011"
	ProjectCaps         = "SW-RES-007"
	IPv6Network         = "SW-NET-008"
	ReservedName        = "SW-NET-009"
)

// Phase says when a rule is checked.
type Phase string

// Phases.
const (
	// PhasePreLoad rules are checked by PreLoad on the raw YAML.
	PhasePreLoad Phase = "pre-load"
	// PhaseCheck rules are checked by Check on the loaded project.
	PhaseCheck Phase = "check"
	// PhaseBoth rules are checked by both (Check as defence in depth).
	PhaseBoth Phase = "both"
)

// Rule is one entry of the policy's rule table; docs/security.md mirrors it.
type Rule struct {
	// ID is the stable identifier operators list in policy.allow.
	ID string
	// Key is a short lower-case name, also accepted in policy.allow.
	Key string
	// Title says in a few words what the rule rejects.
	Title string
	// Blocks lists the compose constructs the rule rejects.
	Blocks string
	// Why says what an attacker gains from them.
	Why string
	// Relax says how an operator lets them through for one repository.
	Relax string
	// Refs names the KICS queries and CIS Docker Benchmark v1.6.0 controls
	// that cover the same ground, if any.
	Refs string
	// Phase says whether PreLoad, Check or both enforce it.
	Phase Phase
	// Fixed rules cannot be relaxed: listing them in policy.allow is a
	// configuration error.
	Fixed bool
	// Retired, on a rule of RetiredRules, says what Slipway does now with
	// what the rule used to reject.
	Retired string
}

// RetiredRules returns the rules that no longer reject anything. Their IDs
// and keys stay valid in policy.allow, where they relax nothing, so that a
// configuration written for an older Slipway still loads.
func RetiredRules() []Rule {
	return []Rule{
		{ID: ProjectName, Key: "project-name", Title: "top-level name", Phase: PhasePreLoad,
			Blocks:  "a top-level `name:` in a compose file Slipway is given.",
			Why:     "Slipway names every project `<owner>-<repo>-pr-<N>` itself, whatever the file says: the name never reaches a container, network or volume, so it cannot collide with or impersonate another environment.",
			Retired: "The name is ignored, and the plan (`slipway plan`, the build log) notes it: real projects carry one."},
	}
}

const relaxAllow = "`policy.allow: [%s]`"

// Rules returns the rule table, in document order.
func Rules() []Rule {
	allow := func(id string) string { return fmt.Sprintf(relaxAllow, id) }
	return []Rule{
		{ID: NetworkMode, Key: "network-mode", Title: "network_mode outside the project",
			Blocks: "`network_mode` (or legacy `net`) `host`, `bridge`/`default`, `container:<name>`, `service:<name>` naming a service not in the project, or any other network name. `none` and `service:<in-project>` are fine.",
			Why:    "`host` puts the container in the host's network stack (every host port, the metadata address, localhost-only services); `bridge` joins the engine's shared default bridge; `container:` joins some other container's namespace, e.g. the controller's.",
			Relax:  allow(NetworkMode), Refs: "KICS network_mode_host_exists, shared_host_network_namespace; CIS 5.9, 5.29", Phase: PhaseCheck},
		{ID: PIDHost, Key: "pid-host", Title: "shared PID namespace",
			Blocks: "`pid: host`, `pid: container:<name>` (on services, pre_start hooks and jobs).",
			Why:    "Sees and signals every process of the host (or another container), reads their environment through /proc.",
			Relax:  allow(PIDHost), Refs: "KICS host_namespace_is_shared; CIS 5.15", Phase: PhaseCheck},
		{ID: IPCHost, Key: "ipc-host", Title: "shared IPC namespace",
			Blocks: "`ipc: host`, `ipc: container:<name>`. `private`, `shareable`, `none` and `service:<in-project>` are fine.",
			Why:    "Reads and writes the shared memory of host processes or of another container.",
			Relax:  allow(IPCHost), Refs: "KICS ipc_set_to_host, shared_host_ipc_namespace; CIS 5.16", Phase: PhaseCheck},
		{ID: UTSHost, Key: "uts-host", Title: "shared UTS namespace",
			Blocks: "`uts: host`.",
			Why:    "Lets the container change the host's hostname and domain name.",
			Relax:  allow(UTSHost), Refs: "CIS 5.20", Phase: PhaseCheck},
		{ID: UsernsHost, Key: "userns-host", Title: "host user namespace",
			Blocks: "`userns_mode: host`.",
			Why:    "Opts out of the engine's user-namespace remapping: container root becomes host root.",
			Relax:  allow(UsernsHost), Refs: "KICS userns_set_to_host, shared_host_user_namespace; CIS 5.30", Phase: PhaseCheck},
		{ID: CgroupHost, Key: "cgroup-host", Title: "host cgroup namespace",
			Blocks: "`cgroup: host`.",
			Why:    "Exposes the host's cgroup hierarchy to the container.",
			Relax:  allow(CgroupHost), Refs: "KICS cgroup_not_default", Phase: PhaseCheck},

		{ID: Privileged, Key: "privileged", Title: "privileged container",
			Blocks: "`privileged: true` on services, pre_start/post_start/pre_stop hooks and jobs; `cap_add: [ALL]`.",
			Why:    "All capabilities, every host device, no seccomp or AppArmor: a privileged container is root on the host in all but name.",
			Relax:  allow(Privileged), Refs: "KICS privileged_containers_enabled; CIS 5.4", Phase: PhaseCheck},
		{ID: CapAdd, Key: "cap-add", Title: "capability outside the allowlist",
			Blocks: "`cap_add` of a capability that is neither in the base set (Docker's defaults without NET_RAW) nor in `policy.cap_add`. `ALL` is SW-PRIV-001.",
			Why:    "SYS_ADMIN, SYS_MODULE, SYS_PTRACE, NET_ADMIN, DAC_READ_SEARCH... each is a known container escape or a way to attack the bridge the other services share.",
			Relax:  "`policy.cap_add: [NET_ADMIN]` (one capability), or " + allow(CapAdd) + " (any but ALL)", Refs: "KICS container_capabilities_unrestricted, check_cap_add_cap_drop; CIS 5.3", Phase: PhaseCheck},
		{ID: SecurityOpt, Key: "security-opt", Title: "security_opt other than no-new-privileges",
			Blocks: "every `security_opt` entry except `no-new-privileges[:=]true` and `apparmor[:=]docker-default`: `seccomp:unconfined`, custom seccomp profiles, `apparmor:unconfined`, `label:disable`, `label:type:spc_t`, `systempaths=unconfined`, `no-new-privileges:false`...",
			Why:    "seccomp, AppArmor/SELinux and masked /proc paths are what stop most kernel-level escapes; no-new-privileges stops setuid binaries from regaining what was dropped.",
			Relax:  allow(SecurityOpt), Refs: "KICS default_seccomp_profile_disabled, seccomp_disabled, no_new_privileges_not_set, security_opt_not_set; CIS 5.1, 5.2, 5.21, 5.25", Phase: PhaseCheck},
		{ID: Runtime, Key: "runtime", Title: "alternative OCI runtime",
			Blocks: "`runtime` other than `runc`.",
			Why:    "Selects whatever runtime the operator installed for other purposes (e.g. nvidia, or one with weaker isolation).",
			Relax:  allow(Runtime), Phase: PhaseCheck},
		{ID: Isolation, Key: "isolation", Title: "isolation technology",
			Blocks: "`isolation` (service or build) other than `default`.",
			Why:    "Only meaningful on Windows hosts; anything else is an attempt to change how the container is isolated.",
			Relax:  allow(Isolation), Phase: PhaseCheck},
		{ID: Sysctls, Key: "sysctls", Title: "sysctl outside the allowlist",
			Blocks: "`sysctls` not in the Kubernetes \"safe\" set (kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.ip_local_reserved_ports, net.ipv4.ip_unprivileged_port_start, net.ipv4.ping_group_range, net.ipv4.tcp_syncookies, net.ipv4.tcp_keepalive_time/intvl/probes, net.ipv4.tcp_fin_timeout) nor in `policy.sysctls`; before any allowlist match, every malformed key: anything outside `[a-z0-9_.-]` (the `/` form included), an empty segment (`..`), a leading or trailing dot.",
			Why:    "Namespaced sysctls still change kernel behaviour for the container's network (forwarding, rp_filter, ARP) — the first step of attacks on the shared bridge. The runtime turns a key into a path under /proc/sys: `net.ipv4.conf.all/../../kernel/core_pattern` passes a `net.ipv4.conf.*` prefix and writes a host-wide setting.",
			Relax:  "`policy.sysctls: [net.core.somaxconn]` (a trailing `*` matches a prefix), or " + allow(Sysctls), Phase: PhaseCheck},

		{ID: Devices, Key: "devices", Title: "host devices",
			Blocks: "`devices`.",
			Why:    "Raw access to host disks, /dev/mem, /dev/kmsg, tty devices...",
			Relax:  allow(Devices), Refs: "CIS 5.17", Phase: PhaseCheck},
		{ID: DeviceCgroupRules, Key: "device-cgroup-rules", Title: "device cgroup rules",
			Blocks: "`device_cgroup_rules`.",
			Why:    "Lets the container create and open device nodes (with mknod) that the default rules forbid.",
			Relax:  allow(DeviceCgroupRules), Refs: "CIS 5.17", Phase: PhaseCheck},
		{ID: GPUs, Key: "gpus", Title: "GPU and device requests",
			Blocks: "`gpus`, `deploy.resources.reservations.devices`, `deploy.resources.limits.devices`.",
			Why:    "Hands a host device and its driver's kernel surface to PR code; the host's GPUs are not the previews' to take.",
			Relax:  allow(GPUs), Phase: PhaseCheck},

		{ID: CgroupParent, Key: "cgroup-parent", Title: "cgroup_parent",
			Blocks: "`cgroup_parent`.",
			Why:    "Places the container in a cgroup of the PR's choosing, escaping the limits the controller applies.",
			Relax:  allow(CgroupParent), Refs: "CIS 5.24", Phase: PhaseCheck},
		{ID: OOMKillDisable, Key: "oom-kill-disable", Title: "OOM killer disabled",
			Blocks: "`oom_kill_disable: true`.",
			Why:    "A container that cannot be OOM-killed hangs the host under memory pressure instead.",
			Relax:  allow(OOMKillDisable), Phase: PhaseCheck},
		{ID: OOMScoreAdj, Key: "oom-score-adj", Title: "negative oom_score_adj",
			Blocks: "`oom_score_adj` below 0.",
			Why:    "Makes the kernel kill host processes (the controller, the engine) before the container.",
			Relax:  allow(OOMScoreAdj), Phase: PhaseCheck},
		{ID: Ulimits, Key: "ulimits", Title: "ulimits above the caps",
			Blocks: "`ulimits` (service or build) raising `nofile` above 1048576 (soft or hard), or `rtprio` above 0.",
			Why:    "Open files cost unaccounted kernel memory; real-time priority starves the host's CPUs. Other ulimits are bounded by the memory and pids limits the controller applies.",
			Relax:  allow(Ulimits), Refs: "CIS 5.18", Phase: PhaseCheck},
		{ID: RealtimeCPU, Key: "realtime-cpu", Title: "real-time CPU scheduling",
			Blocks: "`cpu_rt_runtime`, `cpu_rt_period`.",
			Why:    "Real-time scheduling lets a container monopolise host CPUs.",
			Relax:  allow(RealtimeCPU), Refs: "CIS 5.11", Phase: PhaseCheck},
		{ID: Replicas, Key: "replicas", Title: "too many replicas",
			Blocks: "`scale` or `deploy.replicas` above 10.",
			Why:    "One line of YAML would start thousands of containers on a host shared by every preview.",
			Relax:  allow(Replicas), Phase: PhaseCheck},

		{ID: LogDriver, Key: "log-driver", Title: "logging driver other than json-file/local",
			Blocks: "`logging.driver` (or legacy `log_driver`) other than `json-file` or `local`.",
			Why:    "syslog, gelf, fluentd, splunk, awslogs... make the engine connect to addresses the PR chooses (SSRF from the host) and take logs away from Slipway.",
			Relax:  allow(LogDriver), Phase: PhaseCheck},

		{ID: BindOutside, Key: "bind-outside", Title: "bind mount outside the checkout",
			Blocks: "a bind mount (short or long syntax, `~` included) whose source, symlinks followed, is not inside the PR's checkout. `./src`, `./nginx.conf`, `.` are fine.",
			Why:    "Any host path is readable (and writable) by the PR: other previews' data, the controller's state and secrets, SSH keys.",
			Relax:  allow(BindOutside) + " (still not the engine socket or system paths, which have their own rules)", Refs: "KICS volume_has_sensitive_host_directory", Phase: PhaseCheck},
		{ID: EngineSocket, Key: "engine-socket", Title: "container engine socket",
			Blocks: "a bind mount of /var/run/docker.sock, /run/docker.sock, any `*.sock` outside the checkout, or a directory containing a known engine socket (/run, /var/run, /); `use_api_socket: true`.",
			Why:    "The Docker socket is root on the host: one API call starts a privileged container with / mounted.",
			Relax:  allow(EngineSocket) + " — do not; give the repository a socket proxy that allows read-only calls instead", Refs: "KICS docker_socket_mounted_in_container; CIS 5.31", Phase: PhaseCheck},
		{ID: HostSystemPath, Key: "host-system-path", Title: "host system directory",
			Blocks: "a bind mount of /, /etc, /proc, /sys, /dev, /boot, /root, /home, /usr, /lib*, /bin, /sbin, /run, /var, /var/lib (so /var/lib/docker), /var/log and what lies below them.",
			Why:    "Host credentials, kernel interfaces, other previews' volumes under /var/lib/docker.",
			Relax:  allow(HostSystemPath), Refs: "KICS volume_has_sensitive_host_directory; CIS 5.5", Phase: PhaseCheck},
		{ID: BindPropagation, Key: "bind-propagation", Title: "shared mount propagation",
			Blocks: "`bind.propagation` (or the short-syntax flag) `shared`, `rshared`, `slave`, `rslave` on any bind.",
			Why:    "Shared propagation lets mounts made in the container appear on the host (and the reverse).",
			Relax:  allow(BindPropagation), Refs: "CIS 5.19", Phase: PhaseCheck},
		{ID: VolumesFrom, Key: "volumes-from", Title: "volumes_from outside the project",
			Blocks: "`volumes_from: [container:<name>]`, or a service that is not in the project.",
			Why:    "Mounts the volumes of any container on the host: another preview's database, the controller's state.",
			Relax:  allow(VolumesFrom), Refs: "KICS shared_volumes_between_containers", Phase: PhaseCheck},
		{ID: BindUnderWritable, Key: "bind-under-writable", Title: "host path inside a writable bind",
			Blocks: "a bind source, `o: bind` volume device, or secret/config file that lies inside a directory that some service mounts read-write.",
			Why:    "A container can replace a file in its writable mount with a symlink to / before the engine creates (or restarts) the container that mounts it; the engine follows the symlink. Mount narrower directories, or mount the outer one read-only.",
			Relax:  allow(BindUnderWritable), Phase: PhaseCheck},

		{ID: VolumeHostMount, Key: "volume-host-mount", Title: "volume driver_opts that mount host paths or remote filesystems",
			Blocks: "top-level volume `driver_opts` other than a tmpfs (`type: tmpfs`, `device: tmpfs`): `o: bind` with a `device` outside the checkout, a bind whose `o` is not exactly `bind` or `rbind` optionally followed by `,ro` or `,rw` (the engine reads `bind,ro,rw` and `bind, ro` as read-write), `device: /dev/sda1`, `type: nfs`/`cifs` with `o: addr=...`.",
			Why:    "A local volume with driver_opts is a mount(2) done by the engine as root: a bind of any host path, a host block device, or a network filesystem reached from the host's network.",
			Relax:  allow(VolumeHostMount), Refs: "KICS volume_has_sensitive_host_directory (driver_opts.device)", Phase: PhaseCheck},
		{ID: VolumeDriver, Key: "volume-driver", Title: "volume driver other than local",
			Blocks: "top-level volume `driver` other than `local`, service `volume_driver`, `type: cluster` mounts.",
			Why:    "Plugins run with the engine's privileges and reach storage outside the host.",
			Relax:  allow(VolumeDriver), Phase: PhaseCheck},
		{ID: ExternalVolume, Key: "external-volume", Title: "external volume not allowlisted",
			Blocks: "`external: true` volumes whose name is not in `policy.external_volumes`.",
			Why:    "An external volume is any volume on the engine: another preview's database, the proxy's certificates.",
			Relax:  "`policy.external_volumes: [shared-fixtures]`, or " + allow(ExternalVolume), Phase: PhaseCheck},
		{ID: VolumeName, Key: "volume-name", Title: "volume named outside the project",
			Blocks: "top-level volume `name:` (the engine uses it verbatim instead of `<project>_<key>`).",
			Why:    "A fixed name reaches a volume of another preview or of the host by name.",
			Relax:  allow(VolumeName), Phase: PhaseCheck},
		{ID: VolumeSubpath, Key: "volume-subpath", Title: "volume subpath leaving the volume",
			Blocks: "a mount's `volume.subpath` (or `image.subpath`) that is absolute or has a `..` component.",
			Why:    "The engine mounts that path of the volume: one climbing out of it reaches other previews' volumes and the engine's data under /var/lib/docker. (The engine joins subpaths with its own scoped resolution too; this rule does not depend on its version.)",
			Relax:  "cannot be relaxed", Phase: PhaseCheck, Fixed: true},

		{ID: ExternalNetwork, Key: "external-network", Title: "external network not allowlisted",
			Blocks: "`external: true` networks whose name is not in `policy.external_networks`.",
			Why:    "Joining a network the project does not own reaches other previews, the proxy, or host services on it.",
			Relax:  "`policy.external_networks: [shared-services]`, or " + allow(ExternalNetwork), Phase: PhaseCheck},
		{ID: NetworkDriver, Key: "network-driver", Title: "network driver other than bridge",
			Blocks: "network `driver` other than `bridge`: `macvlan`, `ipvlan`, `host`, `overlay`, plugins.",
			Why:    "macvlan/ipvlan put containers directly on the host's LAN, past the host firewall; host and overlay leave the per-environment bridge.",
			Relax:  allow(NetworkDriver), Phase: PhaseCheck},
		{ID: NetworkDriverOpts, Key: "network-driver-opts", Title: "network or endpoint driver_opts",
			Blocks: "network `driver_opts` other than `com.docker.network.driver.mtu`, `com.docker.network.bridge.enable_icc`, `com.docker.network.bridge.enable_ip_masquerade`, `com.docker.network.container_iface_prefix`; any per-service endpoint `driver_opts` (e.g. `com.docker.network.endpoint.sysctls`).",
			Why:    "`com.docker.network.bridge.name: docker0` joins an existing host bridge; `gateway_mode_ipv4: routed` and `trusted_host_interfaces` open the network to the host's LAN; endpoint sysctls set kernel parameters past SW-PRIV-006.",
			Relax:  allow(NetworkDriverOpts), Phase: PhaseCheck},
		{ID: StaticAddressing, Key: "static-addressing", Title: "custom IPAM and static addresses",
			Blocks: "network `ipam` (driver, subnets, gateways, ranges, options); service `ipv4_address`, `ipv6_address`, `link_local_ips`.",
			Why:    "A subnet of the PR's choosing can shadow the host's own routes (the LAN, the DNS server) and cut the host off; fixed addresses collide across previews.",
			Relax:  allow(StaticAddressing), Phase: PhaseCheck},
		{ID: NetworkName, Key: "network-name", Title: "network named outside the project",
			Blocks: "top-level network `name:` (the engine uses it verbatim instead of `<project>_<key>`).",
			Why:    "A fixed name joins or squats a network of another preview or of the host.",
			Relax:  allow(NetworkName), Phase: PhaseCheck},
		{ID: ExternalLinks, Key: "external-links", Title: "external_links",
			Blocks: "`external_links`.",
			Why:    "Links containers outside the project into the service's name resolution.",
			Relax:  allow(ExternalLinks), Phase: PhaseCheck},
		{ID: DottedName, Key: "dotted-name", Title: "a DNS name with a dot",
			Blocks: "a service name, network alias, `container_name` or `links` alias containing a dot.",
			Why:    "Docker's resolver answers a network's names before real DNS for every container on that network, Slipway's own among them when it runs in a container: an alias `api.github.com` would take the controller's GitHub traffic.",
			Relax:  allow(DottedName), Phase: PhaseCheck},

		{ID: LoadFileOutside, Key: "load-file-outside", Title: "file read while loading is outside the checkout",
			Blocks: "a compose file, `.env`, `include` path/`project_directory`/`env_file`, `extends.file`, `env_file` or `label_file` (on services, pre_start hooks and jobs) that is, symlinks followed, outside the checkout — after interpolation, in every file reached through include and extends.",
			Why:    "compose-go reads these files while loading: their content would land in the environment of PR containers (or in error messages), e.g. /proc/self/environ of the controller or its secrets.",
			Relax:  allow(LoadFileOutside), Phase: PhaseBoth},
		{ID: YAMLForm, Key: "yaml-form", Title: "YAML two readers could read differently",
			Blocks: "a compose file (given, included or extended) that does not parse as YAML; an explicit tag other than compose's own `!reset` and `!override` (`!!binary`, `!!str`, `!!merge`, custom tags) on any key or value; a mapping key longer than 1024 characters.",
			Why:    "The policy checks what it reads, and compose-go loads what it reads: a tag that turns base64 into a path, or a key one parser refuses and the other accepts, makes the two disagree, and compose-go reads what the check never saw. Compose files need none of these.",
			Relax:  "cannot be relaxed", Phase: PhasePreLoad, Fixed: true},
		{ID: RemoteResource, Key: "remote-resource", Title: "remote include or extends",
			Blocks: "`include` or `extends.file` naming a git, http(s) or oci resource.",
			Why:    "Makes the controller fetch arbitrary URLs (SSRF) and load compose content that never appeared in the PR.",
			Relax:  allow(RemoteResource) + " — the loader is still not given remote resource loaders, so loading then fails", Phase: PhasePreLoad},
		{ID: ObjectFileOutside, Key: "object-file-outside", Title: "secret or config file outside the checkout",
			Blocks: "top-level `secrets.*.file` or `configs.*.file` (including build secrets, which name these) outside the checkout.",
			Why:    "The file is mounted into the containers (or handed to the build): /etc/shadow, the controller's keys.",
			Relax:  allow(ObjectFileOutside), Phase: PhaseCheck},
		{ID: ObjectFromEnvironment, Key: "object-from-environment", Title: "secret or config from the environment",
			Blocks: "top-level `secrets.*.environment` or `configs.*.environment`.",
			Why:    "Reads a variable of the loading environment into a file; Slipway never hands the controller's environment to a PR, and controller secrets are injected by name through .slipway.yml instead.",
			Relax:  allow(ObjectFromEnvironment), Phase: PhaseCheck},

		{ID: BuildPrivileged, Key: "build-privileged", Title: "privileged build",
			Blocks: "`build.privileged: true`.",
			Why:    "RUN steps would execute privileged on the host's engine.",
			Relax:  allow(BuildPrivileged), Phase: PhaseCheck},
		{ID: BuildNetwork, Key: "build-network", Title: "build network",
			Blocks: "`build.network` other than `default` or `none` (e.g. `host`, another project's network).",
			Why:    "RUN steps in the host's network namespace reach localhost-only services and the metadata address; a named network reaches other previews.",
			Relax:  allow(BuildNetwork), Phase: PhaseCheck},
		{ID: BuildEntitlements, Key: "build-entitlements", Title: "build entitlements",
			Blocks: "`build.entitlements` (`network.host`, `security.insecure`).",
			Why:    "Entitlements exist to grant builds host network and privileged execution.",
			Relax:  allow(BuildEntitlements), Phase: PhaseCheck},
		{ID: BuildSSH, Key: "build-ssh", Title: "build SSH forwarding",
			Blocks: "`build.ssh`.",
			Why:    "Forwards the controller's SSH agent or keys into the PR's build.",
			Relax:  allow(BuildSSH), Phase: PhaseCheck},
		{ID: BuildPathOutside, Key: "build-path-outside", Title: "build context or Dockerfile outside the checkout",
			Blocks: "`build.context`, local `build.additional_contexts` (also `oci-layout://`), `build.dockerfile` (or the default Dockerfile) that resolve outside the checkout; `service:` contexts naming a service not in the project.",
			Why:    "The context is sent to the engine and readable by RUN steps: a context of / or ~ uploads the host's files into the PR's image.",
			Relax:  allow(BuildPathOutside), Phase: PhaseCheck},
		{ID: BuildRemote, Key: "build-remote", Title: "remote build context",
			Blocks: "git or http(s) URLs (and other `scheme://` sources) as `build.context` or in `build.additional_contexts`; `docker-image://` is fine.",
			Why:    "The builder would fetch arbitrary URLs from the host's network.",
			Relax:  allow(BuildRemote), Phase: PhaseCheck},
		{ID: BuildCache, Key: "build-cache", Title: "build cache export or local cache import",
			Blocks: "`build.cache_to`; `build.cache_from` entries of any type but `registry` (`type=local`, however spaced or cased: `TYPE = Local`; `gha`, `s3`, `azblob`) or that do not parse as CSV `key=value` fields; a registry cache's `ref` is judged like an image (SW-IMG-001, SW-IMG-002).",
			Why:    "A local cache exporter writes to a host path; a local importer reads one; the other importers contact the endpoint the spec names from the host's network.",
			Relax:  allow(BuildCache), Phase: PhaseCheck},
		{ID: BuildTags, Key: "build-tags", Title: "extra image tags",
			Blocks: "`build.tags`.",
			Why:    "Every preview shares one engine's image store: tagging the PR's image `postgres:16` would replace the image other previews run.",
			Relax:  allow(BuildTags), Phase: PhaseCheck},

		{ID: ReservedLabel, Key: "reserved-label", Title: "reserved label",
			Blocks: "labels starting `com.docker.compose.` or `dev.slipway.` on services, deploy, builds, networks, volumes, volume mounts, secrets and configs (including those from `label_file`).",
			Why:    "Slipway and docker compose find, route and delete environments by these labels: a PR setting them could claim another PR's host name or make Slipway delete someone else's containers.",
			Relax:  "cannot be relaxed", Phase: PhaseCheck, Fixed: true},

		{ID: HostSideExtensions, Key: "host-side-extensions", Title: "features that run outside a container",
			Blocks: "service `provider` (runs a host-side plugin binary), top-level and service `models` (the host's model runner).",
			Why:    "They execute on the host, outside every container boundary, and Slipway does not implement them.",
			Relax:  allow(HostSideExtensions) + " (the feature is still not run)", Phase: PhaseCheck},

		{ID: ForeignImage, Key: "foreign-image", Title: "another preview's image, or an image by ID",
			Blocks: "an image named as Slipway names the images it builds for another project, `<owner>-<repo>-pr-<N>-<service>`, in the engine's local store or on an internal registry (e.g. `image: acme-rw-pr-12-web:0123456789ab` in project acme-rw-pr-9; the project's own `<project>-<service>` is fine), an image ID or ID prefix (`sha256:…`, a bare hexadecimal word), or a reference that does not parse — as the `image` of a service or job that is not built, in a Dockerfile built from the PR (`FROM`, `COPY --from`, `RUN --mount=from=`, `# syntax=`), in `docker-image://` build contexts and registry `cache_from`.",
			Why:    "Every preview shares one engine's image store: another PR's image (a trusted PR's may hold build secrets) is one name away, and an ID prefix picks any local image.",
			Relax:  allow(ForeignImage), Phase: PhaseCheck},
		{ID: PrivateRegistry, Key: "private-registry", Title: "registry on an internal address",
			Blocks: "an image reference (wherever SW-IMG-001 looks) whose registry is an IP literal in a loopback, link-local, private, CGNAT, unspecified or other non-public range, in any notation the resolver accepts (`127.1`, `0x7f.0.0.1`, `[::ffff:127.0.0.1]`); `localhost` or a name under `.localhost`, `.local`, `.internal`, `.home.arpa`, `.localdomain`, `.lan`, a single-label name (`registry:5000`), or a name embedding such an address (`10.0.0.5.nip.io`): `localhost:5000/x`, `169.254.169.254:80/x`, `10.0.0.5/x`, `[::1]:5000/x`.",
			Why:    "The engine pulls from the host's own network namespace, past every firewall rule that guards preview networks: a pull is a request from the host to its loopback services, the cloud metadata address or the LAN.",
			Relax:  "`policy.allowed_registries: [\"registry.internal:5000\"]` (a host without a port allows every port), or " + allow(PrivateRegistry), Phase: PhaseCheck},
		{ID: RemoteAdd, Key: "remote-add", Title: "remote ADD source",
			Blocks: "a Dockerfile built from the PR (`build.dockerfile` in the checkout, or `build.dockerfile_inline`) with an `ADD` source that, after expanding build args, ARG and ENV, is a URL (`http(s)://`, `git://`, `ssh://`…), a `git@`/scp-like git remote or `github.com/…`; also an `ONBUILD ADD` where it fires in a later stage of the same Dockerfile, expanded with that stage's environment (ONBUILD itself is SW-BLD-010).",
			Why:    "The builder downloads ADD sources from the host's own network namespace, whatever `build.network` says: localhost-only services, the metadata address, the LAN. Download in a RUN step instead, which runs on the build network.",
			Relax:  allow(RemoteAdd), Phase: PhaseCheck},
		{ID: DockerfileUnchecked, Key: "dockerfile-unchecked", Title: "Dockerfile the policy cannot check",
			Blocks: "a Dockerfile built from the PR that does not parse, is not a regular file or is larger than 1 MiB, or whose `FROM`, `ADD`, `COPY --from` or `RUN --mount` uses a variable the policy cannot know (not declared by ARG or ENV before it, or set from the base image's environment); any variable in an `ADD` source (the classic builder lets the base image's ENV win over the Dockerfile's ARGs and defines no platform ARGs, so it may fetch what the policy never computed); heredocs (`RUN <<EOF`, which the classic builder does not support: it runs their lines as instructions); an `escape` directive other than the default (the builder and the policy's parser disagree on which directives count); arguments that start like the JSON form but are not valid JSON, and carriage returns that do not end a line (the builder and the parser split them differently); and every `ONBUILD` instruction, which fails closed: its trigger runs in a later build based on the image (Slipway's fallback labelling step builds FROM the PR's image) with that build's environment, not the one at its line. Whatever `policy.allow` says, the stack engine refuses a built image that carries ONBUILD triggers, and a base image that does (its triggers would run in the PR's build).",
			Why:    "The image and ADD checks are only as good as the expansion: a `$VAR` the policy cannot resolve would let the builder fetch something it never saw. It fails closed.",
			Relax:  allow(DockerfileUnchecked), Phase: PhaseCheck},
		{ID: AdditionalContexts, Key: "additional-contexts", Title: "named build contexts",
			Blocks: "`build.additional_contexts`, of any kind (local directories, `docker-image://`, `service:`, `oci-layout://`, URLs).",
			Why:    "Slipway builds with the engine's classic builder, which has no named contexts: it ignores them, so a `FROM`, `COPY --from` or `RUN --mount=from=` naming one resolves as an image, from the engine's store (another preview's image) or a registry the engine reaches from the host's network. The build would differ from what the PR's author and the policy read. Such names are judged as images in any case (SW-IMG-001, SW-IMG-002).",
			Relax:  allow(AdditionalContexts) + " (the contexts are still ignored, and the names still judged as images)", Phase: PhaseCheck},
		{ID: ProjectCaps, Key: "project-caps", Title: "project larger than the caps",
			Blocks: "a project with more services, containers (services × `scale`/`deploy.replicas`, plus jobs), networks or volumes, or more memory, CPUs or PIDs in total (each container counted at its own limit, capped by `limits:`, or at the controller's limit when it sets none), than `policy.project_caps` allows (defaults: 50 services, 100 containers, 20 networks, 20 volumes, 100g memory, 100 CPUs, 51200 PIDs: the default per-container limits times 100).",
			Why:    "Per-service caps (SW-RES-006) still let one PR start 150 services × 10 replicas, or 100 networks that exhaust the engine's address pools, on a host every preview shares.",
			Relax:  "`policy.project_caps: {containers: 200}` (globally or in `repos[].policy`), or " + allow(ProjectCaps), Phase: PhaseCheck},
		{ID: IPv6Network, Key: "ipv6-network", Title: "IPv6 network",
			Blocks: "`enable_ipv6: true` on a network.",
			Why:    "Slipway's firewall rules for preview networks are IPv4 only: over IPv6 a preview would reach the host and its network unfiltered. The stack engine also refuses it at up-time while the firewall is on; the policy says so before anything is built.",
			Relax:  allow(IPv6Network) + " (with `firewall: off` only)", Phase: PhaseCheck},
		{ID: ReservedName, Key: "reserved-name", Title: "a name Slipway itself resolves",
			Blocks: "a service name, network alias, `container_name` or `links` alias equal (case-insensitively) to a reserved single-label name: `localhost`, `slipway`, `docker`, `metadata`, `ip6-localhost`, `ip6-loopback`, every single-label host the controller's configuration makes it dial (its GitHub API, its ACME CA) and `policy.reserved_names`.",
			Why:    "Docker's resolver answers a network's names before real DNS for every container on it, Slipway's own among them when it runs in a container on a preview network: a service called like a host the controller dials would receive its traffic (and its credentials).",
			Relax:  "`policy.reserved_names: [vault]` adds names; " + allow(ReservedName) + " relaxes", Phase: PhaseCheck},
	}
}

// RuleByID returns the rule with the given ID or key (case-insensitive),
// retired rules included.
func RuleByID(idOrKey string) (Rule, bool) {
	for _, r := range append(Rules(), RetiredRules()...) {
		if strings.EqualFold(r.ID, idOrKey) || strings.EqualFold(r.Key, idOrKey) {
			return r, true
		}
	}
	return Rule{}, false
}

// MarkdownTable renders the rule table as docs/security.md shows it.
func MarkdownTable() string {
	var b strings.Builder
	b.WriteString("| ID | Key | Rejects | Why | Operator relaxes with | References |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, r := range Rules() {
		title := "**" + cell(r.Title) + "**"
		if r.Phase == PhasePreLoad {
			title += " *(pre-load)*"
		} else if r.Phase == PhaseBoth {
			title += " *(pre-load and check)*"
		}
		refs := r.Refs
		if refs == "" {
			refs = "—"
		}
		fmt.Fprintf(&b, "| %s | `%s` | %s: %s | %s | %s | %s |\n",
			r.ID, r.Key, title, cell(r.Blocks), cell(r.Why), cell(r.Relax), cell(refs))
	}
	b.WriteString("\nRetired rules reject nothing any more; `policy.allow` still accepts their IDs and keys, which relax nothing.\n\n")
	b.WriteString("| ID | Key | Rejected | Now |\n")
	b.WriteString("|---|---|---|---|\n")
	for _, r := range RetiredRules() {
		fmt.Fprintf(&b, "| %s | `%s` | **%s**: %s | %s %s |\n", r.ID, r.Key, cell(r.Title), cell(r.Blocks), cell(r.Retired), cell(r.Why))
	}
	return b.String()
}
