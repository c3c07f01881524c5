package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/compose-spec/compose-go/v2/graph"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack/loader"
	"github.com/slipwayhq/slipway/controller/stack/policy"
	"github.com/slipwayhq/slipway/internal/contract"
)

// LoadOptions say how a source becomes a plan.
type LoadOptions struct {
	Hosts HostOptions
	// Policy relaxes security rules (operator configuration, never the PR's).
	Policy config.Policy
	// OwnRegistry is where the images Slipway builds are pushed (swarm
	// engine; config.Controller.OwnRegistry): a pull request may name only
	// its own images there (SW-IMG-001).
	OwnRegistry string
	// Limits cap every container. Zero fields mean no cap.
	Limits config.Limits
	// Secrets are the controller-side secrets this PR may receive, by name.
	// A name listed in .slipway.yml but absent here is an error, unless
	// WithholdSecrets is set (an untrusted PR): then it is left out and
	// reported in Plan.WithheldSecrets.
	Secrets map[string]string
	// WithholdSecrets marks an untrusted PR: no secrets, and no build
	// settings that could poison the layer cache trusted PRs share
	// (build.extra_hosts, which the classic builder leaves out of its cache
	// key).
	WithholdSecrets bool
	// Loader resolves the compose files. Default: a confined loader with
	// default bounds (loader.New). Tests and the CLI pass their own.
	Loader ProjectLoader
}

// ProjectLoader resolves compose files into a project; *loader.Loader loads
// them in a confined child process.
type ProjectLoader interface {
	Load(ctx context.Context, req loader.Request) (*types.Project, error)
}

// NewLoader returns the confined loader slipway.yaml's loader section
// describes; log receives its warnings (nil: discarded).
func NewLoader(cfg config.Loader, log *slog.Logger) (*loader.Loader, error) {
	l, err := loader.New(loader.Options{
		Timeout:     time.Duration(cfg.Timeout),
		Memory:      int64(cfg.Memory),
		Confinement: loader.Confinement(cfg.Confinement),
		Log:         log,
	})
	if err != nil {
		return nil, fmt.Errorf("compose loader: %w", err)
	}
	return l, nil
}

// Load reads the compose project and repository configuration in src.Dir,
// checks them against the security policy, and returns the namespaced plan.
// It reads only files inside the checkout and never the process environment.
//
// On policy violations it returns the plan (for `slipway plan` to print) and
// a *PolicyError listing every violation. Every error it returns satisfies
// errors.Is(err, ErrBadInput), and is a contract.Failure of step "policy"
// (a *PolicyError) or "load".
func Load(ctx context.Context, src Source, opts LoadOptions) (*Plan, error) {
	plan, err := load(ctx, src, opts)
	return plan, loadFailure(badInput(err))
}

