package proxy

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/internal/contract"
)

// ctr builds a running container without healthcheck; mods adjust it.
func ctr(name, project, service, host, port, ip string, mods ...func(*Container)) Container {
	c := Container{ID: "id-" + name, Name: name, Project: project, Service: service, Repo: "o/r", PR: 1, Host: host, Port: port, Running: true, IP: ip}
	for _, m := range mods {
		m(&c)
	}
	return c
}

// anyHost accepts every host: for the tests of the other rules.
type anyHost struct{}

func (anyHost) OwnsHost(string, string, int, string) error { return nil }

// created sets the creation time to sec seconds into 2026.
func created(sec int) func(*Container) {
	return func(c *Container) { c.Created = time.Date(2026, 1, 1, 0, 0, sec, 0, time.UTC) }
}

func health(h string) func(*Container) { return func(c *Container) { c.Health = h } }
func stopped(c *Container)             { c.Running = false; c.IP = "" }

// summary renders a route compactly: "project/service phase [backends] [state=phase/step/service/reason]".
func summary(r *Route) string {
	s := fmt.Sprintf("%s/%s %s", r.Project, r.Service, r.Phase)
	if len(r.Backends) > 0 {
		var addrs []string
		for _, b := range r.Backends {
			addrs = append(addrs, b.Addr)
		}
		s += " " + strings.Join(addrs, ",")
	}
	if r.State.Phase != "" {
		s += fmt.Sprintf(" state=%s/%s/%s/%s", r.State.Phase, r.State.Step, r.State.Service, r.State.Reason)
	}
	return s
}

