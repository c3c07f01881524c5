// Package stack turns a repository's compose project into a namespaced,
// docker-compose-compatible preview environment on the Docker Engine, and
// removes it again without leftovers.
//
// The work is split the way docker compose splits it, one verb per file:
// Load (compose files + .slipway.yml → a namespaced Plan; pure apart from
// reading the checkout), Build (ImageBuild per service with a build: key),
// Up (networks, volumes, then containers in dependency order, recreating a
// container only when its config hash or image changed, then waiting until
// the stack is ready, rolling back on failure), Down, and Observe (what runs,
// read back from labels). Every object carries the labels docker compose sets,
// so `docker compose -p <project> ps|logs|down` work on our environments.
package stack

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Docker is the part of the Docker Engine API the stack engine uses.
// *client.Client satisfies it.
type Docker interface {
	ContainerCreate(ctx context.Context, config *container.Config, hostConfig *container.HostConfig, networkingConfig *network.NetworkingConfig, platform *ocispec.Platform, containerName string) (container.CreateResponse, error)
	ContainerStart(ctx context.Context, container string, options container.StartOptions) error
	ContainerStop(ctx context.Context, container string, options container.StopOptions) error
	ContainerRemove(ctx context.Context, container string, options container.RemoveOptions) error
	ContainerRename(ctx context.Context, container, newContainerName string) error
	ContainerInspect(ctx context.Context, container string) (container.InspectResponse, error)
	ContainerList(ctx context.Context, options container.ListOptions) ([]container.Summary, error)
	ContainerLogs(ctx context.Context, container string, options container.LogsOptions) (io.ReadCloser, error)
	ContainerWait(ctx context.Context, container string, condition container.WaitCondition) (<-chan container.WaitResponse, <-chan error)
	ContainerExecCreate(ctx context.Context, container string, options container.ExecOptions) (container.ExecCreateResponse, error)
	ContainerExecAttach(ctx context.Context, execID string, config container.ExecAttachOptions) (types.HijackedResponse, error)
	ContainerExecInspect(ctx context.Context, execID string) (container.ExecInspect, error)

	NetworkCreate(ctx context.Context, name string, options network.CreateOptions) (network.CreateResponse, error)
	NetworkConnect(ctx context.Context, network, container string, config *network.EndpointSettings) error
	NetworkDisconnect(ctx context.Context, network, container string, force bool) error
	NetworkRemove(ctx context.Context, network string) error
	NetworkList(ctx context.Context, options network.ListOptions) ([]network.Summary, error)
	NetworkInspect(ctx context.Context, network string, options network.InspectOptions) (network.Inspect, error)

	VolumeCreate(ctx context.Context, options volume.CreateOptions) (volume.Volume, error)
	VolumeRemove(ctx context.Context, volumeID string, force bool) error
	VolumeList(ctx context.Context, options volume.ListOptions) (volume.ListResponse, error)
	VolumeInspect(ctx context.Context, volumeID string) (volume.Volume, error)

	ImageBuild(ctx context.Context, context io.Reader, options build.ImageBuildOptions) (build.ImageBuildResponse, error)
	ImageInspect(ctx context.Context, image string, _ ...client.ImageInspectOption) (image.InspectResponse, error)
	ImageList(ctx context.Context, options image.ListOptions) ([]image.Summary, error)
	ImageRemove(ctx context.Context, image string, options image.RemoveOptions) ([]image.DeleteResponse, error)
	ImagePull(ctx context.Context, ref string, options image.PullOptions) (io.ReadCloser, error)
	ImageTag(ctx context.Context, source, target string) error
	ImageHistory(ctx context.Context, image string, _ ...client.ImageHistoryOption) ([]image.HistoryResponseItem, error)
	ImageLoad(ctx context.Context, input io.Reader, _ ...client.ImageLoadOption) (image.LoadResponse, error)

	Events(ctx context.Context, options events.ListOptions) (<-chan events.Message, <-chan error)
	Ping(ctx context.Context) (types.Ping, error)
}

// Engine drives one Docker Engine. It keeps no state of its own between
// calls: what runs is read back from the engine's labels each time.
type Engine struct {
	docker Docker
	log    *slog.Logger
	opts   EngineOptions
	probes *healthProbes
}

// EngineOptions tune the engine.
type EngineOptions struct {
	// BuildParallelism is how many images of one project build at once. Default 2.
	BuildParallelism int
	// ReadyTimeout bounds the wait for services to become running and
	// healthy. Default 3 minutes.
	ReadyTimeout time.Duration
	// StopTimeout is the grace given to containers when they are stopped.
	// Default 10 seconds (the service's stop_grace_period wins).
	StopTimeout time.Duration
	// PollInterval is how often readiness is polled. Default 100ms.
	PollInterval time.Duration
	// MinUptime is how long a container without a healthcheck must have
	// been running to count as ready. Default 1s.
	MinUptime time.Duration
	// LateCommitWait is how long a cancelled Up of a new environment waits
	// before sweeping once more for images the daemon committed after the
	// build was cancelled. Default 3s.
	LateCommitWait time.Duration
	// Firewall, if set, keeps every project network from reaching the host
	// (see IPTables). Nil leaves networks as Docker makes them.
	Firewall Firewall
	// BuildNetwork is where RUN steps run: BuildNetworkAuto (the default),
	// BuildNetworkBridge or BuildNetworkNone.
	BuildNetwork string
	// OnCheckPassed, if set, is told when a container's own healthcheck,
	// run through exec on an engine without start_interval, first passes
	// in its run that started at started, before Docker's first scheduled
	// probe: the proxy routes to it from then on (proxy.Routes.CheckPassed)
	// rather than one health interval later. With it set, the readiness
	// waits of Up and Start probe every starting container; they still end
	// on Docker's own verdict. It must not block.
	OnCheckPassed func(containerID string, started time.Time)
}

// NewEngine returns an engine over d.
func NewEngine(d Docker, log *slog.Logger, opts EngineOptions) *Engine {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.BuildParallelism <= 0 {
		opts.BuildParallelism = 2
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 3 * time.Minute
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = 10 * time.Second
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = 100 * time.Millisecond
	}
	if opts.LateCommitWait <= 0 {
		opts.LateCommitWait = 3 * time.Second
	}
	if opts.MinUptime <= 0 {
		opts.MinUptime = time.Second
	}
	return &Engine{docker: d, log: log, opts: opts, probes: newHealthProbes()}
}

// projectFilter selects the objects of one project that Slipway made.
func projectFilter(project string) filters.Args {
	return filters.NewArgs(
		filters.Arg("label", contract.ManagedFilter),
		filters.Arg("label", contract.LabelProject+"="+project),
	)
}