func load(ctx context.Context, src Source, opts LoadOptions) (*Plan, error) {
	if src.PR <= 0 {
		return nil, fmt.Errorf("pull request number %d: want a positive number", src.PR)
	}
	if src.SHA == "" {
		return nil, errors.New("no commit SHA given")
	}
	if src.Owner == "" || src.Repo == "" {
		return nil, errors.New("repository owner and name are required")
	}
	root, err := filepath.Abs(src.Dir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return nil, fmt.Errorf("source directory %s: %w", src.Dir, err)
	}
	src.Dir = root
	name := src.Project()

	repoFile, err := config.LoadRepoFile(root)
	if err != nil {
		return nil, err
	}
	var repo config.Repo
	if repoFile != nil {
		repo = *repoFile
	}
	files, err := composeFiles(root, repo.Compose)
	if err != nil {
		return nil, err
	}
	if err := checkInsideRoot(root, filepath.Join(root, ".env")); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf(".env: %w", err)
	}
	popts := policy.FromConfig(opts.Policy)
	popts.ContainerLimits = opts.Limits
	popts.OwnRegistry = opts.OwnRegistry
	if err := popts.Validate(); err != nil {
		return nil, fmt.Errorf("controller policy configuration: %w", err)
	}

	if opts.Loader == nil {
		l, err := loader.New(loader.Options{})
		if err != nil {
			return nil, err
		}
		opts.Loader = l
	}

	outline := readOutline(files)
	order := outline.order
	// The SLIPWAY_URL variables depend on which services are exposed, which
	// may only be known once the project is loaded (x-slipway, or the default
	// of the first service with a port): load, route, and load again with the
	// URLs for interpolation when they were not known the first time.
	var project *types.Project
	var routes []Route
	var env, rEnv map[string]string
	var firstEnv map[string]string
	var loadedProfiles []string
	for pass := 0; pass < 2; pass++ {
		env = slipwayEnv(src, routes)
		rEnv, err = repoEnv(repo, src, env)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", config.RepoFile, err)
		}
		interp := maps.Clone(env)
		maps.Copy(interp, rEnv)
		// Every service's URL variable is defined for interpolation (empty
		// unless exposed), so it neither warns nor differs between passes.
		for _, s := range order {
			if k := contract.EnvURLPrefix + contract.EnvName(s); interp[k] == "" {
				interp[k] = ""
			}
		}
		// Load again when the first pass changed what loading depends on:
		// the URLs, or the profiles x-slipway enabled (the policy below then
		// sees the services those profiles add).
		if pass == 1 && maps.Equal(interp, firstEnv) && slices.Equal(repo.Profiles, loadedProfiles) {
			break
		}
		firstEnv = interp
		// compose-go reads the files that include, extends, env_file and
		// label_file name while loading: check them, with this pass's
		// interpolation, before it does.
		if vs, err := policy.PreLoad(root, files, interp, popts); err != nil {
			return nil, err
		} else if len(vs) > 0 {
			return nil, &PolicyError{Violations: vs}
		}
		loadedProfiles = slices.Clone(repo.Profiles)
		project, err = loadCompose(ctx, opts.Loader, loader.Request{
			Root: root, Name: name, Files: files, Env: interp, Profiles: repo.Profiles,
		})
		if err != nil {
			return nil, err
		}
		if repoFile == nil {
			if ext, ok := project.Extensions[config.ComposeExtension]; ok {
				r, err := config.RepoFromExtension(ext)
				if err != nil {
					return nil, err
				}
				r.Compose = nil // the files are already chosen
				repo = *r
			}
		}
		routes, err = computeRoutes(project, repo, src, opts.Hosts, order)
		if err != nil {
			return nil, err
		}
	}
	if err := graph.CheckCycle(project); err != nil {
		return nil, fmt.Errorf("depends_on: %w", err)
	}
	if err := checkJobs(project, repo); err != nil {
		return nil, err
	}
	if opts.WithholdSecrets {
		for _, name := range builtServices(project) {
			if len(project.Services[name].Build.ExtraHosts) > 0 {
				return nil, fmt.Errorf("service %s: build.extra_hosts is not allowed for an untrusted pull request: the build cache does not tell its layers apart, so they could reach trusted builds", name)
			}
		}
	}

	built := builtServices(project)
	svcEnv := maps.Clone(env)
	maps.Copy(svcEnv, rEnv)
	plan := &Plan{
		Source:      src,
		Name:        name,
		Project:     project,
		Repo:        repo,
		Routes:      routes,
		Built:       built,
		Limits:      opts.Limits,
		Env:         env,
		ConfigFiles: files,
		Notes:       ignoredNames(root, outline.names, name),
	}
	for _, s := range repo.Secrets {
		v, ok := opts.Secrets[s]
		switch {
		case opts.WithholdSecrets:
			plan.WithheldSecrets = append(plan.WithheldSecrets, s)
		case !ok:
			return nil, fmt.Errorf("%s: secret %q is not configured on the controller", config.RepoFile, s)
		default:
			svcEnv[s] = v
		}
	}
	// The policy sees the project as the PR wrote it (before our rewrites
	// add labels and aliases of our own).
	if vs := policy.Check(project, root, popts); len(vs) > 0 {
		namespace(project, name, built, svcEnv, src)
		return plan, &PolicyError{Violations: vs}
	}
	namespace(project, name, built, svcEnv, src)
	return plan, nil
}

// composeFiles returns the absolute compose files: those named in
// .slipway.yml, else the first default name present.
func composeFiles(root string, named []string) ([]string, error) {
	if len(named) == 0 {
		for _, f := range config.DefaultComposeFiles {
			p := filepath.Join(root, f)
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				named = []string{f}
				break
			}
		}
		if len(named) == 0 {
			return nil, fmt.Errorf("no compose file: looked for %s in the repository root", strings.Join(config.DefaultComposeFiles, ", "))
		}
	}
	var files []string
	for _, f := range named {
		p := filepath.Join(root, filepath.FromSlash(f))
		if err := checkInsideRoot(root, p); err != nil {
			return nil, fmt.Errorf("compose file %s: %w", f, err)
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("compose file %s: %w", f, err)
		}
		if !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("compose file %s: not a regular file", f)
		}
		files = append(files, p)
	}
	return files, nil
}

