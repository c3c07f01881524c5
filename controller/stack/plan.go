package stack

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/internal/contract"
)

// ErrBadInput marks errors that retrying with the same source cannot fix:
// a compose file that does not load, a policy violation, a failed build, a
// missing image. The controller does not retry them until the SHA changes.
var ErrBadInput = errors.New("bad input")

// badInput wraps err so that errors.Is(err, ErrBadInput) holds.
func badInput(err error) error {
	if err == nil || errors.Is(err, ErrBadInput) {
		return err
	}
	return &inputError{err}
}

type inputError struct{ err error }

func (e *inputError) Error() string        { return e.err.Error() }
func (e *inputError) Unwrap() []error      { return []error{e.err, ErrBadInput} }
func (e *inputError) Is(target error) bool { return target == ErrBadInput }

// Source is a checkout of one pull request at one commit.
type Source struct {
	// Dir is the checkout root. Paths in compose files resolve against it,
	// and bind mounts may not leave it.
	Dir string
	// Owner and Repo name the repository (Owner "local" for the CLI without --repo).
	Owner string
	Repo  string
	// PR is the pull request number.
	PR int
	// SHA is the commit the environment is built from.
	SHA string
}

// FullName is owner/repo.
func (s Source) FullName() string { return s.Owner + "/" + s.Repo }

// Project is the namespaced compose project name of the source.
func (s Source) Project() string { return contract.ProjectName(s.Owner, s.Repo, s.PR) }

// Route is one exposed service reachable through the proxy.
type Route struct {
	Service string
	Host    string
	Port    int
	Primary bool
	// URL is where QA opens it (scheme, host and, off the default port, the port).
	URL string
}

// Plan is a loaded, checked and namespaced compose project, ready to build
// and converge. It is computed without touching the engine.
type Plan struct {
	Source Source
	// Name is the compose project name, <owner>-<repo>-pr-<N>.
	Name string
	// Project is the compose model after namespacing and the preview rewrites.
	Project *types.Project
	// Repo is the repository configuration (.slipway.yml or x-slipway).
	Repo config.Repo
	// Routes are the exposed services, the primary first.
	Routes []Route
	// Built lists the services built from the PR's source, sorted.
	Built []string
	// Limits cap every container (the controller's; a service may ask for less).
	Limits config.Limits
	// Env is the SLIPWAY_* environment given to every service (SLIPWAY_SHA
	// only to built services).
	Env map[string]string
	// ConfigFiles are the compose files, absolute, in merge order.
	ConfigFiles []string
	// Warnings are things the user should know that did not stop the plan.
	Warnings []string
	// Notes say what Slipway ignored or changed in the project as the PR
	// wrote it (a top-level name:). `slipway plan` prints them, and Up
	// writes them at the start of the build log.
	Notes []string
	// WithheldSecrets names secrets the repo asked for but that were not
	// given because the PR is not trusted.
	WithheldSecrets []string
}

// IsBuilt reports whether service is built from the PR's source.
func (p *Plan) IsBuilt(service string) bool {
	_, ok := slices.BinarySearch(p.Built, service)
	return ok
}

// Image returns the image a service's containers run: the namespaced tag
// for built services, the compose image otherwise.
func (p *Plan) Image(service string) string {
	if p.IsBuilt(service) {
		return contract.ImageName(p.Name, service, p.Source.SHA)
	}
	return p.Project.Services[service].Image
}

// Primary returns the primary route, if any service is exposed.
func (p *Plan) Primary() (Route, bool) {
	for _, r := range p.Routes {
		if r.Primary {
			return r, true
		}
	}
	return Route{}, false
}

// RouteFor returns the route of service, if it is exposed.
func (p *Plan) RouteFor(service string) (Route, bool) {
	for _, r := range p.Routes {
		if r.Service == service {
			return r, true
		}
	}
	return Route{}, false
}

// HostOptions say how preview hosts and URLs are formed.
type HostOptions struct {
	// Domain previews live under. Default "localhost".
	Domain string
	// PrimaryTemplate and ServiceTemplate override contract's defaults.
	PrimaryTemplate string
	ServiceTemplate string
	// Scheme of the URLs: "http" (default) or "https".
	Scheme string
	// Port the proxy listens on, shown in URLs unless it is the scheme's default.
	Port int
	// Key makes the .Random label of hostname: random (contract.RandomLabel).
	Key []byte
}

