package policy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/slipwayhq/slipway/config"
)

// hostile returns the named case of the hostile corpus, materialized.
func hostile(t *testing.T, name string) (root string, files []string) {
	t.Helper()
	for _, c := range readHostileCases(t) {
		if c.name == name {
			root = materialize(t, c)
			return root, []string{filepath.Join(root, "compose.yaml")}
		}
	}
	t.Fatalf("no hostile case %q", name)
	return "", nil
}

func rulesOf(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Rule)
	}
	return out
}

func TestOperatorAllowances(t *testing.T) {
	project := func(t *testing.T, body string) (string, []string) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "compose.yaml"), body)
		return root, []string{filepath.Join(root, "compose.yaml")}
	}
	privilegedWithDevice := "services:\n  web:\n    image: busybox\n    privileged: true\n    devices: [\"/dev/fuse:/dev/fuse\"]\n"
	for _, tc := range []struct {
		name string
		root func(t *testing.T) (string, []string)
		opts Options
		want []string
	}{
		{"capability allowlisted", func(t *testing.T) (string, []string) { return hostile(t, "priv-cap-add-net-admin") },
			Options{CapAdd: []string{"cap_net_admin"}}, nil},
		{"another capability allowlisted", func(t *testing.T) (string, []string) { return hostile(t, "priv-cap-add-net-admin") },
			Options{CapAdd: []string{"SYS_ADMIN"}}, []string{CapAdd}},
		{"ALL stays privileged even with cap_add relaxed", func(t *testing.T) (string, []string) { return hostile(t, "priv-cap-add-all") },
			Options{Allow: []string{CapAdd}, CapAdd: []string{"ALL"}}, []string{Privileged}},
		{"rule ID relaxes exactly that rule", func(t *testing.T) (string, []string) { return project(t, privilegedWithDevice) },
			Options{Allow: []string{"SW-PRIV-001"}}, []string{Devices}},
		{"rule key works like the ID", func(t *testing.T) (string, []string) { return project(t, privilegedWithDevice) },
			Options{Allow: []string{"privileged"}}, []string{Devices}},
		{"nothing relaxed", func(t *testing.T) (string, []string) { return project(t, privilegedWithDevice) },
			Options{}, []string{Devices, Privileged}},
		{"external network allowlisted", func(t *testing.T) (string, []string) { return hostile(t, "net-external") },
			Options{ExternalNetworks: []string{"slipway"}}, nil},
		{"other external network allowlisted", func(t *testing.T) (string, []string) { return hostile(t, "net-external") },
			Options{ExternalNetworks: []string{"shared"}}, []string{ExternalNetwork}},
		{"external volume allowlisted", func(t *testing.T) (string, []string) { return hostile(t, "vol-external") },
			Options{ExternalVolumes: []string{"acme-shop-pr-8_db"}}, nil},
		{"sysctl prefix allowlisted", func(t *testing.T) (string, []string) { return hostile(t, "priv-sysctl-forwarding") },
			Options{Sysctls: []string{"net.ipv4.*"}}, nil},
		{"sysctl allowlist is not a substring match", func(t *testing.T) (string, []string) { return hostile(t, "priv-sysctl-forwarding") },
			Options{Sysctls: []string{"net.ipv4.ip_forward_use_pmtu"}}, []string{Sysctls}},
		{"bind outside relaxed still guards the socket", func(t *testing.T) (string, []string) { return hostile(t, "mnt-docker-sock-short") },
			Options{Allow: []string{BindOutside, HostSystemPath}}, []string{EngineSocket}},
		{"reserved labels cannot be relaxed", func(t *testing.T) (string, []string) { return hostile(t, "lbl-service-compose") },
			Options{Allow: []string{ReservedLabel}}, []string{ReservedLabel}},
		{"pre-load rule relaxed", func(t *testing.T) (string, []string) {
			outside := t.TempDir()
			writeFile(t, filepath.Join(outside, "app.env"), "GREETING=hello\n")
			return project(t, "services:\n  web:\n    image: busybox\n    env_file: "+filepath.Join(outside, "app.env")+"\n")
		}, Options{Allow: []string{LoadFileOutside}}, nil},
		{"pre-load rule enforced", func(t *testing.T) (string, []string) {
			outside := t.TempDir()
			writeFile(t, filepath.Join(outside, "app.env"), "GREETING=hello\n")
			return project(t, "services:\n  web:\n    image: busybox\n    env_file: "+filepath.Join(outside, "app.env")+"\n")
		}, Options{}, []string{LoadFileOutside}},
		{"a top-level name is not refused", func(t *testing.T) (string, []string) {
			return project(t, "name: acme-shop-pr-8\nservices:\n  web:\n    image: busybox\n")
		}, Options{}, nil},
		{"internal registry allowed", func(t *testing.T) (string, []string) { return hostile(t, "img-registry-localhost") },
			Options{AllowedRegistries: []string{"localhost:5000"}}, nil},
		{"another internal registry allowed", func(t *testing.T) (string, []string) { return hostile(t, "img-registry-localhost") },
			Options{AllowedRegistries: []string{"localhost:5001"}}, []string{PrivateRegistry}},
		{"allowing a registry does not admit another preview's image", func(t *testing.T) (string, []string) { return hostile(t, "img-dockerfile-from-foreign") },
			Options{AllowedRegistries: []string{"docker.io"}}, []string{ForeignImage}},
		{"remote ADD relaxed", func(t *testing.T) (string, []string) { return hostile(t, "bld-add-remote-arg") },
			Options{Allow: []string{"remote-add"}}, nil},
		{"project caps raised for one repository", func(t *testing.T) (string, []string) { return hostile(t, "res-project-containers") },
			Options{ProjectCaps: config.ProjectCaps{Containers: 110, Memory: 110 << 30, CPUs: 110, PIDs: 110 * 512}}, nil},
		{"reserved names added by the operator", func(t *testing.T) (string, []string) { return hostile(t, "net-external") },
			Options{ExternalNetworks: []string{"slipway"}, ReservedNames: []string{"web"}}, []string{ReservedName}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, files := tc.root(t)
			vs, _ := evaluate(t, root, files, tc.opts)
			got := rulesOf(vs)
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("rules = %v, want %v\n%s", got, tc.want, Violations(vs).Error())
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, tc := range []struct {
		opts Options
		want string // substring of the error; "" for none
	}{
		{Options{}, ""},
		{Options{Allow: []string{"SW-PRIV-001", "devices", "sw-mnt-001"}, CapAdd: []string{"NET_ADMIN", "cap_sys_ptrace"}, Sysctls: []string{"net.core.somaxconn", "net.ipv4.tcp_*"}}, ""},
		{Options{Allow: []string{"SW-PRIV-099"}}, `"SW-PRIV-099" is not a rule ID`},
		{Options{Allow: []string{"privilegd"}}, `"privilegd" is not a rule ID`},
		{Options{Allow: []string{ReservedLabel}}, "cannot be relaxed"},
		{Options{Allow: []string{"SW-PROJ-001", "project-name"}}, ""}, // retired: still accepted
		{Options{CapAdd: []string{"all"}}, "ALL is privileged mode"},
		{Options{CapAdd: []string{"SYS ADMIN"}}, "not a capability name"},
		{Options{Sysctls: []string{"*"}}, "would allow every sysctl"},
		{Options{AllowedRegistries: []string{"registry.internal:5000", "10.0.0.5", "[fd00::1]:443"}, ReservedNames: []string{"vault", "GitHub"},
			ProjectCaps: config.ProjectCaps{Services: 80, Memory: 1 << 40}}, ""},
		{Options{AllowedRegistries: []string{"https://registry.internal"}}, "not a URL"},
		{Options{AllowedRegistries: []string{"registry.internal/team"}}, "not a URL or image"},
		{Options{AllowedRegistries: []string{"registry.internal:http"}}, "not a port number"},
		{Options{AllowedRegistries: []string{""}}, "want a registry host"},
		{Options{ReservedNames: []string{"api.github.com"}}, "not a single DNS label"},
		{Options{ReservedNames: []string{"-x"}}, "not a single DNS label"},
		{Options{ProjectCaps: config.ProjectCaps{Containers: -1}}, "project_caps.containers: must not be negative"},
	} {
		err := tc.opts.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: unexpected error %v", tc.opts, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: error %v, want it to contain %q", tc.opts, err, tc.want)
		}
	}
}

