package swarm

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
)

func u64(n uint64) *uint64 { return &n }

var now = time.Date(2026, 12, 3, 15, 0, 0, 0, time.UTC)

func svcWith(hash string, mode swarm.ServiceMode, restart swarm.RestartPolicyCondition) swarm.Service {
	s := swarm.Service{ID: "s1"}
	s.Spec.Name = "p_api"
	s.Spec.Labels = map[string]string{contract.LabelConfigHash: hash}
	s.Spec.Mode = mode
	s.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Labels: map[string]string{contract.LabelConfigHash: hash}}
	s.Spec.TaskTemplate.RestartPolicy = &swarm.RestartPolicy{Condition: restart}
	return s
}

func task(hash string, desired, state swarm.TaskState, errMsg string) swarm.Task {
	t := swarm.Task{ServiceID: "s1", DesiredState: desired}
	t.Spec.ContainerSpec = &swarm.ContainerSpec{Labels: map[string]string{contract.LabelConfigHash: hash}}
	t.Status.State = state
	t.Status.Err = errMsg
	t.Status.Timestamp = now.Add(-time.Minute)
	return t
}

func TestJudge(t *testing.T) {
	replicated := func(n uint64) swarm.ServiceMode {
		return swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(n)}}
	}
	job := swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{MaxConcurrent: u64(1), TotalCompletions: u64(1)}}
	run, done := swarm.TaskStateRunning, swarm.TaskStateComplete
	for _, tc := range []struct {
		name    string
		svc     swarm.Service
		tasks   []swarm.Task
		cond    string
		done    bool
		err     string
		waiting string
	}{
		{"healthy: all replicas running", svcWith("h1", replicated(2), "any"),
			[]swarm.Task{task("h1", run, run, ""), task("h1", run, run, "")}, types.ServiceConditionHealthy, true, "", ""},
		{"healthy: one of two", svcWith("h1", replicated(2), "any"),
			[]swarm.Task{task("h1", run, run, ""), task("h1", run, swarm.TaskStateStarting, "")}, types.ServiceConditionHealthy, false, "", "1 of 2 tasks running"},
		{"an old spec's running task does not count", svcWith("h2", replicated(1), "any"),
			[]swarm.Task{task("h1", run, run, "")}, types.ServiceConditionHealthy, false, "", "0 of 1"},
		{"started: a starting task (health pending) is started", svcWith("h1", replicated(1), "any"),
			[]swarm.Task{task("h1", run, swarm.TaskStateStarting, "")}, types.ServiceConditionStarted, true, "", ""},
		{"a task failed, swarm will restart it: keep waiting, say why", svcWith("h1", replicated(1), "any"),
			[]swarm.Task{task("h1", swarm.TaskStateShutdown, swarm.TaskStateFailed, "task: non-zero exit (1)")}, types.ServiceConditionHealthy, false, "", "last task: task: non-zero exit (1)"},
		{"a task failed and nothing restarts it: give up", svcWith("h1", replicated(1), "none"),
			[]swarm.Task{task("h1", swarm.TaskStateShutdown, swarm.TaskStateFailed, "task: non-zero exit (1)")}, types.ServiceConditionHealthy, false, "non-zero exit (1)", ""},
		{"a task without healthcheck running for less than MinUptime is not ready yet", svcWith("h1", replicated(1), "none"),
			[]swarm.Task{func() swarm.Task {
				t := task("h1", run, run, "")
				t.Status.Timestamp = now.Add(-500 * time.Millisecond)
				return t
			}()},
			types.ServiceConditionHealthy, false, "", "0 of 1 tasks running"},
		{"a task with a healthcheck is ready as soon as swarm says running (healthy)", func() swarm.Service {
			s := svcWith("h1", replicated(1), "any")
			s.Spec.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "true"}}
			return s
		}(),
			[]swarm.Task{func() swarm.Task { t := task("h1", run, run, ""); t.Status.Timestamp = now; return t }()},
			types.ServiceConditionHealthy, true, "", ""},
		{"scaled to 0 is ready", svcWith("h1", replicated(0), "any"), nil, types.ServiceConditionHealthy, true, "", ""},
		{"job completed", svcWith("h1", job, "none"),
			[]swarm.Task{task("h1", done, done, "")}, types.ServiceConditionCompletedSuccessfully, true, "", ""},
		{"job running", svcWith("h1", job, "none"),
			[]swarm.Task{task("h1", done, run, "")}, types.ServiceConditionCompletedSuccessfully, false, "", "0 of 1 completions"},
		{"job failed", svcWith("h1", job, "none"),
			[]swarm.Task{task("h1", done, swarm.TaskStateFailed, "task: non-zero exit (3)")}, types.ServiceConditionCompletedSuccessfully, false, "non-zero exit (3)", ""},
		{"completed_successfully on a long-running service", svcWith("h1", replicated(1), "any"),
			[]swarm.Task{task("h1", run, run, "")}, types.ServiceConditionCompletedSuccessfully, false, "is not a job", ""},
		{"another service's tasks do not count", svcWith("h1", replicated(1), "any"),
			[]swarm.Task{func() swarm.Task { t := task("h1", run, run, ""); t.ServiceID = "s2"; return t }()}, types.ServiceConditionHealthy, false, "", "0 of 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := judge(tc.svc, tc.tasks, judging{Cond: tc.cond, Now: now, MinUptime: time.Second})
			if v.Done != tc.done {
				t.Errorf("done %v, want %v (%+v)", v.Done, tc.done, v)
			}
			if (v.Err == nil) != (tc.err == "") || (v.Err != nil && !strings.Contains(v.Err.Error(), tc.err)) {
				t.Errorf("err %v, want %q", v.Err, tc.err)
			}
			if !strings.Contains(v.Waiting, tc.waiting) {
				t.Errorf("waiting %q, want %q", v.Waiting, tc.waiting)
			}
		})
	}
}

