// Package swarm runs preview environments as services of a Docker Swarm:
// the same verbs as the single-host engine (controller/stack), over the
// Docker API's swarm endpoints.
//
// It takes the same input, a loaded and policy-checked stack.Plan, and
// knows nothing of pull requests or GitHub. Images are built as on one
// host (stack's Build), pushed to a registry every node can pull from, and
// referenced by digest. Each compose service becomes a swarm service named
// <project>_<service> on the project's attachable overlay networks, with
// endpoint_mode dnsrr so that service names resolve to task addresses and
// nothing depends on Swarm's virtual IPs. Services are created in
// dependency order, and Slipway waits for each depends_on condition itself
// (Swarm ignores depends_on); a service another waits for with
// service_completed_successfully, and every after_deploy job, runs as a
// replicated job. Every object carries com.docker.stack.namespace=<project>
// beside the compose and dev.slipway.* labels, so `docker stack ps|rm
// <project>` work on a preview.
//
// The conversion from compose to service specs is a pure function
// (convert.go); the rest is a thin layer that carries it out.
package swarm

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/api/types/system"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
)

// Docker is the part of the Docker Engine API the swarm engine uses: the
// single-host engine's (builds, local volumes and images) and the swarm
// endpoints. *client.Client satisfies it.
type Docker interface {
	stack.Docker

	Info(ctx context.Context) (system.Info, error)
	ImagePush(ctx context.Context, ref string, options image.PushOptions) (io.ReadCloser, error)

	ServiceCreate(ctx context.Context, service swarm.ServiceSpec, options swarm.ServiceCreateOptions) (swarm.ServiceCreateResponse, error)
	ServiceInspectWithRaw(ctx context.Context, serviceID string, options swarm.ServiceInspectOptions) (swarm.Service, []byte, error)
	ServiceList(ctx context.Context, options swarm.ServiceListOptions) ([]swarm.Service, error)
	ServiceRemove(ctx context.Context, serviceID string) error
	ServiceUpdate(ctx context.Context, serviceID string, version swarm.Version, service swarm.ServiceSpec, options swarm.ServiceUpdateOptions) (swarm.ServiceUpdateResponse, error)
	TaskList(ctx context.Context, options swarm.TaskListOptions) ([]swarm.Task, error)
	ServiceLogs(ctx context.Context, serviceID string, options container.LogsOptions) (io.ReadCloser, error)

	SecretList(ctx context.Context, options swarm.SecretListOptions) ([]swarm.Secret, error)
	SecretCreate(ctx context.Context, secret swarm.SecretSpec) (swarm.SecretCreateResponse, error)
	SecretRemove(ctx context.Context, id string) error
	ConfigList(ctx context.Context, options swarm.ConfigListOptions) ([]swarm.Config, error)
	ConfigCreate(ctx context.Context, config swarm.ConfigSpec) (swarm.ConfigCreateResponse, error)
	ConfigRemove(ctx context.Context, id string) error
}

// Options tune the engine.
type Options struct {
	// Registry receives the built images; every node pulls them from it.
	Registry *Registry
	// ReadyTimeout bounds the wait for services to become running (and
	// healthy where they have a healthcheck), and for jobs to complete.
	// Default 3 minutes.
	ReadyTimeout time.Duration
	// PollInterval is how often tasks are listed while waiting. Default 200ms.
	PollInterval time.Duration
	// MinUptime is how long a task without a healthcheck must have been
	// running to count as ready (one that exits at once must not). Default 1s.
	MinUptime time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Build tunes the single-host engine that builds the images.
	Build stack.EngineOptions
	// Firewall, if set, keeps the tasks on the node Slipway talks to from
	// the host's services and the metadata address: Up isolates the node's
	// docker_gwbridge, through which every task on an overlay leaves the
	// node (see GatewayBridge). Other nodes need the same rules by hand.
	Firewall stack.Firewall
	// Proxy, if set, is the proxy's container on the project networks:
	// Up has it hold the networks routed services attach to as soon as it
	// has made them, while the images build, and Down (and a rollback)
	// has it keep off the networks being removed. serve sets it to the
	// proxy's Attacher.
	Proxy ProxyNetworks
}

// ProxyNetworks is the proxy's container's place on project networks
// (proxy.Attacher), where it dials the tasks.
type ProxyNetworks interface {
	// Hold joins the networks now and stays on them until release. A node
	// sets up its copy of an overlay for the first container on it, which
	// takes Docker a second or more: with the proxy's container there
	// first, that is off the way to the first task.
	Hold(ctx context.Context, networks []string) (release func())
	// Exclude leaves the networks (IDs) now and joins none of them until done,
	// whatever runs on them meanwhile: Docker 20.10 will not start again
	// a container killed on an overlay while a task of it was being
	// removed.
	Exclude(ctx context.Context, networks []string) (done func())
}

// GatewayBridge is the bridge through which a node's swarm tasks (and
// containers attached to overlays) reach anything outside their overlays:
// the host among others. It is shared by every such container of the
// node, Slipway's previews or not.
const GatewayBridge = "docker_gwbridge"

// firewallProject names the gateway bridge's rules (their comment is
// "slipway:<project>"): they belong to no one preview.
const firewallProject = "swarm-tasks"

// Engine runs previews on a swarm through one of its managers. Like the
// single-host engine it keeps no state: what runs is read back from labels.
type Engine struct {
	docker  Docker
	log     *slog.Logger
	opts    Options
	builder *stack.Engine
}

// NewEngine returns an engine over d, a manager of the swarm.
func NewEngine(d Docker, log *slog.Logger, opts Options) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 3 * time.Minute
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 200 * time.Millisecond
	}
	if opts.MinUptime <= 0 {
		opts.MinUptime = time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Engine{docker: d, log: log, opts: opts, builder: stack.NewEngine(d, log, opts.Build)}
}

// namespaceFilter selects the objects of one project that Slipway made.
func namespaceFilter(project string) filters.Args {
	return filters.NewArgs(
		filters.Arg("label", contract.ManagedFilter),
		filters.Arg("label", LabelNamespace+"="+project),
	)
}

// managedFilter selects every object Slipway made on the swarm.
func managedFilter() filters.Args {
	return filters.NewArgs(filters.Arg("label", contract.ManagedFilter), filters.Arg("label", LabelNamespace))
}
