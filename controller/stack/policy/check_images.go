package policy

import (
	"fmt"
	"net/netip"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/distribution/reference"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Image references name what the engine runs or builds on. Every preview
// shares one engine: its image store holds the images Slipway built for
// other pull requests (some of them trusted, built with secrets), and the
// engine pulls from the host's own network namespace, where the loopback
// and private addresses are the host's and its LAN's, past every firewall
// rule that guards the preview networks. SW-IMG-001 and SW-IMG-002 judge
// each reference the PR controls: the image of a service, job or pre_start
// hook that is not built, docker-image:// build contexts, registry
// cache_from, and in Dockerfiles built from the PR, FROM, COPY --from,
// RUN --mount=from= and the syntax directive.

// imageFinding is one problem with an image reference.
type imageFinding struct {
	rule string
	msg  string
}

// imageJudge holds what judging a reference needs to know of the project
// and the operator's configuration.
type imageJudge struct {
	// project is the project's name, <owner>-<repo>-pr-<N>.
	project string
	// services are the project's service names: <project>-<service> is an
	// image the project itself builds.
	services []string
	// allowedRegistries are the operator's policy.allowed_registries.
	allowedRegistries []string
	// ownRegistry is where Slipway pushes what it builds (swarm engine).
	ownRegistry string
}

// imageJudge returns the judge of this project's image references.
func (c *checker) imageJudge() imageJudge {
	j := imageJudge{project: c.project.Name, allowedRegistries: c.opts.AllowedRegistries, ownRegistry: c.opts.OwnRegistry}
	for name := range c.project.Services {
		j.services = append(j.services, name)
	}
	for name := range c.project.DisabledServices {
		j.services = append(j.services, name)
	}
	return j
}

// image checks an image reference written in the compose file.
func (c *checker) image(sc scope, field, ref string) {
	for _, f := range c.imageJudge().judge(ref) {
		c.add(sc, f.rule, field, ref, f.msg)
	}
}

// serviceImage checks the image of a service or job that is not built
// (a built one is tagged <project>-<service>:<sha12> whatever image says).
func (c *checker) serviceImage(sc scope, s *types.ContainerSpec, w *types.WorkloadSpec) {
	if w.Build == nil && s.Image != "" {
		c.image(sc, "image", s.Image)
	}
}

// judge returns every problem with the image reference ref; none for a
// reference that names a public image.
func (j imageJudge) judge(ref string) []imageFinding {
	ref = strings.TrimSpace(ref)
	if ref == "" {
		return nil
	}
	if isImageID(ref) {
		return []imageFinding{{ForeignImage,
			"an image ID (or ID prefix) picks any image in the engine's store, other previews' images among them; name the image instead"}}
	}
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return []imageFinding{{ForeignImage,
			fmt.Sprintf("not an image reference the policy can check (%v)", err)}}
	}
	var out []imageFinding
	domain := reference.Domain(named)
	internal := internalRegistry(domain)
	if internal != "" && !registryAllowed(domain, j.allowedRegistries) {
		out = append(out, imageFinding{PrivateRegistry,
			fmt.Sprintf("the engine pulls from the host's own network, and registry %s %s; not in the operator's policy.allowed_registries", domain, internal)})
	}
	if j.ownRegistry != "" && strings.EqualFold(domain, j.ownRegistry) {
		// Slipway's own registry holds what it built for previews, and
		// may hold the operator's private images: a pull request names
		// only its own builds there.
		if p := reference.Path(named); !j.ownImage(p) {
			out = append(out, imageFinding{ForeignImage,
				fmt.Sprintf("%s is Slipway's registry: a pull request may name only this project's own images there (%s-<service>), not %s", domain, j.project, p)})
		}
		return out
	}
	if !localName(named) && internal == "" {
		return out // a public registry's image is not one Slipway built
	}
	if other := j.otherProject(path.Base(reference.Path(named))); other != "" {
		out = append(out, imageFinding{ForeignImage,
			fmt.Sprintf("named as Slipway names the images it builds for another preview (%s); use public images, or this project's own (%s-<service>)", other, j.project)})
	}
	return out
}

// localName reports whether named is what the engine's local store calls
// an image with a one-component name, as Slipway tags what it builds
// (docker.io/library/<name>).
func localName(named reference.Named) bool {
	name, ok := strings.CutPrefix(reference.Path(named), "library/")
	return ok && reference.Domain(named) == "docker.io" && !strings.Contains(name, "/")
}

// hexID matches what the engine accepts as an image ID or ID prefix.
var hexID = regexp.MustCompile(`^(sha256:)?[0-9a-f]{1,64}$`)

// isImageID reports whether the engine would resolve ref by image ID: a
// digest ("sha256:…"), or a bare hexadecimal word, which the engine looks
// up as a tag first and then as an ID prefix of any local image.
func isImageID(ref string) bool {
	return hexID.MatchString(ref)
}

// slipwayImage matches the names of images Slipway builds:
// <owner>-<repo>-pr-<N>-<service> (contract.ImageName).
var slipwayImage = regexp.MustCompile(`^[a-z0-9._-]*-pr-[0-9]+-[a-z0-9._-]+$`)

// otherProject returns name when it is named the way Slipway names a
// built image and is not one of this project's own images. It is asked
// about names in the local store and on internal registries (where a
// swarm engine's images would be pushed), not about public registries.
func (j imageJudge) otherProject(name string) string {
	if !slipwayImage.MatchString(name) {
		return ""
	}
	for _, s := range j.services {
		if name == j.project+"-"+contract.Sanitize(s) {
			return ""
		}
	}
	return name
}