// checkInsideRoot returns an error when p (symlinks followed) is not inside root.
func checkInsideRoot(root, p string) error {
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return fmt.Errorf("resolves to %s, outside the repository", real)
	}
	return nil
}

// loadCompose loads the compose files through l (in the controller, a
// confined child). A read the kernel refused is a policy violation naming
// the file; any other failure says which compose files failed to load.
func loadCompose(ctx context.Context, l ProjectLoader, req loader.Request) (*types.Project, error) {
	p, err := l.Load(ctx, req)
	var le *loader.Error
	switch {
	case errors.As(err, &le) && le.Denied:
		return nil, &PolicyError{Violations: []Violation{{
			Rule:    policy.LoadFileOutside,
			File:    relList(req.Root, req.Files),
			Field:   "file read while loading",
			Value:   le.File,
			Message: "compose-go tried to read a file outside the checkout (through include, extends, env_file, label_file or .env); the kernel refused",
		}}}
	case errors.As(err, &le):
		return nil, fmt.Errorf("load compose project (%s): %s", relList(req.Root, req.Files), le.Reason)
	case err != nil:
		return nil, fmt.Errorf("load compose project (%s): %w", relList(req.Root, req.Files), err)
	}
	if len(p.Services) == 0 {
		return nil, fmt.Errorf("compose project (%s) has no services", relList(req.Root, req.Files))
	}
	return p, nil
}

func relList(root string, files []string) string {
	out := make([]string, len(files))
	for i, f := range files {
		if r, err := filepath.Rel(root, f); err == nil {
			f = r
		}
		out[i] = f
	}
	return strings.Join(out, ", ")
}

// outline is what Load reads of the compose files before compose-go does.
type outline struct {
	// order lists service names in the order the files declare them
	// (compose-go hands services over as a map).
	order []string
	// names are the top-level names the files set, which Slipway ignores.
	names []fileName
}

type fileName struct{ file, name string }

// readOutline reads the outline of the compose files. Unparseable files
// are skipped: the real loader reports their errors.
func readOutline(files []string) outline {
	var o outline
	for _, f := range files {
		// The pre-load check refuses what is too large or not a file.
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() || fi.Size() > policy.MaxFileSize {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var doc yaml.Node
		if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) == 0 {
			continue
		}
		top := doc.Content[0]
		if top.Kind != yaml.MappingNode {
			continue
		}
		for i := 0; i+1 < len(top.Content); i += 2 {
			key, value := top.Content[i].Value, top.Content[i+1]
			if value.Kind == yaml.AliasNode && value.Alias != nil {
				value = value.Alias
			}
			switch {
			case key == "name" && value.Kind == yaml.ScalarNode && value.Tag != "!!null" && value.Tag != "!reset" && value.Value != "":
				o.names = append(o.names, fileName{file: f, name: value.Value})
			case key == "services" && value.Kind == yaml.MappingNode:
				for j := 0; j+1 < len(value.Content); j += 2 {
					if n := value.Content[j].Value; !slices.Contains(o.order, n) {
						o.order = append(o.order, n)
					}
				}
			}
		}
	}
	return o
}

// ignoredNames are the notes that say a compose file's top-level name is
// ignored: Slipway names the project (and so its networks and volumes).
func ignoredNames(root string, names []fileName, project string) []string {
	var notes []string
	for _, n := range names {
		notes = append(notes, fmt.Sprintf("%s: top-level name: %q ignored; the preview's project is %s", relList(root, []string{n.file}), n.name, project))
	}
	return notes
}

// checkJobs checks that after_deploy jobs name services of the project.
func checkJobs(p *types.Project, repo config.Repo) error {
	var errs []error
	for i, j := range repo.AfterDeploy {
		if _, ok := p.Services[j.Service]; !ok {
			errs = append(errs, fmt.Errorf("after_deploy[%d]: service %q is not in the compose project", i, j.Service))
		}
	}
	return errors.Join(errs...)
}

// PolicyError lists every security policy violation of a project.
type PolicyError struct {
	Violations []Violation
}

// Violation is one broken policy rule.
type Violation = policy.Violation

func (e *PolicyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "security policy: %d violation(s)", len(e.Violations))
	for _, v := range e.Violations {
		b.WriteString("\n  - ")
		b.WriteString(v.String())
	}
	return b.String()
}
