// Package contract holds the names, labels, hosts and environment variables
// that other parts of Slipway and users' scripts rely on (design.md,
// "Contracts"). The stack engine writes them, the proxy and the controller
// read them back from Docker; keeping them in one leaf package means neither
// side has to import the other.
package contract

import (
	"bytes"
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
	hostTemplateMaxLen           = 1024
	dnsLabelMaxLen               = 63
)

// HostData is what a host template sees.
type HostData struct {
	Number  int
	Owner   string
	Repo    string
	Service string
	Domain  string
}

// Host renders tmpl with d and checks that the result is a valid host name
// under d.Domain. Owner, Repo and Service are sanitized into DNS label form
// first, so "My_Repo" becomes "my-repo".
func Host(tmpl string, d HostData) (string, error) {
	if len(tmpl) > hostTemplateMaxLen {
		return "", fmt.Errorf("host template longer than %d bytes", hostTemplateMaxLen)
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
