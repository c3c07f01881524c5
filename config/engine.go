package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Engines that run previews.
const (
	// EngineDocker runs every preview on the one Docker host Slipway talks to.
	EngineDocker = "docker"
	// EngineSwarm runs previews as services of a Docker Swarm, with images
	// pushed to Registry for every node to pull.
	EngineSwarm = "swarm"
)

// Registry is where the swarm engine pushes the images it builds, so that
// every node of the swarm can pull them. Slipway deletes a preview's tags
// from it when the preview is removed, so the registry must allow deletes.
type Registry struct {
	// Address is the registry's host and optional port, without a scheme
	// or path, e.g. registry.example.com:5000. Images are pushed as
	// <address>/<project>-<service>:<first 12 of the SHA>.
	Address string `yaml:"address"`
	// API is the registry's HTTP API as Slipway itself reaches it, e.g.
	// http://172.17.0.1:5000, when that differs from Address, which the
	// nodes' engines pull from: Slipway in a container does not share the
	// node's loopback, so a registry the nodes pull from 127.0.0.1:5000 is
	// another address from inside it. With a user, plain http only to an
	// IP address (the password goes with every call). Its host, like
	// Address's, is a name no preview's service may take. Default: Address,
	// over http for a loopback address and https otherwise.
	API string `yaml:"api"`
	// User to log in to the registry as; empty for one without authentication.
	User string `yaml:"user"`
	// Password for User (prefer password_file).
	Password string `yaml:"password"`
	// PasswordFile is a file holding Password.
	PasswordFile string `yaml:"password_file"`
}

// validateEngine checks engine and registry, and defaults engine to docker.
func (c *Controller) validateEngine() []error {
	var errs []error
	switch c.Engine {
	case "":
		c.Engine = EngineDocker
	case EngineDocker, EngineSwarm:
	default:
		errs = append(errs, fmt.Errorf("engine %q: want docker or swarm", c.Engine))
	}
	// With engine docker a registry section is not used (an operator may
	// keep it while switching engines back and forth).
	r := c.Registry
	if c.Engine != EngineSwarm {
		return errs
	}
	if r.Address == "" {
		errs = append(errs, errors.New("engine swarm needs registry.address: every node pulls the preview images from it"))
	} else if err := checkRegistryAddress(r.Address); err != nil {
		errs = append(errs, err)
	}
	if r.API != "" {
		if err := checkRegistryAPI(r.API, r.User != ""); err != nil {
			errs = append(errs, err)
		}
	}
	if r.User == "" && r.Password != "" {
		errs = append(errs, errors.New("registry: password (or password_file) is set without user"))
	}
	if r.User != "" && r.Password == "" {
		errs = append(errs, errors.New("registry: user is set without password (or password_file)"))
	}
	return errs
}

// checkRegistryAddress accepts host[:port], nothing more: the address is
// the first part of every image reference Slipway pushes.
func checkRegistryAddress(a string) error {
	bad := func(why string) error {
		return fmt.Errorf("registry.address %q: %s; want host[:port], e.g. registry.example.com:5000", a, why)
	}
	switch {
	case strings.Contains(a, "://"):
		return bad("has a scheme")
	case strings.ContainsAny(a, "/@ \t\n"):
		return bad("has a path, a user or spaces")
	case strings.ToLower(a) != a:
		return bad("has upper-case letters (image references are lower-case)")
	}
	host, port, hasPort := strings.Cut(a, ":")
	if host == "" {
		return bad("has no host")
	}
	if hasPort {
		if port == "" || strings.Trim(port, "0123456789") != "" || len(port) > 5 {
			return bad("has a port that is not a number")
		}
	}
	return nil
}

// checkRegistryAPI accepts an http or https URL with a host and no path,
// query or user: Slipway adds the API's paths (/v2/…) to it. With a login
// (withUser), plain http only to an IP address: the password goes with
// every call, and a name over plain http is one DNS answer away from
// someone else (a preview's service taking the name on a network Slipway's
// container joined).
func checkRegistryAPI(a string, withUser bool) error {
	u, err := url.Parse(a)
	bad := func(why string) error {
		return fmt.Errorf("registry.api %q: %s; want http(s)://host[:port], e.g. http://registry:5000", a, why)
	}
	switch {
	case err != nil:
		return bad("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return bad("has no http or https scheme")
	case u.Host == "":
		return bad("has no host")
	case u.User != nil:
		return bad("has a user (use registry.user and password_file)")
	case (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.ContainsAny(a, "?#"):
		return bad("has a path or a query")
	case withUser && u.Scheme == "http" && net.ParseIP(u.Hostname()) == nil:
		return bad("sends the registry's password over plain http to a name; use https, or an IP address")
	}
	return nil
}

// OwnRegistry is the registry Slipway pushes previews' images to: the
// registry's address with engine: swarm, else "". The policy judges its
// images as it judges the local store's.
func (c *Controller) OwnRegistry() string {
	if c.Engine != EngineSwarm {
		return ""
	}
	return c.Registry.Address
}
