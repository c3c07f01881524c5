package swarm

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/swarm"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/slipwayhq/slipway/controller/stack"
)

// Logs writes the logs of project's services (every task of each, from
// whichever node runs it) to w, one line at a time, each prefixed with
// the service's name ("web | ...").
func (e *Engine) Logs(ctx context.Context, project string, o stack.LogOptions, w io.Writer) error {
	svcs, err := e.services(ctx, project)
	if err != nil {
		return err
	}
	if o.Service != "" {
		s, ok := svcs[o.Service]
		if !ok {
			return fmt.Errorf("project %s has no service %s", project, o.Service)
		}
		svcs = map[string]swarm.Service{o.Service: s}
	}
	if len(svcs) == 0 {
		return fmt.Errorf("project %s has no services", project)
	}
	tail := o.Tail
	if tail == "" {
		tail = "all"
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, len(svcs))
	for _, name := range slices.Sorted(maps.Keys(svcs)) {
		s := svcs[name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := e.docker.ServiceLogs(ctx, s.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: o.Follow, Tail: tail, Timestamps: o.Timestamps})
			if err != nil {
				errs <- fmt.Errorf("logs of %s: %w", s.Spec.Name, err)
				return
			}
			defer rc.Close()
			pr, pw := io.Pipe()
			go func() {
				_, err := stdcopy.StdCopy(pw, pw, rc)
				pw.CloseWithError(err)
			}()
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				mu.Lock()
				fmt.Fprintf(w, "%s | %s\n", name, sc.Text())
				mu.Unlock()
			}
			if err := sc.Err(); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("logs of %s: %w", s.Spec.Name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

// List returns every environment Slipway manages on the swarm, sorted by project.
func (e *Engine) List(ctx context.Context) ([]stack.Environment, error) {
	refs, err := e.Projects(ctx)
	if err != nil {
		return nil, err
	}
	var out []stack.Environment
	for _, project := range slices.Sorted(maps.Keys(refs)) {
		env, err := e.Inspect(ctx, project)
		if err != nil {
			return nil, err
		}
		if env != nil {
			out = append(out, *env)
		}
	}
	return out, nil
}
