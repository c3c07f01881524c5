// Package contract holds the names, labels, hosts and environment variables
// that other parts of Slipway and users' scripts rely on (design.md,
// "Contracts"). The stack engine writes them, the proxy and the controller
// read them back from Docker; keeping them in one leaf package means neither
// side has to import the other.
package contract

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"text/template"
)

// Labels docker compose sets; ours carry the same values so that
// `docker compose -p <project> ps|logs|down` see our environments.
const (
	LabelProject     = "com.docker.compose.project"
	LabelService     = "com.docker.compose.service"
	LabelNumber      = "com.docker.compose.container-number"
	LabelOneoff      = "com.docker.compose.oneoff"
	LabelConfigHash  = "com.docker.compose.config-hash"
	LabelWorkingDir  = "com.docker.compose.project.working_dir"
	LabelConfigFiles = "com.docker.compose.project.config_files"
	LabelVersion     = "com.docker.compose.version"
	LabelDependsOn   = "com.docker.compose.depends_on"
	LabelNetwork     = "com.docker.compose.network"
	LabelVolume      = "com.docker.compose.volume"
	LabelImage       = "com.docker.compose.image"

	// ComposeLabelPrefix is reserved: a PR's compose file may not set it.
	ComposeLabelPrefix = "com.docker.compose."
)

// Slipway's own labels.
const (
	LabelManaged   = "dev.slipway.managed"
	LabelRepo      = "dev.slipway.repo"
	LabelPR        = "dev.slipway.pr"
	LabelSHA       = "dev.slipway.sha"
	LabelRouteHost = "dev.slipway.route.host"
	LabelRoutePort = "dev.slipway.route.port"
	// LabelBuildHash marks a built image with the hash of its build inputs
	// (context digest is the SHA; dockerfile, target, args), so an unchanged
	// build is skipped.
	LabelBuildHash = "dev.slipway.build-hash"
	// LabelPrimary marks the containers of the primary exposed service.
	LabelPrimary = "dev.slipway.route.primary"
	// LabelBuilt marks containers of services built from the PR's source;
	// their SHA label is the environment's SHA.
	LabelBuilt = "dev.slipway.built"
	// LabelJob marks one-off after_deploy job containers.
	LabelJob = "dev.slipway.job"

	// SlipwayLabelPrefix is reserved: a PR's compose file may not set it.
	SlipwayLabelPrefix = "dev.slipway."

	// ManagedFilter selects every object Slipway made.
	ManagedFilter = LabelManaged + "=true"
)

// Reserved reports whether a label key is Slipway's alone: under
// com.docker.compose. or dev.slipway. A compose file may not set one, and
// an image's own value of one never reaches a container Slipway creates.
func Reserved(key string) bool {
	return strings.HasPrefix(key, ComposeLabelPrefix) || strings.HasPrefix(key, SlipwayLabelPrefix)
}

// ComposeVersion is the value we put in com.docker.compose.version.
const ComposeVersion = "2.29.0"

// Environment variables given to every service.
const (
	EnvPR   = "SLIPWAY_PR"
	EnvRepo = "SLIPWAY_REPO"
	EnvURL  = "SLIPWAY_URL"
	EnvSHA  = "SLIPWAY_SHA"
	// EnvURLPrefix + the service's EnvName is each exposed service's URL.
	EnvURLPrefix = "SLIPWAY_URL_"
)

// LocalOwner is the owner the local CLI uses without --repo.
const LocalOwner = "local"

// CookiePrefix starts the name of every cookie of Slipway's on the
// preview domain (the access gate's sessions and grants). They are
// Slipway's alone: removed from requests before a preview gets them, and
// a preview's own Set-Cookie of such a name never reaches the browser.
const CookiePrefix = "slipway_"

// ProjectName returns <owner>-<repo>-pr-<N>, lowercased, with every
// character outside [a-z0-9_-] replaced by '-'.
func ProjectName(owner, repo string, pr int) string {
	return Sanitize(fmt.Sprintf("%s-%s-pr-%d", owner, repo, pr))
}

