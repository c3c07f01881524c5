package swarm

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
)

// loadPlan loads compose (and any extra files) through stack.Load, as the
// controller does, with the default policy and limits.
func loadPlan(t *testing.T, compose string, files map[string]string) *stack.Plan {
	t.Helper()
	dir := t.TempDir()
	all := map[string]string{"compose.yaml": compose}
	for k, v := range files {
		all[k] = v
	}
	dockertest.WriteFiles(t, dir, all)
	p, err := stack.Load(context.Background(), stack.Source{Dir: dir, Owner: "acme", Repo: "shop", PR: 7, SHA: sha1},
		stack.LoadOptions{Limits: config.Limits{Memory: 512 << 20, CPUs: 1, PIDs: 256, LogSize: 5 << 20}})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

// inputFor gives every service an image (a digest reference for built ones).
func inputFor(p *stack.Plan) convertInput {
	in := convertInput{Images: map[string]string{}, Secrets: map[string]objectRef{}, Configs: map[string]objectRef{}, Pins: map[string]string{}}
	for name := range p.Project.Services {
		if p.IsBuilt(name) {
			in.Images[name] = "registry.example.com/" + p.Name + "-" + name + ":111111111111@sha256:" + strings.Repeat("a", 64)
		} else {
			in.Images[name] = p.Image(name)
		}
	}
	for key := range p.Project.Secrets {
		in.Secrets[key] = objectRef{ID: "sid-" + key, Name: p.Name + "_" + key + "_abc"}
	}
	for key := range p.Project.Configs {
		in.Configs[key] = objectRef{ID: "cid-" + key, Name: p.Name + "_" + key + "_abc"}
	}
	return in
}

func TestServiceSpec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		compose string
		files   map[string]string
		service string
		in      func(p *stack.Plan, in *convertInput)
		check   func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec)
	}{
		{
			name:    "image, command, entrypoint, env",
			compose: "services:\n  api:\n    image: example/api:1\n    entrypoint: [/bin/api]\n    command: [serve, --port, '8081']\n    environment: {B: two, A: one}\n    working_dir: /srv\n    user: '1000'\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				cs := s.TaskTemplate.ContainerSpec
				if cs.Image != "example/api:1" {
					t.Errorf("image %q", cs.Image)
				}
				if !slices.Equal(cs.Command, []string{"/bin/api"}) || !slices.Equal(cs.Args, []string{"serve", "--port", "8081"}) {
					t.Errorf("command %q args %q: entrypoint is the command, command the args", cs.Command, cs.Args)
				}
				if cs.Dir != "/srv" || cs.User != "1000" {
					t.Errorf("dir %q user %q", cs.Dir, cs.User)
				}
				if !slices.Contains(cs.Env, "A=one") || !slices.Contains(cs.Env, "B=two") || !slices.IsSorted(cs.Env) {
					t.Errorf("env %q", cs.Env)
				}
				if !slices.Contains(cs.Env, contract.EnvPR+"=7") || !slices.Contains(cs.Env, contract.EnvRepo+"=acme/shop") {
					t.Errorf("env lacks SLIPWAY_PR / SLIPWAY_REPO: %q", cs.Env)
				}
				for _, e := range cs.Env {
					if strings.HasPrefix(e, contract.EnvSHA+"=") {
						t.Errorf("an image-only service got %s: a push would restart it", e)
					}
				}
				if s.Name != "acme-shop-pr-7_api" {
					t.Errorf("name %q, want <project>_<service> as docker stack names it", s.Name)
				}
			},
		},
		{
			name:    "built service runs its pushed image by digest and gets SLIPWAY_SHA",
			compose: "services:\n  web:\n    build: .\n",
			files:   map[string]string{"Dockerfile": "FROM scratch\n"},
			service: "web",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				cs := s.TaskTemplate.ContainerSpec
				if !strings.HasPrefix(cs.Image, "registry.example.com/acme-shop-pr-7-web:111111111111@sha256:") {
					t.Errorf("image %q", cs.Image)
				}
				if !slices.Contains(cs.Env, contract.EnvSHA+"="+sha1) {
					t.Errorf("env %q lacks SLIPWAY_SHA", cs.Env)
				}
				if s.Labels[contract.LabelBuilt] != "true" || cs.Labels[contract.LabelBuilt] != "true" {
					t.Errorf("built label: service %q container %q", s.Labels[contract.LabelBuilt], cs.Labels[contract.LabelBuilt])
				}
			},
		},
		{
			name:    "healthcheck",
			compose: "services:\n  api:\n    image: x\n    healthcheck:\n      test: [CMD, wget, -q, http://127.0.0.1/]\n      interval: 2s\n      timeout: 3s\n      retries: 4\n      start_period: 5s\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				h := s.TaskTemplate.ContainerSpec.Healthcheck
				if h == nil || !slices.Equal(h.Test, []string{"CMD", "wget", "-q", "http://127.0.0.1/"}) || h.Interval != 2*time.Second ||
					h.Timeout != 3*time.Second || h.Retries != 4 || h.StartPeriod != 5*time.Second {
					t.Errorf("healthcheck %+v", h)
				}
			},
		},
		{
			name:    "healthcheck disabled",
			compose: "services:\n  api:\n    image: x\n    healthcheck: {disable: true}\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				if h := s.TaskTemplate.ContainerSpec.Healthcheck; h == nil || !slices.Equal(h.Test, []string{"NONE"}) {
					t.Errorf("healthcheck %+v", h)
				}
			},
		},
		{
			name:    "restart: no",
			compose: "services:\n  api:\n    image: x\n    restart: 'no'\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				if rp := s.TaskTemplate.RestartPolicy; rp == nil || rp.Condition != swarm.RestartPolicyConditionNone {
					t.Errorf("restart %+v", rp)
				}
			},
		},
		{
			name:    "restart: on-failure:3",
			compose: "services:\n  api:\n    image: x\n    restart: on-failure:3\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				rp := s.TaskTemplate.RestartPolicy
				if rp == nil || rp.Condition != swarm.RestartPolicyConditionOnFailure || rp.MaxAttempts == nil || *rp.MaxAttempts != 3 {
					t.Errorf("restart %+v", rp)
				}
			},
		},
		{
			name:    "no restart policy: restarted, as docker stack does",
			compose: "services:\n  api:\n    image: x\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				if rp := s.TaskTemplate.RestartPolicy; rp == nil || rp.Condition != swarm.RestartPolicyConditionAny {
					t.Errorf("restart %+v", rp)
				}
			},
		},
		{
			name:    "deploy.restart_policy",
			compose: "services:\n  api:\n    image: x\n    deploy:\n      restart_policy: {condition: on-failure, delay: 2s, max_attempts: 5, window: 30s}\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				rp := s.TaskTemplate.RestartPolicy
				if rp == nil || rp.Condition != swarm.RestartPolicyConditionOnFailure || *rp.MaxAttempts != 5 || *rp.Delay != 2*time.Second || *rp.Window != 30*time.Second {
					t.Errorf("restart %+v", rp)
				}
			},
		},
		{
			name:    "replicas",
			compose: "services:\n  api:\n    image: x\n    deploy: {replicas: 3}\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				if s.Mode.Replicated == nil || *s.Mode.Replicated.Replicas != 3 {
					t.Errorf("mode %+v", s.Mode)
				}
			},
		},
		{
			name:    "resource limits are capped by the controller's",
			compose: "services:\n  api:\n    image: x\n    deploy:\n      resources:\n        limits: {memory: 8g, cpus: '8', pids: 100000}\n        reservations: {memory: 4g, cpus: '4'}\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				r := s.TaskTemplate.Resources
				if r.Limits.MemoryBytes != 512<<20 || r.Limits.NanoCPUs != 1e9 || r.Limits.Pids != 256 {
					t.Errorf("limits %+v, want the controller's caps", r.Limits)
				}
				if r.Reservations == nil || r.Reservations.MemoryBytes != 512<<20 || r.Reservations.NanoCPUs != 1e9 {
					t.Errorf("reservations %+v, want at most the limits", r.Reservations)
				}
			},
		},
		{
			name:    "a service asking for less gets less",
			compose: "services:\n  api:\n    image: x\n    mem_limit: 64m\n    cpus: 0.25\n    pids_limit: 100\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				r := s.TaskTemplate.Resources.Limits
				if r.MemoryBytes != 64<<20 || r.NanoCPUs != 25e7 || r.Pids != 100 {
					t.Errorf("limits %+v", r)
				}
			},
		},
		{
			name:    "labels: namespace, compose, ours; the file's own kept, routes on containers",
			compose: "services:\n  web:\n    image: x\n    ports: ['8080:8080']\n    labels: {team: shop}\n    deploy:\n      labels: {tier: front}\n    depends_on: [api]\n  api:\n    image: x\n",
			service: "web",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				cs := s.TaskTemplate.ContainerSpec
				for k, v := range map[string]string{
					LabelNamespace: p.Name, contract.LabelProject: p.Name, contract.LabelService: "web", contract.LabelManaged: "true",
					contract.LabelRepo: "acme/shop", contract.LabelPR: "7", contract.LabelSHA: sha1, contract.LabelOneoff: "False",
				} {
					if s.Labels[k] != v || cs.Labels[k] != v {
						t.Errorf("label %s: service %q container %q, want %q", k, s.Labels[k], cs.Labels[k], v)
					}
				}
				if s.Labels["tier"] != "front" || cs.Labels["team"] != "shop" {
					t.Errorf("deploy.labels go on the service (%v), labels on the containers (%v)", s.Labels, cs.Labels)
				}
				if cs.Labels[contract.LabelRouteHost] != "pr-7.localhost" || cs.Labels[contract.LabelRoutePort] != "8080" || cs.Labels[contract.LabelPrimary] != "true" {
					t.Errorf("route labels %v", cs.Labels)
				}
				if cs.Labels[contract.LabelDependsOn] != "api:service_started:false" {
					t.Errorf("depends_on label %q", cs.Labels[contract.LabelDependsOn])
				}
				if h := s.Labels[contract.LabelConfigHash]; h == "" || cs.Labels[contract.LabelConfigHash] != h {
					t.Errorf("config hash: service %q container %q", h, cs.Labels[contract.LabelConfigHash])
				}
			},
		},
		{
			name:    "reserved labels an image carries are cleared",
			compose: "services:\n  api:\n    image: x\n",
			service: "api",
			in: func(p *stack.Plan, in *convertInput) {
				in.ImageLabels = map[string]map[string]string{"api": {contract.LabelRouteHost: "pr-1.localhost", "org.opencontainers.image.title": "x"}}
			},
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				l := s.TaskTemplate.ContainerSpec.Labels
				if v, ok := l[contract.LabelRouteHost]; !ok || v != "" {
					t.Errorf("route host %q (set %v), want an explicit empty value", v, ok)
				}
				if _, ok := l["org.opencontainers.image.title"]; ok {
					t.Error("an unreserved image label was copied into the spec")
				}
			},
		},
		{
			name:    "dnsrr, networks with the service's name as alias, no published port",
			compose: "services:\n  api:\n    image: x\n    ports: ['8081:8081']\n    networks:\n      back: {aliases: [backend]}\n      default: {}\nnetworks:\n  back: {}\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				if s.EndpointSpec == nil || s.EndpointSpec.Mode != swarm.ResolutionModeDNSRR || len(s.EndpointSpec.Ports) != 0 {
					t.Errorf("endpoint %+v", s.EndpointSpec)
				}
				nets := map[string][]string{}
				for _, n := range s.TaskTemplate.Networks {
					nets[n.Target] = n.Aliases
				}
				if !slices.Equal(nets[p.Name+"_back"], []string{"api", "backend"}) || !slices.Equal(nets[p.Name+"_default"], []string{"api"}) {
					t.Errorf("networks %v", nets)
				}
			},
		},
		{
			name:    "named volume: mount with labels, service pinned to its node",
			compose: "services:\n  db:\n    image: x\n    volumes: [data:/var/lib/db, /scratch]\nvolumes:\n  data: {}\n",
			service: "db",
			in:      func(p *stack.Plan, in *convertInput) { in.Pins["db"] = "node-1" },
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				var named *mount.Mount
				for i, m := range s.TaskTemplate.ContainerSpec.Mounts {
					if m.Target == "/var/lib/db" {
						named = &s.TaskTemplate.ContainerSpec.Mounts[i]
					}
				}
				if named == nil || named.Type != mount.TypeVolume || named.Source != p.Name+"_data" {
					t.Fatalf("mounts %+v", s.TaskTemplate.ContainerSpec.Mounts)
				}
				if l := named.VolumeOptions.Labels; l[LabelNamespace] != p.Name || l[contract.LabelVolume] != "data" || l[contract.LabelManaged] != "true" {
					t.Errorf("volume labels %v", l)
				}
				if pl := s.TaskTemplate.Placement; pl == nil || !slices.Contains(pl.Constraints, "node.id==node-1") || pinnedNode(pl) != "node-1" {
					t.Errorf("placement %+v", pl)
				}
			},
		},
		{
			name:    "stateless service: no placement",
			compose: "services:\n  api:\n    image: x\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				if s.TaskTemplate.Placement != nil {
					t.Errorf("placement %+v", s.TaskTemplate.Placement)
				}
			},
		},
		{
			name:    "secrets and configs as files",
			compose: "services:\n  api:\n    image: x\n    secrets: [token, {source: key, target: api.key}]\n    configs: [{source: conf, target: /etc/api.conf}]\nsecrets:\n  token: {file: ./token.txt}\n  key: {file: ./key.txt}\nconfigs:\n  conf: {file: ./api.conf}\n",
			files:   map[string]string{"token.txt": "t", "key.txt": "k", "api.conf": "c"},
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				cs := s.TaskTemplate.ContainerSpec
				got := map[string]string{}
				for _, r := range cs.Secrets {
					got[r.SecretID] = r.File.Name
					if r.File.Mode != 0o444 || r.File.UID != "0" {
						t.Errorf("secret %s file %+v", r.SecretName, r.File)
					}
				}
				if got["sid-token"] != "/run/secrets/token" || got["sid-key"] != "api.key" {
					t.Errorf("secrets %v (targets under /run/secrets)", got)
				}
				if len(cs.Configs) != 1 || cs.Configs[0].ConfigID != "cid-conf" || cs.Configs[0].File.Name != "/etc/api.conf" {
					t.Errorf("configs %+v", cs.Configs)
				}
				for _, m := range cs.Mounts {
					if m.Type == mount.TypeBind {
						t.Errorf("a secret became a bind mount: %+v", m)
					}
				}
			},
		},
		{
			name:    "hardening: capabilities, no-new-privileges, read-only, init, log limits",
			compose: "services:\n  api:\n    image: x\n    read_only: true\n    init: true\n    cap_drop: [CHOWN]\n    stop_grace_period: 3s\n    stop_signal: SIGINT\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				cs := s.TaskTemplate.ContainerSpec
				if !slices.Equal(cs.CapabilityDrop, []string{"ALL"}) || slices.Contains(cs.CapabilityAdd, "CHOWN") || slices.Contains(cs.CapabilityAdd, "NET_RAW") || !slices.Contains(cs.CapabilityAdd, "KILL") {
					t.Errorf("capabilities add %v drop %v", cs.CapabilityAdd, cs.CapabilityDrop)
				}
				if cs.Privileges == nil || !cs.Privileges.NoNewPrivileges || !cs.ReadOnly || cs.Init == nil || !*cs.Init {
					t.Errorf("privileges %+v read-only %v init %v", cs.Privileges, cs.ReadOnly, cs.Init)
				}
				if cs.StopGracePeriod == nil || *cs.StopGracePeriod != 3*time.Second || cs.StopSignal != "SIGINT" {
					t.Errorf("stop %v %q", cs.StopGracePeriod, cs.StopSignal)
				}
				if d := s.TaskTemplate.LogDriver; d == nil || d.Name != "json-file" || d.Options["max-size"] != "5242880" {
					t.Errorf("log driver %+v", d)
				}
			},
		},
		{
			name:    "extra_hosts as 'IP host'",
			compose: "services:\n  api:\n    image: x\n    extra_hosts: ['db.internal=10.0.0.5']\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				if h := s.TaskTemplate.ContainerSpec.Hosts; !slices.Equal(h, []string{"10.0.0.5 db.internal"}) {
					t.Errorf("hosts %q", h)
				}
			},
		},
		{
			name:    "a service others wait to complete is a replicated job",
			compose: "services:\n  migrate:\n    image: x\n    command: [migrate]\n    healthcheck: {test: [CMD, 'true']}\n  api:\n    image: x\n    depends_on:\n      migrate: {condition: service_completed_successfully}\n",
			service: "migrate",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				if j := s.Mode.ReplicatedJob; j == nil || *j.TotalCompletions != 1 || *j.MaxConcurrent != 1 {
					t.Errorf("mode %+v", s.Mode)
				}
				if rp := s.TaskTemplate.RestartPolicy; rp == nil || rp.Condition != swarm.RestartPolicyConditionNone {
					t.Errorf("a job is restarted: %+v", rp)
				}
				if h := s.TaskTemplate.ContainerSpec.Healthcheck; h == nil || h.Test[0] != "NONE" {
					t.Errorf("a job keeps its healthcheck: %+v", h)
				}
			},
		},
		{
			name:    "tmpfs",
			compose: "services:\n  api:\n    image: x\n    tmpfs: ['/run:size=1m']\n",
			service: "api",
			check: func(t *testing.T, p *stack.Plan, s swarm.ServiceSpec) {
				ms := s.TaskTemplate.ContainerSpec.Mounts
				if len(ms) != 1 || ms[0].Type != mount.TypeTmpfs || ms[0].Target != "/run" || ms[0].TmpfsOptions.SizeBytes != 1<<20 {
					t.Errorf("mounts %+v", ms)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := loadPlan(t, tc.compose, tc.files)
			in := inputFor(p)
			if tc.in != nil {
				tc.in(p, &in)
			}
			s, err := serviceSpec(p, tc.service, in)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, p, s)
		})
	}
}

