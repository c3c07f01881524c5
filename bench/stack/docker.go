package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// webPort is the fixture's web port (compose.yaml, web).
const webPort = 8080

// watchEvents records t's project events from t0 on into rec until ctx
// ends: image tags, network creation, and per service container create,
// start, exit and health. The returned channel closes when it has stopped.
func (b *bench) watchEvents(ctx context.Context, t *tool, rec *recorder) <-chan struct{} {
	done := make(chan struct{})
	f := filters.NewArgs(filters.Arg("type", "container"), filters.Arg("type", "network"), filters.Arg("type", "image"))
	since := fmt.Sprintf("%d.%09d", rec.t0.Unix(), rec.t0.Nanosecond())
	msgs, errs := b.cli.Events(ctx, events.ListOptions{Since: since, Filters: f})
	go func() {
		defer close(done)
		for {
			select {
			case m := <-msgs:
				if what := t.describe(m); what != "" {
					rec.add(time.Unix(0, m.TimeNano).Sub(rec.t0), what)
				}
			case err := <-errs:
				if ctx.Err() == nil {
					rec.add(time.Since(rec.t0), "events stream ended: "+err.Error())
				}
				return
			}
		}
	}()
	return done
}

// describe names an event of t's project as a mark, or "" for any other.
func (t *tool) describe(m events.Message) string {
	a := m.Actor.Attributes
	switch m.Type {
	case events.ImageEventType:
		if m.Action == events.ActionTag && t.isBuiltImage(a["name"]) {
			return "image tagged"
		}
		// Slipway tags a built image through an image load, whose event
		// names the image by ID and carries its labels.
		if m.Action == events.ActionLoad && a[contract.LabelProject] == t.project {
			return "image tagged"
		}
	case events.NetworkEventType:
		if m.Action == events.ActionCreate && strings.HasPrefix(a["name"], t.project+"_") {
			return "network created"
		}
	case events.ContainerEventType:
		svc := a[contract.LabelService]
		if a[contract.LabelProject] != t.project || !t.isServiceContainer(a["name"], svc) {
			return ""
		}
		switch {
		case m.Action == events.ActionCreate:
			return svc + " created"
		case m.Action == events.ActionStart:
			return svc + " started"
		case m.Action == events.ActionDie:
			return svc + " exited"
		case m.Action == events.ActionHealthStatusHealthy:
			return svc + " healthy"
		case m.Action == events.ActionHealthStatusUnhealthy:
			return svc + " unhealthy"
		}
	}
	return ""
}