// Templates are the host templates pull requests are checked against: a
// PR may claim exactly the hosts these give its own number.
func (h HostOptions) Templates() contract.HostTemplates {
	h = h.withDefaults()
	return contract.HostTemplates{Domain: h.Domain, Primary: h.PrimaryTemplate, Service: h.ServiceTemplate, Key: h.Key}
}

func (h HostOptions) withDefaults() HostOptions {
	if h.Domain == "" {
		h.Domain = "localhost"
	}
	if h.PrimaryTemplate == "" {
		h.PrimaryTemplate = contract.PrimaryHostTemplate
	}
	if h.ServiceTemplate == "" {
		h.ServiceTemplate = contract.ServiceHostTemplate
	}
	if h.Scheme == "" {
		h.Scheme = "http"
	}
	return h
}

// URL returns the URL QA opens for host.
func (h HostOptions) URL(host string) string {
	h = h.withDefaults()
	if h.Port == 0 || (h.Scheme == "http" && h.Port == 80) || (h.Scheme == "https" && h.Port == 443) {
		return h.Scheme + "://" + host
	}
	return h.Scheme + "://" + host + ":" + strconv.Itoa(h.Port)
}

// computeRoutes decides which services are exposed and on which hosts.
// Without an expose list, the first service (in file order) with a port is
// the primary. order is the services in file order.
func computeRoutes(p *types.Project, repo config.Repo, src Source, ho HostOptions, order []string) ([]Route, error) {
	ho = ho.withDefaults()
	expose := repo.Expose
	if len(expose) == 0 {
		for _, name := range order {
			svc, ok := p.Services[name]
			if !ok {
				continue
			}
			if port := firstPort(svc); port > 0 {
				expose = []config.Expose{{Service: name, Port: port}}
				break
			}
		}
	}
	var routes []Route
	var errs []error
	seenHost := map[string]string{}
	for i, e := range expose {
		svc, ok := p.Services[e.Service]
		if !ok {
			errs = append(errs, fmt.Errorf("expose[%d]: service %q is not in the compose project", i, e.Service))
			continue
		}
		port := e.Port
		if port == 0 {
			port = firstPort(svc)
		}
		if port == 0 {
			errs = append(errs, fmt.Errorf("expose[%d]: service %q has no port; set expose[%d].port", i, e.Service, i))
			continue
		}
		tmpl := e.Host
		if tmpl == "" {
			tmpl = ho.ServiceTemplate
			if i == 0 {
				tmpl = ho.PrimaryTemplate
			}
		}
		d := contract.HostData{Number: src.PR, Owner: src.Owner, Repo: src.Repo, Service: e.Service, Domain: ho.Domain}
		if len(ho.Key) > 0 {
			d.Random = contract.RandomLabel(ho.Key, src.FullName(), src.PR)
		}
		host, err := contract.Host(tmpl, d)
		if err != nil {
			errs = append(errs, fmt.Errorf("expose[%d] (%s): %w", i, e.Service, err))
			continue
		}
		// A host override comes from the PR itself: it may name only a host
		// the repository's templates give this PR (never another PR's,
		// another repository's, or the domain). The proxy applies the same
		// check to every route label before serving it.
		if err := ho.Templates().OwnsHost(host, src.FullName(), src.PR, e.Service); err != nil {
			errs = append(errs, fmt.Errorf("expose[%d].host %q: %w", i, e.Host, err))
			continue
		}
		if other, dup := seenHost[host]; dup {
			errs = append(errs, fmt.Errorf("expose[%d]: services %q and %q would share host %s", i, other, e.Service, host))
			continue
		}
		seenHost[host] = e.Service
		routes = append(routes, Route{Service: e.Service, Host: host, Port: port, Primary: i == 0, URL: ho.URL(host)})
	}
	return routes, errors.Join(errs...)
}

// firstPort is the service's first container port: of ports, then expose.
func firstPort(svc types.ServiceConfig) int {
	for _, p := range svc.Ports {
		if p.Target > 0 && (p.Protocol == "" || p.Protocol == "tcp") {
			return int(p.Target)
		}
	}
	for _, e := range svc.Expose {
		port, _, _ := strings.Cut(e, "/")
		if lo, _, _ := strings.Cut(port, "-"); lo != "" {
			if n, err := strconv.Atoi(lo); err == nil && n > 0 {
				return n
			}
		}
	}
	return 0
}