func TestFromConfig(t *testing.T) {
	p := config.Policy{Allow: []string{"SW-PRIV-001"}, CapAdd: []string{"NET_ADMIN"}, Sysctls: []string{"a"},
		ExternalNetworks: []string{"n"}, ExternalVolumes: []string{"v"},
		AllowedRegistries: []string{"r:5000"}, ReservedNames: []string{"vault"}, ProjectCaps: config.ProjectCaps{Services: 7}}
	o := FromConfig(p)
	p.Allow[0] = "changed"
	p.AllowedRegistries[0] = "changed"
	if o.Allow[0] != "SW-PRIV-001" || o.CapAdd[0] != "NET_ADMIN" || o.Sysctls[0] != "a" ||
		o.ExternalNetworks[0] != "n" || o.ExternalVolumes[0] != "v" ||
		o.AllowedRegistries[0] != "r:5000" || o.ReservedNames[0] != "vault" || o.ProjectCaps.Services != 7 {
		t.Errorf("FromConfig = %+v", o)
	}
}

func TestPathClassification(t *testing.T) {
	for _, tc := range []struct {
		path           string
		socket, system bool
	}{
		{"/var/run/docker.sock", true, true},
		{"/run/containerd/containerd.sock", true, true},
		{"/run", true, true},
		{"/var", true, true},
		{"/", true, true},
		{"/home/me/.docker/run/docker.sock", true, true},
		{"/tmp/app.sock", true, false},
		{"/etc", false, true},
		{"/var/lib/docker/volumes", false, true},
		{"/opt", false, true},
		{"/opt/app/data", false, false},
		{"/srv/uploads", false, false},
		{"/tmp/x", false, false},
	} {
		if got := isEngineSocket(tc.path); got != tc.socket {
			t.Errorf("isEngineSocket(%q) = %v", tc.path, got)
		}
		if got := isHostSystemPath(tc.path); got != tc.system {
			t.Errorf("isHostSystemPath(%q) = %v", tc.path, got)
		}
	}
}

