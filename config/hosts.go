package config

import (
	"fmt"
	"strings"

	"github.com/slipwayhq/slipway/internal/contract"
)

// HostTemplates are the host templates every configured repository's pull
// requests are checked against (host_template and service_host_template,
// else the defaults: with several repositories, ones that name the
// repository). Without configuration (local mode) they are the
// single-repository defaults under the domain, "localhost" by default.
//
// Two configured repositories with one name (acme/shop and other/shop) get
// defaults that name the owner too, so that they never share a host. With
// hostname: random, an unguessable label ({{.Random}}) follows the number
// (or the owner); the caller sets the templates' Key, kept under state_dir.
func (c *Controller) HostTemplates() contract.HostTemplates {
	t := contract.DefaultHostTemplates(c.Domain, len(c.Repos) > 1)
	if c.sharedRepoName() {
		t.Primary = contract.MultiOwnerPrimaryHostTemplate
		t.Service = contract.MultiOwnerServiceHostTemplate
	}
	if c.Hostname == HostnameRandom {
		// The label follows the number; it keeps repositories apart too,
		// but the repository's name stays for people reading the host.
		t.Primary, t.Service = contract.RandomPrimaryHostTemplate, contract.RandomServiceHostTemplate
		if len(c.Repos) > 1 {
			t.Primary, t.Service = contract.RandomMultiRepoPrimaryHostTemplate, contract.RandomMultiRepoServiceHostTemplate
		}
		if c.sharedRepoName() {
			t.Primary = strings.Replace(contract.MultiOwnerPrimaryHostTemplate, "{{.Owner}}", "{{.Owner}}-{{.Random}}", 1)
			t.Service = strings.Replace(contract.MultiOwnerServiceHostTemplate, "{{.Owner}}", "{{.Owner}}-{{.Random}}", 1)
		}
	}
	if c.HostTemplate != "" {
		t.Primary = c.HostTemplate
	}
	if c.ServiceHostTemplate != "" {
		t.Service = c.ServiceHostTemplate
	}
	return t
}

// sharedRepoName reports whether two configured repositories have the same
// name under different owners.
func (c *Controller) sharedRepoName() bool {
	seen := map[string]bool{}
	for _, r := range c.Repos {
		_, name, _ := strings.Cut(r.Name, "/")
		name = strings.ToLower(name)
		if seen[name] {
			return true
		}
		seen[name] = true
	}
	return false
}

// checkHostCollisions refuses host templates that give two configured
// repositories the same host, on a sample of pull request numbers and
// service names compared across every pair of repositories. (The proxy serves a
// host only to its first claimant in any case; this catches the
// configuration that makes such conflicts routine.)
func (c *Controller) checkHostCollisions() error {
	if len(c.Repos) < 2 {
		return nil
	}
	t := c.HostTemplates()
	owner := map[string]string{}
	for _, r := range c.Repos {
		o, name, ok := strings.Cut(r.Name, "/")
		if !ok {
			continue // reported as a malformed name
		}
		// Numbers and names that run into each other when a template
		// joins them without a separator (pr11shop: shop#11, or 1shop#1).
		for _, n := range []int{1, 11, 111} {
			for _, svc := range []string{"web", "1", "web-1"} {
				for _, tmpl := range []string{t.Primary, t.Service} {
					// One label for all: the check is of the templates, not the key.
					h, err := contract.Host(tmpl, contract.HostData{Number: n, Owner: o, Repo: name, Service: svc, Domain: c.Domain, Random: "abcdefgh"})
					if err != nil {
						return fmt.Errorf("host templates: %w", err)
					}
					if other, ok := owner[h]; ok && !strings.EqualFold(other, r.Name) {
						return fmt.Errorf("host templates give pull requests of both %s and %s the host %s: add {{.Owner}} or {{.Repo}}, with a separator, to host_template and service_host_template", other, r.Name, h)
					}
					owner[h] = r.Name
				}
			}
		}
	}
	return nil
}