// Sanitize lowercases s and replaces every character outside [a-z0-9_-] with '-'.
func Sanitize(s string) string {
	return mapChars(strings.ToLower(s), func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-'
	}, '-')
}

// mapChars replaces every character of s for which keep is false with repl.
func mapChars(s string, keep func(rune) bool, repl rune) string {
	return strings.Map(func(r rune) rune {
		if keep(r) {
			return r
		}
		return repl
	}, s)
}

// ContainerName is <project>-<service>-<n>, as docker compose names containers.
func ContainerName(project, service string, n int) string {
	return project + "-" + service + "-" + strconv.Itoa(n)
}

// ResourceName is <project>_<key>, as docker compose names networks and volumes.
func ResourceName(project, key string) string { return project + "_" + key }

// ImageName is <project>-<service>:<first 12 of SHA>.
func ImageName(project, service, sha string) string {
	return project + "-" + Sanitize(service) + ":" + ShortSHA(sha)
}

// ShortSHA returns the first 12 characters of sha (all of it if shorter).
func ShortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// EnvName turns a service name into an environment variable suffix: upper
// case, '-' and every other character outside [A-Z0-9_] become '_'.
func EnvName(s string) string {
	return mapChars(strings.ToUpper(s), func(r rune) bool {
		return r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_'
	}, '_')
}

// Default host templates.
const (
	PrimaryHostTemplate          = "pr-{{.Number}}.{{.Domain}}"
	ServiceHostTemplate          = "{{.Service}}-pr-{{.Number}}.{{.Domain}}"
	MultiRepoPrimaryHostTemplate = "pr-{{.Number}}-{{.Repo}}.{{.Domain}}"
	MultiRepoServiceHostTemplate = "{{.Service}}-pr-{{.Number}}-{{.Repo}}.{{.Domain}}"
	// With two configured repositories of one name under different owners.
	MultiOwnerPrimaryHostTemplate = "pr-{{.Number}}-{{.Repo}}-{{.Owner}}.{{.Domain}}"
	MultiOwnerServiceHostTemplate = "{{.Service}}-pr-{{.Number}}-{{.Repo}}-{{.Owner}}.{{.Domain}}"
	hostTemplateMaxLen            = 1024
	dnsLabelMaxLen                = 63
)

// HostData is what a host template sees.
type HostData struct {
	Number  int
	Owner   string
	Repo    string
	Service string
	Domain  string
	// Random is the pull request's unguessable label (RandomLabel), for
	// hostname: random; "" without a host key.
	Random string
}

// RandomHostTemplates are the defaults of hostname: random: the number is
// followed by an unguessable label, so a preview's host cannot be guessed
// from its number.
const (
	RandomPrimaryHostTemplate          = "pr-{{.Number}}-{{.Random}}.{{.Domain}}"
	RandomServiceHostTemplate          = "{{.Service}}-pr-{{.Number}}-{{.Random}}.{{.Domain}}"
	RandomMultiRepoPrimaryHostTemplate = "pr-{{.Number}}-{{.Repo}}-{{.Random}}.{{.Domain}}"
	RandomMultiRepoServiceHostTemplate = "{{.Service}}-pr-{{.Number}}-{{.Repo}}-{{.Random}}.{{.Domain}}"
)

// RandomLabel is the unguessable, stable label of a pull request's hosts:
// 8 characters of a keyed hash (HMAC-SHA256) of the repository (owner/name,
// case-insensitive) and number. Without the key it cannot be guessed; with
// the same key it never changes.
func RandomLabel(key []byte, repo string, pr int) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(strings.ToLower(repo) + "#" + strconv.Itoa(pr)))
	const alphabet = "abcdefghijklmnopqrstuvwxyz234567"
	sum := m.Sum(nil)
	out := make([]byte, 8)
	for i := range out {
		out[i] = alphabet[sum[i]&31]
	}
	return string(out)
}

