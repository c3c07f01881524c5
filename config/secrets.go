package config

import "strconv"

// PreviewSecrets returns the value of every secret of the secrets map by
// its name: what a trusted pull request's .slipway.yml may ask for.
func (c *Controller) PreviewSecrets() map[string]string {
	out := make(map[string]string, len(c.Secrets))
	for name, s := range c.Secrets {
		out[name] = s.Value
	}
	return out
}

// HeldSecrets returns every secret value the controller holds, named by
// the key that holds it ("github.token", "secrets.STRIPE_KEY"): the preview
// secrets and the tokens, keys and passwords of Slipway's own connections.
// Whatever Slipway shows (logs, comments, statuses, pages) is masked with
// them. Each webhook secret of a rotation is listed on its own. Empty
// values are left out.
func (c *Controller) HeldSecrets() map[string]string {
	out := map[string]string{}
	add := func(key, value string) {
		if value != "" {
			out[key] = value
		}
	}
	for name, v := range c.PreviewSecrets() {
		add("secrets."+name, v)
	}
	if g := c.GitHub; g != nil {
		add("github.token", g.Token)
		add("github.private_key", g.PrivateKey)
		for i, s := range g.WebhookSecrets() {
			add("github.webhook_secret["+strconv.Itoa(i)+"]", s)
		}
		add("github.oauth.client_secret", g.OAuth.ClientSecret)
	}
	add("access_password", c.AccessPassword)
	for i, r := range c.Repos {
		add("repos["+strconv.Itoa(i)+"].access_password", r.AccessPassword)
	}
	add("tls.dns_api_token", c.TLS.DNSAPIToken)
	add("dashboard.token", c.Dashboard.Token)
	add("dashboard.password", c.Dashboard.Password)
	add("registry.password", c.Registry.Password)
	return out
}