func TestPlanServices(t *testing.T) {
	spec := func(name, hash string, n uint64) swarm.ServiceSpec {
		s := swarm.ServiceSpec{Annotations: swarm.Annotations{Name: "p_" + name, Labels: map[string]string{contract.LabelConfigHash: hash}}}
		s.Mode = swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(n)}}
		return s
	}
	existing := func(name, hash string, n uint64) swarm.Service {
		return swarm.Service{ID: "id-" + name, Spec: spec(name, hash, n)}
	}
	specs := map[string]swarm.ServiceSpec{"web": spec("web", "new", 1), "db": spec("db", "same", 1), "cache": spec("cache", "c", 1), "api": spec("api", "a", 1)}
	have := map[string]swarm.Service{"web": existing("web", "old", 1), "db": existing("db", "same", 1), "api": existing("api", "a", 0), "gone": existing("gone", "g", 1)}
	got := map[string]string{}
	for _, d := range planServices(specs, have, false) {
		got[d.Service] = d.String()
	}
	want := map[string]string{
		"web":   "update p_web (spec changed)",
		"db":    "keep p_db",
		"cache": "create p_cache",
		"api":   "update p_api (scaled)",
		"gone":  "remove p_gone (not in the project)",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	for _, d := range planServices(specs, have, true) {
		if d.Service == "db" && d.String() != "update p_db (forced)" {
			t.Errorf("forced: %s", d)
		}
	}
}

