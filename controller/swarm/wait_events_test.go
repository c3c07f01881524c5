package swarm

import (
	"testing"

	"github.com/docker/docker/api/types/events"
)

func TestTaskEventMatters(t *testing.T) {
	for _, tc := range []struct {
		action events.Action
		want   bool
	}{
		{events.ActionStart, true},
		// An end is no trigger: Swarm may still call the task running.
		{events.ActionDie, false},
		{events.ActionOOM, false},
		{events.ActionHealthStatusHealthy, true},
		{events.ActionHealthStatusUnhealthy, true},
		{events.ActionHealthStatusRunning, true},
		{events.ActionCreate, false},
		{events.ActionExecStart, false},
		{events.ActionExecDie, false},
		{events.ActionAttach, false},
		{events.ActionDestroy, false},
	} {
		if got := taskEventMatters(tc.action); got != tc.want {
			t.Errorf("taskEventMatters(%q) = %v, want %v", tc.action, got, tc.want)
		}
	}
}
