package config

import (
	"strings"
	"testing"
)

func TestEngineDefaultsToDocker(t *testing.T) {
	c, err := ParseController(nil, envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Engine != EngineDocker {
		t.Errorf("engine %q, want docker", c.Engine)
	}
}

func TestEngineSwarmWithRegistry(t *testing.T) {
	dir := t.TempDir()
	pw := writeFile(t, dir, "pw", "s3cret\n")
	c, err := ParseController([]byte(`
engine: swarm
registry:
  address: registry.example.com:5000
  user: slipway
  password_file: `+pw+`
`), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Engine != EngineSwarm || c.Registry.Address != "registry.example.com:5000" || c.Registry.User != "slipway" || c.Registry.Password != "s3cret" {
		t.Errorf("got engine %q registry %+v", c.Engine, c.Registry)
	}
	if got := c.HeldSecrets()["registry.password"]; got != "s3cret" {
		t.Errorf("the registry password is not among the secrets Slipway masks (%q)", got)
	}
	// The environment names the password file too.
	pw2 := writeFile(t, dir, "pw2", "other")
	c, err = ParseController([]byte("engine: swarm\nregistry: {address: 127.0.0.1:5000, user: u}\n"), envMap(map[string]string{
		"SLIPWAY_REGISTRY_PASSWORD_FILE": pw2,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Registry.Password != "other" {
		t.Errorf("from env: password %q", c.Registry.Password)
	}
	c, err = ParseController([]byte("engine: swarm\nregistry: {address: 127.0.0.1:5000, api: 'http://registry:5000'}\n"), envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Registry.API != "http://registry:5000" {
		t.Errorf("api %q", c.Registry.API)
	}
}

func TestEngineConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown engine", "engine: kubernetes\n", `engine "kubernetes": want docker or swarm`},
		{"swarm without registry", "engine: swarm\n", "engine swarm needs registry.address"},
		{"scheme", "engine: swarm\nregistry: {address: 'https://r.example.com'}\n", `registry.address "https://r.example.com": has a scheme`},
		{"path", "engine: swarm\nregistry: {address: r.example.com/team}\n", "has a path"},
		{"upper case", "engine: swarm\nregistry: {address: R.example.com}\n", "upper-case"},
		{"bad port", "engine: swarm\nregistry: {address: 'r.example.com:http'}\n", "port that is not a number"},
		{"no host", "engine: swarm\nregistry: {address: ':5000'}\n", "has no host"},
		{"user without password", "engine: swarm\nregistry: {address: r.example.com, user: u}\n", "user is set without password"},
		{"password without user", "engine: swarm\nregistry: {address: r.example.com, password: p}\n", "password (or password_file) is set without user"},
		{"unknown key", "engine: swarm\nregistry: {address: r.example.com, username: u}\n", "field username not found"},
		{"api without scheme", "engine: swarm\nregistry: {address: '127.0.0.1:5000', api: 'registry:5000'}\n", `registry.api "registry:5000": has no http or https scheme`},
		{"api with path", "engine: swarm\nregistry: {address: '127.0.0.1:5000', api: 'http://registry:5000/v2'}\n", "has a path or a query"},
		{"api over http to a name with a login", "engine: swarm\nregistry: {address: '127.0.0.1:5000', api: 'http://registry:5000', user: u, password: p}\n", "sends the registry's password over plain http to a name"},
		{"api with an empty query", "engine: swarm\nregistry: {address: '127.0.0.1:5000', api: 'http://registry:5000?'}\n", "has a path or a query"},
		{"api with user", "engine: swarm\nregistry: {address: '127.0.0.1:5000', api: 'http://u:p@registry:5000'}\n", "has a user"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseController([]byte(tc.yaml), envMap(nil))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to contain %q", err, tc.want)
			}
		})
	}
	dir := t.TempDir()
	_, err := ParseController([]byte("engine: swarm\nregistry: {address: r.example.com, user: u, password_file: "+dir+"/missing}\n"), envMap(nil))
	if err == nil || !strings.Contains(err.Error(), "read registry password") {
		t.Errorf("missing password file: err = %v", err)
	}
}
