package proxy

import (
	"context"
	"sync"
	"time"

	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Hold joins the named project networks now, before any service exposed
// on them has a container, and keeps Slipway's container on them until
// release is called, whatever the rules for leaving say meanwhile. The
// swarm engine holds the overlays its routed services attach to while it
// deploys: a node sets up its copy of an overlay network for the first
// container on it there, which takes Docker a second or more, and joined
// while the images build, that second is off the way to the first task
// (and to Slipway's own join once a routed service exists).
//
// Only managed networks are joined. A network that cannot be looked up or
// joined is logged and left to the usual rules: the Attacher joins it
// when an exposed service or container appears. After release the usual
// rules apply again, LeaveAfter from then. release may be called more
// than once.
func (a *Attacher) Hold(ctx context.Context, names []string) (release func()) {
	held := a.eachManaged(ctx, names, "hold project network", true, func(ins network.Inspect) {
		a.mu.Lock()
		a.held[ins.ID]++
		delete(a.empty, ins.ID)
		a.mu.Unlock()
		if err := a.join(ctx, ins.ID, ins.Name); err != nil {
			a.log.Warn("hold project network", "network", ins.Name, "err", err)
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() { a.release(held) })
	}
}

// eachManaged looks up the networks names (names or IDs) all at once, and
// calls f for each managed one, once per network however many times it is
// named; it returns those, ID → name. A lookup that fails is logged under
// doing, a network not found only if warnMissing.
func (a *Attacher) eachManaged(ctx context.Context, names []string, doing string, warnMissing bool, f func(network.Inspect)) map[string]string {
	var (
		mu   sync.Mutex
		seen = map[string]string{} // ID → name
		wg   sync.WaitGroup
	)
	for _, name := range names {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ins, err := a.docker.NetworkInspect(ctx, name, network.InspectOptions{})
			if err != nil {
				if warnMissing || !errdefs.IsNotFound(err) {
					a.log.Warn(doing, "network", name, "err", err)
				}
				return
			}
			if ins.Labels[contract.LabelManaged] != "true" {
				return
			}
			mu.Lock()
			_, twice := seen[ins.ID]
			seen[ins.ID] = ins.Name
			mu.Unlock()
			if !twice {
				f(ins)
			}
		}()
	}
	wg.Wait()
	return seen
}

// release ends a Hold of the networks (ID → name): the ones no other
// Hold keeps are looked at again after LeaveAfter.
func (a *Attacher) release(held map[string]string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, name := range held {
		if a.held[id]--; a.held[id] > 0 {
			continue
		}
		delete(a.held, id)
		if _, seen := a.empty[id]; a.joined[name] && !seen {
			a.empty[id] = emptyNetwork{name: name, since: time.Now()}
		}
	}
}

// isHeld reports whether a Hold keeps network id.
func (a *Attacher) isHeld(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.held[id] > 0
}
