package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// dockerEvent is one engine event about an object of the benchmark's
// projects, at the daemon's time.
type dockerEvent struct {
	At      time.Time
	Type    events.Type
	Action  events.Action
	Project string // containers: the project label
	Service string // containers: the service label
	Name    string // networks, volumes, images: the object's name
}

// recorder keeps the engine's events about projects whose names start with
// prefix, for the whole benchmark.
type recorder struct {
	prefix string
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	evs     []dockerEvent
	imageOf map[string]string // image ID → the name it was tagged with
	err     error
}

func newRecorder(prefix string) *recorder {
	return &recorder{prefix: prefix, imageOf: map[string]string{}, done: make(chan struct{})}
}

// start subscribes to the engine's container, network, volume and image
// events.
func (r *recorder) start(ctx context.Context, cli client.SystemAPIClient) error {
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	f := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("type", "network"),
		filters.Arg("type", "volume"), filters.Arg("type", "image"))
	msgs, errs := cli.Events(ctx, events.ListOptions{Filters: f})
	go func() {
		defer close(r.done)
		for {
			select {
			case m := <-msgs:
				r.add(m)
			case err := <-errs:
				if ctx.Err() == nil {
					r.mu.Lock()
					r.err = fmt.Errorf("docker events stream ended: %w", err)
					r.mu.Unlock()
				}
				return
			}
		}
	}()
	return nil
}

func (r *recorder) stop() {
	if r.cancel != nil {
		r.cancel()
		<-r.done
	}
}

func (r *recorder) add(m events.Message) {
	a := m.Actor.Attributes
	e := dockerEvent{At: time.Unix(0, m.TimeNano), Type: m.Type, Action: m.Action}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch m.Type {
	case events.ContainerEventType:
		e.Project, e.Service = a[contract.LabelProject], a[contract.LabelService]
		if !strings.HasPrefix(e.Project, r.prefix) {
			return
		}
		e.Name = strings.TrimPrefix(a["name"], "/")
	case events.NetworkEventType, events.VolumeEventType:
		e.Name = a["name"]
		if m.Type == events.VolumeEventType && e.Name == "" {
			e.Name = m.Actor.ID
		}
	case events.ImageEventType:
		e.Name = a["name"]
		if m.Action == events.ActionTag && strings.HasPrefix(e.Name, r.prefix) {
			r.imageOf[m.Actor.ID] = e.Name
		}
		if n, ok := r.imageOf[m.Actor.ID]; ok && !strings.HasPrefix(e.Name, r.prefix) {
			e.Name = n // delete events name the ID, not the tag
		}
	default:
		return
	}
	if !strings.HasPrefix(e.Name, r.prefix) && e.Project == "" {
		return
	}
	r.evs = append(r.evs, e)
}

// of returns the events of project between from and to, oldest first.
func (r *recorder) of(project string, from, to time.Time) []dockerEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []dockerEvent
	for _, e := range r.evs {
		if e.At.Before(from) || e.At.After(to) || !e.belongsTo(project) {
			continue
		}
		out = append(out, e)
	}
	slices.SortStableFunc(out, func(a, b dockerEvent) int { return a.At.Compare(b.At) })
	return out
}

// belongsTo reports whether e is about project's objects: its containers
// (by label), its networks and volumes (<project>_<key>) and its built
// images (<project>-<service>:<sha>).
func (e dockerEvent) belongsTo(project string) bool {
	switch e.Type {
	case events.ContainerEventType:
		return e.Project == project
	case events.NetworkEventType, events.VolumeEventType:
		return strings.HasPrefix(e.Name, project+"_")
	case events.ImageEventType:
		return strings.HasPrefix(e.Name, project+"-")
	}
	return false
}

// mark names an event for the timelines: "web started", "network
// removed", "image tagged", ... ("" for events not worth showing).
func (e dockerEvent) mark() string {
	switch e.Type {
	case events.ContainerEventType:
		if !strings.HasPrefix(e.Name, e.Project+"-") {
			return "" // a builder's intermediate container
		}
		switch e.Action {
		case events.ActionCreate:
			return e.Service + " created"
		case events.ActionStart:
			return e.Service + " started"
		case events.ActionHealthStatusHealthy:
			return e.Service + " healthy"
		case events.ActionDestroy:
			return e.Service + " removed"
		}
	case events.NetworkEventType:
		switch e.Action {
		case events.ActionCreate:
			return "network created"
		case events.ActionDestroy:
			return "network removed"
		}
	case events.VolumeEventType:
		switch e.Action {
		case events.ActionCreate:
			return "volume created"
		case events.ActionDestroy:
			return "volume removed"
		}
	case events.ImageEventType:
		switch e.Action {
		case events.ActionTag:
			return "image tagged"
		case events.ActionDelete:
			return "image deleted"
		}
	}
	return ""
}