func TestComputeTable(t *testing.T) {
	tests := []struct {
		name       string
		containers []Container
		states     map[string]ProjectState
		want       map[string]string // host → summary
		problems   []string          // substrings, one per problem, in order
	}{
		{
			name: "empty",
			want: map[string]string{},
		},
		{
			name:       "one running container without healthcheck",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "8080", "10.0.0.2")},
			want:       map[string]string{"pr-1.localhost": "p1/web running 10.0.0.2:8080"},
		},
		{
			name:       "healthy container",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("healthy"))},
			want:       map[string]string{"pr-1.localhost": "p1/web running 10.0.0.2:80"},
		},
		{
			name:       "health starting is not a backend yet",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("starting"))},
			want:       map[string]string{"pr-1.localhost": "p1/web starting"},
		},
		{
			name: "health starting whose own check passed in this run is a backend",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("starting"),
				func(c *Container) { c.CheckPassed = true })},
			want: map[string]string{"pr-1.localhost": "p1/web running 10.0.0.2:80"},
		},
		{
			name: "Docker's unhealthy wins over a passed check",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("unhealthy"),
				func(c *Container) { c.CheckPassed = true })},
			want: map[string]string{"pr-1.localhost": "p1/web unhealthy"},
		},
		{
			name:       "unhealthy only",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("unhealthy"))},
			want:       map[string]string{"pr-1.localhost": "p1/web unhealthy"},
		},
		{
			name: "one starting and one unhealthy replica is starting",
			containers: []Container{
				ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("unhealthy")),
				ctr("p1-web-2", "p1", "web", "pr-1.localhost", "80", "10.0.0.3", health("starting")),
			},
			want: map[string]string{"pr-1.localhost": "p1/web starting"},
		},
		{
			name:       "exited container is a stopped host",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "", stopped)},
			want:       map[string]string{"pr-1.localhost": "p1/web stopped"},
		},
		{
			name:       "stopped container needs no IP",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "", stopped, health("unhealthy"))},
			want:       map[string]string{"pr-1.localhost": "p1/web stopped"},
		},
		{
			name: "container without route host is ignored silently",
			containers: []Container{
				ctr("p1-db-1", "p1", "db", "", "", "10.0.0.9"),
				ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2"),
			},
			want: map[string]string{"pr-1.localhost": "p1/web running 10.0.0.2:80"},
		},
		{
			name: "upper-case host label is skipped, others kept",
			containers: []Container{
				ctr("bad-1", "p2", "web", "PR-2.localhost", "80", "10.0.0.3"),
				ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2"),
			},
			want:     map[string]string{"pr-1.localhost": "p1/web running 10.0.0.2:80"},
			problems: []string{"bad-1 host \"PR-2.localhost\": invalid route host label"},
		},
		{
			name:       "host label with port is skipped",
			containers: []Container{ctr("bad-1", "p2", "web", "pr-2.localhost:80", "80", "10.0.0.3")},
			want:       map[string]string{},
			problems:   []string{"bad-1 host \"pr-2.localhost:80\": invalid route host label"},
		},
		{
			name:       "host label with trailing dot is skipped",
			containers: []Container{ctr("bad-1", "p2", "web", "pr-2.localhost.", "80", "10.0.0.3")},
			want:       map[string]string{},
			problems:   []string{"invalid route host label"},
		},
		{
			name:       "host label with underscore is skipped",
			containers: []Container{ctr("bad-1", "p2", "web", "pr_2.localhost", "80", "10.0.0.3")},
			want:       map[string]string{},
			problems:   []string{"invalid route host label"},
		},
		{
			name:       "non-ASCII host label is skipped",
			containers: []Container{ctr("bad-1", "p2", "web", "bücher.localhost", "80", "10.0.0.3")},
			want:       map[string]string{},
			problems:   []string{"invalid route host label"},
		},
		{
			name:       "label starting with a hyphen is skipped",
			containers: []Container{ctr("bad-1", "p2", "web", "-pr.localhost", "80", "10.0.0.3")},
			want:       map[string]string{},
			problems:   []string{"invalid route host label"},
		},
		{
			name: "bad ports are skipped",
			containers: []Container{
				ctr("a", "p2", "web", "a.localhost", "abc", "10.0.0.3"),
				ctr("b", "p2", "web", "b.localhost", "0", "10.0.0.3"),
				ctr("c", "p2", "web", "c.localhost", "70000", "10.0.0.3"),
				ctr("d", "p2", "web", "d.localhost", "", "10.0.0.3"),
				ctr("e", "p2", "web", "e.localhost", "-1", "10.0.0.3"),
				ctr("f", "p2", "web", "f.localhost", "65535", "10.0.0.3"),
			},
			want: map[string]string{"f.localhost": "p2/web running 10.0.0.3:65535"},
			problems: []string{
				`a host "a.localhost": invalid route port label "abc"`,
				`b host "b.localhost": invalid route port label "0"`,
				`c host "c.localhost": invalid route port label "70000"`,
				`d host "d.localhost": invalid route port label ""`,
				`e host "e.localhost": invalid route port label "-1"`,
			},
		},
		{
			name:       "missing project label is skipped",
			containers: []Container{ctr("x", "", "web", "pr-1.localhost", "80", "10.0.0.3")},
			want:       map[string]string{},
			problems:   []string{"no com.docker.compose.project label"},
		},
		{
			name:       "running container without IP is skipped",
			containers: []Container{ctr("x", "p1", "web", "pr-1.localhost", "80", "")},
			want:       map[string]string{},
			problems:   []string{"no IP address"},
		},
		{
			name:       "subject falls back to the ID",
			containers: []Container{{ID: "abc123", Project: "p1", Repo: "o/r", PR: 1, Host: "pr-1.localhost", Port: "x", Running: true, IP: "10.0.0.1"}},
			want:       map[string]string{},
			problems:   []string{"abc123 host"},
		},
		{
			name: "replicas are all backends, sorted by name",
			containers: []Container{
				ctr("p1-web-3", "p1", "web", "pr-1.localhost", "80", "10.0.0.4"),
				ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2"),
				ctr("p1-web-2", "p1", "web", "pr-1.localhost", "80", "10.0.0.3", health("healthy")),
			},
			want: map[string]string{"pr-1.localhost": "p1/web running 10.0.0.2:80,10.0.0.3:80,10.0.0.4:80"},
		},
		{
			name: "only healthy replicas are backends",
			containers: []Container{
				ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("healthy")),
				ctr("p1-web-2", "p1", "web", "pr-1.localhost", "80", "10.0.0.3", health("starting")),
				ctr("p1-web-3", "p1", "web", "pr-1.localhost", "80", "10.0.0.4", health("unhealthy")),
				ctr("p1-web-4", "p1", "web", "pr-1.localhost", "80", "", stopped),
			},
			want: map[string]string{"pr-1.localhost": "p1/web running 10.0.0.2:80"},
		},
		{
			name: "unknown health value is not a backend",
			containers: []Container{
				ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("weird")),
			},
			want: map[string]string{"pr-1.localhost": "p1/web starting"},
		},
		{
			name: "several hosts per project",
			containers: []Container{
				ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2"),
				ctr("p1-api-1", "p1", "api", "api-pr-1.localhost", "3000", "10.0.0.3"),
				ctr("p2-web-1", "p2", "web", "pr-2.localhost", "80", "10.0.1.2"),
			},
			want: map[string]string{
				"pr-1.localhost":     "p1/web running 10.0.0.2:80",
				"api-pr-1.localhost": "p1/api running 10.0.0.3:3000",
				"pr-2.localhost":     "p2/web running 10.0.1.2:80",
			},
		},
		{
			name: "two projects claim a host: the first claimant keeps it, even stopped",
			containers: []Container{
				ctr("a-web-1", "a", "web", "pr-1.localhost", "80", "", stopped, created(1)),
				ctr("b-web-1", "b", "web", "pr-1.localhost", "80", "10.0.0.3", created(2)),
			},
			want:     map[string]string{"pr-1.localhost": "a/web stopped"},
			problems: []string{"project b host \"pr-1.localhost\": host already claimed by project a (since 2026-01-01T00:00:01Z); b is refused"},
		},
		{
			name: "two projects both running: the earlier wins, not the smaller name",
			containers: []Container{
				ctr("a-web-1", "a", "web", "pr-1.localhost", "80", "10.0.0.2", created(5)),
				ctr("b-web-1", "b", "web", "pr-1.localhost", "80", "10.0.0.3", created(3)),
			},
			want:     map[string]string{"pr-1.localhost": "b/web running 10.0.0.3:80"},
			problems: []string{"project a host \"pr-1.localhost\": host already claimed by project b"},
		},
		{
			name: "a project's earliest container counts",
			containers: []Container{
				ctr("a-web-2", "a", "web", "pr-1.localhost", "80", "10.0.0.2", created(9)),
				ctr("a-web-1", "a", "web", "pr-1.localhost", "80", "10.0.0.1", created(1)),
				ctr("b-web-1", "b", "web", "pr-1.localhost", "80", "10.0.0.3", created(3)),
			},
			want:     map[string]string{"pr-1.localhost": "a/web running 10.0.0.1:80,10.0.0.2:80"},
			problems: []string{"host already claimed by project a"},
		},
		{
			name: "three projects: every later one is refused and told who holds the host",
			containers: []Container{
				ctr("c-web-1", "c", "web", "pr-1.localhost", "80", "10.0.0.4", created(3)),
				ctr("b-web-1", "b", "web", "pr-1.localhost", "80", "10.0.0.3", health("starting"), created(1)),
				ctr("a-web-1", "a", "web", "pr-1.localhost", "80", "", stopped, created(2)),
			},
			want: map[string]string{"pr-1.localhost": "b/web starting"},
			problems: []string{
				"project a host \"pr-1.localhost\": host already claimed by project b",
				"project c host \"pr-1.localhost\": host already claimed by project b",
			},
		},
		{
			name: "claims of the same instant: neither is served",
			containers: []Container{
				ctr("a-web-1", "a", "web", "pr-1.localhost", "80", "10.0.0.2", created(1)),
				ctr("b-web-1", "b", "web", "pr-1.localhost", "80", "10.0.0.3", created(1)),
			},
			want: map[string]string{},
			problems: []string{
				"project a host \"pr-1.localhost\": host claimed at the same time by project b; neither is served",
				"project b host \"pr-1.localhost\": host claimed at the same time by project a; neither is served",
			},
		},
		{
			name: "two services of one project: the one with backends wins",
			containers: []Container{
				ctr("p1-a-1", "p1", "a", "pr-1.localhost", "80", "10.0.0.2", health("starting")),
				ctr("p1-b-1", "p1", "b", "pr-1.localhost", "80", "10.0.0.3"),
			},
			want:     map[string]string{"pr-1.localhost": "p1/b running 10.0.0.3:80"},
			problems: []string{"host also claimed by services a; serving b"},
		},
		{
			name: "two services of one project both running: smaller name wins",
			containers: []Container{
				ctr("p1-b-1", "p1", "b", "pr-1.localhost", "80", "10.0.0.3"),
				ctr("p1-a-1", "p1", "a", "pr-1.localhost", "80", "10.0.0.2"),
			},
			want:     map[string]string{"pr-1.localhost": "p1/a running 10.0.0.2:80"},
			problems: []string{"host also claimed by services b; serving a"},
		},
		{
			name:   "queued state without containers",
			states: map[string]ProjectState{"p1": {Hosts: []string{"pr-1.localhost", "api-pr-1.localhost"}, State: State{Phase: PhaseQueued}}},
			want: map[string]string{
				"pr-1.localhost":     "p1/ queued state=queued///",
				"api-pr-1.localhost": "p1/ queued state=queued///",
			},
		},
		{
			name:       "building while old containers run serves them",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2")},
			states:     map[string]ProjectState{"p1": {Hosts: []string{"pr-1.localhost"}, State: State{Phase: PhaseBuilding, Step: "build", Service: "web"}}},
			want:       map[string]string{"pr-1.localhost": "p1/web running 10.0.0.2:80 state=building/build/web/"},
		},
		{
			name:       "failed with old containers running serves them",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2")},
			states:     map[string]ProjectState{"p1": {Hosts: []string{"pr-1.localhost"}, State: State{Phase: PhaseFailed, Step: "build", Service: "web", Reason: "exit 1"}}},
			want:       map[string]string{"pr-1.localhost": "p1/web running 10.0.0.2:80 state=failed/build/web/exit 1"},
		},
		{
			name:       "failed with only stopped containers shows failed",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "", stopped)},
			states:     map[string]ProjectState{"p1": {Hosts: []string{"pr-1.localhost"}, State: State{Phase: PhaseFailed, Step: "up", Service: "web", Reason: "port in use"}}},
			want:       map[string]string{"pr-1.localhost": "p1/web failed state=failed/up/web/port in use"},
		},
		{
			name:       "failed with unhealthy containers shows failed",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("unhealthy"))},
			states:     map[string]ProjectState{"p1": {Hosts: []string{"pr-1.localhost"}, State: State{Phase: PhaseFailed, Step: "health", Service: "web"}}},
			want:       map[string]string{"pr-1.localhost": "p1/web failed state=failed/health/web/"},
		},
		{
			name:       "starting state with containers waiting for health",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2", health("starting"))},
			states:     map[string]ProjectState{"p1": {Hosts: []string{"pr-1.localhost"}, State: State{Phase: PhaseStarting}}},
			want:       map[string]string{"pr-1.localhost": "p1/web starting state=starting///"},
		},
		{
			name:       "removing wins over running containers",
			containers: []Container{ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2")},
			states:     map[string]ProjectState{"p1": {Hosts: []string{"pr-1.localhost"}, State: State{Phase: PhaseRemoving}}},
			want:       map[string]string{"pr-1.localhost": "p1/web removing state=removing///"},
		},
		{
			name:       "a state alone comes after containers: removing project loses the host to a stopped one",
			containers: []Container{ctr("b-web-1", "b", "web", "pr-1.localhost", "80", "", stopped, created(1))},
			states:     map[string]ProjectState{"a": {Hosts: []string{"pr-1.localhost"}, State: State{Phase: PhaseRemoving}}},
			want:       map[string]string{"pr-1.localhost": "b/web stopped"},
			problems:   []string{"project a host \"pr-1.localhost\": host already claimed by project b (since 2026-01-01T00:00:01Z); a is refused"},
		},
		{
			name:       "state of one project on a host another project serves",
			containers: []Container{ctr("b-web-1", "b", "web", "pr-1.localhost", "80", "10.0.0.3", created(1))},
			states:     map[string]ProjectState{"a": {Hosts: []string{"pr-1.localhost"}, State: State{Phase: PhaseBuilding}}},
			want:       map[string]string{"pr-1.localhost": "b/web running 10.0.0.3:80"},
			problems:   []string{"project a host \"pr-1.localhost\": host already claimed by project b"},
		},
		{
			name:     "state with one invalid host keeps the others",
			states:   map[string]ProjectState{"p1": {Hosts: []string{"pr-1.localhost", "Bad_Host"}, State: State{Phase: PhaseQueued}}},
			want:     map[string]string{"pr-1.localhost": "p1/ queued state=queued///"},
			problems: []string{"project p1 host \"Bad_Host\": invalid host"},
		},
		{
			name:     "state with an unknown phase is skipped",
			states:   map[string]ProjectState{"p1": {Hosts: []string{"pr-1.localhost"}, State: State{Phase: PhaseRunning}}},
			want:     map[string]string{},
			problems: []string{"project p1 host \"\": unknown phase \"running\""},
		},
		{
			name: "state on a host the project's own containers do not carry",
			containers: []Container{
				ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "10.0.0.2"),
			},
			states: map[string]ProjectState{"p1": {Hosts: []string{"pr-1.localhost", "api-pr-1.localhost"}, State: State{Phase: PhaseStarting}}},
			want: map[string]string{
				"pr-1.localhost":     "p1/web running 10.0.0.2:80 state=starting///",
				"api-pr-1.localhost": "p1/ starting state=starting///",
			},
		},
		{
			name: "many bad containers never blank the table",
			containers: []Container{
				ctr("good", "p1", "web", "pr-1.localhost", "80", "10.0.0.2"),
				ctr("bad1", "p1", "web", "pr-1.localhost", "nope", "10.0.0.3"),
				ctr("bad2", "p1", "web", "", "80", "10.0.0.4"),
				ctr("bad3", "", "web", "pr-1.localhost", "80", "10.0.0.5"),
				ctr("bad4", "p1", "web", "pr-1.localhost", "80", ""),
				ctr("bad5", "p1", "web", "..", "80", "10.0.0.6"),
			},
			want: map[string]string{"pr-1.localhost": "p1/web running 10.0.0.2:80"},
			problems: []string{
				`bad1 host "pr-1.localhost": invalid route port label "nope"`,
				`bad3 host "pr-1.localhost": no com.docker.compose.project label`,
				`bad4 host "pr-1.localhost": running but has no IP`,
				`bad5 host "..": invalid route host label`,
			},
		},
		{
			name: "IPv6 backend address is bracketed",
			containers: []Container{
				ctr("p1-web-1", "p1", "web", "pr-1.localhost", "80", "fd00::2"),
			},
			want: map[string]string{"pr-1.localhost": "p1/web running [fd00::2]:80"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, problems := ComputeTable(tt.containers, tt.states, anyHost{})
			got := map[string]string{}
			for _, r := range tab.Routes() {
				got[r.Host] = summary(r)
			}
			if len(got) != len(tt.want) {
				t.Errorf("table has %d hosts, want %d:\n got %v\nwant %v", len(got), len(tt.want), got, tt.want)
			}
			for host, want := range tt.want {
				if got[host] != want {
					t.Errorf("%s: got %q, want %q", host, got[host], want)
				}
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("got %d problems %v, want %d %v", len(problems), problems, len(tt.problems), tt.problems)
			}
			for i, p := range problems {
				if !strings.Contains(p.String(), tt.problems[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, p.String(), tt.problems[i])
				}
			}
			// The project index agrees with the routes.
			for _, project := range tab.Projects() {
				for _, h := range tab.Hosts(project) {
					if r := tab.Lookup(h); r == nil || r.Project != project {
						t.Errorf("Hosts(%s) lists %s, which routes to %v", project, h, r)
					}
				}
			}
		})
	}
}

