package stack

import (
	"context"
	"sync"
)

// Creating a container costs the engine about as much as starting it (0.3
// to 1 s each on a loaded 2-core machine), and a new container's create
// does not depend on anything its service waits for: only its start does.
// Up therefore creates the new containers of every service at once, in
// the background, as the walk in dependency order begins; the walk waits
// for its own service's dependencies, then for its containers' creates,
// and starts them. Along a chain such as web ← api ← migrate, the creates
// of api and web are then no longer on the way to web answering.
// Recreates keep their place in the walk: their old container keeps
// running until its service's turn.

// precreateLimit is how many containers Up creates at once ahead of the walk.
const precreateLimit = 4

// precreatable reports whether an action's container can be created before
// its service's dependencies meet their conditions: a new container, so
// nothing has to be retired first, whose create names no other container
// (network_mode service:, volumes_from, links), which may not exist yet.
// Pure.
func precreatable(a ContainerAction, spec *containerSpec) bool {
	if a.Action != ActionCreate || spec == nil || spec.NetworkModeService != "" {
		return false
	}
	if spec.Host != nil && (len(spec.Host.VolumesFrom) > 0 || len(spec.Host.Links) > 0) {
		return false
	}
	for _, n := range spec.Networks {
		if len(n.Links) > 0 {
			return false
		}
	}
	return true
}

// creation is one container create started ahead of the walk.
type creation struct {
	done chan struct{}
	id   string
	err  error
}

// precreate starts creating, in the background, every container of the
// plan that precreatable allows. waitCreates waits for them all.
func (c *converger) precreate(ctx context.Context) {
	sem := make(chan struct{}, precreateLimit)
	for _, a := range c.conv.Actions {
		if a.Reason == ReasonInterrupted || a.Reason == ReasonOrphan || a.Number < 1 || a.Number > len(c.specs[a.Service]) {
			continue
		}
		spec := c.specs[a.Service][a.Number-1]
		if !precreatable(a, spec) {
			continue
		}
		cr := &creation{done: make(chan struct{})}
		c.mu.Lock()
		if c.creations == nil {
			c.creations = map[string]*creation{}
		}
		c.creations[spec.Name] = cr
		c.mu.Unlock()
		c.creating.Add(1)
		go func() {
			defer c.creating.Done()
			defer close(cr.done)
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				cr.err = ctx.Err()
				return
			}
			cr.id, cr.err = c.create(ctx, spec)
		}()
	}
}

// waitCreates waits until every create precreate started has ended, so
// that a rollback finds every container the run made.
func (c *converger) waitCreates() { c.creating.Wait() }

// created returns the container of spec: the one precreate made, once its
// create has ended, or one made now.
func (c *converger) created(ctx context.Context, spec *containerSpec) (string, error) {
	c.mu.Lock()
	cr := c.creations[spec.Name]
	c.mu.Unlock()
	if cr == nil {
		return c.create(ctx, spec)
	}
	select {
	case <-cr.done:
		return cr.id, cr.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// create creates spec's container and records it for the rollback.
func (c *converger) create(ctx context.Context, spec *containerSpec) (string, error) {
	id, err := c.engine.createContainer(ctx, spec, c.idsOf)
	if id != "" {
		c.tx.mu.Lock()
		c.tx.created = append(c.tx.created, id)
		c.tx.mu.Unlock()
	}
	return id, err
}

// creatingState is the part of a converger precreate uses.
type creatingState struct {
	creating  sync.WaitGroup
	creations map[string]*creation // by container name; under converger.mu
}