// clean reports whether nothing with project's label is on the engine.
func clean(ctx context.Context, cli client.APIClient, project string) (bool, []string, error) {
	left, err := dockertest.Leftovers(ctx, cli, contract.LabelProject+"="+project)
	return err == nil && len(left) == 0, left, err
}

// leftovers lists every object of the benchmark still on the engine: by
// the repository's label, and by the bench label its fixture layers carry.
func leftovers(ctx context.Context, cli client.APIClient, repo, runID string) ([]string, error) {
	left, err := dockertest.Leftovers(ctx, cli, contract.LabelRepo+"="+repo)
	if err != nil {
		return nil, err
	}
	more, err := dockertest.Leftovers(ctx, cli, benchLabel+"="+runID)
	if err != nil {
		return nil, err
	}
	for _, l := range more {
		if !slices.Contains(left, l) {
			left = append(left, l)
		}
	}
	return left, nil
}

// swept counts what the sweep removed.
type swept struct {
	objects int // containers, networks, volumes, images with the repo label
	layers  int // untagged build layers with only the bench label
}

// sweep removes every object of the benchmark straight through the API:
// the repository's containers, networks, volumes and images, then every
// build layer and builder container carrying this run's bench label
// (newest first, so children go before their parents).
func sweep(ctx context.Context, cli client.APIClient, repo, runID string) (swept, error) {
	var n swept
	var errs []error
	keep := func(what string, err error) bool {
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
			return false
		}
		return err == nil
	}
	for _, label := range []string{contract.LabelRepo + "=" + repo, benchLabel + "=" + runID} {
		f := filters.NewArgs(filters.Arg("label", label))
		cs, err := cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
		keep("list containers", err)
		for _, c := range cs {
			if keep("remove container "+c.ID[:12], cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true})) {
				n.objects++
			}
		}
		nets, err := cli.NetworkList(ctx, network.ListOptions{Filters: f})
		keep("list networks", err)
		for _, nw := range nets {
			if keep("remove network "+nw.Name, cli.NetworkRemove(ctx, nw.ID)) {
				n.objects++
			}
		}
		vols, err := cli.VolumeList(ctx, volume.ListOptions{Filters: f})
		keep("list volumes", err)
		for _, v := range vols.Volumes {
			if keep("remove volume "+v.Name, cli.VolumeRemove(ctx, v.Name, true)) {
				n.objects++
			}
		}
	}
	// Images: the projects' own and the bench-labelled layers, newest
	// first, in passes (a parent cannot go while a child is there).
	if imgs, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", benchLabel+"="+runID))}); keep("list images", err) {
		for _, img := range imgs {
			if img.Labels[contract.LabelRepo] == "" {
				n.layers++
			}
		}
	}
	for pass := 0; pass < 10; pass++ {
		imgs, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", benchLabel+"="+runID))})
		if !keep("list images", err) {
			break
		}
		repoImgs, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", contract.LabelRepo+"="+repo))})
		if !keep("list images", err) {
			break
		}
		imgs = append(repoImgs, imgs...)
		if len(imgs) == 0 {
			break
		}
		slices.SortStableFunc(imgs, func(a, b image.Summary) int { return int(b.Created - a.Created) })
		progress := false
		for _, img := range imgs {
			_, err := cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			switch {
			case err == nil:
				progress = true
				if img.Labels[contract.LabelRepo] == repo {
					n.objects++
				}
			case errdefs.IsNotFound(err), errdefs.IsConflict(err):
				// gone with a child, or still a parent: the next pass
			default:
				errs = append(errs, fmt.Errorf("remove image %s: %w", img.ID, err))
			}
		}
		if !progress {
			break
		}
	}
	if err := errors.Join(errs...); err != nil {
		return n, fmt.Errorf("sweep: %w", err)
	}
	return n, nil
}
