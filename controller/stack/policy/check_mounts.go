package policy

import (
	"cmp"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// mounts checks a service's volumes (short syntax arrives here parsed).
func (c *checker) mounts(sc scope, vols []types.ServiceVolumeConfig) {
	for i, v := range vols {
		field := fmt.Sprintf("volumes[%d]", i)
		switch v.Type {
		case types.VolumeTypeBind, types.VolumeTypeNamedPipe:
			c.bind(sc, field, v)
		case types.VolumeTypeVolume:
			if v.Volume != nil {
				c.labels(sc, field+".volume.labels", v.Volume.Labels)
				c.subpath(sc, field+".volume.subpath", v.Volume.Subpath)
			}
		case types.VolumeTypeImage:
			if v.Image != nil {
				c.subpath(sc, field+".image.subpath", v.Image.SubPath)
			}
		case types.VolumeTypeCluster:
			c.add(sc, VolumeDriver, field+".type", v.Type, "cluster (CSI) volumes are provided by plugins outside the project")
		}
	}
}

// bind checks one bind mount: its source must be inside the checkout, and
// never the engine socket or a system path; no shared propagation.
func (c *checker) bind(sc scope, field string, v types.ServiceVolumeConfig) {
	if v.Bind != nil {
		switch v.Bind.Propagation {
		case types.PropagationShared, types.PropagationRShared, types.PropagationSlave, types.PropagationRSlave:
			c.add(sc, BindPropagation, field+".bind.propagation", v.Bind.Propagation,
				"shared propagation carries mounts between the container and the host")
		}
	}
	if v.Source == "" {
		return
	}
	hp := resolveHostPath(c.root, c.given, v.Source)
	shown := c.display(v.Source)
	if hp.inside {
		c.refs = append(c.refs, hostRef{sc: sc, field: field + ".source", value: shown, real: hp.real, writable: !v.ReadOnly})
		return
	}
	written := filepath.Clean(v.Source)
	switch {
	case isEngineSocket(hp.real) || isEngineSocket(written):
		c.add(sc, EngineSocket, field+".source", shown,
			"the container engine socket is root on the host; the source "+hp.describe(v.Source))
	case isHostSystemPath(hp.real) || isHostSystemPath(written):
		c.add(sc, HostSystemPath, field+".source", shown,
			"host system directory; the source "+hp.describe(v.Source))
	default:
		c.add(sc, BindOutside, field+".source", shown,
			"bind mounts may only use files of the checkout; the source "+hp.describe(v.Source))
	}
}

// subpath checks the path of a volume (or image) that a mount takes
// instead of its root.
func (c *checker) subpath(sc scope, field, sub string) {
	if problem := subpathProblem(sub); problem != "" {
		c.add(sc, VolumeSubpath, field, sub, problem+
			": the engine mounts this path of the volume, and one leaving it reaches other volumes and the engine's data under /var/lib/docker")
	}
}

// subpathProblem says what is wrong with a volume subpath, or "" when it
// names a path inside the volume as written. Symlinks inside the volume are
// the engine's to refuse: its content is made at run time, and the engine
// joins the subpath with its own scoped resolution (safepath).
func subpathProblem(sub string) string {
	switch {
	case sub == "":
		return ""
	case strings.HasPrefix(sub, "/"):
		return "the subpath is absolute"
	case slices.Contains(strings.FieldsFunc(sub, isPathSeparator), ".."):
		return "the subpath climbs with .."
	}
	return ""
}

// isPathSeparator splits on both separators: a name with a backslash is
// harmless on Linux, and refused as a climb where the engine splits on it.
func isPathSeparator(r rune) bool { return r == '/' || r == '\\' }

// volumesFrom accepts only services of the project.
func (c *checker) volumesFrom(sc scope, list []string) {
	for i, vf := range list {
		field := fmt.Sprintf("volumes_from[%d]", i)
		if strings.HasPrefix(vf, types.ContainerPrefix) {
			c.add(sc, VolumesFrom, field, vf, "mounts the volumes of a container outside the project")
			continue
		}
		name := strings.TrimPrefix(vf, types.ServicePrefix)
		if base, mode, ok := strings.Cut(name, ":"); ok && (mode == "ro" || mode == "rw") {
			name = base
		}
		if !c.inProject(name) {
			c.add(sc, VolumesFrom, field, vf, "mounts the volumes of something that is not a service of the project")
		}
	}
}

// volume checks a top-level volume.
func (c *checker) volume(key string, v types.VolumeConfig) {
	sc := scope{prefix: "volumes." + key + "."}
	if v.External {
		name := cmp.Or(v.Name, key)
		if !slices.Contains(c.opts.ExternalVolumes, name) {
			c.add(sc, ExternalVolume, "external", name,
				"external volumes exist outside the project (other previews' data); not in the operator's policy.external_volumes")
		}
	} else if v.Name != "" && v.Name != c.project.Name+"_"+key {
		c.add(sc, VolumeName, "name", v.Name,
			fmt.Sprintf("the engine would use this name verbatim instead of %s_%s, reaching volumes outside the project", c.project.Name, key))
	}
	if v.Driver != "" && v.Driver != "local" {
		c.add(sc, VolumeDriver, "driver", v.Driver, "volume plugins run with the engine's privileges and reach storage outside the host")
	}
	c.volumeDriverOpts(sc, v.DriverOpts)
	c.labels(sc, "labels", v.Labels)
}

// volumeDriverOpts accepts no options, a tmpfs, or a bind of a directory
// inside the checkout; anything else is a mount(2) the engine would do as
// root. Values are read as the engine reads them, untrimmed: it binds the
// device as written, trailing space included.
func (c *checker) volumeDriverOpts(sc scope, opts map[string]string) {
	if len(opts) == 0 {
		return
	}
	typ, device, o := opts["type"], opts["device"], opts["o"]
	var remote []string
	for _, tok := range strings.Split(o, ",") {
		if tok = strings.TrimSpace(tok); strings.HasPrefix(tok, "addr=") {
			remote = append(remote, tok)
		}
	}
	switch {
	case len(remote) > 0:
		c.add(sc, VolumeHostMount, "driver_opts.o", o,
			"mounts a network filesystem from the host's network")
	case mentionsBind(o):
		ro, ok := bindVolumeOpts(o)
		if !ok {
			c.add(sc, VolumeHostMount, "driver_opts.o", o,
				"the engine reads o token by token exactly as written (no trimming, no case folding) and the last of ro and rw wins, so a spelling like this one can mount read-write what looks read-only; write o as bind or rbind, optionally followed by ,ro or ,rw")
			// Go on as for a read-write bind: an operator who allows
			// SW-VOL-001 still hears of what it exposes (SW-MNT-006).
		}
		if device == "" {
			return
		}
		// compose-go resolves a relative device only for an explicit
		// driver: local and o: bind; the engine would resolve what is
		// left from its own working directory, /.
		if !filepath.IsAbs(device) {
			device = "/" + device
		}
		hp := resolveHostPath(c.root, c.given, device)
		if !hp.inside {
			c.add(sc, VolumeHostMount, "driver_opts.device", device,
				"a bind volume may only use a directory of the checkout; the device "+hp.describe(device))
			return
		}
		c.refs = append(c.refs, hostRef{sc: sc, field: "driver_opts.device", value: device, real: hp.real, writable: !ro})
	case typ == "tmpfs" && (device == "" || device == "tmpfs"):
	default:
		c.add(sc, VolumeHostMount, "driver_opts", formatOpts(opts),
			"mounts a host device or filesystem through the engine")
	}
}

// mentionsBind reports whether any token of a volume's o option, however
// spaced or cased, says bind or rbind: such a volume is held to
// bindVolumeOpts. (One the engine takes for a bind always does.)
func mentionsBind(o string) bool {
	for _, tok := range strings.Split(o, ",") {
		if t := strings.ToLower(strings.TrimSpace(tok)); t == "bind" || t == "rbind" {
			return true
		}
	}
	return false
}

// bindVolumeOpts reads the o option of a bind volume, accepting only the
// canonical spellings. The engine's local driver hands o to moby/sys/mount,
// which splits it on "," and matches each token exactly against its flag
// table, "rw" clearing the read-only flag "ro" set (the last one wins) and
// any other token going to the kernel as data, which a bind ignores: so
// "bind,ro,rw" and "bind, ro" are read-write. Rather than mirror that
// parser, the policy accepts only spellings no reading can dispute. Pure.
func bindVolumeOpts(o string) (readOnly, ok bool) {
	switch o {
	case "bind", "rbind", "bind,rw", "rbind,rw":
		return false, true
	case "bind,ro", "rbind,ro":
		return true, true
	}
	return false, false
}

func formatOpts(opts map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		parts = append(parts, k+"="+opts[k])
	}
	return strings.Join(parts, " ")
}

