package config

import (
	"slices"
	"testing"
)

func TestPolicyKeys(t *testing.T) {
	dir := t.TempDir()
	cfg := writeFile(t, dir, "slipway.yaml", `
policy:
  allowed_registries: ["registry.internal:5000"]
  reserved_names: [vault]
  project_caps: {services: 10, memory: 8g}
repos:
  - name: acme/big
    policy:
      allowed_registries: ["10.0.0.5"]
      project_caps: {services: 200, containers: 300}
  - name: acme/small
`)
	c, err := LoadController(cfg, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultProjectCaps()
	want.Services, want.Memory = 10, 8<<30
	if c.Policy.ProjectCaps != want {
		t.Errorf("global caps %+v, want %+v (keys left out keep their defaults)", c.Policy.ProjectCaps, want)
	}
	big, _ := c.Repo("acme/big")
	merged := c.Policy.Merge(big.Policy)
	want.Services, want.Containers = 200, 300
	if merged.ProjectCaps != want {
		t.Errorf("acme/big caps %+v, want %+v (a repository's keys replace the global ones)", merged.ProjectCaps, want)
	}
	if !slices.Equal(merged.AllowedRegistries, []string{"registry.internal:5000", "10.0.0.5"}) || !slices.Equal(merged.ReservedNames, []string{"vault"}) {
		t.Errorf("acme/big lists %v %v", merged.AllowedRegistries, merged.ReservedNames)
	}
	small, _ := c.Repo("acme/small")
	if got := c.Policy.Merge(small.Policy).ProjectCaps; got.Services != 10 || got.Containers != 100 {
		t.Errorf("acme/small caps %+v", got)
	}
}

func TestProjectCapsOr(t *testing.T) {
	got := ProjectCaps{Volumes: 3, CPUs: 2.5}.Or(DefaultProjectCaps())
	want := DefaultProjectCaps()
	want.Volumes, want.CPUs = 3, 2.5
	if got != want {
		t.Errorf("Or = %+v, want %+v", got, want)
	}
}

func TestImpliedReservedNames(t *testing.T) {
	for _, tc := range []struct {
		apiURL, ca string
		want       []string
	}{
		{"https://api.github.com/", "", nil},
		{"http://github:8080/api/v3/", "https://acme-ca:14000/dir", []string{"github", "acme-ca"}},
		{"http://GHE/", "https://10.0.0.5/dir", []string{"ghe"}},
		{"http://[::1]:8080/", "::not a url", nil},
	} {
		c := Defaults()
		c.GitHub = &GitHub{APIURL: tc.apiURL}
		c.TLS.CA = tc.ca
		if got := c.ImpliedReservedNames(); !slices.Equal(got, tc.want) {
			t.Errorf("api_url %q ca %q: %v, want %v", tc.apiURL, tc.ca, got, tc.want)
		}
	}
	local := Defaults()
	if got := local.ImpliedReservedNames(); got != nil {
		t.Errorf("local mode: %v", got)
	}
	// The swarm registry's address and API: Slipway's container sends the
	// registry's password there.
	sw := Defaults()
	sw.Engine = EngineSwarm
	sw.Registry = Registry{Address: "registry:5000", API: "http://regapi:5000"}
	if got := sw.ImpliedReservedNames(); !slices.Equal(got, []string{"registry", "regapi"}) {
		t.Errorf("swarm registry: %v", got)
	}
	sw.Registry = Registry{Address: "127.0.0.1:5000", API: "http://172.17.0.1:5000"}
	if got := sw.ImpliedReservedNames(); got != nil {
		t.Errorf("swarm registry by address: %v", got)
	}
}

func TestPolicyFor(t *testing.T) {
	c := Defaults()
	c.GitHub = &GitHub{APIURL: "http://ghe:8080/api/v3/"}
	c.Policy.ReservedNames = []string{"vault"}
	p := c.PolicyFor(RepoPolicy{Policy: Policy{ReservedNames: []string{"ldap"}, ProjectCaps: ProjectCaps{Services: 5}}})
	if !slices.Equal(p.ReservedNames, []string{"vault", "ldap", "ghe"}) || p.ProjectCaps.Services != 5 || p.ProjectCaps.Containers != 100 {
		t.Errorf("PolicyFor = %+v", p)
	}
	if !slices.Equal(c.Policy.ReservedNames, []string{"vault"}) {
		t.Errorf("PolicyFor changed the global policy: %v", c.Policy.ReservedNames)
	}
}
