package stack

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Environment is what runs for one project, read back from the engine.
type Environment struct {
	Project string `json:"project"`
	Repo    string `json:"repo"`
	PR      int    `json:"pr"`
	// SHA is the commit of the built services (of any service when none is built).
	SHA      string          `json:"sha"`
	Services []ServiceState  `json:"services"`
	Routes   []ObservedRoute `json:"routes"`
	// Created is when the oldest container was created.
	Created time.Time `json:"created"`
}

// ObservedRoute is a host a service's containers carry a route label for.
type ObservedRoute struct {
	Host    string `json:"host"`
	Service string `json:"service"`
	Port    int    `json:"port"`
	Primary bool   `json:"primary"`
}

// ServiceState is one service's containers.
type ServiceState struct {
	Service    string           `json:"service"`
	Containers []ContainerState `json:"containers"`
}

// ContainerState is one container.
type ContainerState struct {
	Name     string `json:"name"`
	ID       string `json:"id"`
	Number   int    `json:"number"`
	State    string `json:"state"`
	Health   string `json:"health,omitempty"`
	ExitCode int    `json:"exit_code"`
	SHA      string `json:"sha"`
	Image    string `json:"image"`
	Built    bool   `json:"built"`
	// IP is the container's address on its first project network.
	IP string `json:"ip,omitempty"`
}

// Phase summarizes the environment: running (every service running or
// completed, healthy where checked), starting, degraded (something exited
// or is unhealthy), stopped (nothing runs).
func (e *Environment) Phase() string {
	running, total, bad, starting := 0, 0, 0, 0
	for _, s := range e.Services {
		for _, c := range s.Containers {
			total++
			switch {
			case c.State == string(container.StateRunning) && c.Health == string(container.Unhealthy):
				bad++
			case c.State == string(container.StateRunning) && c.Health == string(container.Starting):
				starting++
			case c.State == string(container.StateRunning):
				running++
			case c.State == string(container.StateExited) && c.ExitCode == 0:
				running++ // a completed one-shot
			case c.State == string(container.StateCreated):
				starting++
			default:
				bad++
			}
		}
	}
	switch {
	case total == 0 || allStopped(e):
		return "stopped"
	case bad > 0:
		return "degraded"
	case starting > 0:
		return "starting"
	}
	return "running"
}

func allStopped(e *Environment) bool {
	for _, s := range e.Services {
		for _, c := range s.Containers {
			if c.State == string(container.StateRunning) || c.State == string(container.StateRestarting) {
				return false
			}
		}
	}
	return true
}

// List returns every environment Slipway manages on the engine, sorted by project.
func (e *Engine) List(ctx context.Context) ([]Environment, error) {
	return e.observe(ctx, filters.NewArgs(filters.Arg("label", contract.ManagedFilter)))
}

// Inspect returns project's environment, or nil when nothing of it runs.
func (e *Engine) Inspect(ctx context.Context, project string) (*Environment, error) {
	envs, err := e.observe(ctx, projectFilter(project))
	if err != nil || len(envs) == 0 {
		return nil, err
	}
	return &envs[0], nil
}

// ProjectRef says whose a managed project is.
type ProjectRef struct {
	Repo string // owner/name
	PR   int
}

// Projects lists every managed project with any container or network left
// on the engine, so that a half-removed environment is still found and
// finished off.
func (e *Engine) Projects(ctx context.Context) (map[string]ProjectRef, error) {
	f := filters.NewArgs(filters.Arg("label", contract.ManagedFilter))
	out := map[string]ProjectRef{}
	add := func(l map[string]string) {
		if p := l[contract.LabelProject]; p != "" {
			pr, _ := strconv.Atoi(l[contract.LabelPR])
			out[p] = ProjectRef{Repo: l[contract.LabelRepo], PR: pr}
		}
	}
	cs, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		add(c.Labels)
	}
	nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range nets {
		add(n.Labels)
	}
	return out, nil
}

func (e *Engine) observe(ctx context.Context, f filters.Args) ([]Environment, error) {
	f.Add("label", contract.LabelOneoff+"=False")
	cs, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	return environments(cs), nil
}

// environments groups container summaries into environments. Pure.
func environments(cs []container.Summary) []Environment {
	byProject := map[string]*Environment{}
	services := map[string]map[string]*ServiceState{}
	for _, c := range cs {
		l := c.Labels
		project := l[contract.LabelProject]
		if project == "" {
			continue
		}
		env := byProject[project]
		if env == nil {
			pr, _ := strconv.Atoi(l[contract.LabelPR])
			env = &Environment{Project: project, Repo: l[contract.LabelRepo], PR: pr}
			byProject[project] = env
			services[project] = map[string]*ServiceState{}
		}
		created := time.Unix(c.Created, 0).UTC()
		if env.Created.IsZero() || created.Before(env.Created) {
			env.Created = created
		}
		name := l[contract.LabelService]
		svc := services[project][name]
		if svc == nil {
			svc = &ServiceState{Service: name}
			services[project][name] = svc
		}
		num, _ := strconv.Atoi(l[contract.LabelNumber])
		health, exit := parseStatus(c.Status)
		cst := ContainerState{
			Name: containerName(c), ID: c.ID, Number: num, State: string(c.State), Health: health, ExitCode: exit,
			SHA: l[contract.LabelSHA], Image: c.Image, Built: l[contract.LabelBuilt] == "true", IP: projectIP(project, c.NetworkSettings),
		}
		svc.Containers = append(svc.Containers, cst)
		if host := l[contract.LabelRouteHost]; host != "" {
			port, _ := strconv.Atoi(l[contract.LabelRoutePort])
			r := ObservedRoute{Host: host, Service: name, Port: port, Primary: l[contract.LabelPrimary] == "true"}
			if !slices.Contains(env.Routes, r) {
				env.Routes = append(env.Routes, r)
			}
		}
	}
	var out []Environment
	for _, project := range slices.Sorted(maps.Keys(byProject)) {
		env := byProject[project]
		for _, name := range slices.Sorted(maps.Keys(services[project])) {
			s := services[project][name]
			sort.Slice(s.Containers, func(i, j int) bool { return s.Containers[i].Number < s.Containers[j].Number })
			env.Services = append(env.Services, *s)
		}
		env.SHA = environmentSHA(env)
		sort.Slice(env.Routes, func(i, j int) bool {
			if env.Routes[i].Primary != env.Routes[j].Primary {
				return env.Routes[i].Primary
			}
			return env.Routes[i].Host < env.Routes[j].Host
		})
		out = append(out, *env)
	}
	return out
}