func TestServiceSpecRefusesWhatSwarmCannotDo(t *testing.T) {
	for _, tc := range []struct{ name, compose, want string }{
		{"network_mode", "services:\n  api:\n    image: x\n  side:\n    image: x\n    network_mode: service:api\n", `network_mode "service:api" is not supported by the swarm engine`},
		{"links", "services:\n  api:\n    image: x\n  web:\n    image: x\n    links: [api]\n", "links are not supported"},
		{"volumes_from", "services:\n  api:\n    image: x\n  web:\n    image: x\n    volumes_from: [api]\n", "volumes_from is not supported"},
		{"placement constraints", "services:\n  api:\n    image: x\n  web:\n    image: x\n    deploy:\n      placement:\n        constraints: [node.role==manager]\n", "deploy.placement.constraints"},
		{"global mode", "services:\n  api:\n    image: x\n  web:\n    image: x\n    deploy:\n      mode: global\n", "deploy.mode global"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := loadPlan(t, tc.compose, nil)
			var errs []string
			for name := range p.Project.Services {
				if _, err := serviceSpec(p, name, inputFor(p)); err != nil {
					errs = append(errs, err.Error())
				}
			}
			if len(errs) != 1 || !strings.Contains(errs[0], tc.want) {
				t.Errorf("errors %q, want one containing %q", errs, tc.want)
			}
		})
	}
}

