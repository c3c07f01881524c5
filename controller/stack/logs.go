package stack

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"github.com/slipwayhq/slipway/internal/contract"
)

// LogOptions select what Logs streams.
type LogOptions struct {
	// Service limits the output to one service; "" means all.
	Service string
	// Follow keeps streaming until ctx ends.
	Follow bool
	// Tail is how many lines of history to start with per container ("all" or a number; default "all").
	Tail string
	// Timestamps prefixes each line with its time.
	Timestamps bool
}

// Logs writes the logs of project's containers to w, one line at a time,
// each prefixed with the container's service and number ("web-1 | ...").
func (e *Engine) Logs(ctx context.Context, project string, o LogOptions, w io.Writer) error {
	f := projectFilter(project)
	f.Add("label", contract.LabelOneoff+"=False")
	if o.Service != "" {
		f.Add("label", contract.LabelService+"="+o.Service)
	}
	cs, err := e.docker.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return fmt.Errorf("list containers of %s: %w", project, err)
	}
	if len(cs) == 0 {
		if o.Service != "" {
			return fmt.Errorf("project %s has no containers for service %s", project, o.Service)
		}
		return fmt.Errorf("project %s has no containers", project)
	}
	tail := o.Tail
	if tail == "" {
		tail = "all"
	}
	out := &lineWriter{w: w}
	var wg sync.WaitGroup
	errs := make(chan error, len(cs))
	for _, c := range cs {
		prefix := c.Labels[contract.LabelService] + "-" + c.Labels[contract.LabelNumber]
		wg.Add(1)
		go func() {
			defer wg.Done()
			rc, err := e.docker.ContainerLogs(ctx, c.ID, container.LogsOptions{
				ShowStdout: true, ShowStderr: true, Follow: o.Follow, Tail: tail, Timestamps: o.Timestamps,
			})
			if err != nil {
				errs <- fmt.Errorf("logs of %s: %w", prefix, err)
				return
			}
			defer rc.Close()
			pr, pw := io.Pipe()
			go func() {
				var err error
				if ins, ierr := e.docker.ContainerInspect(ctx, c.ID); ierr == nil && ins.Config != nil && ins.Config.Tty {
					_, err = io.Copy(pw, rc)
				} else {
					_, err = stdcopy.StdCopy(pw, pw, rc)
				}
				pw.CloseWithError(err)
			}()
			sc := bufio.NewScanner(pr)
			sc.Buffer(make([]byte, 64<<10), 1<<20)
			for sc.Scan() {
				out.Println(prefix, strings.TrimRight(sc.Text(), "\r"))
			}
			if err := sc.Err(); err != nil && ctx.Err() == nil {
				errs <- fmt.Errorf("logs of %s: %w", prefix, err)
			}
			pr.Close()
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
