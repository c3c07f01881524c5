package policy

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"

	"github.com/slipwayhq/slipway/config"
)

func TestMeasureProject(t *testing.T) {
	n := func(i int) *int { return &i }
	limits := config.Limits{Memory: 1 << 30, CPUs: 1, PIDs: 512}
	p := &types.Project{
		Services: types.Services{
			// No limits of its own: the controller's, three times.
			"web": {Name: "web", ContainerSpec: types.ContainerSpec{Image: "a"}, Scale: n(3)},
			// Lower limits of its own count as they are.
			"db": {Name: "db", ContainerSpec: types.ContainerSpec{Image: "a", MemLimit: 256 << 20, CPUS: 0.5, PidsLimit: 100}},
			// Higher limits are clamped to the controller's; deploy limits count too.
			"big": {Name: "big", ContainerSpec: types.ContainerSpec{Image: "a"},
				Deploy: &types.DeployConfig{Replicas: n(2), Resources: types.Resources{Limits: &types.Resource{MemoryBytes: 8 << 30, NanoCPUs: 4, Pids: 10}}}},
			// scale and deploy.replicas disagreeing: the larger counts.
			"odd": {Name: "odd", ContainerSpec: types.ContainerSpec{Image: "a"},
				Scale: n(1), Deploy: &types.DeployConfig{Replicas: n(4)}},
			// scale 0 runs nothing.
			"off": {Name: "off", ContainerSpec: types.ContainerSpec{Image: "a"}, Scale: n(0)},
		},
		Jobs:     map[string]types.JobConfig{"migrate": {Name: "migrate", ContainerSpec: types.ContainerSpec{Image: "a"}}},
		Networks: types.Networks{"default": {}, "back": {}},
		Volumes:  types.Volumes{"data": {}},
	}
	got := measureProject(p, limits)
	want := projectSize{
		services: 5, containers: 3 + 1 + 2 + 4 + 0 + 1, networks: 2, volumes: 1,
		memory: 3<<30 + 256<<20 + 2<<30 + 4<<30 + 1<<30,
		cpus:   3 + 0.5 + 2 + 4 + 1,
		pids:   3*512 + 100 + 2*10 + 4*512 + 512,
	}
	if got != want {
		t.Errorf("measureProject = %+v, want %+v", got, want)
	}

	// Without a controller limit, a container that sets none is unbounded
	// and not added up; one that sets its own counts.
	got = measureProject(p, config.Limits{})
	if got.memory != 256<<20+2*(8<<30) || got.pids != 100+2*10 {
		t.Errorf("without controller limits: %+v", got)
	}
}

func TestProjectCaps(t *testing.T) {
	project := func(t *testing.T, body string) (string, []string) {
		root := t.TempDir()
		writeFile(t, filepath.Join(root, "compose.yaml"), body)
		return root, []string{filepath.Join(root, "compose.yaml")}
	}
	services := func(n int, extra string) string {
		var b strings.Builder
		b.WriteString("services:\n")
		for i := range n {
			b.WriteString("  s" + strings.Repeat("x", i) + ":\n    image: busybox\n" + extra)
		}
		return b.String()
	}
	for _, tc := range []struct {
		name string
		body string
		opts Options
		want []string // fields of SW-RES-007 violations
	}{
		{"within the defaults", services(50, "    scale: 2\n"), Options{}, nil},
		{"too many services", services(51, ""), Options{},
			[]string{"project.services"}},
		{"150 services x 10", services(150, "    scale: 10\n"), Options{},
			[]string{"project.containers", "project.cpus", "project.memory", "project.pids", "project.services"}},
		{"memory of a lower per-container limit", services(10, "    mem_limit: 2g\n"), Options{ProjectCaps: config.ProjectCaps{Memory: 8 << 30}},
			[]string{"project.memory"}},
		{"the operator's per-container limits are what count", services(13, ""),
			Options{ContainerLimits: config.Limits{Memory: 8 << 30, CPUs: 4, PIDs: 100}},
			[]string{"project.memory"}},
		{"raised caps", services(60, ""), Options{ProjectCaps: config.ProjectCaps{Services: 60}}, nil},
		{"lowered caps", services(3, ""), Options{ProjectCaps: config.ProjectCaps{Containers: 2, PIDs: 1024}},
			[]string{"project.containers", "project.pids"}},
		{"volumes and networks", "services:\n  a:\n    image: busybox\n    networks: [n1, n2, n3]\n    volumes: [v1:/a, v2:/b]\nnetworks: {n1: {}, n2: {}, n3: {}}\nvolumes: {v1: {}, v2: {}}\n",
			Options{ProjectCaps: config.ProjectCaps{Networks: 2, Volumes: 1}},
			[]string{"project.networks", "project.volumes"}},
		{"relaxed", services(51, ""), Options{Allow: []string{"project-caps"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root, files := project(t, tc.body)
			vs, _ := evaluate(t, root, files, tc.opts)
			var got []string
			for _, v := range vs {
				if v.Rule != ProjectCaps {
					t.Errorf("unexpected %s", v)
					continue
				}
				got = append(got, v.Field)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v\n%s", got, tc.want, Violations(vs).Error())
			}
		})
	}
}

func TestEffectiveLimits(t *testing.T) {
	limits := config.Limits{Memory: 100, CPUs: 1, PIDs: 100}
	mem := func(v int64) *types.ContainerSpec { return &types.ContainerSpec{MemLimit: types.UnitBytes(v)} }
	for _, tt := range []struct {
		name   string
		spec   *types.ContainerSpec
		deploy *types.DeployConfig
		limits config.Limits
		mem    int64
	}{
		{"unset takes the controller's", mem(0), nil, limits, 100},
		{"less is kept", mem(50), nil, limits, 50},
		{"more is capped", mem(200), nil, limits, 100},
		{"negative is unset", mem(-1), nil, limits, 100},
		{"no controller limit keeps the service's", mem(70), nil, config.Limits{}, 70},
		{"nothing anywhere", mem(0), nil, config.Limits{}, 0},
		{"deploy limit when the service sets none", mem(0), &types.DeployConfig{Resources: types.Resources{Limits: &types.Resource{MemoryBytes: 30}}}, limits, 30},
		{"the service key before deploy", mem(20), &types.DeployConfig{Resources: types.Resources{Limits: &types.Resource{MemoryBytes: 30}}}, limits, 20},
	} {
		if got, _, _ := EffectiveLimits(tt.spec, tt.deploy, tt.limits); got != tt.mem {
			t.Errorf("%s: memory %d, want %d", tt.name, got, tt.mem)
		}
	}
}