func TestEnvironmentFromTasks(t *testing.T) {
	web := svcWith("h", swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(1)}}, "any")
	web.ID = "w"
	web.Spec.Labels = map[string]string{LabelNamespace: "p", contract.LabelService: "web", contract.LabelRepo: "acme/shop", contract.LabelPR: "7", contract.LabelSHA: sha2, contract.LabelBuilt: "true", contract.LabelOneoff: "False"}
	web.Spec.TaskTemplate.ContainerSpec.Labels[contract.LabelRouteHost] = "pr-7.localhost"
	web.Spec.TaskTemplate.ContainerSpec.Labels[contract.LabelRoutePort] = "8080"
	web.Spec.TaskTemplate.ContainerSpec.Labels[contract.LabelPrimary] = "true"
	web.Spec.TaskTemplate.ContainerSpec.Healthcheck = nil
	db := svcWith("h", swarm.ServiceMode{Replicated: &swarm.ReplicatedService{Replicas: u64(0)}}, "any")
	db.ID = "d"
	db.Spec.Labels = map[string]string{LabelNamespace: "p", contract.LabelService: "db", contract.LabelSHA: sha1, contract.LabelOneoff: "False"}
	job := svcWith("h", swarm.ServiceMode{}, "none")
	job.ID = "j"
	job.Spec.Labels = map[string]string{LabelNamespace: "p", contract.LabelService: "web", contract.LabelOneoff: "True"}

	running := task("h", swarm.TaskStateRunning, swarm.TaskStateRunning, "")
	running.ServiceID, running.Slot, running.ID = "w", 1, "t1"
	running.Status.ContainerStatus = &swarm.ContainerStatus{ContainerID: "c1"}
	running.NetworksAttachments = []swarm.NetworkAttachment{{Network: swarm.Network{Spec: swarm.NetworkSpec{Annotations: swarm.Annotations{Name: "p_default", Labels: map[string]string{LabelNamespace: "p"}}}}, Addresses: []string{"10.0.1.5/24"}}}
	old := task("h", swarm.TaskStateShutdown, swarm.TaskStateShutdown, "")
	old.ServiceID, old.Slot = "w", 1

	env := environment("p", []swarm.Service{web, db, job}, []swarm.Task{running, old})
	if env.Repo != "acme/shop" || env.PR != 7 || env.SHA != sha2 {
		t.Errorf("env %+v", env)
	}
	if len(env.Services) != 2 || env.Services[0].Service != "db" || len(env.Services[0].Containers) != 0 || env.Services[1].Service != "web" {
		t.Fatalf("services %+v", env.Services)
	}
	c := env.Services[1].Containers
	if len(c) != 1 || c[0].ID != "c1" || c[0].IP != "10.0.1.5" || c[0].State != "running" || c[0].Number != 1 {
		t.Errorf("containers %+v", c)
	}
	if len(env.Routes) != 1 || env.Routes[0] != (stack.ObservedRoute{Host: "pr-7.localhost", Service: "web", Port: 8080, Primary: true}) {
		t.Errorf("routes %+v", env.Routes)
	}
	if env.Phase() != "running" {
		t.Errorf("phase %q", env.Phase())
	}
	// Scaled to zero (asleep): stopped.
	asleep := environment("p", []swarm.Service{web, db}, nil)
	if asleep.Phase() != "stopped" {
		t.Errorf("asleep: phase %q", asleep.Phase())
	}
}

func TestLiveTasks(t *testing.T) {
	var tasks []swarm.Task
	for _, st := range []swarm.TaskState{swarm.TaskStateRunning, swarm.TaskStatePreparing, swarm.TaskStateShutdown, swarm.TaskStateComplete, swarm.TaskStateFailed} {
		tasks = append(tasks, task("h", swarm.TaskStateShutdown, st, ""))
	}
	if n := liveTasks(tasks); n != 2 {
		t.Errorf("%d live, want 2 (running, preparing)", n)
	}
}

func TestRegistryScheme(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:5000": "http", "localhost:5000": "http", "[::1]:5000": "http", "localhost": "http",
		"registry.example.com": "https", "10.0.0.5:5000": "https",
	} {
		if got := (&Registry{Address: addr}).scheme(); got != want {
			t.Errorf("%s: %s, want %s", addr, got, want)
		}
	}
}

// The API's base is registry.api when set (Slipway in a container reaches
// the registry by another address than the nodes pull from), else the
// address with its scheme.
func TestRegistryBase(t *testing.T) {
	for _, tc := range []struct {
		r    Registry
		want string
	}{
		{Registry{Address: "127.0.0.1:5000"}, "http://127.0.0.1:5000"},
		{Registry{Address: "registry.example.com"}, "https://registry.example.com"},
		{Registry{Address: "127.0.0.1:5000", API: "http://172.17.0.1:5000/"}, "http://172.17.0.1:5000"},
	} {
		if got := tc.r.base(); got != tc.want {
			t.Errorf("%+v: %s, want %s", tc.r, got, tc.want)
		}
	}
}

func TestNextPage(t *testing.T) {
	for link, want := range map[string]string{
		`</v2/_catalog?last=b&n=1000>; rel="next"`: "/v2/_catalog?last=b&n=1000",
		``:                                  "",
		`</v2/_catalog?last=b>; rel="prev"`: "",
	} {
		if got := nextPage(link); got != want {
			t.Errorf("%q: %q, want %q", link, got, want)
		}
	}
}