func TestComputeTableIsDeterministic(t *testing.T) {
	cs := []Container{
		ctr("c-web-1", "c", "web", "pr-1.localhost", "80", "10.0.0.4", created(1)),
		ctr("b-web-1", "b", "web", "pr-1.localhost", "80", "10.0.0.3", created(2)),
		ctr("a-web-2", "a", "web", "pr-1.localhost", "80", "10.0.0.2", created(5)),
		ctr("a-web-1", "a", "web", "pr-1.localhost", "80", "10.0.0.1", created(3)),
		ctr("a-api-1", "a", "api", "pr-1.localhost", "80", "10.0.0.5", created(4)),
	}
	first, firstProblems := ComputeTable(cs, nil, anyHost{})
	for i := 0; i < 50; i++ {
		// Shuffle deterministically by rotating.
		rot := append(append([]Container(nil), cs[i%len(cs):]...), cs[:i%len(cs)]...)
		tab, problems := ComputeTable(rot, nil, anyHost{})
		if a, b := summary(tab.Lookup("pr-1.localhost")), summary(first.Lookup("pr-1.localhost")); a != b {
			t.Fatalf("rotation %d: %q != %q", i, a, b)
		}
		if fmt.Sprint(problems) != fmt.Sprint(firstProblems) {
			t.Fatalf("rotation %d: problems %v != %v", i, problems, firstProblems)
		}
	}
	if got := summary(first.Lookup("pr-1.localhost")); got != "c/web running 10.0.0.4:80" {
		t.Fatalf("winner = %q", got)
	}
}