// Host renders tmpl with d and checks that the result is a valid host name
// under d.Domain. Owner, Repo and Service are sanitized into DNS label form
// first, so "My_Repo" becomes "my-repo".
func Host(tmpl string, d HostData) (string, error) {
	if len(tmpl) > hostTemplateMaxLen {
		return "", fmt.Errorf("host template longer than %d bytes", hostTemplateMaxLen)
	}
	if d.Random == "" && strings.Contains(tmpl, ".Random") {
		return "", fmt.Errorf("host template %q uses .Random, but no host key is set (hostname: random)", tmpl)
	}
	t, err := template.New("host").Option("missingkey=error").Parse(tmpl)
	if err != nil {
		return "", fmt.Errorf("parse host template %q: %w", tmpl, err)
	}
	d.Owner = dnsLabel(d.Owner)
	d.Repo = dnsLabel(d.Repo)
	d.Service = dnsLabel(d.Service)
	d.Domain = strings.ToLower(strings.TrimSuffix(d.Domain, "."))
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return "", fmt.Errorf("render host template %q: %w", tmpl, err)
	}
	h := strings.ToLower(buf.String())
	if err := ValidHost(h); err != nil {
		return "", fmt.Errorf("host template %q: %w", tmpl, err)
	}
	if d.Domain != "" && h != d.Domain && !strings.HasSuffix(h, "."+d.Domain) {
		return "", fmt.Errorf("host %q is not under domain %q", h, d.Domain)
	}
	return h, nil
}

// dnsLabel lowercases s and turns it into a DNS label: characters outside
// [a-z0-9-] become '-', leading and trailing '-' are dropped.
func dnsLabel(s string) string {
	return strings.Trim(mapChars(strings.ToLower(s), func(r rune) bool {
		return r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-'
	}, '-'), "-")
}

// ValidHost checks that h is a lower-case DNS name: labels of [a-z0-9-],
// 1–63 characters, not starting or ending with '-'.
func ValidHost(h string) error {
	if h == "" || len(h) > 253 {
		return fmt.Errorf("host %q: empty or longer than 253 characters", h)
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > dnsLabelMaxLen {
			return fmt.Errorf("host %q: label %q empty or longer than %d characters", h, l, dnsLabelMaxLen)
		}
		if l[0] == '-' || l[len(l)-1] == '-' {
			return fmt.Errorf("host %q: label %q starts or ends with '-'", h, l)
		}
		for i := 0; i < len(l); i++ {
			ch := l[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' || ch == '-') {
				return fmt.Errorf("host %q: character %q not allowed", h, ch)
			}
		}
	}
	return nil
}