func TestSecurityOpt(t *testing.T) {
	for _, tc := range []struct {
		opt string
		ok  bool
	}{
		{"no-new-privileges", true},
		{"no-new-privileges:true", true},
		{"no-new-privileges=true", true},
		{" No-New-Privileges = true ", true},
		{"apparmor=docker-default", true},
		{"apparmor:docker-default", true},
		{"no-new-privileges:false", false},
		{"no-new-privileges=0", false},
		{"seccomp:unconfined", false},
		{"seccomp=unconfined", false},
		{"seccomp=/tmp/profile.json", false},
		{"apparmor:unconfined", false},
		{"apparmor=my-profile", false},
		{"label:disable", false},
		{"label=disable", false},
		{"label:type:spc_t", false},
		{"label=level:s0:c100,c200", false},
		{"systempaths=unconfined", false},
		{"writable-cgroups=true", false},
	} {
		if got := securityOptProblem(tc.opt) == ""; got != tc.ok {
			t.Errorf("securityOptProblem(%q) accepted=%v, want %v", tc.opt, got, tc.ok)
		}
	}
}

func TestPreLoadFollowsAnchorsMergeKeysAndTags(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "app.env"), "A=1\n")
	writeFile(t, filepath.Join(root, "compose.yaml"), `
x-base: &base
  image: busybox
  env_file: /etc/passwd
x-files: &files
  - app.env
  - /etc/shadow
services:
  merged:
    <<: *base
  aliased:
    image: busybox
    env_file: *files
  overridden:
    <<: *base
    env_file: app.env
  reset:
    <<: *base
    env_file: !reset null
  tagged:
    image: busybox
    label_file: !override /etc/os-release
---
# a second document in the same stream is read too
services:
  second:
    image: busybox
    env_file: ${MISSING:-/root/.env}
`)
	vs, err := PreLoad(root, []string{"compose.yaml"}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, v := range vs {
		got = append(got, v.Service+" "+v.Field+" "+v.Value)
	}
	want := []string{
		"aliased env_file[1] /etc/shadow",
		"merged env_file[0] /etc/passwd",
		"second env_file[0] /root/.env",
		"tagged label_file[0] /etc/os-release",
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestPreLoadComposeFilesAndErrors(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "compose.yaml"), "services:\n  web:\n    image: busybox\n")
	if err := os.Symlink(filepath.Join(outside, "compose.yaml"), filepath.Join(root, "compose.yaml")); err != nil {
		t.Fatal(err)
	}
	vs, err := PreLoad(root, []string{"compose.yaml"}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Rule != LoadFileOutside || vs[0].Field != "compose file [0]" {
		t.Errorf("a compose file symlinked out of the checkout: %v", vs)
	}

	if _, err := PreLoad(filepath.Join(root, "missing"), []string{"compose.yaml"}, nil, Options{}); err == nil {
		t.Error("PreLoad of a missing checkout: no error")
	}
	if _, err := PreLoad(root, []string{"absent.yaml"}, nil, Options{}); err == nil {
		t.Error("PreLoad of a missing compose file: no error")
	}

	// include cycles end (the loader reports them); unparseable YAML is a
	// violation (fail closed).
	cyc := t.TempDir()
	writeFile(t, filepath.Join(cyc, "compose.yaml"), "include: [a.yaml]\nservices: {web: {image: busybox}}\n")
	writeFile(t, filepath.Join(cyc, "a.yaml"), "include: [compose.yaml]\nservices: {a: {image: busybox, env_file: /etc/passwd}}\n")
	writeFile(t, filepath.Join(cyc, "bad.yaml"), "services: [\n")
	vs, err = PreLoad(cyc, []string{"compose.yaml", "bad.yaml"}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].File != "a.yaml" || vs[0].Service != "a" || vs[1].File != "bad.yaml" || vs[1].Rule != YAMLForm {
		t.Errorf("include cycle and unparseable file: %v", vs)
	}
}

func TestPreLoadInterpolatesWithTheCallersEnvironment(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "compose.yaml"),
		"services:\n  web:\n    image: busybox\n    env_file: ${SLIPWAY_URL:+/etc/passwd}\n")
	// Without SLIPWAY_URL the path is empty (nothing read); with it, it is
	// /etc/passwd: PreLoad must see the environment the loader will get.
	vs, err := PreLoad(root, []string{"compose.yaml"}, nil, Options{})
	if err != nil || len(vs) != 0 {
		t.Fatalf("without the variable: %v %v", vs, err)
	}
	vs, err = PreLoad(root, []string{"compose.yaml"}, testEnv(), Options{})
	if err != nil || len(vs) != 1 || vs[0].Value != "/etc/passwd" {
		t.Fatalf("with the variable: %v %v", vs, err)
	}
}