// ownImage reports whether a repository path is one of the project's own
// built images (<project>-<service>).
func (j imageJudge) ownImage(repoPath string) bool {
	for _, s := range j.services {
		if repoPath == j.project+"-"+contract.Sanitize(s) {
			return true
		}
	}
	return false
}

// registryAllowed reports whether the operator allows registry domain
// (host[:port]); an entry without a port allows every port of its host.
func registryAllowed(domain string, allowed []string) bool {
	domain = strings.ToLower(domain)
	host, _ := splitRegistry(domain)
	for _, a := range allowed {
		a = strings.ToLower(strings.TrimSpace(a))
		if a == domain {
			return true
		}
		if ah, port := splitRegistry(a); port == "" && ah == host {
			return true
		}
	}
	return false
}

// splitRegistry splits a registry domain into host and port; an IPv6
// host loses its brackets.
func splitRegistry(domain string) (host, port string) {
	if rest, ok := strings.CutPrefix(domain, "["); ok {
		if i := strings.Index(rest, "]"); i >= 0 {
			return rest[:i], strings.TrimPrefix(rest[i+1:], ":")
		}
		return rest, ""
	}
	if i := strings.LastIndex(domain, ":"); i >= 0 {
		return domain[:i], domain[i+1:]
	}
	return domain, ""
}

// internalSuffixes are domains that only resolve inside a host or a site
// (RFC 6761 localhost, RFC 6762 local, RFC 8375 home.arpa, ICANN's
// internal, and the ones resolvers and routers commonly serve).
var internalSuffixes = []string{"localhost", "local", "internal", "home.arpa", "localdomain", "lan"}

// embeddedIPv4 finds an IPv4 address written into a host name, as the
// wildcard DNS services that resolve 10.0.0.5.nip.io or 10-0-0-5.sslip.io
// to the address do.
var embeddedIPv4 = regexp.MustCompile(`(?:^|[.-])(\d{1,3})[.-](\d{1,3})[.-](\d{1,3})[.-](\d{1,3})(?:[.-]|$)`)

// internalRegistry says why a registry domain reaches the host or its
// network rather than the internet, or "" when it does not: an IP literal
// in any notation the resolver accepts in a loopback, link-local, private
// or otherwise non-public range; localhost and site-only domains; a
// single-label name (resolved through the host's search domains); a name
// that embeds such an address.
func internalRegistry(domain string) string {
	host, _ := splitRegistry(strings.ToLower(domain))
	host = strings.TrimSuffix(host, ".")
	if a, ok := parseHostIP(host); ok {
		if why := internalAddr(a); why != "" {
			return "is " + why
		}
		return ""
	}
	for _, s := range internalSuffixes {
		if host == s || strings.HasSuffix(host, "."+s) {
			return "is " + s + " or under ." + s + ", which resolves only inside a host or site"
		}
	}
	if !strings.Contains(host, ".") {
		return "is a single-label name, resolved through the host's own search domains"
	}
	for _, m := range embeddedIPv4.FindAllStringSubmatch(host, -1) {
		if a, err := netip.ParseAddr(strings.Join(m[1:], ".")); err == nil {
			if why := internalAddr(a); why != "" {
				return "embeds " + a.String() + ", which " + why
			}
		}
	}
	return ""
}

// parseHostIP parses an IP literal the way the host's resolver would:
// IPv6 (zones and IPv4-mapped forms included) and IPv4 in every inet_aton
// notation (127.1, 0x7f.0.0.1, 0177.0.0.1, 2130706433).
func parseHostIP(host string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(host); err == nil {
		return a.Unmap(), true
	}
	return parseInetAton(host)
}

// parseInetAton parses the IPv4 notations of inet_aton(3): one to four
// parts, each decimal, octal (leading 0) or hexadecimal (0x), the last
// filling the remaining bytes.
func parseInetAton(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var vals []uint64
	for _, p := range parts {
		v, err := strconv.ParseUint(p, 0, 32)
		if err != nil || p == "" || strings.HasPrefix(p, "+") || strings.Contains(p, "_") || strings.HasPrefix(p, "0o") || strings.HasPrefix(p, "0b") {
			return netip.Addr{}, false
		}
		vals = append(vals, v)
	}
	var n uint64
	for i, v := range vals[:len(vals)-1] {
		if v > 0xff {
			return netip.Addr{}, false
		}
		n |= v << (8 * (3 - i))
	}
	last := vals[len(vals)-1]
	if rest := 4 - (len(vals) - 1); last >= 1<<(8*rest) {
		return netip.Addr{}, false
	}
	n |= last
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}), true
}

// nonPublic are ranges beyond what netip classifies that no registry on
// the internet has: "this network", CGNAT (cloud VPCs, VPNs), IETF
// protocol assignments, benchmarking, reserved, site-local IPv6.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("fec0::/10"),
}

// internalAddr says which non-public range a reaches, or "".
func internalAddr(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	switch {
	case a.IsLoopback():
		return "a loopback address"
	case a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast():
		return "a link-local address (the cloud metadata service lives there)"
	case a.IsPrivate():
		return "a private address"
	case a.IsUnspecified():
		return "the unspecified address (the host itself)"
	case a.IsMulticast(), a.IsInterfaceLocalMulticast():
		return "a multicast address"
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return "in " + p.String() + ", which is not public"
		}
	}
	// IPv4 embedded in IPv6 (IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96).
	if a.Is6() {
		b := a.As16()
		if prefix := netip.PrefixFrom(a, 96).Masked().Addr(); prefix == netip.IPv6Unspecified() || prefix == netip.MustParseAddr("64:ff9b::") {
			if why := internalAddr(netip.AddrFrom4([4]byte(b[12:]))); why != "" {
				return "an IPv6 address embedding " + why
			}
		}
	}
	return ""
}