// network checks a top-level network.
func (c *checker) network(key string, n types.NetworkConfig) {
	sc := scope{prefix: "networks." + key + "."}
	if n.External {
		name := cmp.Or(n.Name, key)
		if !slices.Contains(c.opts.ExternalNetworks, name) {
			c.add(sc, ExternalNetwork, "external", name,
				"external networks reach containers outside the project; not in the operator's policy.external_networks")
		}
		c.labels(sc, "labels", n.Labels)
		return
	}
	if n.Name != "" && n.Name != c.project.Name+"_"+key {
		c.add(sc, NetworkName, "name", n.Name,
			fmt.Sprintf("the engine would use this name verbatim instead of %s_%s, joining networks outside the project", c.project.Name, key))
	}
	if d := n.Driver; d != "" && d != "bridge" {
		c.add(sc, NetworkDriver, "driver", d, "only bridge networks keep an environment on its own isolated network")
	}
	for _, k := range slices.Sorted(maps.Keys(n.DriverOpts)) {
		switch k {
		case "com.docker.network.driver.mtu", "com.docker.network.bridge.enable_icc",
			"com.docker.network.bridge.enable_ip_masquerade", "com.docker.network.container_iface_prefix":
		default:
			c.add(sc, NetworkDriverOpts, "driver_opts."+k, n.DriverOpts[k],
				"network driver options can attach to host bridges or open the network to the host's LAN")
		}
	}
	if d := n.Ipam.Driver; d != "" && d != "default" {
		c.add(sc, StaticAddressing, "ipam.driver", d, "IPAM plugins choose addresses outside the engine's pools")
	}
	for i, pool := range n.Ipam.Config {
		if pool == nil {
			continue
		}
		c.add(sc, StaticAddressing, fmt.Sprintf("ipam.config[%d]", i), cmp.Or(pool.Subnet, pool.IPRange, pool.Gateway),
			"a fixed subnet can shadow the host's own routes; let the engine allocate one")
	}
	if len(n.Ipam.Options) > 0 {
		c.add(sc, StaticAddressing, "ipam.options", formatOpts(n.Ipam.Options), "IPAM options change address allocation")
	}
	c.labels(sc, "labels", n.Labels)
}