// Check repeats the load-time path checks for callers that skipped PreLoad.
func TestCheckWithoutPreLoad(t *testing.T) {
	root := t.TempDir()
	p := &types.Project{
		Name:       testProject,
		WorkingDir: root,
		Services: types.Services{
			"web": {Name: "web", ContainerSpec: types.ContainerSpec{
				Image:      "busybox",
				EnvFiles:   []types.EnvFile{{Path: "/etc/passwd"}, {Path: filepath.Join(root, "app.env")}},
				LabelFiles: []string{"/etc/os-release"},
			}},
		},
	}
	got := rulesOf(Check(p, root, Options{}))
	if !slices.Equal(got, []string{LoadFileOutside, LoadFileOutside}) {
		t.Errorf("rules = %v", got)
	}
}

func TestCheckServiceReferences(t *testing.T) {
	root := t.TempDir()
	svc := func(spec types.ContainerSpec) types.ServiceConfig {
		spec.Image = "busybox"
		return types.ServiceConfig{ContainerSpec: spec}
	}
	p := &types.Project{
		Name:       testProject,
		WorkingDir: root,
		Services: types.Services{
			"db":    svc(types.ContainerSpec{}),
			"proxy": svc(types.ContainerSpec{NetworkMode: "service:db", Pid: "service:db", Ipc: "service:db", VolumesFrom: []string{"db:ro", "service:debug"}}),
			"bad":   svc(types.ContainerSpec{NetworkMode: "service:ghost", Pid: "service:ghost", Ipc: "service:ghost", VolumesFrom: []string{"ghost"}}),
		},
		DisabledServices: types.Services{"debug": svc(types.ContainerSpec{})},
	}
	var got []string
	for _, v := range Check(p, root, Options{}) {
		got = append(got, v.Service+" "+v.Rule+" "+v.Field)
	}
	want := []string{
		"bad SW-NS-003 ipc",
		"bad SW-NS-001 network_mode",
		"bad SW-NS-002 pid",
		"bad SW-MNT-005 volumes_from[0]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestViolationsFormatAndOrder(t *testing.T) {
	vs := []Violation{
		{Rule: BindOutside, Service: "web", Field: "volumes[10].source", Value: "/srv/b", Message: "m"},
		{Rule: Privileged, Service: "web", Field: "privileged", Value: "true", Message: "m"},
		{Rule: BindOutside, Service: "web", Field: "volumes[2].source", Value: "/srv/a", Message: "m"},
		{Rule: NetworkDriver, Field: "networks.lan.driver", Value: "macvlan", Message: "m"},
	}
	sortViolations(vs)
	var fields []string
	for _, v := range vs {
		fields = append(fields, v.Field)
	}
	if want := []string{"networks.lan.driver", "privileged", "volumes[2].source", "volumes[10].source"}; !slices.Equal(fields, want) {
		t.Errorf("order = %v, want %v", fields, want)
	}
	if s := vs[2].String(); s != `SW-MNT-001 service "web": volumes[2].source = "/srv/a": m` {
		t.Errorf("String() = %s", s)
	}
	if s := (Violation{Rule: ProjectName, File: "compose.yaml", Field: "name", Value: "x"}).String(); s != `SW-PROJ-001 compose.yaml: name = "x"` {
		t.Errorf("String() = %s", s)
	}
	var err error = Violations(vs)
	if !strings.Contains(err.Error(), "4 violation(s)") || strings.Count(err.Error(), "\n") != 4 {
		t.Errorf("Error() = %s", err)
	}
	if Violations(nil).Err() != nil {
		t.Error("no violations must be a nil error")
	}
	var target Violations
	if !errors.As(Violations(vs).Err(), &target) || len(target) != 4 {
		t.Error("Err() must unwrap to Violations")
	}
}

func TestRuleTable(t *testing.T) {
	ids, keys := map[string]bool{}, map[string]bool{}
	for _, r := range Rules() {
		if ids[r.ID] || keys[r.Key] {
			t.Errorf("duplicate rule %s / %s", r.ID, r.Key)
		}
		ids[r.ID], keys[r.Key] = true, true
		if r.Title == "" || r.Blocks == "" || r.Why == "" || r.Relax == "" || r.Phase == "" {
			t.Errorf("rule %s is missing a column: %+v", r.ID, r)
		}
		if got, ok := RuleByID(strings.ToLower(r.Key)); !ok || got.ID != r.ID {
			t.Errorf("RuleByID(%q) = %v", r.Key, got.ID)
		}
	}
}

// compose-go copies a service's attributes into its pre_start hooks: a
// violation of the service is reported once, not once more per hook, while
// what only the hook sets is still reported.
func TestHooksInheritedViolationsReportedOnce(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "compose.yaml"), `
services:
  web:
    image: busybox
    privileged: true
    pre_start:
      - command: ["true"]
      - command: ["true"]
        pid: host
`)
	vs, _ := evaluate(t, root, []string{filepath.Join(root, "compose.yaml")}, Options{})
	var got []string
	for _, v := range vs {
		got = append(got, v.Rule+" "+v.Field)
	}
	want := []string{"SW-NS-002 pre_start[1].pid", "SW-PRIV-001 privileged"}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// Anchors merged into anchors multiply: the pre-load check, which runs in
