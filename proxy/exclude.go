package proxy

import (
	"context"
	"sync"

	"github.com/docker/docker/api/types/network"
)

// Exclude leaves the named project networks now and keeps Slipway's
// container off them until done is called, whatever is exposed on them
// meanwhile (an exclusion outweighs a Hold). The swarm engine excludes a
// preview's networks while it removes them: the removal of each service
// is an event after which the Attacher would otherwise look again and,
// finding the tasks of another routed service still running, join again
// the network about to go. A container on an overlay while a task of it
// is being removed cannot be started again after a kill (Docker 20.10
// answers "network … not found"), and Slipway's own container is such a
// one.
//
// names may be names or IDs. Only managed networks are excluded; a
// network that cannot be looked up is logged and left to the usual rules.
// done may be called more than once; after it the usual rules apply
// again, and the networks still there are looked at on the next retry.
func (a *Attacher) Exclude(ctx context.Context, names []string) (done func()) {
	excluded := a.eachManaged(ctx, names, "exclude project network", false, func(ins network.Inspect) {
		a.mu.Lock()
		a.excluded[ins.ID]++
		delete(a.empty, ins.ID)
		delete(a.pending, ins.ID)
		a.mu.Unlock()
		if _, on := ins.Containers[a.id]; on || a.isJoined(ins.Name) {
			if err := a.leave(ctx, ins.ID, ins.Name); err != nil {
				a.log.Warn("exclude project network", "network", ins.Name, "err", err)
			}
		}
	})
	var once sync.Once
	return func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			for id, name := range excluded {
				if a.excluded[id]--; a.excluded[id] > 0 {
					continue
				}
				delete(a.excluded, id)
				// Looked at again on the next retry, as a failed
				// join is: a Hold taken meanwhile, or a network
				// that outlived the removal with an exposed
				// container on it, is joined without waiting for
				// an event.
				a.pending[id] = name
			}
		})
	}
}

// isExcluded reports whether an Exclude keeps Slipway off network id.
func (a *Attacher) isExcluded(id string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.excluded[id] > 0
}
