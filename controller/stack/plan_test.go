package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack/loader"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

func TestEvaluate(t *testing.T) {
	running := func(h container.HealthStatus) *container.State {
		st := &container.State{Status: container.StateRunning, Running: true}
		if h != "" {
			st.Health = &container.Health{Status: h, Log: []*container.HealthcheckResult{{Output: "connection refused\n"}}}
		}
		return st
	}
	exited := func(code int) *container.State {
		return &container.State{Status: container.StateExited, ExitCode: code}
	}
	long := time.Minute
	tests := []struct {
		name   string
		o      observation
		cond   string
		want   readyState
		reason string
	}{
		{"running, no healthcheck, long enough", observation{State: running(""), Uptime: long}, conditionReady, ready, "running"},
		{"running, no healthcheck, just started", observation{State: running(""), Uptime: 100 * time.Millisecond}, conditionReady, notYet, "just started"},
		{"healthy", observation{State: running(container.Healthy)}, conditionReady, ready, "running"},
		{"health starting", observation{State: running(container.Starting)}, conditionReady, notYet, "starting"},
		{"unhealthy names the probe", observation{State: running(container.Unhealthy)}, conditionReady, failed, "connection refused"},
		{"restarted", observation{State: running(""), Restarted: true, Uptime: long}, conditionReady, failed, "keeps restarting"},
		{"restarting flag", observation{State: &container.State{Status: container.StateRestarting, Restarting: true, ExitCode: 2}}, conditionReady, failed, "exit code 2"},
		{"one-shot completed", observation{State: exited(0), Restart: container.RestartPolicyDisabled}, conditionReady, ready, "completed"},
		{"one-shot failed", observation{State: exited(1), Restart: container.RestartPolicyDisabled}, conditionReady, failed, "code 1"},
		{"exit 0 under restart always is not done", observation{State: exited(0), Restart: container.RestartPolicyAlways}, conditionReady, failed, "code 0"},
		{"oom", observation{State: &container.State{Status: container.StateExited, OOMKilled: true, ExitCode: 137}}, conditionReady, failed, "memory"},
		{"created", observation{State: &container.State{Status: container.StateCreated}}, conditionReady, notYet, "created"},
		{"healthy condition without healthcheck", observation{State: running("")}, types.ServiceConditionHealthy, failed, "no healthcheck"},
		{"healthy condition met", observation{State: running(container.Healthy)}, types.ServiceConditionHealthy, ready, ""},
		{"completed condition, still running", observation{State: running(""), Uptime: long}, types.ServiceConditionCompletedSuccessfully, notYet, "still running"},
		{"completed condition met", observation{State: exited(0)}, types.ServiceConditionCompletedSuccessfully, ready, ""},
		{"completed condition failed", observation{State: exited(4)}, types.ServiceConditionCompletedSuccessfully, failed, "code 4"},
		{"no state", observation{}, conditionReady, notYet, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := evaluate(tt.o, tt.cond, time.Second)
			if got != tt.want || !strings.Contains(reason, tt.reason) {
				t.Errorf("evaluate = %v %q, want %v containing %q", got, reason, tt.want, tt.reason)
			}
		})
	}
}

func TestLabelInstruction(t *testing.T) {
	got := labelInstruction(map[string]string{"b": "2", "a": `quote " me`, "c": ""})
	if want := "LABEL \"a\"=\"quote \\\" me\" \"b\"=\"2\" \"c\"=\"\"\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestLabelContextRefusesOddImageIDs(t *testing.T) {
	for _, id := range []string{"", "busybox", "sha256:abc\nRUN x", "sha256:a b"} {
		if _, err := labelContext(id, nil); err == nil {
			t.Errorf("labelContext(%q) accepted", id)
		}
	}
	if _, err := labelContext("sha256:0123abcd", map[string]string{"a": "b"}); err != nil {
		t.Errorf("labelContext: %v", err)
	}
}

// Every reserved key an image carries that Slipway does not set gets an
// explicit empty value; the others are left alone.
func TestClearImageLabels(t *testing.T) {
	labels := map[string]string{contract.LabelProject: "acme-shop-pr-1", "app": "mine"}
	contract.ClearImageLabels(labels, map[string]string{
		contract.LabelProject:   "acme-shop-pr-2",
		contract.LabelRouteHost: "pr-2.localhost",
		"com.docker.compose.x":  "y",
		"dev.slipway.future":    "z",
		"org.opencontainers.x":  "kept by the engine",
		"app":                   "image's",
	})
	want := map[string]string{
		contract.LabelProject:   "acme-shop-pr-1",
		contract.LabelRouteHost: "",
		"com.docker.compose.x":  "",
		"dev.slipway.future":    "",
		"app":                   "mine",
	}
	if fmt.Sprint(labels) != fmt.Sprint(want) {
		t.Errorf("labels = %v, want %v", labels, want)
	}
}