// the controller, resolves each merge once, and refuses a document whose
// merges add up to too many entries.
func TestPreLoadMergeBombs(t *testing.T) {
	var deep strings.Builder
	deep.WriteString("x-a0: &a0 {k0: 1}\n")
	for i := 1; i <= 20; i++ {
		fmt.Fprintf(&deep, "x-a%d: &a%d {<<: [*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d,*a%d], k%d: 1}\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i)
	}
	deep.WriteString("x-top:\n  <<: [*a20]\nservices: {web: {image: busybox, env_file: /etc/passwd}}\n")

	var wide strings.Builder
	wide.WriteString("x-b0: &b0\n")
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&wide, "  k%d: 1\n", i)
	}
	for i := 1; i <= 60; i++ {
		fmt.Fprintf(&wide, "x-b%d: {<<: *b0, own: %d}\n", i, i)
	}
	wide.WriteString("services: {web: {image: busybox}}\n")

	for _, tt := range []struct {
		name, yaml string
		want       string
	}{
		{"8^20 merges, still checked", deep.String(), LoadFileOutside},
		{"120000 merged entries", wide.String(), YAMLForm},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeFile(t, filepath.Join(root, "compose.yaml"), tt.yaml)
			vs, err := PreLoad(root, []string{"compose.yaml"}, nil, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if len(vs) != 1 || vs[0].Rule != tt.want {
				t.Errorf("violations %v, want one %s", vs, tt.want)
			}
		})
	}
}

// The controller reads compose files before the confined loader does: a
// huge one would cost it gigabytes, a FIFO would block it.
func TestPreLoadRefusesHugeFilesAndFIFOs(t *testing.T) {
	root := t.TempDir()
	writeFile(t, filepath.Join(root, "compose.yaml"), "include: [pipe.yaml]\nservices: {web: {image: busybox}}\n")
	if err := syscall.Mkfifo(filepath.Join(root, "pipe.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "big.yaml"), "services: {web: {image: busybox}}\nx-pad: \""+strings.Repeat("a", MaxFileSize)+"\"\n")
	vs, err := PreLoad(root, []string{"compose.yaml", "big.yaml"}, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 2 || vs[0].Rule != YAMLForm || vs[0].File != "big.yaml" || vs[1].Rule != YAMLForm || vs[1].File != "pipe.yaml" {
		t.Errorf("want SW-FILE-005 on big.yaml and pipe.yaml, got %v", vs)
	}
}