// The registry's credentials go with services of images on that registry
// only: the daemon would offer them to any registry an image names, and a
// pull request names its image-only services' images.
func TestRegistryAuthGoesWithServicesOfItsImagesOnly(t *testing.T) {
	e := NewEngine(nil, nil, Options{Registry: &Registry{Address: "r.example.com:5000", User: "u", Password: "p"}})
	specOf := func(image string) swarm.ServiceSpec {
		return swarm.ServiceSpec{
			Annotations:  swarm.Annotations{Labels: map[string]string{contract.LabelBuilt: "true"}},
			TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Image: image}},
		}
	}
	ours := specOf("r.example.com:5000/acme-shop-pr-1-web:0123456789ab@sha256:" + strings.Repeat("a", 64))
	// An image-only service naming a repository of the registry (not built
	// by Slipway) gets no credentials either.
	imageOnly := ours
	imageOnly.Labels = nil
	if a := e.createOptions(imageOnly).EncodedRegistryAuth; a != "" {
		t.Errorf("an image-only service on the registry carries its credentials")
	}
	if a := e.createOptions(ours).EncodedRegistryAuth; a == "" || a != e.updateOptions(ours).EncodedRegistryAuth {
		t.Errorf("create %q update %q", a, e.updateOptions(ours).EncodedRegistryAuth)
	}
	raw, err := base64.URLEncoding.DecodeString(e.createOptions(ours).EncodedRegistryAuth)
	if err != nil || !strings.Contains(string(raw), `"username":"u"`) || !strings.Contains(string(raw), `"serveraddress":"r.example.com:5000"`) {
		t.Errorf("auth %s %v", raw, err)
	}
	for _, image := range []string{
		"reg.attacker.tld/x:1",
		"r.example.com/x:1",           // another port is another registry
		"r.example.com:5000.evil/x:1", // a longer domain
		"evil.tld/r.example.com:5000/x:1",
		"postgres:16", // Docker Hub
		"busybox",
		"",
	} {
		if a := e.createOptions(specOf(image)).EncodedRegistryAuth; a != "" {
			t.Errorf("create of %q carries the registry's credentials", image)
		}
		if a := e.updateOptions(specOf(image)).EncodedRegistryAuth; a != "" {
			t.Errorf("update of %q carries the registry's credentials", image)
		}
	}
	if a := NewEngine(nil, nil, Options{Registry: &Registry{Address: "r.example.com:5000"}}).createOptions(ours).EncodedRegistryAuth; a != "" {
		t.Errorf("a registry without a user: auth %q", a)
	}
}

// Readiness runs a service's checks (to report passes to the proxy) only
// for a routed service, and only when someone hears of a pass.
func TestCheckNode(t *testing.T) {
	routed := swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{Labels: map[string]string{contract.LabelRouteHost: "pr-1.example.test"}}}}
	unrouted := swarm.ServiceSpec{TaskTemplate: swarm.TaskSpec{ContainerSpec: &swarm.ContainerSpec{}}}
	told := &Engine{opts: Options{Build: stack.EngineOptions{OnCheckPassed: func(string, time.Time) {}}}}
	untold := &Engine{}
	for _, tc := range []struct {
		e    *Engine
		spec swarm.ServiceSpec
		want string
	}{
		{told, routed, "node1"},
		{told, unrouted, ""},
		{told, swarm.ServiceSpec{}, ""},
		{untold, routed, ""},
	} {
		if got := tc.e.checkNode(tc.spec, "node1"); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.spec.TaskTemplate.ContainerSpec, got, tc.want)
		}
	}
}

func TestIsContainerID(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	for s, want := range map[string]bool{
		id:                              true,
		strings.ToUpper(id):             false,
		id[:63]:                         false,
		id + "0":                        false,
		"lb-" + strings.Repeat("n", 61): false, // 64 long: a load-balancer endpoint
		"ingress-sbox":                  false,
		"":                              false,
	} {
		if got := isContainerID(s); got != want {
			t.Errorf("isContainerID(%q) = %v, want %v", s, got, want)
		}
	}
}
