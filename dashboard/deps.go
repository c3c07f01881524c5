package dashboard

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/docker/docker/api/types/container"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
)

// History is what the dashboard reads from the controller's history
// database. *store.Store satisfies it.
type History interface {
	Environments(ctx context.Context) ([]store.Environment, error)
	Environment(ctx context.Context, project string) (store.Environment, error)
	Timeline(ctx context.Context, project string) ([]store.PhaseEntry, error)
	BuildLogs(ctx context.Context, project string) ([]store.BuildLog, error)
	BuildLog(ctx context.Context, project, sha string, from int64) (store.BuildLog, error)
}

// Engine is what the dashboard reads from the stack engine: what runs, and
// the services' logs. *stack.Engine satisfies it.
type Engine interface {
	List(ctx context.Context) ([]stack.Environment, error)
	Inspect(ctx context.Context, project string) (*stack.Environment, error)
	Logs(ctx context.Context, project string, o stack.LogOptions, w io.Writer) error
}

// StatsClient samples one container's resource usage. *client.Client (the
// Docker Engine client) satisfies it.
type StatsClient interface {
	ContainerStatsOneShot(ctx context.Context, containerID string) (container.StatsResponseReader, error)
}

// RequestLog tells when each environment last served a request.
// *proxy.Handler satisfies it.
type RequestLog interface {
	LastRequests() map[string]time.Time
}

// RouteProblems tells, per project, why the proxy refused routes of the
// environment (a host Slipway did not declare for the PR, a host another
// environment claimed first, a bad label): one line each. *proxy.Routes
// satisfies it.
type RouteProblems interface {
	RouteProblems() map[string][]string
}

// Actions change environments: the controller's, or in local mode
// EngineActions. Without any, the dashboard hides its buttons and the API
// answers 501.
//
// Each returns how far the action got (Queued or Done). An action on a
// project the implementation does not know returns an error wrapping
// ErrNotFound; one that is not possible for this environment (for example a
// redeploy of an environment made by `slipway up`) returns an error
// wrapping ErrUnsupported.
type Actions interface {
	// Redeploy rebuilds and recreates the environment at its current head.
	Redeploy(ctx context.Context, project string) (Outcome, error)
	// Destroy removes the environment and everything it made.
	Destroy(ctx context.Context, project string) (Outcome, error)
	// Sleep stops the environment's containers; nothing is removed.
	Sleep(ctx context.Context, project string) (Outcome, error)
	// Wake starts a sleeping environment again.
	Wake(ctx context.Context, project string) (Outcome, error)
}

// Outcome says how far an action got by the time its call returned.
type Outcome string

const (
	// Queued: the action was accepted and will be carried out later (the
	// controller does it at its next reconcile of the environment, whose
	// phase then shows how it goes). The API answers 202 Accepted.
	Queued Outcome = "queued"
	// Done: the action was carried out before the call returned. The API
	// answers 200 OK. Any other Outcome is reported as Queued: the
	// dashboard never claims more than it was told.
	Done Outcome = "done"
)

var (
	// ErrNotFound: no such environment (HTTP 404).
	ErrNotFound = errors.New("environment not found")
	// ErrUnsupported: the action is not possible for this environment, or
	// no controller runs actions here (HTTP 409, or 501 without Actions).
	ErrUnsupported = errors.New("action not supported")
	// ErrUnauthorized: the server refused the credentials (HTTP 401 or
	// 403). Returned by Client.
	ErrUnauthorized = errors.New("unauthorized")
)
