package stack

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/versions"
)

// Docker runs a container's first health probe one interval after the
// start. With interval: 30s (Docker's default) a service that answers in
// 100 ms is ready, to Docker, half a minute later, and a dependent waiting
// for service_healthy, and the preview's route, wait with it. Two ways
// around that, chosen by the engine's API version:
//
//   - API 1.44 (Engine 25) and later probe at start_interval during the
//     start period: a healthcheck without its own start_interval gets a
//     short one, and a start period if it has none (withFastStart).
//   - Older engines have no start_interval: while a dependency's health is
//     "starting", Up runs the service's own check itself through exec
//     (probe.go) until it first succeeds, and starts the dependents then.
//     Up's final readiness still waits for Docker's verdict, which the
//     proxy routes on (see waitAll); the dependents' earlier start is the
//     gain.
const (
	// fastProbeInterval is the pause between two checks of a starting
	// container: the start_interval given on engines that have one, and
	// the pause between exec probes on those that have not.
	fastProbeInterval = 150 * time.Millisecond
	// fastStartPeriod is the start period given to a healthcheck without
	// one, on engines with start_interval: start_interval applies only
	// within it. A check that fails during it does not count towards
	// retries, so a service whose check never passes turns unhealthy this
	// much later than its own settings say.
	fastStartPeriod = 30 * time.Second
	// startIntervalAPI is the first API version with start_interval.
	startIntervalAPI = "1.44"
	// earlyProbeInterval is the pause between two exec checks while the
	// container has run for less than earlyProbeWindow: a service is most
	// likely to become ready then, and every pause is added to a wake.
	earlyProbeInterval = 50 * time.Millisecond
	earlyProbeWindow   = time.Second
	// probeParallelism bounds the exec probes one engine runs at once.
	probeParallelism = 4
)

// hasStartInterval reports whether an engine speaking apiVersion honours
// a healthcheck's start_interval. Pure.
func hasStartInterval(apiVersion string) bool {
	return apiVersion != "" && versions.GreaterThanOrEqualTo(apiVersion, startIntervalAPI)
}

// lowerVersion is the lower of two API versions, ignoring an empty one.
func lowerVersion(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "" || versions.LessThan(a, b):
		return a
	}
	return b
}

// withFastStart returns the healthcheck a container is created with on an
// engine that has start_interval (startInterval true) or not. Where it has,
// a check that runs a command and has no start_interval of its own gets
// fastProbeInterval, and fastStartPeriod if it has no start period either;
// a compose file's own start_interval is kept as it is. Where it has not,
// start_interval is dropped (the engine would refuse the container) and
// the exec probe stands in. hc is not modified. Pure.
func withFastStart(hc *container.HealthConfig, startInterval bool) *container.HealthConfig {
	if hc == nil {
		return nil
	}
	out := *hc
	out.Test = slices.Clone(hc.Test)
	switch {
	case !startInterval:
		out.StartInterval = 0
	case checkRuns(hc.Test) && hc.StartInterval == 0:
		out.StartInterval = fastProbeInterval
		if out.StartPeriod == 0 {
			out.StartPeriod = fastStartPeriod
		}
	}
	return &out
}

// checkRuns reports whether a healthcheck test runs a command (CMD or
// CMD-SHELL), rather than being disabled (NONE) or inherited (empty).
func checkRuns(test []string) bool {
	return len(test) > 1 && (test[0] == "CMD" || test[0] == "CMD-SHELL")
}

// healthProbes is what an engine keeps for readiness probing across Ups:
// the engine's API version once known, and the slots that bound the exec
// probes running at once.
type healthProbes struct {
	slots chan struct{}

	mu         sync.Mutex
	apiVersion string
}

func newHealthProbes() *healthProbes {
	return &healthProbes{slots: make(chan struct{}, probeParallelism)}
}

// clientVersioner is the part of *client.Client that tells the API
// version it speaks (lower than the engine's when pinned through
// DOCKER_API_VERSION).
type clientVersioner interface{ ClientVersion() string }

// apiVersion is the API version requests to the engine use: the engine's
// own (from Ping), or the client's where that is lower. It is asked once;
// a failed Ping is not remembered.
func (e *Engine) apiVersion(ctx context.Context) (string, error) {
	e.probes.mu.Lock()
	defer e.probes.mu.Unlock()
	if e.probes.apiVersion != "" {
		return e.probes.apiVersion, nil
	}
	ping, err := e.docker.Ping(ctx)
	if err != nil {
		return "", err
	}
	v := ping.APIVersion
	if cv, ok := e.docker.(clientVersioner); ok {
		v = lowerVersion(v, cv.ClientVersion())
	}
	e.probes.apiVersion = v
	return v, nil
}

// createConfig is cfg as a container is created with on this engine: its
// healthcheck probes fast while the container starts (withFastStart). If
// the engine's version cannot be learnt, the healthcheck is created as
// on an engine without start_interval, which every engine accepts.
func (e *Engine) createConfig(ctx context.Context, cfg *container.Config) *container.Config {
	hc := cfg.Healthcheck
	if hc == nil || (hc.StartInterval == 0 && !checkRuns(hc.Test)) {
		return cfg // nothing that depends on the engine
	}
	v, err := e.apiVersion(ctx)
	if err != nil {
		e.log.Warn("could not learn the engine's API version; healthchecks get no start interval", "err", err)
	}
	out := *cfg
	out.Healthcheck = withFastStart(hc, hasStartInterval(v))
	return &out
}

// probePause is the pause before the next exec check of a container that
// has run for uptime: earlyProbeInterval within its first
// earlyProbeWindow, fastProbeInterval after. Pure.
func probePause(uptime time.Duration) time.Duration {
	if uptime < earlyProbeWindow {
		return earlyProbeInterval
	}
	return fastProbeInterval
}
