package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/docker/docker/api/types/network"

	"github.com/slipwayhq/slipway/internal/dockertest"
)

// A held network is joined before anything on it is exposed, and kept
// while held whatever the rules for leaving say; after the release those
// rules apply again. The Attacher's loop is not started: the test drives
// its steps (leaveEmpty) itself, with the empty networks' times moved back
// instead of waiting LeaveAfter.
func TestHoldJoinsAndKeepsANetworkUntilReleased(t *testing.T) {
	cli := dockertest.Client(t)
	img := dockertest.Busybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	domain := dockertest.UniqueName("hold") + ".localhost"

	selfID := startSleeper(t, cli, img, dockertest.UniqueName("slipway-hold-self-"), "")
	heldNet := createManagedNetwork(t, cli, dockertest.UniqueName("hold-managed"), true)
	unmanagedNet := createManagedNetwork(t, cli, dockertest.UniqueName("hold-unmanaged"), false)
	a, err := NewAttacher(ctx, cli, AttacherOptions{Domain: domain, Hostname: selfID[:12], MountInfo: "/nonexistent", LeaveAfter: time.Hour})
	if err != nil || a == nil {
		t.Fatalf("NewAttacher = %v, %v; want an attacher", a, err)
	}
	on := func(name string) bool {
		t.Helper()
		ins, err := cli.ContainerInspect(ctx, selfID)
		if err != nil {
			t.Fatal(err)
		}
		return ins.NetworkSettings.Networks[name] != nil
	}
	netID := func(name string) string {
		t.Helper()
		ins, err := cli.NetworkInspect(ctx, name, network.InspectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return ins.ID
	}
	// ageEmpty makes every network the Attacher saw empty look empty for
	// longer than LeaveAfter.
	ageEmpty := func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		for id, e := range a.empty {
			e.since = time.Now().Add(-2 * a.leaveAfter)
			a.empty[id] = e
		}
	}

	release := a.Hold(ctx, []string{heldNet, unmanagedNet, dockertest.UniqueName("hold-missing")})
	if !on(heldNet) {
		t.Fatalf("not on the held network %s once Hold returned", heldNet)
	}
	if on(unmanagedNet) {
		t.Errorf("joined the unmanaged network %s", unmanagedNet)
	}

	// Nothing on it is exposed: Sync would mark it to be left, and
	// leaveEmpty leave it, were it not held.
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.empty[netID(heldNet)] = emptyNetwork{name: heldNet, since: time.Now()}
	a.mu.Unlock()
	ageEmpty()
	a.leaveEmpty(ctx)
	if !on(heldNet) {
		t.Fatalf("left the held network %s", heldNet)
	}

	// A second Hold of the same network outlives the first's release.
	release2 := a.Hold(ctx, []string{heldNet})
	release()
	release() // a second call does nothing
	ageEmpty()
	a.leaveEmpty(ctx)
	if !on(heldNet) {
		t.Fatalf("left %s while a second Hold keeps it", heldNet)
	}

	// Released: looked at again after LeaveAfter, and left.
	release2()
	a.mu.Lock()
	_, marked := a.empty[netID(heldNet)]
	a.mu.Unlock()
	if !marked {
		t.Fatalf("the released network %s is not to be looked at again", heldNet)
	}
	a.leaveEmpty(ctx)
	if !on(heldNet) {
		t.Fatalf("left %s before LeaveAfter passed since the release", heldNet)
	}
	ageEmpty()
	a.leaveEmpty(ctx)
	if on(heldNet) {
		t.Fatalf("still on %s, released and with nothing exposed on it", heldNet)
	}
}
