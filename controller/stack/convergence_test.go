package stack

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"

	"github.com/slipwayhq/slipway/internal/contract"
)

// The convergence plan is a pure function of the wanted specs and the
// observed containers: this table needs no engine.
func TestPlanConvergence(t *testing.T) {
	const project = "acme-shop-pr-4"
	const imgA, imgB = "sha256:aaaaaaaaaaaaaaaaaaaa", "sha256:bbbbbbbbbbbbbbbbbbbb"
	name := func(service string, n int) string { return contract.ContainerName(project, service, n) }
	// spec is replica n of service, with config "hash" running image.
	spec := func(service string, n int, hash, image string) *containerSpec {
		return &containerSpec{Name: name(service, n), Service: service, Number: n, Hash: hash,
			Config: &container.Config{Labels: map[string]string{contract.LabelImage: image}}}
	}
	sharing := func(s *containerSpec, parent string) *containerSpec { s.NetworkModeService = parent; return s }
	// running is a container as the engine lists it, created from a spec
	// of config "hash" and image.
	type obs = container.Summary
	observed := func(containerName, service string, n int, hash, image string, state container.ContainerState, status string) obs {
		return obs{ID: "id-" + containerName, Names: []string{"/" + containerName}, State: state, Status: status,
			Labels: map[string]string{
				contract.LabelProject: project, contract.LabelService: service, contract.LabelNumber: strconv.Itoa(n),
				contract.LabelConfigHash: hash, contract.LabelImage: image,
			}}
	}
	running := func(service string, n int, hash, image string) obs {
		return observed(name(service, n), service, n, hash, image, container.StateRunning, "Up 2 minutes")
	}
	mounting := func(c obs, volume string) obs {
		c.Mounts = []container.MountPoint{{Type: mount.TypeVolume, Name: volume}}
		return c
	}
	specs := func(ss ...*containerSpec) map[string][]*containerSpec {
		out := map[string][]*containerSpec{}
		for _, s := range ss {
			out[s.Service] = append(out[s.Service], s)
		}
		return out
	}
	byName := func(cs ...obs) map[string]obs {
		out := map[string]obs{}
		for _, c := range cs {
			out[strings.TrimPrefix(c.Names[0], "/")] = c
		}
		return out
	}

	tests := []struct {
		name string
		in   convergeInput
		// want lists "<action> <container> <reason>[ (<detail>)]", in order.
		want []string
	}{
		{"new environment: every replica created",
			convergeInput{specs: specs(spec("web", 1, "h1", imgA), spec("web", 2, "h1", imgA), spec("db", 1, "h2", imgB))},
			[]string{
				"create acme-shop-pr-4-db-1: no container yet",
				"create acme-shop-pr-4-web-1: no container yet",
				"create acme-shop-pr-4-web-2: no container yet",
			}},
		{"unchanged and running: kept",
			convergeInput{specs: specs(spec("web", 1, "h1", imgA)), observed: byName(running("web", 1, "h1", imgA))},
			[]string{"keep acme-shop-pr-4-web-1: up to date"}},
		{"unchanged but exited with an error: started",
			convergeInput{specs: specs(spec("web", 1, "h1", imgA)),
				observed: byName(observed(name("web", 1), "web", 1, "h1", imgA, container.StateExited, "Exited (1) 3 seconds ago"))},
			[]string{"start acme-shop-pr-4-web-1: not running (exited)"}},
		{"unchanged but only created: started",
			convergeInput{specs: specs(spec("web", 1, "h1", imgA)),
				observed: byName(observed(name("web", 1), "web", 1, "h1", imgA, container.StateCreated, "Created"))},
			[]string{"start acme-shop-pr-4-web-1: not running (created)"}},
		{"unchanged one-shot that completed: not started again",
			convergeInput{specs: specs(spec("seed", 1, "h1", imgA)),
				observed: byName(observed(name("seed", 1), "seed", 1, "h1", imgA, container.StateExited, "Exited (0) 3 minutes ago"))},
			[]string{"keep acme-shop-pr-4-seed-1: completed"}},
		{"config changed, same image",
			convergeInput{specs: specs(spec("web", 1, "h2", imgA)), observed: byName(running("web", 1, "h1", imgA))},
			[]string{"recreate acme-shop-pr-4-web-1: config hash changed"}},
		{"image changed",
			convergeInput{specs: specs(spec("web", 1, "h2", imgB)), observed: byName(running("web", 1, "h1", imgA))},
			[]string{"recreate acme-shop-pr-4-web-1: image changed (sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb)"}},
		{"forced: unchanged containers recreated, changed ones say what changed",
			convergeInput{force: true, specs: specs(spec("web", 1, "h1", imgA), spec("db", 1, "h3", imgB)),
				observed: byName(running("web", 1, "h1", imgA), running("db", 1, "h2", imgA))},
			[]string{
				"recreate acme-shop-pr-4-db-1: image changed (sha256:aaaaaaaaaaaa → sha256:bbbbbbbbbbbb)",
				"recreate acme-shop-pr-4-web-1: forced",
			}},
		{"scale down: replicas above the scale removed",
			convergeInput{specs: specs(spec("web", 1, "h1", imgA)),
				observed: byName(running("web", 3, "h1", imgA), running("web", 1, "h1", imgA), running("web", 2, "h1", imgA))},
			[]string{
				"keep acme-shop-pr-4-web-1: up to date",
				"remove acme-shop-pr-4-web-2: scale down (web wants 1)",
				"remove acme-shop-pr-4-web-3: scale down (web wants 1)",
			}},
		{"scaled to 0",
			convergeInput{specs: map[string][]*containerSpec{"worker": nil}, observed: byName(running("worker", 1, "h1", imgA))},
			[]string{"remove acme-shop-pr-4-worker-1: scale down (worker wants 0)"}},
		{"orphan service removed last",
			convergeInput{specs: specs(spec("web", 1, "h1", imgA)), observed: byName(running("web", 1, "h1", imgA), running("cache", 1, "h9", imgB))},
			[]string{
				"keep acme-shop-pr-4-web-1: up to date",
				"remove acme-shop-pr-4-cache-1: orphan service (cache is not in the compose project)",
			}},
		{"interrupted run: its container removed first, the replica created",
			convergeInput{specs: specs(spec("web", 1, "h1", imgA)),
				observed: byName(observed("0123456789ab_"+name("web", 1), "web", 1, "h1", imgA, container.StateExited, "Exited (137) 1 hour ago"))},
			[]string{
				"remove 0123456789ab_acme-shop-pr-4-web-1: left by an interrupted run",
				"create acme-shop-pr-4-web-1: no container yet",
			}},
		{"a container whose name its labels do not give counts as interrupted",
			convergeInput{specs: specs(spec("web", 1, "h1", imgA)),
				observed: byName(observed(name("web", 1), "api", 1, "h1", imgA, container.StateRunning, "Up"))},
			[]string{
				"remove acme-shop-pr-4-web-1: left by an interrupted run",
				"create acme-shop-pr-4-web-1: no container yet",
			}},
		{"network namespace of a recreated service: recreated too",
			convergeInput{specs: specs(spec("vpn", 1, "h2", imgA), sharing(spec("app", 1, "h1", imgB), "vpn")),
				observed: byName(running("vpn", 1, "h1", imgA), running("app", 1, "h1", imgB))},
			[]string{
				"recreate acme-shop-pr-4-app-1: network namespace recreated (network_mode: service:vpn)",
				"recreate acme-shop-pr-4-vpn-1: config hash changed",
			}},
		{"network namespace of a service that scales down: recreated",
			convergeInput{specs: specs(spec("vpn", 1, "h1", imgA), sharing(spec("app", 1, "h1", imgB), "vpn")),
				observed: byName(running("vpn", 1, "h1", imgA), running("vpn", 2, "h1", imgA), running("app", 1, "h1", imgB))},
			[]string{
				"recreate acme-shop-pr-4-app-1: network namespace recreated (network_mode: service:vpn)",
				"keep acme-shop-pr-4-vpn-1: up to date",
				"remove acme-shop-pr-4-vpn-2: scale down (vpn wants 1)",
			}},
		{"network namespace of an unchanged service: kept",
			convergeInput{specs: specs(spec("vpn", 1, "h1", imgA), sharing(spec("app", 1, "h1", imgB), "vpn")),
				observed: byName(running("vpn", 1, "h1", imgA), running("app", 1, "h1", imgB))},
			[]string{
				"keep acme-shop-pr-4-app-1: up to date",
				"keep acme-shop-pr-4-vpn-1: up to date",
			}},
		{"image not built yet (a plan before the build)",
			convergeInput{specs: specs(spec("web", 1, "h1", ""), spec("web", 2, "h1", "")),
				observed:      byName(running("web", 1, "h1", imgA)),
				pendingImages: map[string]string{"web": "image acme-shop-pr-4-web:222222222222 will be built"}},
			[]string{
				"recreate acme-shop-pr-4-web-1: image not built or pulled yet (image acme-shop-pr-4-web:222222222222 will be built)",
				"create acme-shop-pr-4-web-2: no container yet",
			}},
		{"volume that binds an old checkout: its users recreated",
			convergeInput{specs: specs(spec("web", 1, "h1", imgA), spec("db", 1, "h2", imgA)),
				observed:        byName(mounting(running("web", 1, "h1", imgA), project+"_site"), mounting(running("db", 1, "h2", imgA), project+"_data")),
				replacedVolumes: map[string]bool{project + "_site": true}},
			[]string{
				"keep acme-shop-pr-4-db-1: up to date",
				"recreate acme-shop-pr-4-web-1: volume replaced (volume acme-shop-pr-4_site binds an old checkout)",
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := planConvergence(project, tt.in)
			var got []string
			for _, a := range conv.Actions {
				got = append(got, a.String())
				if a.Action != ActionCreate {
					if want := tt.in.observed[a.Container].ID; a.ID != want || want == "" {
						t.Errorf("%s: ID %q, want the observed container's %q", a, a.ID, want)
					}
				} else if a.ID != "" {
					t.Errorf("%s: a container to create has ID %q", a, a.ID)
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("plan:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if conv.Project != project {
				t.Errorf("project %q", conv.Project)
			}
			changed := slices.ContainsFunc(tt.want, func(s string) bool { return !strings.HasPrefix(s, "keep ") && !strings.HasPrefix(s, "start ") })
			if conv.Changed() != changed {
				t.Errorf("Changed() = %t, want %t", conv.Changed(), changed)
			}
		})
	}
}

// Up carries the plan out per service: ofService gives a service's
// replicas, then its scale-down, and nothing of orphans or interrupted runs.
func TestConvergenceOfService(t *testing.T) {
	conv := &Convergence{Actions: []ContainerAction{
		{Action: ActionRemove, Reason: ReasonInterrupted, Service: "web", Number: 1, Container: "x_p-web-1"},
		{Action: ActionKeep, Reason: ReasonUpToDate, Service: "web", Number: 1, Container: "p-web-1"},
		{Action: ActionRemove, Reason: ReasonScaleDown, Service: "web", Number: 2, Container: "p-web-2"},
		{Action: ActionRemove, Reason: ReasonOrphan, Service: "old", Number: 1, Container: "p-old-1"},
	}}
	var got []string
	for _, a := range conv.ofService("web") {
		got = append(got, a.Container)
	}
	if want := []string{"p-web-1", "p-web-2"}; !slices.Equal(got, want) {
		t.Errorf("ofService(web) = %v, want %v", got, want)
	}
	if n := conv.Count(ActionRemove); n != 3 {
		t.Errorf("Count(remove) = %d, want 3", n)
	}
	if got := fmt.Sprint(conv.withReason(ReasonOrphan)); !strings.Contains(got, "p-old-1") || strings.Contains(got, "p-web") {
		t.Errorf("withReason(orphan) = %s", got)
	}
}
