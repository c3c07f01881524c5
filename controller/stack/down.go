package stack

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/errdefs"
)

// Down removes every container, network, volume and image that Slipway made
// for project. Objects without our managed label are never touched. It is
// idempotent: a project that does not exist is not an error.
func (e *Engine) Down(ctx context.Context, project string) error {
	f := projectFilter(project)
	var errs []error

	cs, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers of %s: %w", project, err)
	}
	for _, c := range cs {
		if err := e.removeContainer(ctx, c.ID); err != nil {
			errs = append(errs, fmt.Errorf("remove container %s: %w", containerName(c), err))
		}
	}

	nets, err := e.docker.NetworkList(ctx, network.ListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list networks of %s: %w", project, err))
	}
	for _, n := range nets {
		// Something else may still be attached (the proxy, when Slipway runs
		// in a container): detach it first.
		if ins, err := e.docker.NetworkInspect(ctx, n.ID, network.InspectOptions{}); err == nil {
			for id := range ins.Containers {
				// Gone meanwhile, or already left (the proxy's attacher leaves
				// networks on its own): either way it is no longer attached.
				if err := e.docker.NetworkDisconnect(ctx, n.ID, id, true); err != nil && !errdefs.IsNotFound(err) && !strings.Contains(err.Error(), "is not connected") {
					errs = append(errs, fmt.Errorf("disconnect %s from network %s: %w", id[:min(12, len(id))], n.Name, err))
				}
			}
		}
		// Remove first, release after: a network that could not be removed
		// keeps its firewall rules.
		if err := e.docker.NetworkRemove(ctx, n.ID); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove network %s: %w", n.Name, err))
			continue
		}
		e.release(ctx, n.ID, n.Options)
	}

	vols, err := e.docker.VolumeList(ctx, volume.ListOptions{Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list volumes of %s: %w", project, err))
	}
	for _, v := range vols.Volumes {
		if err := e.docker.VolumeRemove(ctx, v.Name, true); err != nil && !errdefs.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("remove volume %s: %w", v.Name, err))
		}
	}

	// The images built for the project go; their parent layers stay. They
	// carry no label, and they are the build cache another environment of
	// the same repository may be building from at this moment: pruning
	// them here would fail that build ("failed to get digest").
	imgs, err := e.docker.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		errs = append(errs, fmt.Errorf("list images of %s: %w", project, err))
	}
	for _, img := range imgs {
		// An image with children is not one Slipway tagged for the project:
		// it is a layer whose own Dockerfile LABEL claimed the project (a
		// PR may write any label into its layers). It is left alone.
		if _, err := e.docker.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true}); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
			errs = append(errs, fmt.Errorf("remove image %s: %w", imageName(img), err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("down %s: %w", project, err)
	}
	return nil
}

// removeContainer force-removes a container with its anonymous volumes. A
// removal already in progress (one a killed controller started) is waited
// for rather than reported.
func (e *Engine) removeContainer(ctx context.Context, id string) error {
	err := e.docker.ContainerRemove(ctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
	switch {
	case err == nil || errdefs.IsNotFound(err):
		return nil
	case !strings.Contains(err.Error(), "already in progress"):
		return err
	}
	for {
		if _, ierr := e.docker.ContainerInspect(ctx, id); errdefs.IsNotFound(ierr) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for a removal in progress: %w", ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func containerName(c container.Summary) string {
	if len(c.Names) > 0 {
		return strings.TrimPrefix(c.Names[0], "/")
	}
	return c.ID[:min(12, len(c.ID))]
}

func imageName(img image.Summary) string {
	if len(img.RepoTags) > 0 {
		return img.RepoTags[0]
	}
	return img.ID
}
