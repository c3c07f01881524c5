package proxy

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/errdefs"

	"github.com/slipwayhq/slipway/internal/contract"
)

// LeaveAll disconnects Slipway's container from every project network it
// is on, for a stop: a stopped container attached to a swarm's overlay
// cannot be started again once that overlay is gone (Docker answers
// "network not found", and a restart policy cannot help), and a project
// may be removed while Slipway is down. The next start joins again what
// is still there. Call it once the Attacher has stopped.
func (a *Attacher) LeaveAll(ctx context.Context) error {
	self, err := a.docker.ContainerInspect(ctx, a.id)
	if err != nil {
		return fmt.Errorf("inspect %s: %w", a.name, err)
	}
	if self.NetworkSettings == nil {
		return nil
	}
	managed, err := a.docker.NetworkList(ctx, network.ListOptions{Filters: filters.NewArgs(filters.Arg("label", contract.ManagedFilter))})
	if err != nil {
		return fmt.Errorf("list project networks: %w", err)
	}
	var errs []error
	left := 0
	for _, n := range managed {
		if _, on := self.NetworkSettings.Networks[n.Name]; !on {
			continue
		}
		err := a.docker.NetworkDisconnect(ctx, n.ID, a.id, false)
		switch {
		case err == nil:
			left++
		case errdefs.IsNotFound(err) || strings.Contains(err.Error(), "is not connected"):
		default:
			errs = append(errs, fmt.Errorf("disconnect %s from network %s: %w", a.name, n.Name, err))
		}
	}
	if left > 0 {
		a.log.Info("left every project network before stopping", "networks", left)
	}
	return errors.Join(errs...)
}
