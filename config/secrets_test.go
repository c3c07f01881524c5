package config

import (
	"maps"
	"slices"
	"testing"
)

func TestPreviewSecrets(t *testing.T) {
	c, err := ParseController([]byte("secrets: {STRIPE_KEY: {value: sk_test_1}, EMPTY: {}}\n"), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	got := c.PreviewSecrets()
	if len(got) != 2 || got["STRIPE_KEY"] != "sk_test_1" || got["EMPTY"] != "" {
		t.Errorf("PreviewSecrets = %v", got)
	}
}

// Every secret value the configuration holds is among HeldSecrets, each
// webhook secret of a rotation on its own, and a preview secret named like
// one of Slipway's own keys does not hide it.
func TestHeldSecrets(t *testing.T) {
	c, err := ParseController([]byte(`
github: {token: gh-token-value, private_key: gh-private-key, webhook_secret: "hook-old,hook-new"}
tls: {dns_provider: cloudflare, dns_api_token: dns-token-value}
dashboard: {token: dash-token-value, user: admin, password: dash-password}
secrets:
  STRIPE_KEY: {value: sk_test_1}
  github.token: {value: preview-named-like-ours}
  EMPTY: {}
`), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	held := c.HeldSecrets()
	values := slices.Sorted(maps.Values(held))
	want := []string{"dash-password", "dash-token-value", "dns-token-value", "gh-private-key", "gh-token-value", "hook-new", "hook-old", "preview-named-like-ours", "sk_test_1"}
	if !slices.Equal(values, want) {
		t.Errorf("HeldSecrets values = %v\nwant %v\n(%v)", values, want, held)
	}
	if held["secrets.STRIPE_KEY"] != "sk_test_1" || held["github.token"] != "gh-token-value" {
		t.Errorf("HeldSecrets names: %v", held)
	}
	local, err := ParseController(nil, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := local.HeldSecrets(); len(got) != 0 {
		t.Errorf("a configuration without secrets holds %v", got)
	}
}
