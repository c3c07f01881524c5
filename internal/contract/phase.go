package contract

import "slices"

// Phase is where a preview environment is in its life. The controller
// decides it, in one place (controller/transition.go); the store records
// it, and GitHub, the proxy's status pages and the dashboard each show it
// through one table of their own.
type Phase string

// Phases, in the order an environment usually goes through them.
const (
	// PhaseWaiting: for an environment slot, a build slot or a
	// maintainer's approval; the entry's Wait says which.
	PhaseWaiting   Phase = "waiting"
	PhaseBuilding  Phase = "building"
	PhaseDeploying Phase = "deploying"
	PhaseReady     Phase = "ready"
	PhaseFailed    Phase = "failed"
	PhaseSleeping  Phase = "sleeping"
	PhaseRemoving  Phase = "removing"
	PhaseRemoved   Phase = "removed"
)

// Phases lists every phase, for validation and the dashboard's filters.
func Phases() []Phase {
	return []Phase{PhaseWaiting, PhaseBuilding, PhaseDeploying, PhaseReady, PhaseFailed, PhaseSleeping, PhaseRemoving, PhaseRemoved}
}

// Valid reports whether p is one of Phases.
func (p Phase) Valid() bool { return slices.Contains(Phases(), p) }

// Wait says what a waiting environment waits for.
type Wait string

// What an environment in PhaseWaiting waits for.
const (
	WaitEnvironmentSlot Wait = "environment-slot" // limits.environments
	WaitBuildSlot       Wait = "build-slot"       // limits.builds
	WaitApproval        Wait = "approval"         // a fork pull request under forks: approve
)

// RoutePhase is what the proxy shows for a preview host. Running,
// Starting, Unhealthy and Stopped are observed from Docker; Queued,
// Building, Starting, Failed and Removing are published by the controller
// (a RouteState).
type RoutePhase string

// Route phases.
const (
	// RouteRunning: at least one running container that is healthy (or
	// has no healthcheck) serves the host.
	RouteRunning RoutePhase = "running"
	// RouteQueued: the environment waits for a slot.
	RouteQueued RoutePhase = "queued"
	// RouteBuilding: images are being built.
	RouteBuilding RoutePhase = "building"
	// RouteStarting: containers are being started or wait for their
	// healthcheck to pass.
	RouteStarting RoutePhase = "starting"
	// RouteUnhealthy: containers run but every one fails its healthcheck.
	RouteUnhealthy RoutePhase = "unhealthy"
	// RouteStopped: the containers exist but none runs (the environment
	// sleeps); a request wakes it.
	RouteStopped RoutePhase = "stopped"
	// RouteFailed: the last deploy failed and nothing runs.
	RouteFailed RoutePhase = "failed"
	// RouteRemoving: the environment is being torn down.
	RouteRemoving RoutePhase = "removing"
)

// RouteState is a non-running state the controller publishes for a
// project's hosts; the proxy shows it as a status page.
type RouteState struct {
	// Phase is one of RouteQueued, RouteBuilding, RouteStarting,
	// RouteFailed or RouteRemoving.
	Phase RoutePhase
	// Step names the step that failed (for example "build", "deploy",
	// "after_deploy"), or the step in progress.
	Step string
	// Service names the service the step was working on, if any.
	Service string
	// Reason is a one-line explanation shown on the failed page. It must
	// not hold secrets: the page is public.
	Reason string
}