// environmentSHA is the SHA of the built services, or the newest-looking
// SHA of any service when none is built.
func environmentSHA(env *Environment) string {
	fallback := ""
	for _, s := range env.Services {
		for _, c := range s.Containers {
			if c.Built {
				return c.SHA
			}
			if fallback == "" {
				fallback = c.SHA
			}
		}
	}
	return fallback
}

var statusRE = regexp.MustCompile(`^Exited \((-?\d+)\)`)

// parseStatus reads health and exit code from a container list Status such
// as "Up 3 minutes (healthy)" or "Exited (1) 2 seconds ago".
func parseStatus(s string) (health string, exitCode int) {
	switch {
	case strings.Contains(s, "(healthy)"):
		health = string(container.Healthy)
	case strings.Contains(s, "(unhealthy)"):
		health = string(container.Unhealthy)
	case strings.Contains(s, "(health: starting)"):
		health = string(container.Starting)
	}
	if m := statusRE.FindStringSubmatch(s); m != nil {
		exitCode, _ = strconv.Atoi(m[1])
	}
	return health, exitCode
}

// projectIP returns the container's address on the first (by name) of the
// project's networks, else on any network.
func projectIP(project string, ns *container.NetworkSettingsSummary) string {
	if ns == nil {
		return ""
	}
	var fallback string
	for _, name := range slices.Sorted(maps.Keys(ns.Networks)) {
		ep := ns.Networks[name]
		if ep == nil || ep.IPAddress == "" {
			continue
		}
		if strings.HasPrefix(name, project+"_") {
			return ep.IPAddress
		}
		if fallback == "" {
			fallback = ep.IPAddress
		}
	}
	return fallback
}

// WritableBinds lists the host paths project's containers can write,
// whatever the mount type: the sources of read-write bind mounts, and the
// host directories of local volumes that bind one (driver_opts o=bind,
// device=<dir>) mounted read-write. A container that can write a directory
// of the checkout can rewrite what the next deploy would mount.
func (e *Engine) WritableBinds(ctx context.Context, project string) ([]string, error) {
	cs, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: projectFilter(project)})
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w", project, err)
	}
	var out []string
	bound := map[string]string{} // volume name → the host directory it binds, or ""
	for _, c := range cs {
		for _, m := range c.Mounts {
			if !m.RW {
				continue
			}
			switch m.Type {
			case mount.TypeBind:
				out = append(out, m.Source)
			case mount.TypeVolume:
				dir, seen := bound[m.Name]
				if !seen {
					if dir, err = e.volumeBindDir(ctx, m.Name); err != nil {
						return nil, fmt.Errorf("writable mounts of %s: %w", project, err)
					}
					bound[m.Name] = dir
				}
				if dir != "" {
					out = append(out, dir)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// volumeBindDir returns the host directory a local volume may bind
// writably (bindDevice), else "". A volume removed meanwhile binds nothing.
func (e *Engine) volumeBindDir(ctx context.Context, name string) (string, error) {
	v, err := e.docker.VolumeInspect(ctx, name)
	if errdefs.IsNotFound(err) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("inspect volume %s: %w", name, err)
	}
	if v.Driver != "local" {
		return "", nil
	}
	return bindDevice(v.Options), nil
}

// bindDevice returns the host directory a local volume's options may let
// a container write, else "". It reads o as the engine's local driver
// does (readBindOpts). Only a read-only bind spelled with nothing but
// bind, rbind, ro and rw, and a tmpfs that binds nothing, write nothing:
// anything else counts as writing its device, which fails closed (a fresh
// copy of the checkout). The device is taken as written, the engine's
// working directory, /, resolving a relative one. Pure.
func bindDevice(opts map[string]string) string {
	device := opts["device"]
	if device == "" {
		return ""
	}
	bind, ro, plain := readBindOpts(opts["o"])
	switch {
	case bind && ro && plain:
		return ""
	case !bind && opts["type"] == "tmpfs":
		return ""
	}
	if !filepath.IsAbs(device) {
		device = filepath.Join("/", device)
	}
	return filepath.Clean(device)
}

// readBindOpts reads a local volume's o option as moby/sys/mount does for
// the engine: split on ",", each token matched exactly (no trimming, no
// case folding), "rw" clearing the read-only flag an earlier "ro" set, so
// the last of the two wins. plain reports whether every token was one of
// bind, rbind, ro and rw; the engine hands tokens it does not know to the
// kernel as data, and those this reading does not follow. Pure.
func readBindOpts(o string) (bind, readOnly, plain bool) {
	plain = true
	for _, tok := range strings.Split(o, ",") {
		switch tok {
		case "bind", "rbind":
			bind = true
		case "ro":
			readOnly = true
		case "rw":
			readOnly = false
		default:
			plain = false
		}
	}
	return bind, readOnly, plain
}
