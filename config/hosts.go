package config

import "github.com/slipwayhq/slipway/internal/contract"

// HostTemplates are the host templates every configured repository's pull
// requests are checked against (host_template and service_host_template,
// else the defaults: with several repositories, ones that name the
// repository). Without configuration (local mode) they are the
// single-repository defaults under the domain, "localhost" by default.
func (c *Controller) HostTemplates() contract.HostTemplates {
	t := contract.DefaultHostTemplates(c.Domain, len(c.Repos) > 1)
	if c.HostTemplate != "" {
		t.Primary = c.HostTemplate
	}
	if c.ServiceHostTemplate != "" {
		t.Service = c.ServiceHostTemplate
	}
	return t
}