func TestRoutePickSpreadsOverBackends(t *testing.T) {
	tab, _ := ComputeTable([]Container{
		ctr("p-web-1", "p", "web", "pr-1.localhost", "80", "10.0.0.1"),
		ctr("p-web-2", "p", "web", "pr-1.localhost", "80", "10.0.0.2"),
		ctr("p-web-3", "p", "web", "pr-1.localhost", "80", "10.0.0.3"),
	}, nil, anyHost{})
	r := tab.Lookup("pr-1.localhost")
	counts := map[string]int{}
	for i := 0; i < 300; i++ {
		counts[r.Pick().Addr]++
	}
	var keys []string
	for k, n := range counts {
		keys = append(keys, fmt.Sprintf("%s=%d", k, n))
	}
	sort.Strings(keys)
	if len(counts) != 3 || counts["10.0.0.1:80"] != 100 || counts["10.0.0.2:80"] != 100 {
		t.Fatalf("round-robin counts: %v", keys)
	}
}

func TestProjectNetworkIP(t *testing.T) {
	tests := []struct {
		name     string
		networks map[string]string
		want     string
	}{
		{"none", nil, ""},
		{"own network", map[string]string{"p1_default": "172.20.0.2"}, "172.20.0.2"},
		{"own networks sorted", map[string]string{"p1_front": "172.21.0.2", "p1_back": "172.22.0.2"}, "172.22.0.2"},
		{"own beats others", map[string]string{"bridge": "172.17.0.2", "aaa": "10.0.0.2", "p1_default": "172.20.0.2"}, "172.20.0.2"},
		{"prefix must include underscore", map[string]string{"p10_default": "172.23.0.2", "p1x": "172.24.0.2"}, "172.23.0.2"},
		{"own without IP falls back", map[string]string{"p1_default": "", "bridge": "172.17.0.2"}, "172.17.0.2"},
		{"fallback sorted", map[string]string{"zeta": "10.0.0.9", "alpha": "10.0.0.1"}, "10.0.0.1"},
	}
	for _, tt := range tests {
		if got := ProjectNetworkIP("p1", tt.networks); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}

// A route enters the table only when Slipway declared it for that pull
// request: the host is one its own repository's templates give its own
// number. Labels copied from an image, or hosts of another PR or
// repository, are refused with a Problem naming the project.
func TestComputeTableServesOnlyDeclaredHosts(t *testing.T) {
	owner := contract.DefaultHostTemplates("x.dev", true) // several repositories share x.dev
	pr := func(repo string, n int) func(*Container) {
		return func(c *Container) { c.Repo, c.PR = repo, n }
	}
	tests := []struct {
		name       string
		owner      HostOwner
		containers []Container
		want       map[string]string
		problems   []string
	}{
		{
			name:       "own primary and service hosts",
			containers: []Container{ctr("shop1-web-1", "acme-shop-pr-1", "web", "pr-1-shop.x.dev", "80", "10.0.0.2", pr("acme/shop", 1)), ctr("shop1-api-1", "acme-shop-pr-1", "api", "api-pr-1-shop.x.dev", "80", "10.0.0.3", pr("acme/shop", 1))},
			want:       map[string]string{"pr-1-shop.x.dev": "acme-shop-pr-1/web running 10.0.0.2:80", "api-pr-1-shop.x.dev": "acme-shop-pr-1/api running 10.0.0.3:80"},
		},
		{
			name: "another PR's host from an image label is refused, the victim keeps it",
			containers: []Container{
				ctr("shop2-web-1", "acme-shop-pr-2", "web", "pr-2-shop.x.dev", "80", "10.0.0.2", pr("acme/shop", 2), created(5)),
				ctr("shop1-web-1", "acme-shop-pr-1", "web", "pr-2-shop.x.dev", "80", "10.0.0.9", pr("acme/shop", 1), created(1)),
			},
			want:     map[string]string{"pr-2-shop.x.dev": "acme-shop-pr-2/web running 10.0.0.2:80"},
			problems: []string{`shop1-web-1 host "pr-2-shop.x.dev": route not declared by Slipway for acme/shop#1, not served`},
		},
		{
			name:       "another repository's host by substring is refused",
			containers: []Container{ctr("shop9-web-1", "acme-shop-pr-9", "web", "pr-9-workshop.x.dev", "80", "10.0.0.2", pr("acme/shop", 9))},
			want:       map[string]string{},
			problems:   []string{`route not declared by Slipway for acme/shop#9`},
		},
		{
			name:       "a host outside the templates is refused",
			containers: []Container{ctr("shop9-web-1", "acme-shop-pr-9", "web", "admin.x.dev", "80", "10.0.0.2", pr("acme/shop", 9))},
			want:       map[string]string{},
			problems:   []string{`route not declared by Slipway`},
		},
		{
			name:       "the domain itself is refused",
			containers: []Container{ctr("shop9-web-1", "acme-shop-pr-9", "web", "x.dev", "80", "10.0.0.2", pr("acme/shop", 9))},
			want:       map[string]string{},
			problems:   []string{`is the domain itself`},
		},
		{
			name:       "no repo or PR label is refused",
			containers: []Container{ctr("x-web-1", "x", "web", "pr-1-shop.x.dev", "80", "10.0.0.2", pr("", 0))},
			want:       map[string]string{},
			problems:   []string{`no dev.slipway.repo or dev.slipway.pr label`},
		},
		{
			name:       "no owner: nothing is served",
			owner:      HostOwner(nil),
			containers: []Container{ctr("shop1-web-1", "acme-shop-pr-1", "web", "pr-1-shop.x.dev", "80", "10.0.0.2", pr("acme/shop", 1))},
			want:       map[string]string{},
			problems:   []string{`no host ownership rules configured`},
		},
		{
			name:       "an empty host label is no route",
			containers: []Container{ctr("shop1-db-1", "acme-shop-pr-1", "db", "", "", "10.0.0.2", pr("acme/shop", 1))},
			want:       map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.owner
			if o == nil && !strings.HasPrefix(tt.name, "no owner") {
				o = owner
			}
			tab, problems := ComputeTable(tt.containers, nil, o)
			got := map[string]string{}
			for _, r := range tab.Routes() {
				got[r.Host] = summary(r)
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("table = %v, want %v", got, tt.want)
			}
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems = %v, want %d", problems, len(tt.problems))
			}
			for i, p := range problems {
				if !strings.Contains(p.String(), tt.problems[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, p, tt.problems[i])
				}
				if p.Project == "" {
					t.Errorf("problem %q names no project", p)
				}
			}
		})
	}
}
