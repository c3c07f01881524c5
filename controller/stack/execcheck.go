package stack

import (
	"context"
	"time"

	"github.com/docker/docker/api/types/container"
)

// FastProbeInterval is the pause between two exec checks of a starting
// container (see RunHealthcheck).
const FastProbeInterval = fastProbeInterval

// Healthcheck is a container's own healthcheck as Up runs it through exec
// while Docker's health still says "starting".
type Healthcheck struct {
	Cmd     []string
	Timeout time.Duration
}

// HealthcheckFor decides from a container's inspected state whether its
// healthcheck can be run through exec before Docker's first probe, and
// how: the container runs, Docker's health is "starting", the check runs
// a command, and the engine does not probe it fast by itself. The swarm
// engine uses it for task containers on the node it talks to. Pure.
func HealthcheckFor(ins container.InspectResponse) (Healthcheck, bool) {
	c, ok := execCheckFor(ins)
	return Healthcheck(c), ok
}

// RunHealthcheck runs check once in container id through exec, within one
// of the engine's probe slots, and reports whether it exited 0 within its
// timeout.
func (e *Engine) RunHealthcheck(ctx context.Context, id string, check Healthcheck) (bool, error) {
	return e.runCheck(ctx, id, execCheck(check))
}