func TestCheckReservedLabels(t *testing.T) {
	want := map[string]string{contract.LabelProject: "p1", contract.LabelRouteHost: "", "app": "x"}
	tests := []struct {
		name string
		have map[string]string
		ok   bool
	}{
		{"exactly Slipway's", map[string]string{contract.LabelProject: "p1", contract.LabelRouteHost: "", "app": "other", "org.x": "y"}, true},
		{"the LABEL never happened", map[string]string{contract.LabelProject: "p2"}, false},
		{"an empty one missing", map[string]string{contract.LabelProject: "p1"}, false},
		{"an extra reserved key", map[string]string{contract.LabelProject: "p1", contract.LabelRouteHost: "", contract.LabelPR: "2"}, false},
		{"an extra reserved key, empty", map[string]string{contract.LabelProject: "p1", contract.LabelRouteHost: "", contract.LabelPR: ""}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := checkReservedLabels(tt.have, want); (err == nil) != tt.ok {
				t.Errorf("checkReservedLabels = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in     string
		health string
		code   int
	}{
		{"Up 3 minutes (healthy)", "healthy", 0},
		{"Up 1 second (health: starting)", "starting", 0},
		{"Up 2 hours (unhealthy)", "unhealthy", 0},
		{"Exited (137) 5 seconds ago", "", 137},
		{"Exited (0) About a minute ago", "", 0},
		{"Created", "", 0},
	}
	for _, tt := range tests {
		h, c := parseStatus(tt.in)
		if h != tt.health || c != tt.code {
			t.Errorf("parseStatus(%q) = %q %d, want %q %d", tt.in, h, c, tt.health, tt.code)
		}
	}
}

func TestCapabilities(t *testing.T) {
	got := capabilities(types.ServiceConfig{ContainerSpec: types.ContainerSpec{CapAdd: []string{"cap_net_admin"}, CapDrop: []string{"KILL"}}})
	if !slices.Contains(got, "NET_ADMIN") || slices.Contains(got, "KILL") || !slices.Contains(got, "CHOWN") {
		t.Errorf("capabilities = %v", got)
	}
	if got := capabilities(types.ServiceConfig{ContainerSpec: types.ContainerSpec{CapDrop: []string{"ALL"}, CapAdd: []string{"ALL"}}}); len(got) != 0 {
		t.Errorf("drop ALL kept %v", got)
	}
}

func TestDecodeBuildStream(t *testing.T) {
	var lines []string
	err := decodeBuildStream(strings.NewReader(`{"stream":"Step 1/2 : FROM x\n"}{"stream":"partial "}{"stream":"line\n"}{"errorDetail":{"message":"boom"},"error":"boom"}`), func(l string) { lines = append(lines, l) })
	if err == nil || err.Error() != "boom" {
		t.Fatalf("err = %v, want boom", err)
	}
	if want := []string{"Step 1/2 : FROM x", "partial line"}; !slices.Equal(lines, want) {
		t.Errorf("lines = %q, want %q", lines, want)
	}
	if err := decodeBuildStream(strings.NewReader(`{"stream":"ok\n"}{"aux":{"ID":"sha256:x"}}`), func(string) {}); err != nil {
		t.Errorf("clean stream: %v", err)
	}
}

func TestLoadNamespacesAndRoutes(t *testing.T) {
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		"docker-compose.yml": `
name: ignored-by-slipway
services:
  web:
    build: .
    container_name: legacy-web
    ports: ["80:8080", "127.0.0.1:9090:9090"]
    environment:
      API: ${SLIPWAY_URL_API}
      SELF: ${SLIPWAY_URL}
      FROM_DOTENV: ${DOTENV_VALUE}
      FROM_HOST: ${HOME:-unset}
  api:
    image: example/api:1
    expose: ["3000"]
    networks: [back]
networks:
  back:
    name: shared-global-name
volumes:
  data:
    name: escapes-namespace
x-slipway:
  expose:
    - service: web
    - service: api
  env:
    GREETING: "pr {{.Number}} of {{.Repo}}"
`,
		".env":       "DOTENV_VALUE=from-dotenv\n",
		"Dockerfile": "FROM scratch\n",
	})
	src := Source{Dir: dir, Owner: "Acme", Repo: "Web.Shop", PR: 7, SHA: sha1}
	// The policy rejects custom network and volume names (a top-level name
	// is ignored; SW-PROJ-001 is retired but still accepted in allow); even
	// where an operator relaxes those rules, the names stay in the
	// project's namespace.
	relaxed := config.Policy{Allow: []string{"SW-PROJ-001", "SW-NET-005", "SW-VOL-004"}}
	if _, err := Load(context.Background(), src, LoadOptions{}); err == nil {
		t.Fatal("the default policy accepted custom project, network and volume names")
	}
	p, err := Load(context.Background(), src, LoadOptions{Hosts: HostOptions{Domain: "preview.example.com", Scheme: "https"}, Policy: relaxed})
	if err != nil {
		t.Fatal(err)
	}
	if p.Name != "acme-web-shop-pr-7" {
		t.Errorf("name %q", p.Name)
	}
	wantRoutes := []Route{
		{Service: "web", Host: "pr-7.preview.example.com", Port: 8080, Primary: true, URL: "https://pr-7.preview.example.com"},
		{Service: "api", Host: "api-pr-7.preview.example.com", Port: 3000, URL: "https://api-pr-7.preview.example.com"},
	}
	if !slices.Equal(p.Routes, wantRoutes) {
		t.Errorf("routes\n%+v\nwant\n%+v", p.Routes, wantRoutes)
	}
	web := p.Project.Services["web"]
	if len(web.Ports) != 0 || !slices.Equal(web.Expose, []string{"8080/tcp", "9090/tcp"}) {
		t.Errorf("web ports %v expose %v: want no published ports, exposed 8080 and 9090", web.Ports, web.Expose)
	}
	if web.ContainerName != "" || !slices.Contains(web.Networks["default"].Aliases, "legacy-web") {
		t.Errorf("container_name not turned into an alias: %q %+v", web.ContainerName, web.Networks["default"])
	}
	if web.Image != "acme-web-shop-pr-7-web:"+contract.ShortSHA(sha1) {
		t.Errorf("web image %q", web.Image)
	}
	env := func(s types.ServiceConfig, k string) string {
		if v := s.Environment[k]; v != nil {
			return *v
		}
		return "<unset>"
	}
	for k, want := range map[string]string{
		"API": "https://api-pr-7.preview.example.com", "SELF": "https://pr-7.preview.example.com",
		"FROM_DOTENV": "from-dotenv", "FROM_HOST": "unset", "GREETING": "pr 7 of Web.Shop",
		contract.EnvPR: "7", contract.EnvRepo: "Acme/Web.Shop", contract.EnvSHA: sha1,
		contract.EnvURLPrefix + "API": "https://api-pr-7.preview.example.com",
	} {
		if got := env(web, k); got != want {
			t.Errorf("web env %s = %q, want %q", k, got, want)
		}
	}
	if got := env(p.Project.Services["api"], contract.EnvSHA); got != "<unset>" {
		t.Errorf("image-only api got SLIPWAY_SHA %q", got)
	}
	if n := p.Project.Networks["back"].Name; n != "acme-web-shop-pr-7_back" {
		t.Errorf("network name %q escapes the namespace", n)
	}
	if n := p.Project.Volumes["data"].Name; n != "acme-web-shop-pr-7_data" {
		t.Errorf("volume name %q escapes the namespace", n)
	}
	if !slices.Equal(p.Built, []string{"web"}) {
		t.Errorf("built %v", p.Built)
	}
}

// With expose in .slipway.yml, the URL variables reach interpolation and the
// services' environment too.
func TestLoadURLsWithExposeInRepoFile(t *testing.T) {
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		".slipway.yml": "expose:\n  - service: web\n    port: 3000\n",
		"compose.yaml": "services:\n  web:\n    image: w\n    environment:\n      PUBLIC_URL: ${SLIPWAY_URL}\n",
	})
	p, err := Load(context.Background(), Source{Dir: dir, Owner: "o", Repo: "r", PR: 4, SHA: sha1}, LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	env := p.Project.Services["web"].Environment
	for k, want := range map[string]string{"PUBLIC_URL": "http://pr-4.localhost", contract.EnvURL: "http://pr-4.localhost", contract.EnvURLPrefix + "WEB": "http://pr-4.localhost"} {
		if v := env[k]; v == nil || *v != want {
			t.Errorf("%s = %v, want %q", k, v, want)
		}
	}
}