// NormalizeHost turns a request's Host header (or TLS server name) into the
// form route tables are keyed by: port dropped, lower case, trailing dot
// dropped. It returns "" for anything that cannot be a preview host
// (IP literals, non-ASCII, empty).
func NormalizeHost(h string) string {
	if strings.HasPrefix(h, "[") { // IPv6 literal
		return ""
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 {
		h = h[:i]
	}
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if ValidHost(h) != nil {
		return ""
	}
	return h
}

// HostTemplates are the host templates of one repository under one domain:
// what decides which hosts its pull requests may claim. The zero value of a
// template field means contract's single-repository default.
type HostTemplates struct {
	// Domain previews live under; "" means "localhost".
	Domain string
	// Primary renders the primary service's host.
	Primary string
	// Service renders every other exposed service's host.
	Service string
	// Key makes the .Random label of hostname: random (RandomLabel).
	Key []byte
}

// DefaultHostTemplates are the templates used when the configuration names
// none: with several repositories on one domain, templates that name the
// repository, so that two repositories' pull requests never share a host.
func DefaultHostTemplates(domain string, multiRepo bool) HostTemplates {
	if multiRepo {
		return HostTemplates{Domain: domain, Primary: MultiRepoPrimaryHostTemplate, Service: MultiRepoServiceHostTemplate}
	}
	return HostTemplates{Domain: domain, Primary: PrimaryHostTemplate, Service: ServiceHostTemplate}
}

func (t HostTemplates) withDefaults() HostTemplates {
	if t.Domain == "" {
		t.Domain = "localhost"
	}
	if t.Primary == "" {
		t.Primary = PrimaryHostTemplate
	}
	if t.Service == "" {
		t.Service = ServiceHostTemplate
	}
	return t
}

// serviceSentinel stands in for a service name when a template is rendered
// to learn where the name goes. It is a valid DNS label no real host
// contains by chance.
const serviceSentinel = "slipway0service0sentinel0x7q"

// OwnsHost reports (nil) whether host is one that the repository's
// templates give pull request pr: the primary host, or the service host of
// any service (the service name being a whole DNS label part produced the
// way Host produces it). repo is owner/name. Matching is exact on the whole
// host: no substrings, no prefixes; a host of another number, another
// repository or outside the domain is refused with the reason.
//
// The planner checks a repository's own host overrides with it, and the
// proxy checks every route label with it before serving, so a host that
// Slipway did not declare for that pull request is never served.
func (t HostTemplates) OwnsHost(host, repo string, pr int, service string) error {
	t = t.withDefaults()
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" {
		return fmt.Errorf("repository %q is not owner/name", repo)
	}
	if pr <= 0 {
		return fmt.Errorf("pull request number %d is not positive", pr)
	}
	domain := strings.ToLower(strings.TrimSuffix(t.Domain, "."))
	if host == domain {
		return fmt.Errorf("host %q is the domain itself", host)
	}
	d := HostData{Number: pr, Owner: owner, Repo: name, Service: service, Domain: domain}
	if len(t.Key) > 0 {
		d.Random = RandomLabel(t.Key, repo, pr)
	}
	primary, err := Host(t.Primary, d)
	if err != nil {
		return fmt.Errorf("primary host template: %w", err)
	}
	if host == primary {
		return nil
	}
	if service != "" {
		if h, err := Host(t.Service, d); err == nil && host == h {
			return nil
		}
	}
	// Any service name: the template rendered around a sentinel name gives
	// the fixed prefix and suffix; what lies between must be one name as
	// Host would have produced it.
	d.Service = serviceSentinel
	if withSentinel, err := Host(t.Service, d); err == nil && strings.Count(withSentinel, serviceSentinel) == 1 {
		prefix, suffix, _ := strings.Cut(withSentinel, serviceSentinel)
		if len(host) > len(prefix)+len(suffix) && strings.HasPrefix(host, prefix) && strings.HasSuffix(host, suffix) {
			mid := host[len(prefix) : len(host)-len(suffix)]
			if mid == dnsLabel(mid) {
				return nil
			}
		}
	}
	return fmt.Errorf("host %q is not one that %s's host templates give pull request %d (its primary host is %s)", host, repo, pr, primary)
}

// CopyUnreserved copies the labels of src that are not reserved into dst.
// A reserved key in a compose file's labels never gets through: the policy
// refuses such a file, and this keeps it so whatever the policy allows.
func CopyUnreserved(dst, src map[string]string) {
	for k, v := range src {
		if !Reserved(k) {
			dst[k] = v
		}
	}
}

// ClearImageLabels gives every reserved label the image carries and labels
// (a container's create request, a task's spec) does not set an explicit
// empty value. The engine copies an image's labels into the container
// unless the request names the key, so without this an image built from a
// PR, or any image a service runs, could bring its own
// dev.slipway.route.host (another PR's host) or com.docker.compose.project.
// An empty route label means "no route" to the proxy.
func ClearImageLabels(labels, image map[string]string) {
	for k := range image {
		if _, set := labels[k]; !set && Reserved(k) {
			labels[k] = ""
		}
	}
}
