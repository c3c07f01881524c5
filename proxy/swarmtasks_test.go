package proxy

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"

	"github.com/slipwayhq/slipway/internal/contract"
)

// The fixtures of TestTaskContainers: project p (repo o/r, PR 1) on its
// overlay network p_default, services web (exposed at web.example.com,
// port 80) and api (not exposed).

func svcLabels(project, service, host, port string) map[string]string {
	l := map[string]string{
		contract.LabelManaged: "true",
		contract.LabelProject: project,
		contract.LabelService: service,
		contract.LabelRepo:    "o/r",
		contract.LabelPR:      "1",
	}
	if host != "" {
		l[contract.LabelRouteHost] = host
		l[contract.LabelRoutePort] = port
	}
	return l
}

func svc(id, project, service, host string, mods ...func(*swarm.Service)) swarm.Service {
	s := swarm.Service{ID: id}
	s.CreatedAt = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s.Spec.Name = project + "_" + service
	s.Spec.Labels = map[string]string{contract.LabelManaged: "true", contract.LabelProject: project}
	s.Spec.TaskTemplate.ContainerSpec = &swarm.ContainerSpec{Labels: svcLabels(project, service, host, "80")}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func withHealthcheck(s *swarm.Service) {
	s.Spec.TaskTemplate.ContainerSpec.Healthcheck = &container.HealthConfig{Test: []string{"CMD", "true"}}
}

func createdAt(sec int) func(*swarm.Service) {
	return func(s *swarm.Service) { s.CreatedAt = time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC) }
}

// tsk is a task of s in slot, in state st, desired running, with address
// addr on network p_default; mods adjust it. Its container spec is the
// service's (a copy).
func tsk(s swarm.Service, slot int, st swarm.TaskState, addr string, mods ...func(*swarm.Task)) swarm.Task {
	t := swarm.Task{ID: fmt.Sprintf("t-%s-%d", s.ID, slot), ServiceID: s.ID, Slot: slot, DesiredState: swarm.TaskStateRunning}
	cs := *s.Spec.TaskTemplate.ContainerSpec
	cs.Labels = maps.Clone(cs.Labels)
	t.Spec.ContainerSpec = &cs
	t.Status.State = st
	if addr != "" {
		t.NetworksAttachments = []swarm.NetworkAttachment{attachment(s.Spec.Labels[contract.LabelProject]+"_default", addr)}
	}
	for _, m := range mods {
		m(&t)
	}
	return t
}

func attachment(network, addr string) swarm.NetworkAttachment {
	var a swarm.NetworkAttachment
	a.Network.Spec.Name = network
	a.Addresses = []string{addr}
	return a
}

func desired(st swarm.TaskState) func(*swarm.Task) {
	return func(t *swarm.Task) { t.DesiredState = st }
}

