package policy

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/slipwayhq/slipway/config"
)

// Options relax the policy for one repository. They come from the operator's
// slipway.yaml (config.Policy), never from the PR. The zero value enforces
// every rule.
type Options struct {
	// Allow lists rule IDs (or keys) that are not enforced.
	Allow []string
	// CapAdd lists capabilities a compose file may add beyond BaseCapabilities.
	CapAdd []string
	// Sysctls lists sysctl names a compose file may set beyond the safe set;
	// a trailing "*" matches a prefix ("net.ipv4.tcp_*").
	Sysctls []string
	// ExternalNetworks lists external networks a compose file may join.
	ExternalNetworks []string
	// ExternalVolumes lists external volumes a compose file may mount.
	ExternalVolumes []string
	// AllowedRegistries lists registries on internal addresses that images
	// may come from (SW-IMG-002): host:port, or host for every port.
	AllowedRegistries []string
	// OwnRegistry is the registry Slipway pushes previews' images to (swarm
	// engine): its images are judged as the local store's are (SW-IMG-001),
	// so a pull request cannot run another preview's build by name.
	OwnRegistry string
	// ReservedNames lists single-label names that no service, alias or
	// container_name may take (SW-NET-009), besides BuiltinReservedNames:
	// the operator's policy.reserved_names and the hosts the controller
	// dials, which config.Controller.PolicyFor adds.
	ReservedNames []string
	// ProjectCaps bound the project as a whole (SW-RES-007); zero keys
	// take config.DefaultProjectCaps.
	ProjectCaps config.ProjectCaps
	// ContainerLimits are the per-container limits the controller applies
	// (config.Limits after repos[].limits): SW-RES-007 counts a container
	// that sets no limit, or a higher one, at these. Zero means
	// config.Defaults().Limits.
	ContainerLimits config.Limits
}

// FromConfig returns the options of an operator's policy section.
func FromConfig(p config.Policy) Options {
	return Options{
		Allow:             slices.Clone(p.Allow),
		CapAdd:            slices.Clone(p.CapAdd),
		Sysctls:           slices.Clone(p.Sysctls),
		ExternalNetworks:  slices.Clone(p.ExternalNetworks),
		ExternalVolumes:   slices.Clone(p.ExternalVolumes),
		AllowedRegistries: slices.Clone(p.AllowedRegistries),
		ReservedNames:     slices.Clone(p.ReservedNames),
		ProjectCaps:       p.ProjectCaps,
	}
}

// Validate reports allowances that name no rule, try to relax a fixed rule,
// or allow ALL capabilities, so that a typo in slipway.yaml is an error
// rather than a silently enforced (or silently relaxed) rule.
func (o Options) Validate() error {
	var errs []error
	for _, a := range o.Allow {
		r, ok := RuleByID(a)
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("policy.allow: %q is not a rule ID (see docs/security.md)", a))
		case r.Fixed:
			errs = append(errs, fmt.Errorf("policy.allow: %s (%s) cannot be relaxed", r.ID, r.Key))
		}
	}
	for _, c := range o.CapAdd {
		switch n := normalizeCap(c); {
		case n == "ALL":
			errs = append(errs, errors.New("policy.cap_add: ALL is privileged mode; allow SW-PRIV-001 if you really mean it"))
		case n == "" || strings.ContainsAny(n, " \t*"):
			errs = append(errs, fmt.Errorf("policy.cap_add: %q is not a capability name", c))
		}
	}
	for _, s := range o.Sysctls {
		if strings.TrimSpace(s) == "" || s == "*" {
			errs = append(errs, fmt.Errorf("policy.sysctls: %q would allow every sysctl; allow SW-PRIV-006 instead", s))
		}
	}
	for _, r := range o.AllowedRegistries {
		if err := validRegistry(r); err != nil {
			errs = append(errs, fmt.Errorf("policy.allowed_registries: %q: %w", r, err))
		}
	}
	for _, n := range o.ReservedNames {
		if !isDNSLabel(strings.ToLower(strings.TrimSpace(n))) {
			errs = append(errs, fmt.Errorf("policy.reserved_names: %q is not a single DNS label", n))
		}
	}
	errs = append(errs, validCaps(o.ProjectCaps)...)
	return errors.Join(errs...)
}