func TestSpecHashIgnoresThePush(t *testing.T) {
	compose := "services:\n  web:\n    build: .\n    depends_on: [db]\n  db:\n    image: x\n    volumes: [data:/data]\nvolumes:\n  data: {}\n"
	files := map[string]string{"Dockerfile": "FROM scratch\n"}
	p1 := loadPlan(t, compose, files)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": compose, "Dockerfile": files["Dockerfile"]})
	p2, err := stack.Load(context.Background(), stack.Source{Dir: dir, Owner: "acme", Repo: "shop", PR: 7, SHA: sha2},
		stack.LoadOptions{Limits: config.Limits{Memory: 512 << 20, CPUs: 1, PIDs: 256, LogSize: 5 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	in1, in2 := inputFor(p1), inputFor(p2)
	in2.Images["web"] = strings.Replace(in2.Images["web"], strings.Repeat("a", 64), strings.Repeat("b", 64), 1)
	db1, _ := serviceSpec(p1, "db", in1)
	db2, _ := serviceSpec(p2, "db", in2)
	if db1.Labels[contract.LabelConfigHash] != db2.Labels[contract.LabelConfigHash] {
		t.Error("a push (new SHA, new checkout directory) changed the image-only service's hash: it would restart")
	}
	if db2.Labels[contract.LabelSHA] != sha2 {
		t.Errorf("sha label %q", db2.Labels[contract.LabelSHA])
	}
	web1, _ := serviceSpec(p1, "web", in1)
	web2, _ := serviceSpec(p2, "web", in2)
	if web1.Labels[contract.LabelConfigHash] == web2.Labels[contract.LabelConfigHash] {
		t.Error("a new image did not change the built service's hash")
	}
}

func TestJobSpec(t *testing.T) {
	p := loadPlan(t, "services:\n  web:\n    image: x\n    ports: ['8080:8080']\n    healthcheck: {test: [CMD, 'true']}\n", nil)
	s, err := jobSpec(p, 0, "web", []string{"./migrate", "up"}, inputFor(p))
	if err != nil {
		t.Fatal(err)
	}
	cs := s.TaskTemplate.ContainerSpec
	if s.Name != p.Name+"_web-after-deploy-0" || s.Mode.ReplicatedJob == nil || !slices.Equal(cs.Args, []string{"./migrate", "up"}) {
		t.Errorf("name %q mode %+v args %q", s.Name, s.Mode, cs.Args)
	}
	if cs.Labels[contract.LabelRouteHost] != "" || s.Labels[contract.LabelOneoff] != "True" || cs.Labels[contract.LabelJob] != "0" {
		t.Errorf("labels %v / %v", s.Labels, cs.Labels)
	}
	if s.TaskTemplate.RestartPolicy.Condition != swarm.RestartPolicyConditionNone || cs.Healthcheck.Test[0] != "NONE" {
		t.Errorf("restart %+v health %+v", s.TaskTemplate.RestartPolicy, cs.Healthcheck)
	}
	for _, n := range s.TaskTemplate.Networks {
		if len(n.Aliases) != 0 {
			t.Errorf("the job answers to the service's name on %s: %v", n.Target, n.Aliases)
		}
	}
}

func TestObjectNameFollowsContent(t *testing.T) {
	a, b := objectName("p", "k", []byte("one")), objectName("p", "k", []byte("two"))
	if a == b || !strings.HasPrefix(a, "p_k_") || a != objectName("p", "k", []byte("one")) {
		t.Errorf("%q %q", a, b)
	}
}

func TestWritableBinds(t *testing.T) {
	got := writableBinds([]mount.Mount{
		{Type: mount.TypeBind, Source: "/src/rw"},
		{Type: mount.TypeBind, Source: "/src/ro", ReadOnly: true},
		{Type: mount.TypeVolume, Source: "v", VolumeOptions: &mount.VolumeOptions{DriverConfig: &mount.Driver{Options: map[string]string{"o": "bind", "device": "/src/vol"}}}},
		{Type: mount.TypeVolume, Source: "plain"},
	})
	if !slices.Equal(got, []string{"/src/rw", "/src/vol"}) {
		t.Errorf("%q", got)
	}
}

func TestControllerSecretsAreSwarmSecrets(t *testing.T) {
	load := func(withhold bool) *stack.Plan {
		dir := t.TempDir()
		dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": "services:\n  api:\n    image: x\nx-slipway:\n  secrets: [STRIPE_KEY]\n"})
		p, err := stack.Load(context.Background(), stack.Source{Dir: dir, Owner: "acme", Repo: "shop", PR: 7, SHA: sha1},
			stack.LoadOptions{Secrets: map[string]string{"STRIPE_KEY": "sk_test_1"}, WithholdSecrets: withhold})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := load(false)
	got := controllerSecrets(p)
	if len(got) != 1 || got["STRIPE_KEY"] != "sk_test_1" {
		t.Fatalf("controller secrets %v", got)
	}
	in := inputFor(p)
	in.ControllerSecrets = map[string]objectRef{"STRIPE_KEY": {ID: "sid", Name: "acme-shop-pr-7_slipway-secret-STRIPE_KEY_x"}}
	s, err := serviceSpec(p, "api", in)
	if err != nil {
		t.Fatal(err)
	}
	cs := s.TaskTemplate.ContainerSpec
	for _, e := range cs.Env {
		if strings.Contains(e, "sk_test_1") || strings.HasPrefix(e, "STRIPE_KEY=") {
			t.Errorf("the secret is in the service's environment (readable in its spec): %q", e)
		}
	}
	if len(cs.Secrets) != 1 || cs.Secrets[0].SecretID != "sid" || cs.Secrets[0].File.Name != "STRIPE_KEY" {
		t.Errorf("secrets %+v, want STRIPE_KEY mounted at /run/secrets/STRIPE_KEY", cs.Secrets)
	}
	if got := controllerSecrets(load(true)); len(got) != 0 {
		t.Errorf("an untrusted PR's plan gives secrets: %v", got)
	}
}