func TestTaskContainers(t *testing.T) {
	web := svc("s1", "p", "web", "web.example.com")
	webHC := svc("s1", "p", "web", "web.example.com", withHealthcheck)
	api := svc("s2", "p", "api", "")
	tests := []struct {
		name     string
		services []swarm.Service
		tasks    []swarm.Task
		owner    HostOwner
		want     map[string]string // host → summary (see summary)
		problems []string          // substrings, one per problem, in order
	}{
		{name: "nothing", want: map[string]string{}},
		{
			name:     "one running task is the backend, at its task address without the prefix",
			services: []swarm.Service{web, api},
			tasks:    []swarm.Task{tsk(web, 1, swarm.TaskStateRunning, "10.0.1.5/24"), tsk(api, 1, swarm.TaskStateRunning, "10.0.1.6/24")},
			want:     map[string]string{"web.example.com": "p/web running 10.0.1.5:80"},
		},
		{
			name:     "replicas are several backends",
			services: []swarm.Service{web},
			tasks: []swarm.Task{
				tsk(web, 2, swarm.TaskStateRunning, "10.0.1.7/24"),
				tsk(web, 1, swarm.TaskStateRunning, "10.0.1.5/24"),
				tsk(web, 3, swarm.TaskStateRunning, "10.0.1.9/24"),
			},
			want: map[string]string{"web.example.com": "p/web running 10.0.1.5:80,10.0.1.7:80,10.0.1.9:80"},
		},
		{
			name:     "a running task with a healthcheck is healthy: Swarm says running only then",
			services: []swarm.Service{webHC},
			tasks:    []swarm.Task{tsk(webHC, 1, swarm.TaskStateRunning, "10.0.1.5/24")},
			want:     map[string]string{"web.example.com": "p/web running 10.0.1.5:80"},
		},
		{
			name:     "a starting task is not served",
			services: []swarm.Service{webHC},
			tasks:    []swarm.Task{tsk(webHC, 1, swarm.TaskStateStarting, "10.0.1.5/24")},
			want:     map[string]string{"web.example.com": "p/web starting"},
		},
		{
			name:     "a task still preparing (pulling its image) is starting",
			services: []swarm.Service{web},
			tasks:    []swarm.Task{tsk(web, 1, swarm.TaskStatePreparing, "")},
			want:     map[string]string{"web.example.com": "p/web starting"},
		},
		{
			name:     "a task being shut down (desired shutdown) is not served; its replacement is",
			services: []swarm.Service{web},
			tasks: []swarm.Task{
				tsk(web, 1, swarm.TaskStateRunning, "10.0.1.5/24", desired(swarm.TaskStateShutdown)),
				tsk(web, 1, swarm.TaskStateRunning, "10.0.1.8/24", func(t *swarm.Task) { t.ID = "t-new" }),
			},
			want: map[string]string{"web.example.com": "p/web running 10.0.1.8:80"},
		},
		{
			name:     "history (failed, shut down, completed tasks) is ignored",
			services: []swarm.Service{web},
			tasks: []swarm.Task{
				tsk(web, 1, swarm.TaskStateFailed, "10.0.1.4/24", desired(swarm.TaskStateShutdown), func(t *swarm.Task) { t.ID = "old1" }),
				tsk(web, 1, swarm.TaskStateShutdown, "10.0.1.3/24", desired(swarm.TaskStateShutdown), func(t *swarm.Task) { t.ID = "old2" }),
				tsk(web, 1, swarm.TaskStateRunning, "10.0.1.5/24"),
			},
			want: map[string]string{"web.example.com": "p/web running 10.0.1.5:80"},
		},
		{
			name:     "a service scaled to 0 (asleep) keeps its host, stopped, so a request wakes it",
			services: []swarm.Service{web},
			tasks:    []swarm.Task{tsk(web, 1, swarm.TaskStateShutdown, "10.0.1.5/24", desired(swarm.TaskStateShutdown))},
			want:     map[string]string{"web.example.com": "p/web stopped"},
		},
		{
			name:     "a failed task Swarm still wants running is a stopped container",
			services: []swarm.Service{web},
			tasks:    []swarm.Task{tsk(web, 1, swarm.TaskStateFailed, "10.0.1.5/24")},
			want:     map[string]string{"web.example.com": "p/web stopped"},
		},
		{
			name:     "the address on the project's network wins over ingress",
			services: []swarm.Service{web},
			tasks: []swarm.Task{tsk(web, 1, swarm.TaskStateRunning, "", func(t *swarm.Task) {
				t.NetworksAttachments = []swarm.NetworkAttachment{attachment("ingress", "10.255.0.4/16"), attachment("p_default", "10.0.1.5/24")}
			})},
			want: map[string]string{"web.example.com": "p/web running 10.0.1.5:80"},
		},
		{
			name:     "IPv6 task address",
			services: []swarm.Service{web},
			tasks:    []swarm.Task{tsk(web, 1, swarm.TaskStateRunning, "fd00::5/64")},
			want:     map[string]string{"web.example.com": "p/web running [fd00::5]:80"},
		},
		{
			name:     "the route is the task's own labels: an old task keeps its old port during an update",
			services: []swarm.Service{web},
			tasks: []swarm.Task{tsk(web, 1, swarm.TaskStateRunning, "10.0.1.5/24", func(t *swarm.Task) {
				t.Spec.ContainerSpec.Labels[contract.LabelRoutePort] = "8080"
			})},
			want: map[string]string{"web.example.com": "p/web running 10.0.1.5:8080"},
		},
		{
			name:     "one bad task address is skipped and reported; the other replica serves",
			services: []swarm.Service{web},
			tasks: []swarm.Task{
				tsk(web, 1, swarm.TaskStateRunning, "not-an-ip/24"),
				tsk(web, 2, swarm.TaskStateRunning, "10.0.1.7/24"),
			},
			want:     map[string]string{"web.example.com": "p/web running 10.0.1.7:80"},
			problems: []string{`p_web.1.t-s1-1 host "web.example.com": task address "not-an-ip/24" on network p_default is not an IP address`},
		},
		{
			name:     "a task without container spec is skipped and reported",
			services: []swarm.Service{web},
			tasks: []swarm.Task{
				tsk(web, 1, swarm.TaskStateRunning, "10.0.1.5/24", func(t *swarm.Task) { t.Spec.ContainerSpec = nil }),
				tsk(web, 2, swarm.TaskStateRunning, "10.0.1.7/24"),
			},
			want:     map[string]string{"web.example.com": "p/web running 10.0.1.7:80"},
			problems: []string{"p_web.1.t-s1-1 host \"\": task has no container spec"},
		},
		{
			name:     "a running task with no address is refused by the table",
			services: []swarm.Service{web},
			tasks:    []swarm.Task{tsk(web, 1, swarm.TaskStateRunning, "")},
			want:     map[string]string{},
			problems: []string{"running but has no IP address"},
		},
		{
			name:     "tasks of a service not in the list (not managed, or removed) are ignored",
			services: []swarm.Service{api},
			tasks:    []swarm.Task{tsk(web, 1, swarm.TaskStateRunning, "10.0.1.5/24")},
			want:     map[string]string{},
		},
		{
			name:     "a task whose labels say it is not managed is ignored",
			services: []swarm.Service{web},
			tasks: []swarm.Task{tsk(web, 1, swarm.TaskStateRunning, "10.0.1.5/24", func(t *swarm.Task) {
				t.Spec.ContainerSpec.Labels[contract.LabelManaged] = "false"
			})},
			// The service's own spec still exposes it: no live task, so stopped.
			want: map[string]string{"web.example.com": "p/web stopped"},
		},
		{
			name:     "a route Slipway did not declare for the pull request is refused",
			services: []swarm.Service{svc("s1", "p", "web", "bank.example.com")},
			tasks:    []swarm.Task{tsk(svc("s1", "p", "web", "bank.example.com"), 1, swarm.TaskStateRunning, "10.0.1.5/24")},
			owner:    contract.HostTemplates{Domain: "example.com"},
			want:     map[string]string{},
			problems: []string{"route not declared by Slipway for o/r#1"},
		},
		{
			name:     "the host Slipway declared is served",
			services: []swarm.Service{svc("s1", "p", "web", "pr-1.example.com")},
			tasks:    []swarm.Task{tsk(svc("s1", "p", "web", "pr-1.example.com"), 1, swarm.TaskStateRunning, "10.0.1.5/24")},
			owner:    contract.HostTemplates{Domain: "example.com"},
			want:     map[string]string{"pr-1.example.com": "p/web running 10.0.1.5:80"},
		},
		{
			name: "two projects claiming a host: the service created first keeps it",
			services: []swarm.Service{
				svc("s1", "p", "web", "web.example.com", createdAt(5)),
				svc("s9", "q", "web", "web.example.com", createdAt(1)),
			},
			tasks: []swarm.Task{
				tsk(svc("s1", "p", "web", "web.example.com"), 1, swarm.TaskStateRunning, "10.0.1.5/24"),
				tsk(svc("s9", "q", "web", "web.example.com"), 1, swarm.TaskStateRunning, "10.0.2.5/24"),
			},
			want:     map[string]string{"web.example.com": "q/web running 10.0.2.5:80"},
			problems: []string{"host already claimed by project q"},
		},
		{
			name:     "a bad port label is refused by the table",
			services: []swarm.Service{web},
			tasks: []swarm.Task{tsk(web, 1, swarm.TaskStateRunning, "10.0.1.5/24", func(t *swarm.Task) {
				t.Spec.ContainerSpec.Labels[contract.LabelRoutePort] = "http"
			})},
			want:     map[string]string{},
			problems: []string{`invalid route port label "http"`},
		},
		{
			name:     "a global service's task is named by its node",
			services: []swarm.Service{web},
			tasks:    []swarm.Task{tsk(web, 0, swarm.TaskStateRunning, "10.0.1.5/24", func(t *swarm.Task) { t.NodeID = "n1" })},
			want:     map[string]string{"web.example.com": "p/web running 10.0.1.5:80"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			owner := tt.owner
			if owner == nil {
				owner = anyHost{}
			}
			cs, problems := TaskContainers(tt.services, tt.tasks, nil)
			table, tproblems := ComputeTable(cs, nil, owner)
			got := map[string]string{}
			for _, r := range table.Routes() {
				got[r.Host] = summary(r)
			}
			if len(tt.want) == 0 && len(got) == 0 {
				// both empty
			} else if !maps.Equal(got, tt.want) {
				t.Errorf("table:\n got %v\nwant %v", got, tt.want)
			}
			var all []string
			for _, p := range append(problems, tproblems...) {
				all = append(all, p.String())
			}
			if len(all) != len(tt.problems) {
				t.Fatalf("problems: got %q, want %d matching %q", all, len(tt.problems), tt.problems)
			}
			for i, want := range tt.problems {
				if !strings.Contains(all[i], want) {
					t.Errorf("problem %d: got %q, want it to contain %q", i, all[i], want)
				}
			}
		})
	}
}