func TestLoadDefaultExposeIsFirstServiceWithAPort(t *testing.T) {
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": `
services:
  zz-worker:
    image: w
  mm-front:
    image: front
    ports: ["3000"]
  aa-admin:
    image: admin
    ports: ["4000"]
`})
	p, err := Load(context.Background(), Source{Dir: dir, Owner: "o", Repo: "r", PR: 1, SHA: sha1}, LoadOptions{Hosts: HostOptions{Port: 8080}})
	if err != nil {
		t.Fatal(err)
	}
	want := []Route{{Service: "mm-front", Host: "pr-1.localhost", Port: 3000, Primary: true, URL: "http://pr-1.localhost:8080"}}
	if !slices.Equal(p.Routes, want) {
		t.Errorf("routes %+v, want %+v", p.Routes, want)
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		src   func(*Source)
		want  string
	}{
		{"no compose file", map[string]string{"README": "x"}, nil, "no compose file"},
		{"expose unknown service", map[string]string{"compose.yaml": "services:\n  a:\n    image: x\n", ".slipway.yml": "expose: [{service: b}]\n"}, nil, `service "b" is not in the compose project`},
		{"expose without port", map[string]string{"compose.yaml": "services:\n  a:\n    image: x\n", ".slipway.yml": "expose: [{service: a}]\n"}, nil, "has no port"},
		{"bad .slipway.yml key", map[string]string{"compose.yaml": "services:\n  a:\n    image: x\n", ".slipway.yml": "exposee: []\n"}, nil, "exposee"},
		{"job for unknown service", map[string]string{"compose.yaml": "services:\n  a:\n    image: x\n", ".slipway.yml": "after_deploy: [{service: nope, command: [x]}]\n"}, nil, "after_deploy[0]"},
		{"missing secret", map[string]string{"compose.yaml": "services:\n  a:\n    image: x\n", ".slipway.yml": "secrets: [STRIPE_KEY]\n"}, nil, `secret "STRIPE_KEY" is not configured`},
		{"compose file outside the checkout", map[string]string{"compose.yaml": "services:\n  a:\n    image: x\n", ".slipway.yml": "compose: [../other.yaml]\n"}, nil, "leaves the repository"},
		{"no SHA", map[string]string{"compose.yaml": "services:\n  a:\n    image: x\n"}, func(s *Source) { s.SHA = "" }, "no commit SHA"},
		{"bad PR number", map[string]string{"compose.yaml": "services:\n  a:\n    image: x\n"}, func(s *Source) { s.PR = 0 }, "pull request number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dockertest.WriteFiles(t, dir, tt.files)
			src := Source{Dir: dir, Owner: "o", Repo: "r", PR: 1, SHA: sha1}
			if tt.src != nil {
				tt.src(&src)
			}
			_, err := Load(context.Background(), src, LoadOptions{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("not ErrBadInput: %v", err)
			}
		})
	}
}

func TestLoadSecretsOnlyForTrusted(t *testing.T) {
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": "services:\n  a:\n    image: x\n", ".slipway.yml": "secrets: [STRIPE_KEY]\n"})
	src := Source{Dir: dir, Owner: "o", Repo: "r", PR: 1, SHA: sha1}
	p, err := Load(context.Background(), src, LoadOptions{Secrets: map[string]string{"STRIPE_KEY": "sk_test_123"}})
	if err != nil {
		t.Fatal(err)
	}
	if v := p.Project.Services["a"].Environment["STRIPE_KEY"]; v == nil || *v != "sk_test_123" {
		t.Errorf("trusted PR lacks the secret")
	}
	p, err = Load(context.Background(), src, LoadOptions{Secrets: map[string]string{"STRIPE_KEY": "sk_test_123"}, WithholdSecrets: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := p.Project.Services["a"].Environment["STRIPE_KEY"]; ok {
		t.Errorf("untrusted PR got the secret")
	}
	if !slices.Equal(p.WithheldSecrets, []string{"STRIPE_KEY"}) {
		t.Errorf("withheld %v", p.WithheldSecrets)
	}
}

func TestSpecAppliesHardeningAndLimits(t *testing.T) {
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": `
services:
  small:
    image: x
    mem_limit: 64m
    pids_limit: 100
    cpus: 0.25
  greedy:
    image: x
    deploy:
      resources:
        limits: {memory: 8g, cpus: "8", pids: 100000}
      replicas: 2
    security_opt: ["no-new-privileges:true"]
`})
	lim := config.Limits{Memory: 512 << 20, CPUs: 1, PIDs: 256, LogSize: 5 << 20}
	p, err := Load(context.Background(), Source{Dir: dir, Owner: "o", Repo: "r", PR: 1, SHA: sha1}, LoadOptions{Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	small, err := specFor(p, "small", 1, "sha256:img")
	if err != nil {
		t.Fatal(err)
	}
	if r := small.Host.Resources; r.Memory != 64<<20 || *r.PidsLimit != 100 || r.NanoCPUs != 250_000_000 {
		t.Errorf("small asks for less and gets it: %+v", r)
	}
	greedy, err := specFor(p, "greedy", 2, "sha256:img")
	if err != nil {
		t.Fatal(err)
	}
	h := greedy.Host
	if h.Resources.Memory != 512<<20 || *h.Resources.PidsLimit != 256 || h.Resources.NanoCPUs != 1e9 {
		t.Errorf("greedy is not capped: %+v", h.Resources)
	}
	if !slices.Equal(h.CapDrop, []string{"ALL"}) || slices.Contains(h.CapAdd, "NET_RAW") || !slices.Equal(h.SecurityOpt, []string{"no-new-privileges:true"}) || h.Privileged {
		t.Errorf("hardening missing: capdrop %v secopt %v", h.CapDrop, h.SecurityOpt)
	}
	if h.LogConfig.Config["max-size"] != "5242880" {
		t.Errorf("log cap %v", h.LogConfig)
	}
	if greedy.Name != "o-r-pr-1-greedy-2" || !slices.Equal(greedy.Networks[0].Aliases, []string{"o-r-pr-1-greedy-2", "greedy"}) {
		t.Errorf("name %s aliases %v", greedy.Name, greedy.Networks[0].Aliases)
	}
	l := greedy.Config.Labels
	for k, want := range map[string]string{
		contract.LabelProject: "o-r-pr-1", contract.LabelService: "greedy", contract.LabelNumber: "2",
		contract.LabelOneoff: "False", contract.LabelManaged: "true", contract.LabelRepo: "o/r", contract.LabelPR: "1",
		contract.LabelSHA: sha1, contract.LabelVersion: contract.ComposeVersion,
	} {
		if l[k] != want {
			t.Errorf("label %s = %q, want %q", k, l[k], want)
		}
	}
	if l[contract.LabelConfigHash] == "" {
		t.Error("no config hash")
	}
	// The hash ignores the SHA label and follows the image.
	again, _ := specFor(p, "greedy", 2, "sha256:img")
	p.Source.SHA = sha2
	newSHA, _ := specFor(p, "greedy", 2, "sha256:img")
	newImage, _ := specFor(p, "greedy", 2, "sha256:other")
	if again.Hash != greedy.Hash || newSHA.Hash != greedy.Hash || newImage.Hash == greedy.Hash {
		t.Errorf("hash: same %v, new SHA same %v, new image differs %v", again.Hash == greedy.Hash, newSHA.Hash == greedy.Hash, newImage.Hash != greedy.Hash)
	}
}

func TestLineWriterPrefixes(t *testing.T) {
	var b bytes.Buffer
	lw := &lineWriter{w: &b}
	lw.Println("web", "hello")
	lw.Printf("api", "n=%d", 3)
	if b.String() != "web | hello\napi | n=3\n" {
		t.Errorf("%q", b.String())
	}
}

func TestLoadRefusesAHostOverrideNamingAnotherPR(t *testing.T) {
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		".slipway.yml": "expose:\n  - service: web\n    port: 80\n    host: \"pr-9.{{.Domain}}\"\n",
		"compose.yaml": "services:\n  web:\n    image: w\n",
	})
	_, err := Load(context.Background(), Source{Dir: dir, Owner: "o", Repo: "r", PR: 10, SHA: sha1}, LoadOptions{})
	if err == nil || !strings.Contains(err.Error(), "pr-10") {
		t.Fatalf("PR 10 claiming pr-9's host: %v", err)
	}
}

func TestUntrustedBuildsMayNotSetExtraHosts(t *testing.T) {
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": "services:\n  web:\n    build:\n      context: .\n      extra_hosts: [\"deb.debian.org:203.0.113.7\"]\n",
		"Dockerfile":   "FROM scratch\n",
	})
	src := Source{Dir: dir, Owner: "o", Repo: "r", PR: 1, SHA: sha1}
	if _, err := Load(context.Background(), src, LoadOptions{}); err != nil {
		t.Fatalf("a trusted PR: %v", err)
	}
	if _, err := Load(context.Background(), src, LoadOptions{WithholdSecrets: true}); err == nil || !strings.Contains(err.Error(), "extra_hosts") {
		t.Fatalf("an untrusted PR with build.extra_hosts: %v", err)
	}
}

// A repository's own expose[].host may name only hosts its templates give
// the PR: exact, whole-host matching (repo shop may not take workshop's).
func TestLoadHostOverrideOwnership(t *testing.T) {
	multi := HostOptions{Domain: "x.dev", PrimaryTemplate: contract.MultiRepoPrimaryHostTemplate, ServiceTemplate: contract.MultiRepoServiceHostTemplate}
	tests := []struct {
		name, host string
		hosts      HostOptions
		ok         bool
	}{
		{"own service host", "docs-pr-9.{{.Domain}}", HostOptions{Domain: "x.dev"}, true},
		{"another PR", "pr-90.{{.Domain}}", HostOptions{Domain: "x.dev"}, false},
		{"multi: own primary", "pr-9-shop.{{.Domain}}", multi, true},
		{"multi: another repository by substring", "pr-9-workshop.{{.Domain}}", multi, false},
		{"multi: single-repo form", "pr-9.{{.Domain}}", multi, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			dockertest.WriteFiles(t, dir, map[string]string{
				".slipway.yml": "expose:\n  - service: web\n    port: 80\n    host: \"" + tt.host + "\"\n",
				"compose.yaml": "services:\n  web:\n    image: w\n",
			})
			_, err := Load(context.Background(), Source{Dir: dir, Owner: "acme", Repo: "shop", PR: 9, SHA: sha1}, LoadOptions{Hosts: tt.hosts})
			if (err == nil) != tt.ok {
				t.Fatalf("host %q: err = %v, want ok %v", tt.host, err, tt.ok)
			}
		})
	}
}

// TestProfilesFromXSlipwayAreChecked: profiles that x-slipway enables load
// the services they add, and the policy sees those services.
func TestProfilesFromXSlipwayAreChecked(t *testing.T) {
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": "x-slipway:\n  profiles: [debug]\n" +
			"services:\n  web:\n    image: w\n  shell:\n    image: w\n    profiles: [debug]\n    privileged: true\n",
	})
	p, err := Load(context.Background(), Source{Dir: dir, Owner: "o", Repo: "r", PR: 1, SHA: sha1}, LoadOptions{})
	var perr *PolicyError
	if !errors.As(err, &perr) || !strings.Contains(err.Error(), `SW-PRIV-001 service "shell"`) {
		t.Fatalf("a privileged service enabled by an x-slipway profile: %v", err)
	}
	if _, ok := p.Project.Services["shell"]; !ok {
		t.Errorf("the profile's service was not loaded: %v", p.Project.ServiceNames())
	}
}

// deniedLoader answers every load as the confined loader answers a read the
// kernel refused.
type deniedLoader struct{}

func (deniedLoader) Load(context.Context, loader.Request) (*types.Project, error) {
	return nil, &loader.Error{File: "/etc/hostname", Denied: true, Reason: "refused"}
}

// TestLoadReportsAReadTheKernelRefused: whatever the pre-load check missed,
// a read the confined loader's kernel refused is a policy violation naming
// the file (the confinement itself is tested in package loader).
func TestLoadReportsAReadTheKernelRefused(t *testing.T) {
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": "services:\n  web:\n    image: w\n"})
	_, err := Load(context.Background(), Source{Dir: dir, Owner: "o", Repo: "r", PR: 1, SHA: sha1}, LoadOptions{Loader: deniedLoader{}})
	var perr *PolicyError
	if !errors.As(err, &perr) || len(perr.Violations) != 1 || perr.Violations[0].Rule != "SW-FILE-001" || perr.Violations[0].Value != "/etc/hostname" {
		t.Fatalf("want one SW-FILE-001 naming /etc/hostname, got %v", err)
	}
	if !errors.Is(err, ErrBadInput) {
		t.Errorf("not ErrBadInput: %v", err)
	}
}

func TestCopyUnreserved(t *testing.T) {
	dst := map[string]string{}
	contract.CopyUnreserved(dst, map[string]string{contract.LabelRouteHost: "pr-2.localhost", "com.docker.compose.project": "x", "app.tier": "web"})
	if fmt.Sprint(dst) != "map[app.tier:web]" {
		t.Errorf("copied %v", dst)
	}
}
