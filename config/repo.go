package config

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"gopkg.in/yaml.v3"
)

// RepoFile is the name of the repository configuration file.
const RepoFile = ".slipway.yml"

// ComposeExtension is the compose file key that may hold the repository
// configuration instead of RepoFile.
const ComposeExtension = "x-slipway"

// DefaultComposeFiles are tried in order when Repo.Compose is empty.
var DefaultComposeFiles = []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"}

// Repo is a repository's .slipway.yml: how its compose project becomes a preview.
type Repo struct {
	// Compose lists the compose files, relative to the repository root, merged
	// in order.
	Compose []string `yaml:"compose"`
	// Profiles enables compose profiles.
	Profiles []string `yaml:"profiles"`
	// Expose lists the services reachable through the proxy. Default: the
	// first service (in file order) that publishes or exposes a port.
	Expose []Expose `yaml:"expose"`
	// Env is added to every service's environment and to interpolation.
	// Values are Go templates over .Number, .Repo, .Owner, .SHA, .ShortSHA,
	// .URL and .Project.
	Env map[string]string `yaml:"env"`
	// Secrets names controller-side secrets to inject (trusted PRs only).
	Secrets []string `yaml:"secrets"`
	// TTL destroys the environment after this long without a push;
	// repos[].ttl in slipway.yaml wins. 0 disables.
	TTL *Duration `yaml:"ttl"`
	// SleepAfter stops the environment when idle this long; the next request wakes it.
	SleepAfter Duration `yaml:"sleep_after"`
	// AfterDeploy lists one-off jobs run once the stack is healthy.
	AfterDeploy []Job `yaml:"after_deploy"`
}

// Expose is one service reachable through the proxy.
type Expose struct {
	// Service name in the compose file.
	Service string `yaml:"service"`
	// Port inside the container. Default: the service's first port.
	Port int `yaml:"port"`
	// Host overrides the host template for this service.
	Host string `yaml:"host"`
}

// Job is a one-off command run in a new container of a service.
type Job struct {
	// Service whose image, environment, volumes and networks the job uses.
	Service string `yaml:"service"`
	// Command to run, as an argument list. It replaces the service's command,
	// as `docker compose run` does; the entrypoint stays.
	Command []string `yaml:"command"`
}

// LoadRepoFile reads dir/.slipway.yml. It returns nil, nil when the file does
// not exist, so the caller can fall back to x-slipway or defaults.
func LoadRepoFile(dir string) (*Repo, error) {
	p := filepath.Join(dir, RepoFile)
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", RepoFile, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read %s: not a regular file", RepoFile)
	}
	if fi.Size() > 1<<20 {
		return nil, fmt.Errorf("read %s: larger than 1 MiB", RepoFile)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", RepoFile, err)
	}
	r, err := ParseRepo(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", RepoFile, err)
	}
	return r, nil
}

// ParseRepo decodes and validates repository configuration.
func ParseRepo(b []byte) (*Repo, error) {
	var r Repo
	if err := decodeStrict(b, &r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return &r, nil
}

// RepoFromExtension decodes the value of a compose file's x-slipway key (as
// compose-go hands it over: maps and slices of plain values).
func RepoFromExtension(v any) (*Repo, error) {
	b, err := yaml.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ComposeExtension, err)
	}
	r, err := ParseRepo(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", ComposeExtension, err)
	}
	return r, nil
}

// Validate checks the repository configuration on its own (services are
// checked against the compose project later).
func (r *Repo) Validate() error {
	var errs []error
	for i, f := range r.Compose {
		if f == "" || path.IsAbs(f) || filepath.IsAbs(f) || strings.Contains(f, `\`) {
			errs = append(errs, fmt.Errorf("compose[%d] %q: want a path relative to the repository", i, f))
			continue
		}
		if c := path.Clean(f); c == ".." || strings.HasPrefix(c, "../") {
			errs = append(errs, fmt.Errorf("compose[%d] %q: leaves the repository", i, f))
		}
	}
	for i, e := range r.Expose {
		if e.Service == "" {
			errs = append(errs, fmt.Errorf("expose[%d]: service is required", i))
		}
		if e.Port < 0 || e.Port > 65535 {
			errs = append(errs, fmt.Errorf("expose[%d].port %d: out of range", i, e.Port))
		}
	}
	for i, j := range r.AfterDeploy {
		if j.Service == "" {
			errs = append(errs, fmt.Errorf("after_deploy[%d]: service is required", i))
		}
	}
	for k := range r.Env {
		if k == "" || strings.ContainsAny(k, "= \t\n") {
			errs = append(errs, fmt.Errorf("env key %q: not a variable name", k))
		}
		if strings.HasPrefix(k, "SLIPWAY_") {
			errs = append(errs, fmt.Errorf("env key %q: SLIPWAY_ variables are set by Slipway", k))
		}
	}
	return errors.Join(errs...)
}