// validRegistry accepts host, host:port and [ipv6]:port: what reference.Domain
// returns for an image, never a URL or a path.
func validRegistry(r string) error {
	r = strings.TrimSpace(r)
	if r == "" || strings.ContainsAny(r, "/ \t@") || strings.Contains(r, "://") {
		return errors.New("want a registry host or host:port, not a URL or image")
	}
	if _, port := splitRegistry(r); port != "" {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a port number", port)
		}
	}
	return nil
}

// validCaps reports negative caps; 0 means the default.
func validCaps(c config.ProjectCaps) []error {
	var errs []error
	neg := func(key string, bad bool) {
		if bad {
			errs = append(errs, fmt.Errorf("policy.project_caps.%s: must not be negative", key))
		}
	}
	neg("services", c.Services < 0)
	neg("containers", c.Containers < 0)
	neg("networks", c.Networks < 0)
	neg("volumes", c.Volumes < 0)
	neg("memory", c.Memory < 0)
	neg("cpus", c.CPUs < 0)
	neg("pids", c.PIDs < 0)
	return errs
}

// allowSet resolves Allow to rule IDs. Fixed rules are never in it.
func (o Options) allowSet() map[string]bool {
	set := map[string]bool{}
	for _, a := range o.Allow {
		if r, ok := RuleByID(a); ok && !r.Fixed {
			set[r.ID] = true
		}
	}
	return set
}

// BaseCapabilities returns the capabilities a compose file may cap_add
// without an operator allowance: Docker's default set minus NET_RAW (which
// allows ARP and DNS spoofing on the bridge other services share). The
// container hardening keeps at most these plus policy.cap_add.
func BaseCapabilities() []string {
	return []string{
		"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD",
		"NET_BIND_SERVICE", "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
	}
}

// SafeSysctls returns the sysctls any compose file may set: the set
// Kubernetes considers safe (namespaced, and unable to affect other
// containers or the host).
func SafeSysctls() []string {
	return []string{
		"kernel.shm_rmid_forced",
		"net.ipv4.ip_local_port_range",
		"net.ipv4.ip_local_reserved_ports",
		"net.ipv4.ip_unprivileged_port_start",
		"net.ipv4.ping_group_range",
		"net.ipv4.tcp_fin_timeout",
		"net.ipv4.tcp_keepalive_intvl",
		"net.ipv4.tcp_keepalive_probes",
		"net.ipv4.tcp_keepalive_time",
		"net.ipv4.tcp_syncookies",
	}
}

// normalizeCap turns "cap_sys_admin" into "SYS_ADMIN".
func normalizeCap(c string) string {
	c = strings.ToUpper(strings.TrimSpace(c))
	return strings.TrimPrefix(c, "CAP_")
}

func (o Options) capAllowed(c string) bool {
	n := normalizeCap(c)
	if n == "ALL" {
		return false
	}
	if slices.Contains(BaseCapabilities(), n) {
		return true
	}
	for _, a := range o.CapAdd {
		if normalizeCap(a) == n {
			return true
		}
	}
	return false
}

// normalizeSysctl turns "net/ipv4/ip_forward" into "net.ipv4.ip_forward".
func normalizeSysctl(s string) string {
	return strings.ReplaceAll(strings.TrimSpace(s), "/", ".")
}

func (o Options) sysctlAllowed(name string) bool {
	n := normalizeSysctl(name)
	if slices.Contains(SafeSysctls(), n) {
		return true
	}
	for _, a := range o.Sysctls {
		a = normalizeSysctl(a)
		if prefix, ok := strings.CutSuffix(a, "*"); ok && prefix != "" {
			if strings.HasPrefix(n, prefix) {
				return true
			}
		} else if a == n {
			return true
		}
	}
	return false
}
