package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadControllerDefaults(t *testing.T) {
	c, err := LoadController("", envMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "localhost" || c.Listen.HTTP != ":8080" || c.TLS.Mode != TLSOff || c.Firewall != FirewallAuto {
		t.Errorf("defaults: domain %q http %q tls %q firewall %q", c.Domain, c.Listen.HTTP, c.TLS.Mode, c.Firewall)
	}
	if c.Limits.Builds != 2 || c.Limits.Environments != 20 || c.Limits.Memory != 1<<30 || c.Limits.PIDs != 512 {
		t.Errorf("limits %+v", c.Limits)
	}
	if c.Resync.D() != 5*time.Minute {
		t.Errorf("resync %v", c.Resync)
	}
	if c.WakeTimeout.D() != 30*time.Second {
		t.Errorf("wake_timeout %v", c.WakeTimeout)
	}
}

func TestLoadControllerFileEnvAndSecretFiles(t *testing.T) {
	dir := t.TempDir()
	token := writeFile(t, dir, "token", "ghp_filetoken\n")
	secret := writeFile(t, dir, "secret", "s1,s2\n")
	stripe := writeFile(t, dir, "stripe", "sk_from_file\n")
	cfg := writeFile(t, dir, "slipway.yaml", `
domain: preview.example.com
tls: {mode: on-demand, email: ops@example.com}
github:
  token_file: `+token+`
  webhook_secret_file: `+secret+`
repos:
  - name: acme/webshop
  - name: acme/api
    forks: never
    trigger: label:preview
    ttl: 3d
limits: {environments: 5, builds: 1, memory: 512m, cpus: 0.5, pids: 256}
resync: 90s
secrets:
  STRIPE_TEST_KEY: {}
  INLINE: {value: inline-value}
policy:
  cap_add: [NET_ADMIN]
`)
	c, err := LoadController(cfg, envMap(map[string]string{
		"SLIPWAY_DOMAIN":                       "pr.example.org",
		"SLIPWAY_LIMITS_BUILDS":                "3",
		"SLIPWAY_SECRET_STRIPE_TEST_KEY_FILE":  stripe,
		"SLIPWAY_GITHUB_API_URL":               "https://ghe.example.com/api/v3/",
		"SLIPWAY_DASHBOARD_TOKEN":              "dash",
		"SLIPWAY_WAKE_TIMEOUT":                 "5s",
		"UNRELATED_VARIABLE_IS_NEVER_READ_XXX": "x",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Domain != "pr.example.org" {
		t.Errorf("env did not override the domain: %q", c.Domain)
	}
	if c.Listen.HTTP != ":80" {
		t.Errorf("with github the HTTP default is :80, got %q", c.Listen.HTTP)
	}
	if c.GitHub.Token != "ghp_filetoken" || c.GitHub.APIURL != "https://ghe.example.com/api/v3/" {
		t.Errorf("github %+v", c.GitHub)
	}
	if got := c.GitHub.WebhookSecrets(); len(got) != 2 || got[0] != "s1" || got[1] != "s2" {
		t.Errorf("webhook secrets %q", got)
	}
	if c.Secrets["STRIPE_TEST_KEY"].Value != "sk_from_file" || c.Secrets["INLINE"].Value != "inline-value" {
		t.Errorf("secrets %+v", c.Secrets)
	}
	if c.Limits.Builds != 3 || c.Limits.Environments != 5 || c.Limits.Memory != 512<<20 || c.Limits.CPUs != 0.5 {
		t.Errorf("limits %+v", c.Limits)
	}
	if c.WakeTimeout.D() != 5*time.Second {
		t.Errorf("SLIPWAY_WAKE_TIMEOUT did not override wake_timeout: %v", c.WakeTimeout)
	}
	if c.Resync.D() != 90*time.Second || c.Dashboard.Token != "dash" {
		t.Errorf("resync %v dashboard %q", c.Resync, c.Dashboard.Token)
	}
	web, ok := c.Repo("ACME/WebShop")
	if !ok || web.Forks != ForksApprove || web.Trigger != "all" || web.TriggerLabel() != "" {
		t.Errorf("webshop defaults %+v", web)
	}
	api, _ := c.Repo("acme/api")
	if api.Forks != ForksNever || api.TriggerLabel() != "preview" || api.TTL.D() != 72*time.Hour {
		t.Errorf("api %+v", api)
	}
}

func TestLoadControllerErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, yaml string
		env        map[string]string
		want       string
	}{
		{"unknown key", "domian: x\n", nil, "domian"},
		{"bad tls mode", "tls: {mode: sometimes}\n", nil, "tls.mode"},
		{"wildcard without provider", "tls: {mode: wildcard}\n", nil, "dns_provider"},
		{"github without credentials", "github: {webhook_secret: s}\n", nil, "token"},
		{"github without webhook secret", "github: {token: t}\n", nil, "webhook_secret"},
		{"missing secret file", "github: {token: t, webhook_secret_file: /nonexistent/secret}\n", nil, "webhook secret"},
		{"bad repo name", "repos: [{name: justaname}]\n", nil, "owner/repo"},
		{"duplicate repo", "repos: [{name: a/b}, {name: A/B}]\n", nil, "twice"},
		{"bad forks", "repos: [{name: a/b, forks: sometimes}]\n", nil, "forks"},
		{"bad trigger", "repos: [{name: a/b, trigger: label:}]\n", nil, "trigger"},
		{"bad duration", "resync: soon\n", nil, "duration"},
		{"bad size", "limits: {memory: lots}\n", nil, "size"},
		{"zero builds", "limits: {builds: 0}\n", nil, "limits.builds"},
		{"bad firewall", "firewall: maybe\n", nil, "firewall"},
		{"bad env number", "", map[string]string{"SLIPWAY_LIMITS_BUILDS": "two"}, "SLIPWAY_LIMITS_BUILDS"},
		{"app without key", "github: {app_id: 42, webhook_secret: s}\n", nil, "private_key"},
		{"dashboard user without password", "dashboard: {user: ops}\n", nil, "both user and password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(tt.name, " ", "_")+".yaml", tt.yaml)
			_, err := LoadController(p, envMap(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestParseRepo(t *testing.T) {
	r, err := ParseRepo([]byte(`
compose: [compose.yaml, compose.preview.yaml]
profiles: [preview]
expose:
  - service: web
    port: 8080
  - service: api
env: {FEATURE_X: "on"}
secrets: [STRIPE_TEST_KEY]
ttl: 168h
sleep_after: 30m
after_deploy:
  - service: api
    command: ["./migrate", "up"]
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Compose) != 2 || r.Expose[0].Port != 8080 || r.Expose[1].Service != "api" || r.TTL.D() != 168*time.Hour || r.SleepAfter.D() != 30*time.Minute || r.AfterDeploy[0].Command[1] != "up" {
		t.Errorf("parsed %+v", r)
	}
	for _, bad := range []struct{ yaml, want string }{
		{"compose: [/etc/passwd]\n", "relative"},
		{"compose: [../x.yaml]\n", "leaves the repository"},
		{"expose: [{port: 80}]\n", "service is required"},
		{"expose: [{service: web, port: 70000}]\n", "out of range"},
		{"env: {SLIPWAY_PR: '9'}\n", "SLIPWAY_"},
		{"after_deploy: [{command: [x]}]\n", "service is required"},
		{"ttl: forever\n", "duration"},
		{"unknown: 1\n", "unknown"},
	} {
		if _, err := ParseRepo([]byte(bad.yaml)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseRepo(%q) = %v, want an error mentioning %q", bad.yaml, err, bad.want)
		}
	}
}

func TestRepoFromExtension(t *testing.T) {
	r, err := RepoFromExtension(map[string]any{"expose": []any{map[string]any{"service": "web"}}, "ttl": "7d"})
	if err != nil || r.Expose[0].Service != "web" || r.TTL.D() != 7*24*time.Hour {
		t.Fatalf("RepoFromExtension = %+v, %v", r, err)
	}
	if _, err := RepoFromExtension(map[string]any{"exposee": 1}); err == nil || !strings.Contains(err.Error(), ComposeExtension) {
		t.Errorf("a bad x-slipway key: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 168 * time.Hour, "90s": 90 * time.Second, "1h30m": 90 * time.Minute, "0d": 0} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"-1h", "xd", "", "7 days"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func TestLoadRepoFileRefusesNonRegular(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, RepoFile)); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadRepoFile(dir); err == nil || !strings.Contains(err.Error(), "regular") {
		t.Errorf("a symlinked .slipway.yml: %v", err)
	}
	r, err := LoadRepoFile(t.TempDir())
	if r != nil || err != nil {
		t.Errorf("missing file: %v %v", r, err)
	}
}

func TestHostTemplates(t *testing.T) {
	one := &Controller{Domain: "x.dev", Repos: []RepoPolicy{{Name: "acme/shop"}}}
	if err := one.HostTemplates().OwnsHost("pr-9.x.dev", "acme/shop", 9, "web"); err != nil {
		t.Errorf("one repository: %v", err)
	}
	two := &Controller{Domain: "x.dev", Repos: []RepoPolicy{{Name: "acme/shop"}, {Name: "acme/workshop"}}}
	if err := two.HostTemplates().OwnsHost("pr-9-shop.x.dev", "acme/shop", 9, "web"); err != nil {
		t.Errorf("two repositories, own host: %v", err)
	}
	if err := two.HostTemplates().OwnsHost("pr-9-workshop.x.dev", "acme/shop", 9, "web"); err == nil {
		t.Error("two repositories: shop may claim workshop's host")
	}
	custom := &Controller{Domain: "x.dev", HostTemplate: "{{.Repo}}-{{.Number}}.{{.Domain}}"}
	if err := custom.HostTemplates().OwnsHost("shop-9.x.dev", "acme/shop", 9, "web"); err != nil {
		t.Errorf("host_template: %v", err)
	}
}

// Two owners may both have a shop: the defaults then name the owner, and
// templates that would still give two repositories one host are refused.
func TestHostTemplatesOfTwoOwnersNeverCollide(t *testing.T) {
	both := Defaults()
	both.Domain = "x.dev"
	both.Repos = []RepoPolicy{{Name: "acme/shop"}, {Name: "other/shop"}}
	if err := both.Validate(); err != nil {
		t.Fatalf("two owners' shops with the default templates: %v", err)
	}
	tmpl := both.HostTemplates()
	if err := tmpl.OwnsHost("pr-9-shop-acme.x.dev", "acme/shop", 9, ""); err != nil {
		t.Errorf("acme/shop's own host: %v", err)
	}
	if err := tmpl.OwnsHost("pr-9-shop-acme.x.dev", "other/shop", 9, ""); err == nil {
		t.Error("other/shop may claim acme/shop's host")
	}

	colliding := both
	colliding.Repos = []RepoPolicy{{Name: "acme/shop"}, {Name: "other/shop"}}
	colliding.HostTemplate = "pr-{{.Number}}-{{.Repo}}.{{.Domain}}"
	if err := colliding.Validate(); err == nil || !strings.Contains(err.Error(), "both acme/shop and other/shop") {
		t.Errorf("a host_template that gives both repositories one host: %v", err)
	}
	joined := both
	joined.Repos = []RepoPolicy{{Name: "acme/shop"}, {Name: "acme/1shop"}}
	joined.HostTemplate = "pr{{.Number}}{{.Repo}}.{{.Domain}}"
	if err := joined.Validate(); err == nil || !strings.Contains(err.Error(), "pr11shop") {
		t.Errorf("a host_template without separators (shop#11 and 1shop#1 are both pr11shop): %v", err)
	}
}