func TestTaskContainersNamesAndIDs(t *testing.T) {
	web := svc("s1", "p", "web", "web.example.com")
	cs, _ := TaskContainers([]swarm.Service{web}, []swarm.Task{tsk(web, 2, swarm.TaskStateRunning, "10.0.1.5/24")}, nil)
	if len(cs) != 1 {
		t.Fatalf("got %d containers, want 1", len(cs))
	}
	c := cs[0]
	if c.ID != "t-s1-2" || c.Name != "p_web.2.t-s1-2" || c.Project != "p" || c.Service != "web" || c.Repo != "o/r" || c.PR != 1 || c.IP != "10.0.1.5" {
		t.Errorf("container = %+v", c)
	}
	// backendIP gets the task's networks, name → IP.
	var seen map[string]string
	TaskContainers([]swarm.Service{web}, []swarm.Task{tsk(web, 1, swarm.TaskStateRunning, "10.0.1.5/24")}, func(project string, nets map[string]string) string {
		seen = nets
		return "192.0.2.1"
	})
	if !maps.Equal(seen, map[string]string{"p_default": "10.0.1.5"}) {
		t.Errorf("backendIP got %v", seen)
	}
}

func TestServicesServeNetwork(t *testing.T) {
	attached := func(target string) func(*swarm.Service) {
		return func(s *swarm.Service) {
			s.Spec.TaskTemplate.Networks = []swarm.NetworkAttachmentConfig{{Target: target}}
		}
	}
	replicas := func(n uint64) func(*swarm.Service) {
		return func(s *swarm.Service) { s.Spec.Mode.Replicated = &swarm.ReplicatedService{Replicas: &n} }
	}
	global := func(s *swarm.Service) { s.Spec.Mode = swarm.ServiceMode{Global: &swarm.GlobalService{}} }
	tests := []struct {
		name   string
		svcs   []swarm.Service
		domain string
		want   bool
	}{
		{"no service", nil, "", false},
		{"exposed service attached by network ID", []swarm.Service{svc("s1", "p", "web", "pr-1.example.com", attached("nid"), replicas(1))}, "example.com", true},
		{"attached by network name", []swarm.Service{svc("s1", "p", "web", "pr-1.example.com", attached("p_default"), replicas(2))}, "", true},
		{"replicas unset means one", []swarm.Service{svc("s1", "p", "web", "pr-1.example.com", attached("nid"), func(s *swarm.Service) { s.Spec.Mode.Replicated = &swarm.ReplicatedService{} })}, "", true},
		{"global service", []swarm.Service{svc("s1", "p", "web", "pr-1.example.com", attached("nid"), global)}, "", true},
		{"scaled to 0 (asleep)", []swarm.Service{svc("s1", "p", "web", "pr-1.example.com", attached("nid"), replicas(0))}, "", false},
		{"a job (never routed)", []swarm.Service{svc("s1", "p", "web", "pr-1.example.com", attached("nid"), func(s *swarm.Service) {
			s.Spec.Mode = swarm.ServiceMode{ReplicatedJob: &swarm.ReplicatedJob{}}
		})}, "", false},
		{"not exposed (a database)", []swarm.Service{svc("s2", "p", "db", "", attached("nid"), replicas(1))}, "", false},
		{"on another network", []swarm.Service{svc("s1", "p", "web", "pr-1.example.com", attached("other"), replicas(1))}, "", false},
		{"exposed under another domain (another Slipway's)", []swarm.Service{svc("s1", "p", "web", "pr-1.other.org", attached("nid"), replicas(1))}, "example.com", false},
		{"a look-alike domain suffix", []swarm.Service{svc("s1", "p", "web", "pr-1.badexample.com", attached("nid"), replicas(1))}, "example.com", false},
		{"not managed", []swarm.Service{svc("s1", "p", "web", "pr-1.example.com", attached("nid"), replicas(1), func(s *swarm.Service) {
			s.Spec.TaskTemplate.ContainerSpec.Labels[contract.LabelManaged] = "false"
		})}, "", false},
		{"no container spec", []swarm.Service{svc("s1", "p", "web", "pr-1.example.com", attached("nid"), replicas(1), func(s *swarm.Service) {
			s.Spec.TaskTemplate.ContainerSpec = nil
		})}, "", false},
		{"one of several serves", []swarm.Service{
			svc("s2", "p", "db", "", attached("nid"), replicas(1)),
			svc("s1", "p", "web", "pr-1.example.com", attached("nid"), replicas(1)),
		}, "example.com", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ServicesServeNetwork(tt.svcs, "nid", "p_default", tt.domain); got != tt.want {
				t.Errorf("ServicesServeNetwork = %v, want %v", got, tt.want)
			}
		})
	}
}