// fileObject checks a top-level secret or config.
func (c *checker) fileObject(kind, key string, o types.FileObjectConfig) {
	sc := scope{prefix: kind + "." + key + "."}
	if o.File != "" {
		hp := resolveHostPath(c.root, c.given, o.File)
		if hp.inside {
			c.refs = append(c.refs, hostRef{sc: sc, field: "file", value: c.display(o.File), real: hp.real})
		} else {
			c.add(sc, ObjectFileOutside, "file", c.display(o.File),
				"the file would be mounted into containers (or handed to builds), and it "+hp.describe(o.File))
		}
	}
	if o.Environment != "" {
		c.add(sc, ObjectFromEnvironment, "environment", o.Environment,
			"reads a variable of the loading environment; controller secrets are injected by name through .slipway.yml")
	}
	c.labels(sc, "labels", o.Labels)
}

// checkNested reports host paths inside the checkout that lie inside a
// directory some container mounts read-write (SW-MNT-006).
func (c *checker) checkNested() {
	for _, r := range c.refs {
		for _, w := range c.refs {
			if !w.writable || !strictlyWithin(w.real, r.real) {
				continue
			}
			owner := w.sc.prefix + w.field
			if w.sc.service != "" {
				owner = fmt.Sprintf("service %q %s", w.sc.service, owner)
			}
			c.add(r.sc, BindUnderWritable, r.field, r.value,
				fmt.Sprintf("lies inside %s, which %s mounts read-write: a container could swap it for a symlink before the engine follows it; mount narrower directories or mark that one :ro",
					w.value, owner))
			break
		}
	}
}
