package stack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/strslice"

	"github.com/slipwayhq/slipway/internal/contract"
)

// JobError is an after_deploy job that failed.
type JobError struct {
	Index   int
	Service string
	Command []string
	Reason  string
	Logs    []string
}

func (e *JobError) Error() string {
	msg := fmt.Sprintf("after_deploy[%d] (service %s, %s): %s", e.Index, e.Service, strings.Join(e.Command, " "), e.Reason)
	if len(e.Logs) > 0 {
		msg += "\n  " + strings.Join(e.Logs, "\n  ")
	}
	return msg
}

// runJob runs one after_deploy job: a one-off container of service with
// command, as `docker compose run` would, and waits for it to exit 0. The
// container is removed afterwards either way.
func (e *Engine) runJob(ctx context.Context, p *Plan, index int, service string, command []string, specs map[string][]*containerSpec, log io.Writer) error {
	base := specs[service]
	if len(base) == 0 {
		return badInput(fmt.Errorf("after_deploy[%d]: service %s has no containers", index, service))
	}
	spec := *base[0]
	cfg := *spec.Config
	cfg.Labels = maps.Clone(cfg.Labels)
	// Emptied, not deleted: a deleted key would let the image's own value
	// through (see contract.ClearImageLabels), and a job serves no route.
	for _, k := range []string{contract.LabelRouteHost, contract.LabelRoutePort, contract.LabelPrimary, contract.LabelConfigHash} {
		cfg.Labels[k] = ""
	}
	cfg.Labels[contract.LabelOneoff] = "True"
	cfg.Labels[contract.LabelJob] = strconv.Itoa(index)
	cfg.Healthcheck = &container.HealthConfig{Test: []string{"NONE"}}
	if len(command) > 0 {
		cfg.Cmd = strslice.StrSlice(command)
	}
	host := *spec.Host
	host.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	suffix := make([]byte, 4)
	_, _ = rand.Read(suffix)
	spec.Name = p.Name + "-" + service + "-run-" + hex.EncodeToString(suffix)
	spec.Config, spec.Host = &cfg, &host
	// The networks are the service's: copy them before changing aliases.
	spec.Networks = slices.Clone(spec.Networks)
	for i := range spec.Networks {
		spec.Networks[i].Aliases = []string{spec.Name}
	}

	fmt.Fprintf(log, "%s | running after_deploy[%d]: %s\n", service, index, strings.Join(command, " "))
	id, err := e.createContainer(ctx, &spec, func(string) []string { return nil })
	if id != "" {
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			_ = e.docker.ContainerRemove(rctx, id, container.RemoveOptions{Force: true, RemoveVolumes: true})
		}()
	}
	if err != nil {
		return fmt.Errorf("after_deploy[%d]: %w", index, err)
	}
	if err := e.docker.ContainerStart(ctx, id, container.StartOptions{}); err != nil {
		return fmt.Errorf("after_deploy[%d]: start: %w", index, err)
	}
	wctx, cancel := context.WithTimeout(ctx, e.opts.ReadyTimeout)
	defer cancel()
	waitC, errC := e.docker.ContainerWait(wctx, id, container.WaitConditionNotRunning)
	var code int64
	select {
	case r := <-waitC:
		code = r.StatusCode
		if r.Error != nil {
			return fmt.Errorf("after_deploy[%d]: wait: %s", index, r.Error.Message)
		}
	case err := <-errC:
		if wctx.Err() == context.DeadlineExceeded {
			return &JobError{Index: index, Service: service, Command: command,
				Reason: fmt.Sprintf("did not finish within %s", e.opts.ReadyTimeout), Logs: e.logTail(ctx, id, serviceLogTail)}
		}
		return fmt.Errorf("after_deploy[%d]: wait: %w", index, err)
	}
	logs := e.logTail(ctx, id, serviceLogTail)
	for _, l := range logs {
		fmt.Fprintf(log, "%s | %s\n", service, l)
	}
	if code != 0 {
		return &JobError{Index: index, Service: service, Command: command, Reason: fmt.Sprintf("exited with code %d", code), Logs: logs}
	}
	return nil
}
