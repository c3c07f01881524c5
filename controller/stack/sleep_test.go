package stack

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/events"
	"github.com/docker/docker/api/types/filters"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Stop stops a stack's containers all at once: each is asked to stop
// (SIGTERM) before any of them has died, so a stack sleeps in one stop
// timeout, not one per container. Told by the engine's events, not by a
// clock.
func TestStopStopsContainersInParallel(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	dir := t.TempDir()
	// sleep as PID 1 ignores SIGTERM: each container dies only when the
	// stop timeout sends SIGKILL.
	svc := "    image: slipway-test/busybox:1\n    command: [\"sleep\", \"3600\"]\n"
	compose := "services:\n  a:\n" + svc + "  b:\n" + svc + "  c:\n" + svc
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	p, _ := up(t, e, newSource(t, e, cli, dir))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Since replays what happened before the stream was connected: nothing
	// of this project was killed or died before Stop.
	since := strconv.FormatInt(time.Now().Add(-time.Second).Unix(), 10)
	msgs, errc := cli.Events(ctx, events.ListOptions{Since: since, Filters: filters.NewArgs(
		filters.Arg("type", "container"), filters.Arg("label", contract.LabelProject+"="+p.Name),
		filters.Arg("event", "kill"), filters.Arg("event", "die"))})
	stopped := make(chan error, 1)
	go func() { stopped <- e.Stop(context.Background(), p.Name) }()

	terms, dies := 0, 0
	for dies < 3 {
		select {
		case m := <-msgs:
			switch {
			case m.Action == events.ActionKill && m.Actor.Attributes["signal"] == "15":
				if dies == 0 {
					terms++
				}
			case m.Action == events.ActionDie:
				dies++
			}
		case err := <-errc:
			t.Fatalf("events: %v", err)
		}
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if terms != 3 {
		t.Errorf("%d of 3 containers were asked to stop before the first died, want all 3 (stopped one after another)", terms)
	}
}
