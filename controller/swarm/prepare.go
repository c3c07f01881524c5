package swarm

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/slipwayhq/slipway/controller/stack"
)

// preparedNetworks is the making of a project's networks, in the
// background while the images build and push, followed by the proxy's
// hold of the routed ones (Options.Proxy).
type preparedNetworks struct {
	made chan error    // the networks' creation: one value
	held chan struct{} // closed once the hold has joined (or there is none)

	release     func() // set before held is closed
	releaseOnce sync.Once
}

// prepareNetworks starts making p's networks, recorded in tx, and then
// has the proxy hold the ones routed services attach to. A node sets up
// its copy of an overlay for the first container on it there, which takes
// Docker a second or more; the proxy's container joining while the images
// build takes that off the way to the first task.
func (e *Engine) prepareNetworks(ctx context.Context, p *stack.Plan, tx *transaction) *preparedNetworks {
	n := &preparedNetworks{made: make(chan error, 1), held: make(chan struct{}), release: func() {}}
	go func() {
		defer close(n.held)
		err := e.ensureNetworks(ctx, p, tx)
		n.made <- err
		if err != nil || e.opts.Proxy == nil {
			return
		}
		if names := routedNetworks(p); len(names) > 0 {
			n.release = e.opts.Proxy.Hold(ctx, names)
		}
	}()
	return n
}

// wait waits for the networks to be made.
func (n *preparedNetworks) wait() error { return <-n.made }

// waitHeld waits for the proxy's hold to have joined them.
func (n *preparedNetworks) waitHeld() { <-n.held }

// releaseHold waits for the hold and ends it; later calls do nothing.
func (n *preparedNetworks) releaseHold() {
	n.waitHeld()
	n.releaseOnce.Do(func() { n.release() })
}

// routedNetworks names the networks Up makes (not external ones) that a
// routed service attaches to: the ones the proxy will dial. Pure.
func routedNetworks(p *stack.Plan) []string {
	names := map[string]bool{}
	for name, svc := range p.Project.Services {
		if _, routed := p.RouteFor(name); !routed {
			continue
		}
		for _, key := range svc.NetworksByPriority() {
			if nw, ok := p.Project.Networks[key]; ok && !bool(nw.External) {
				names[nw.Name] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(names))
}