// probeServing polls t's web container until it answers 200 over HTTP at
// its container IP, and returns the time since rec.t0.
func (b *bench) probeServing(ctx context.Context, t *tool, rec *recorder) (time.Duration, error) {
	hc := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	f := filters.NewArgs(
		filters.Arg("label", contract.LabelProject+"="+t.project),
		filters.Arg("label", contract.LabelService+"=web"),
	)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	last := "no web container yet"
	for {
		cs, err := b.cli.ContainerList(ctx, container.ListOptions{Filters: f})
		if err != nil && ctx.Err() == nil {
			last = err.Error()
		}
		for _, c := range cs {
			if len(c.Names) == 0 || !t.isServiceContainer(c.Names[0], "web") || c.NetworkSettings == nil {
				continue
			}
			for _, ep := range c.NetworkSettings.Networks {
				if ep == nil || ep.IPAddress == "" {
					continue
				}
				status, err := get(ctx, hc, "http://"+ep.IPAddress+":"+strconv.Itoa(webPort)+"/")
				if status == http.StatusOK {
					return time.Since(rec.t0), nil
				}
				last = fmt.Sprintf("GET %s: status %d, %v", ep.IPAddress, status, err)
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("web never answered 200 (last: %s): %w", last, ctx.Err())
		case <-tick.C:
		}
	}
}

func get(ctx context.Context, hc *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	return resp.StatusCode, nil
}

// containerIDs lists t's service containers as name → ID.
func (b *bench) containerIDs(ctx context.Context, t *tool) (map[string]string, error) {
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", contract.LabelProject+"="+t.project))})
	if err != nil {
		return nil, fmt.Errorf("list containers of %s: %w", t.project, err)
	}
	out := map[string]string{}
	for _, c := range cs {
		if len(c.Names) > 0 {
			out[strings.TrimPrefix(c.Names[0], "/")] = c.ID
		}
	}
	return out, nil
}

// leftovers lists every object of t's project on the engine: by the
// compose project label (containers, networks, volumes, slipway's images)
// and by name (docker-compose v1 does not label the images it builds).
func (b *bench) leftovers(ctx context.Context, t *tool) ([]string, error) {
	left, err := dockertest.Leftovers(ctx, b.cli, contract.LabelProject+"="+t.project)
	if err != nil {
		return nil, fmt.Errorf("leftovers of %s: %w", t.project, err)
	}
	imgs, err := b.cli.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	listed := strings.Join(left, "\n")
	for _, img := range imgs {
		if strings.Contains(listed, img.ID) {
			continue
		}
		if slices.ContainsFunc(img.RepoTags, t.isBuiltImage) {
			left = append(left, "image "+strings.Join(append([]string{img.ID}, img.RepoTags...), ","))
		}
	}
	return left, nil
}

// sweep removes every object of t's project straight through the API,
// whatever state a failed or interrupted run left it in. It runs even when
// ctx is cancelled, within a time limit of its own.
func (b *bench) sweep(ctx context.Context, t *tool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	f := filters.NewArgs(filters.Arg("label", contract.LabelProject+"="+t.project))
	var errs []error
	keep := func(what string, err error) {
		if err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	cs, err := b.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	keep("list containers", err)
	for _, c := range cs {
		keep("remove container "+c.ID[:12], b.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true, RemoveVolumes: true}))
	}
	nets, err := b.cli.NetworkList(ctx, network.ListOptions{Filters: f})
	keep("list networks", err)
	for _, n := range nets {
		keep("remove network "+n.Name, b.cli.NetworkRemove(ctx, n.ID))
	}
	vols, err := b.cli.VolumeList(ctx, volume.ListOptions{Filters: f})
	keep("list volumes", err)
	for _, v := range vols.Volumes {
		keep("remove volume "+v.Name, b.cli.VolumeRemove(ctx, v.Name, true))
	}
	imgs, err := b.cli.ImageList(ctx, image.ListOptions{All: true})
	keep("list images", err)
	for _, img := range imgs {
		if img.Labels[contract.LabelProject] == t.project {
			// Labelled by slipway for this project: its own image.
			_, err := b.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			keep("remove image "+img.ID, err)
			continue
		}
		// docker-compose's images carry no label, and an image built from
		// cached layers may be shared with others: untag ours only.
		for _, tag := range img.RepoTags {
			if t.isBuiltImage(tag) {
				_, err := b.cli.ImageRemove(ctx, tag, image.RemoveOptions{PruneChildren: true})
				keep("remove image "+tag, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sweep %s: %w", t.project, err)
	}
	return nil
}

// anchor keeps t's just-built layers in the cache after its down, so the
// next up finds every Dockerfile step cached (warm mode). docker-compose's
// images are tagged as they are: its down only untags its own name.
// Slipway tags a labelled copy of the image its PR build made (an image
// load of the relabelled config, or a LABEL step on top) and its down
// removes that by ID, so the anchor is the PR build's own image, which the
// build log names: the first "Successfully built" of each service (out is
// the warm-up up's output).
func (b *bench) anchor(ctx context.Context, t *tool, out string) (int, error) {
	targets := map[string]string{} // service → image
	if t.name == toolSlipway {
		for _, line := range strings.Split(out, "\n") {
			service, rest, ok := strings.Cut(line, " | ")
			if !ok {
				continue
			}
			if id, ok := strings.CutPrefix(strings.TrimSpace(rest), "Successfully built "); ok {
				if _, seen := targets[service]; !seen {
					targets[service] = id
				}
			}
		}
	} else {
		imgs, err := b.cli.ImageList(ctx, image.ListOptions{})
		if err != nil {
			return 0, fmt.Errorf("list images: %w", err)
		}
		for _, img := range imgs {
			for _, tag := range img.RepoTags {
				if t.isBuiltImage(tag) {
					service, _, _ := strings.Cut(strings.TrimPrefix(tag, t.project+t.sep), ":")
					targets[service] = img.ID
				}
			}
		}
	}
	n := 0
	for _, service := range slices.Sorted(maps.Keys(targets)) {
		ref := b.anchorRepo + ":" + t.name + "-" + service
		if err := b.cli.ImageTag(ctx, targets[service], ref); err != nil {
			return n, fmt.Errorf("tag %s's image %s as %s: %w", service, targets[service], ref, err)
		}
		n++
	}
	if n == 0 {
		return 0, fmt.Errorf("%s built no image to keep in the cache", t.label)
	}
	return n, nil
}

// anchorTags lists the warm-cache anchors on the engine.
func (b *bench) anchorTags(ctx context.Context) ([]string, error) {
	imgs, err := b.cli.ImageList(ctx, image.ListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	var out []string
	for _, img := range imgs {
		for _, tag := range img.RepoTags {
			if strings.HasPrefix(tag, b.anchorRepo+":") {
				out = append(out, "image "+tag)
			}
		}
	}
	return out, nil
}

// removeAnchors untags the anchors; the layers below them go with the last
// reference (the projects are swept first).
func (b *bench) removeAnchors(ctx context.Context) error {
	tags, err := b.anchorTags(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, t := range tags {
		ref := strings.TrimPrefix(t, "image ")
		if _, err := b.cli.ImageRemove(ctx, ref, image.RemoveOptions{PruneChildren: true}); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove cache anchor %s: %w", ref, err))
		}
	}
	return errors.Join(errs...)
}

// removeRunLayers removes every image this run's Dockerfiles built (they
// carry b.imageLabel) that no container uses: the layers slipway down
// keeps as build cache by design, and docker-compose's if its down left
// them. Cold mode calls it after each cycle, so that every cold up starts
// from the base image only; anchors are untagged first (removeAnchors).
func (b *bench) removeRunLayers(ctx context.Context) error {
	f := filters.NewArgs(filters.Arg("label", b.imageLabel))
	for range 10 {
		imgs, err := b.cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
		if err != nil {
			return fmt.Errorf("list the run's images: %w", err)
		}
		if len(imgs) == 0 {
			return nil
		}
		removed := 0
		for _, img := range imgs {
			// Children first: a parent with a child is a conflict, and
			// goes with its last child (PruneChildren).
			_, err := b.cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true, PruneChildren: true})
			switch {
			case err == nil:
				removed++
			case errdefs.IsNotFound(err), errdefs.IsConflict(err):
			default:
				return fmt.Errorf("remove the run's image %s: %w", img.ID, err)
			}
		}
		if removed == 0 {
			return fmt.Errorf("%d image(s) labelled %s cannot be removed (in use?)", len(imgs), b.imageLabel)
		}
	}
	return fmt.Errorf("images labelled %s keep appearing", b.imageLabel)
}
