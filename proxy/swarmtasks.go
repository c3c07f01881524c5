package proxy

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/docker/docker/api/types/swarm"

	"github.com/slipwayhq/slipway/internal/contract"
)

// TaskContainers is the swarm counterpart of the Observer's inspect: from
// the managed services on a swarm and their tasks, it computes the
// Containers ComputeTable reads, one per task, so that the route table of
// a swarm is made by the same rules as on one host. Pure.
//
//   - A task is a container named <service>.<slot>.<task ID> (<service>.<node
//     ID>.<task ID> for a global service), with the task ID as its ID. Its
//     route, project, repository and pull request come from the labels of
//     the task's own container spec (what Slipway's swarm engine set on the
//     version of the service the task runs), not from the service's
//     current spec: during an update, an old task keeps its old port.
//   - Only tasks the swarm wants running count; the history Swarm keeps
//     (shut down, failed, completed) is ignored. A task running is a
//     running container; one on its way (new … starting) is a running
//     container whose health is "starting", so it is not served yet. Swarm
//     reports a task whose image has a healthcheck as running only once it
//     is healthy, so running means served.
//   - The address is the task's own address on its networks
//     (NetworksAttachments, the CIDR prefix stripped), chosen by backendIP
//     (network name → IP) as for a container; never a virtual IP.
//   - An exposed service without any such task (scaled to 0 by sleep, or
//     all its tasks gone) is one stopped container with the service's ID,
//     so its hosts stay in the table as stopped and a request wakes them.
//   - A task that cannot be read (no container spec, its service gone, an
//     address that does not parse) is skipped and reported; it never
//     blanks the table.
//
// A nil backendIP means ProjectNetworkIP.
func TaskContainers(services []swarm.Service, tasks []swarm.Task, backendIP func(project string, networks map[string]string) string) ([]Container, []Problem) {
	if backendIP == nil {
		backendIP = ProjectNetworkIP
	}
	var out []Container
	var problems []Problem
	byID := make(map[string]swarm.Service, len(services))
	for _, s := range services {
		byID[s.ID] = s
	}
	live := map[string]bool{} // service IDs with a task that counts
	for _, t := range tasks {
		if t.DesiredState != swarm.TaskStateRunning {
			continue
		}
		s, ok := byID[t.ServiceID]
		if !ok {
			continue // not a managed service, or removed since the list
		}
		name := taskName(s, t)
		cs := t.Spec.ContainerSpec
		if cs == nil {
			problems = append(problems, Problem{Subject: name, Project: s.Spec.Labels[contract.LabelProject], Reason: "task has no container spec"})
			continue
		}
		labels := cs.Labels
		if labels[contract.LabelManaged] != "true" || labels[contract.LabelRouteHost] == "" {
			continue // not exposed
		}
		c := labelled(labels)
		c.ID = t.ID
		c.Name = name
		c.Created = s.CreatedAt
		c.Started = t.Status.Timestamp
		switch t.Status.State {
		case swarm.TaskStateRunning:
			c.Running = true
			if serviceHasHealthcheck(cs) {
				c.Health = "healthy"
			}
		case swarm.TaskStateNew, swarm.TaskStatePending, swarm.TaskStateAssigned, swarm.TaskStateAccepted,
			swarm.TaskStatePreparing, swarm.TaskStateReady, swarm.TaskStateStarting, swarm.TaskStateAllocated:
			c.Running = true
			c.Health = "starting"
		default:
			// Failed, rejected, shut down…: Swarm replaces it; until then
			// it is a container that does not run.
		}
		nets, bad := taskNetworks(t)
		if bad != "" {
			problems = append(problems, Problem{Subject: name, Project: c.Project, Host: c.Host, Reason: bad})
			continue
		}
		c.IP = backendIP(c.Project, nets)
		live[s.ID] = true
		out = append(out, c)
	}
	for _, s := range services {
		if live[s.ID] {
			continue
		}
		cs := s.Spec.TaskTemplate.ContainerSpec
		if cs == nil || cs.Labels[contract.LabelManaged] != "true" || cs.Labels[contract.LabelRouteHost] == "" {
			continue
		}
		c := labelled(cs.Labels)
		c.ID = s.ID
		c.Name = s.Spec.Name
		c.Created = s.CreatedAt
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, problems
}

// labelled is a Container with the fields its container labels give.
func labelled(labels map[string]string) Container {
	c := Container{
		Project: labels[contract.LabelProject],
		Service: labels[contract.LabelService],
		Repo:    labels[contract.LabelRepo],
		Host:    labels[contract.LabelRouteHost],
		Port:    labels[contract.LabelRoutePort],
	}
	// A PR that does not parse stays 0, which ComputeTable refuses.
	c.PR, _ = strconv.Atoi(labels[contract.LabelPR])
	return c
}

// taskName is the name Swarm gives the task's container, without its
// random suffix's length limits: <service>.<slot>.<task ID>, or
// <service>.<node ID>.<task ID> for a global service.
func taskName(s swarm.Service, t swarm.Task) string {
	if t.Slot > 0 {
		return fmt.Sprintf("%s.%d.%s", s.Spec.Name, t.Slot, t.ID)
	}
	return fmt.Sprintf("%s.%s.%s", s.Spec.Name, t.NodeID, t.ID)
}

// serviceHasHealthcheck reports whether the task's container has a
// healthcheck of its own (one that is not disabled).
func serviceHasHealthcheck(cs *swarm.ContainerSpec) bool {
	return cs.Healthcheck != nil && len(cs.Healthcheck.Test) > 0 && cs.Healthcheck.Test[0] != "NONE"
}

// taskNetworks is the task's address on each of its networks (network
// name → IP), or why they cannot be read.
func taskNetworks(t swarm.Task) (map[string]string, string) {
	nets := make(map[string]string, len(t.NetworksAttachments))
	for _, a := range t.NetworksAttachments {
		name := a.Network.Spec.Name
		if name == "" || len(a.Addresses) == 0 {
			continue
		}
		addr := a.Addresses[0]
		if i := strings.IndexByte(addr, '/'); i >= 0 {
			addr = addr[:i]
		}
		ip := net.ParseIP(addr)
		if ip == nil {
			return nil, fmt.Sprintf("task address %q on network %s is not an IP address", a.Addresses[0], name)
		}
		nets[name] = ip.String()
	}
	return nets, ""
}
