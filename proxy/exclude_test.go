package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/slipwayhq/slipway/internal/dockertest"
)

// An excluded network is left at once and not joined again while the
// exclusion lasts, though a container exposed on it still runs and
// though a Hold asks for it; once the last exclusion is done, the next
// retry joins it again.
// The Attacher's loop is not started: the test drives its steps (Sync,
// joinFor, Hold) itself.
func TestExcludeLeavesANetworkAndKeepsOffItUntilDone(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.Busybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	domain := dockertest.UniqueName("exclude") + ".localhost"
	project := dockertest.UniqueName("exclude")

	selfID := startSleeper(t, cli, img, dockertest.UniqueName("slipway-exclude-self-"), "")
	netName := createManagedNetwork(t, cli, project, true)
	exposedID := startProjectContainer(t, cli, img, project, netName, "pr-1."+domain)
	a, err := NewAttacher(ctx, cli, AttacherOptions{Domain: domain, Hostname: selfID[:12], MountInfo: "/nonexistent", LeaveAfter: time.Hour})
	if err != nil || a == nil {
		t.Fatalf("NewAttacher = %v, %v; want an attacher", a, err)
	}
	on := func() bool {
		t.Helper()
		ins, err := cli.ContainerInspect(ctx, selfID)
		if err != nil {
			t.Fatal(err)
		}
		return ins.NetworkSettings.Networks[netName] != nil
	}
	ins, err := cli.NetworkInspect(ctx, netName, network.InspectOptions{})
	if err != nil {
		t.Fatal(err)
	}

	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if !on() {
		t.Fatalf("not on %s, where an exposed container runs", netName)
	}

	done := a.Exclude(ctx, []string{netName, dockertest.UniqueName("exclude-missing")})
	if on() {
		t.Fatalf("still on %s once Exclude returned", netName)
	}
	// What would join it otherwise: a look at every network (as after a
	// service event), the exposed container connecting, a Hold, a retry.
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := a.joinFor(ctx, ins.ID, netName, exposedID); err != nil {
		t.Fatal(err)
	}
	release := a.Hold(ctx, []string{netName})
	a.setPending(ins.ID, netName)
	a.retryPending(ctx)
	if on() {
		t.Fatalf("joined the excluded network %s again", netName)
	}
	// Joined behind the Attacher's back (as a join under way when
	// Exclude looked would be): the next look leaves it.
	if err := cli.NetworkConnect(ctx, ins.ID, selfID, nil); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if on() {
		t.Fatalf("stayed on the excluded network %s", netName)
	}

	// A second exclusion, naming the network twice (by ID and by name),
	// counts once; the first one's done, called twice, does not end it.
	done2 := a.Exclude(ctx, []string{ins.ID, netName})
	done()
	done()
	release()
	a.retryPending(ctx)
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if on() {
		t.Fatalf("joined %s while a second exclusion of it lasts", netName)
	}

	// Once the last exclusion is done the network is looked at on the
	// next retry, without an event: the exposed container has it joined.
	done2()
	a.retryPending(ctx)
	if !on() {
		t.Fatalf("not on %s at the first retry once the exclusions are done, with an exposed container on it", netName)
	}
}
