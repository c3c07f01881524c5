package policy

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
)

// BuiltinReservedNames returns the single-label names no service may take
// whatever the configuration: names Slipway's own container, or the
// tools around it, resolve on a network it shares with previews (the
// engine's TCP endpoint is commonly "docker", the cloud metadata service
// "metadata" through the search domain).
func BuiltinReservedNames() []string {
	return []string{"docker", "ip6-localhost", "ip6-loopback", "localhost", "metadata", "slipway"}
}

// reservedSet is every name SW-NET-009 protects, lower-cased.
func (o Options) reservedSet() map[string]bool {
	set := map[string]bool{}
	for _, n := range append(BuiltinReservedNames(), o.ReservedNames...) {
		if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
			set[n] = true
		}
	}
	return set
}

// reservedNames checks the DNS names a container gets on the project's
// networks: its service name, container_name, network aliases and link
// aliases (name, containerName and links are empty for jobs).
func (c *checker) reservedNames(sc scope, name, containerName string, s *types.ContainerSpec, links []string) {
	reserved := c.opts.reservedSet()
	check := func(field, value, what string) {
		if reserved[strings.ToLower(value)] {
			c.add(sc, ReservedName, field, value,
				what+" becomes a DNS name on the project's networks, and this one is reserved: Slipway's own container may resolve it there")
		}
	}
	if name != "" {
		check("name", name, "a service name")
	}
	check("container_name", containerName, "container_name")
	for _, net := range slices.Sorted(maps.Keys(s.Networks)) {
		if n := s.Networks[net]; n != nil {
			for i, a := range n.Aliases {
				check(fmt.Sprintf("networks.%s.aliases[%d]", net, i), a, "a network alias")
			}
		}
	}
	for i, l := range links {
		if _, alias, ok := strings.Cut(l, ":"); ok {
			check(fmt.Sprintf("links[%d]", i), alias, "a link alias")
		}
	}
}

// networkIPv6 refuses IPv6 on a network: the firewall Slipway puts around
// preview networks is IPv4 only.
func (c *checker) networkIPv6(key string, n types.NetworkConfig) {
	if bool(n.External) || n.EnableIPv6 == nil || !*n.EnableIPv6 {
		return
	}
	c.add(scope{prefix: "networks." + key + "."}, IPv6Network, "enable_ipv6", "true",
		"Slipway's firewall rules for preview networks are IPv4 only: over IPv6 the preview would reach the host and its network unfiltered")
}

// sysctlKey is what a sysctl name is made of.
var sysctlKey = regexp.MustCompile(`^[a-z0-9_-]+(\.[a-z0-9_-]+)*$`)

// malformedSysctl says what is wrong with a sysctl key that no allowlist
// may match, or "": the runtime turns the key into a path under /proc/sys,
// so "/" and ".." would walk out of the namespaced subtree the allowlist
// prefix names.
func malformedSysctl(k string) string {
	switch {
	case strings.Contains(k, "/"):
		return "a sysctl key with / is a path under /proc/sys, which could climb out of the subtree an allowlist prefix names; write it with dots"
	case !sysctlKey.MatchString(k):
		return "not a well-formed sysctl key: only [a-z0-9_-] segments separated by single dots"
	}
	return ""
}

// isDNSLabel reports whether s is one DNS label (RFC 1123).
func isDNSLabel(s string) bool {
	return dnsLabel.MatchString(s)
}

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