// slipwayEnv is the SLIPWAY_* environment of a plan (with SLIPWAY_SHA; the
// caller strips it for image-only services).
func slipwayEnv(src Source, routes []Route) map[string]string {
	env := map[string]string{
		contract.EnvPR:   strconv.Itoa(src.PR),
		contract.EnvRepo: src.FullName(),
		contract.EnvSHA:  src.SHA,
		contract.EnvURL:  "",
	}
	for _, r := range routes {
		if r.Primary {
			env[contract.EnvURL] = r.URL
		}
		env[contract.EnvURLPrefix+contract.EnvName(r.Service)] = r.URL
	}
	return env
}

// repoEnv renders the templated values of .slipway.yml's env.
func repoEnv(repo config.Repo, src Source, env map[string]string) (map[string]string, error) {
	data := struct {
		Number            int
		Owner, Repo, SHA  string
		URL               string
		ShortSHA, Project string
	}{src.PR, src.Owner, src.Repo, src.SHA, env[contract.EnvURL], contract.ShortSHA(src.SHA), src.Project()}
	out := make(map[string]string, len(repo.Env))
	var errs []error
	for _, k := range slices.Sorted(maps.Keys(repo.Env)) {
		t, err := template.New(k).Option("missingkey=error").Parse(repo.Env[k])
		if err != nil {
			errs = append(errs, fmt.Errorf("env %s: %w", k, err))
			continue
		}
		var b bytes.Buffer
		if err := t.Execute(&b, data); err != nil {
			errs = append(errs, fmt.Errorf("env %s: %w", k, err))
			continue
		}
		out[k] = b.String()
	}
	return out, errors.Join(errs...)
}

// namespace rewrites a loaded project for a preview, in place:
//   - networks and volumes are owned by the project, named <project>_<key>
//     (a file cannot choose a name that escapes the namespace);
//   - no host port bindings: published ports become exposed container ports;
//   - container_name becomes a network alias (services addressing each
//     other by it still resolve) and is dropped;
//   - built services get the namespaced image tag;
//   - every service gets env (SLIPWAY_SHA only the built ones).
func namespace(p *types.Project, name string, built []string, env map[string]string, src Source) {
	p.Name = name
	for key, n := range p.Networks {
		if !n.External {
			n.Name = contract.ResourceName(name, key)
		}
		p.Networks[key] = n
	}
	for key, v := range p.Volumes {
		if !v.External {
			v.Name = contract.ResourceName(name, key)
		}
		p.Volumes[key] = v
	}
	for sname, svc := range p.Services {
		isBuilt := slices.Contains(built, sname)
		var exposed []string
		for _, port := range svc.Ports {
			proto := port.Protocol
			if proto == "" {
				proto = "tcp"
			}
			exposed = append(exposed, strconv.Itoa(int(port.Target))+"/"+proto)
		}
		svc.Ports = nil
		for _, e := range svc.Expose {
			if !slices.Contains(exposed, e) {
				exposed = append(exposed, e)
			}
		}
		sort.Strings(exposed)
		svc.Expose = slices.Compact(exposed)

		if svc.ContainerName != "" {
			if svc.NetworkMode == "" {
				for key, nc := range svc.Networks {
					if nc == nil {
						nc = &types.ServiceNetworkConfig{}
					}
					if !slices.Contains(nc.Aliases, svc.ContainerName) {
						nc.Aliases = append(nc.Aliases, svc.ContainerName)
					}
					svc.Networks[key] = nc
				}
			}
			svc.ContainerName = ""
		}
		if isBuilt {
			svc.Image = contract.ImageName(name, sname, src.SHA)
			if svc.PullPolicy == types.PullPolicyBuild || svc.PullPolicy == types.PullPolicyAlways {
				svc.PullPolicy = ""
			}
		}
		if svc.Environment == nil {
			svc.Environment = types.MappingWithEquals{}
		}
		for _, k := range slices.Sorted(maps.Keys(env)) {
			if k == contract.EnvSHA && !isBuilt {
				continue
			}
			v := env[k]
			svc.Environment[k] = &v
		}
		if !isBuilt {
			delete(svc.Environment, contract.EnvSHA)
		}
		p.Services[sname] = svc
	}
}

// builtServices lists the services that have a build section, sorted.
func builtServices(p *types.Project) []string {
	var out []string
	for name, svc := range p.Services {
		if svc.Build != nil {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
