package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
)

// defaultCheckTimeout is Docker's timeout for one health check when the
// healthcheck sets none.
const defaultCheckTimeout = 30 * time.Second

// maxExecCheckTimeout bounds one check run through exec, whatever the
// compose file's timeout: the engine runs few checks at once for every
// preview (a check that never ends would hold a slot for good, and the
// slots are taken in turn), and a check that takes longer is left to
// Docker's own probe (with its own timeout), which decides the same,
// later.
const maxExecCheckTimeout = 10 * time.Second

// execCheck is a container's own healthcheck, as Up runs it through exec
// while Docker's health still says "starting".
type execCheck struct {
	Cmd     []string
	Timeout time.Duration
}

// execCheckFor decides from a container's inspected state whether Up runs
// its healthcheck itself, and how: the container runs, Docker's health is
// "starting", the check runs a command, and the engine does not probe it
// fast by itself (a start_interval within a start period, which engines
// before API 1.44 never show). Disabled checks (NONE) and containers
// without one are never probed. Pure.
func execCheckFor(ins container.InspectResponse) (execCheck, bool) {
	st := ins.State
	if st == nil || !st.Running || st.Restarting || st.Health == nil || st.Health.Status != container.Starting {
		return execCheck{}, false
	}
	if ins.Config == nil || ins.Config.Healthcheck == nil {
		return execCheck{}, false
	}
	hc := ins.Config.Healthcheck
	if hc.StartInterval > 0 && hc.StartPeriod > 0 {
		return execCheck{}, false
	}
	cmd, ok := checkCommand(hc.Test, ins.Config.Shell)
	if !ok {
		return execCheck{}, false
	}
	timeout := hc.Timeout
	if timeout <= 0 {
		timeout = defaultCheckTimeout
	}
	return execCheck{Cmd: cmd, Timeout: min(timeout, maxExecCheckTimeout)}, true
}

// checkCommand is the command Docker runs for a healthcheck test: CMD's
// arguments as they are, CMD-SHELL's command line through the container's
// shell (/bin/sh -c unless the image sets SHELL). ok is false for a test
// that runs nothing (NONE, or inherited). Pure.
func checkCommand(test, shell []string) (cmd []string, ok bool) {
	if !checkRuns(test) {
		return nil, false
	}
	if test[0] == "CMD" {
		return slices.Clone(test[1:]), true
	}
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	return append(slices.Clone(shell), test[1:]...), true
}

// runCheck runs a check once in container id through exec and reports
// whether it exited 0 within its timeout. It takes one of the engine's
// probe slots for the run. A check cut short by ctx or its timeout leaves
// its process to end by itself in the container, as Docker's own checks
// do on these engines: the API has no way to stop an exec.
func (e *Engine) runCheck(ctx context.Context, id string, check execCheck) (bool, error) {
	select {
	case e.probes.slots <- struct{}{}:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	defer func() { <-e.probes.slots }()
	ctx, cancel := context.WithTimeout(ctx, check.Timeout)
	defer cancel()
	created, err := e.docker.ContainerExecCreate(ctx, id, container.ExecOptions{Cmd: check.Cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		return false, fmt.Errorf("create exec: %w", err)
	}
	att, err := e.docker.ContainerExecAttach(ctx, created.ID, container.ExecAttachOptions{})
	if err != nil {
		return false, fmt.Errorf("start exec: %w", err)
	}
	// The stream ends when the check does; closing it unblocks the read
	// when ctx ends first.
	stop := context.AfterFunc(ctx, att.Close)
	_, err = io.Copy(io.Discard, att.Reader)
	stop()
	att.Close()
	if ctx.Err() != nil {
		return false, fmt.Errorf("check did not finish: %w", context.Cause(ctx))
	}
	if err != nil {
		return false, fmt.Errorf("read exec output: %w", err)
	}
	for {
		res, err := e.docker.ContainerExecInspect(ctx, created.ID)
		if err != nil {
			return false, fmt.Errorf("inspect exec: %w", err)
		}
		if !res.Running {
			return res.ExitCode == 0, nil
		}
		// The output ended a moment before the engine recorded the exit.
		select {
		case <-ctx.Done():
			return false, fmt.Errorf("check did not finish: %w", context.Cause(ctx))
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// execProbes runs the exec checks of one depends_on wait (a nil
// *execProbes runs none): at most one loop per
// container, each checking every probePause (a check slower than
// that runs back to back, never overlapping itself) until it first
// passes, the wait stops following the container, or the wait ends. A
// pass is remembered for the rest of the wait; from then on Docker's own
// health decides again when it turns unhealthy.
type execProbes struct {
	engine *Engine
	ctx    context.Context
	cancel context.CancelFunc
	// passed has a value when a check has passed since the wait last
	// looked: the wait looks again at once rather than at its next tick.
	passed chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]context.CancelFunc
	ok      map[string]bool
}

func (e *Engine) newExecProbes(ctx context.Context) *execProbes {
	ctx, cancel := context.WithCancel(ctx)
	return &execProbes{engine: e, ctx: ctx, cancel: cancel, passed: make(chan struct{}, 1),
		running: map[string]context.CancelFunc{}, ok: map[string]bool{}}
}

// follow starts or stops the check loop of a container from its inspected
// state (see execCheckFor), and reports whether its check has passed.
func (p *execProbes) follow(ins container.InspectResponse) bool {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	id := ins.ID
	if p.ok[id] {
		return true
	}
	check, want := execCheckFor(ins)
	stopLoop, running := p.running[id]
	switch {
	case want && !running:
		ctx, cancel := context.WithCancel(p.ctx)
		p.running[id] = cancel
		p.wg.Add(1)
		started, _ := time.Parse(time.RFC3339Nano, ins.State.StartedAt)
		go p.loop(ctx, id, strings.TrimPrefix(ins.Name, "/"), started, check)
	case !want && running:
		stopLoop()
		delete(p.running, id)
	}
	return false
}

// stop ends the check loop of a container the wait no longer follows.
func (p *execProbes) stop(id string) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if cancel, ok := p.running[id]; ok {
		cancel()
		delete(p.running, id)
	}
}

// close ends every check loop and waits until they have returned, their
// exec streams closed.
func (p *execProbes) close() {
	if p == nil {
		return
	}
	p.cancel()
	p.wg.Wait()
}

// passes has a value when a check has passed since the wait last looked.
func (p *execProbes) passes() <-chan struct{} {
	if p == nil {
		return nil
	}
	return p.passed
}

func (p *execProbes) loop(ctx context.Context, id, name string, started time.Time, check execCheck) {
	defer p.wg.Done()
	log := p.engine.log.With("container", name)
	for attempt := 1; ; attempt++ {
		t := time.Now()
		ok, err := p.engine.runCheck(ctx, id, check)
		if ctx.Err() != nil {
			return
		}
		if ok {
			p.mu.Lock()
			p.ok[id] = true
			p.mu.Unlock()
			select {
			case p.passed <- struct{}{}:
			default:
			}
			log.Debug("healthcheck passed before Docker's first probe", "attempt", attempt, "took", time.Since(t), "since_start", time.Since(started))
			if report := p.engine.opts.OnCheckPassed; report != nil && !started.IsZero() {
				report(id, started)
			}
			return
		}
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			log.Debug("healthcheck through exec", "attempt", attempt, "err", err)
		} else {
			log.Debug("healthcheck through exec failed", "attempt", attempt, "took", time.Since(t), "since_start", time.Since(started))
		}
		pause := fastProbeInterval
		if !started.IsZero() {
			pause = probePause(time.Since(started))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}
