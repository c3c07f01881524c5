package controller

import (
	"slices"
	"testing"

	"github.com/slipwayhq/slipway/controller/stack"
)

func TestDecideSlot(t *testing.T) {
	a, b, c := Key{"acme/shop", 1}, Key{"acme/shop", 2}, Key{"acme/shop", 3}
	for _, tc := range []struct {
		name string
		q    slotQuestion
		want slotAnswer
	}{
		{"free, nobody waits", slotQuestion{Key: a, Limit: 2, Running: 1}, slotAnswer{Granted: true, Waitlist: []Key{}}},
		{"full: joins the line", slotQuestion{Key: a, Limit: 1, Running: 1}, slotAnswer{Waitlist: []Key{a}, Ahead: 0}},
		{"full: behind others", slotQuestion{Key: c, Limit: 1, Running: 1, Waitlist: []Key{a, b}}, slotAnswer{Waitlist: []Key{a, b, c}, Ahead: 2}},
		{"free but others wait first: joins the line", slotQuestion{Key: c, Limit: 2, Running: 1, Waitlist: []Key{a, b}}, slotAnswer{Waitlist: []Key{a, b, c}, Ahead: 2}},
		{"first in line when a slot frees", slotQuestion{Key: a, Limit: 2, Running: 1, Waitlist: []Key{a, b}}, slotAnswer{Granted: true, Waitlist: []Key{b}}},
		{"second in line, one slot free", slotQuestion{Key: b, Limit: 2, Running: 1, Waitlist: []Key{a, b}}, slotAnswer{Waitlist: []Key{a, b}, Ahead: 1}},
		{"second in line, two slots free", slotQuestion{Key: b, Limit: 3, Running: 1, Waitlist: []Key{a, b}}, slotAnswer{Granted: true, Waitlist: []Key{a}}},
		{"over the limit (limit lowered)", slotQuestion{Key: a, Limit: 1, Running: 3, Waitlist: []Key{a}}, slotAnswer{Waitlist: []Key{a}, Ahead: 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.q.Waitlist)
			got := decideSlot(tc.q)
			if got.Granted != tc.want.Granted || got.Ahead != tc.want.Ahead || !slices.Equal(got.Waitlist, tc.want.Waitlist) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			if !slices.Equal(tc.q.Waitlist, in) {
				t.Errorf("the question's waitlist changed: %v", tc.q.Waitlist)
			}
		})
	}
}

func TestCountRunning(t *testing.T) {
	onEngine := map[string]stack.ProjectRef{
		"acme-shop-pr-1": {Repo: "acme/shop", PR: 1},
		"acme-shop-pr-2": {Repo: "acme/shop", PR: 2},
		"local-x-pr-1":   {Repo: "local/x", PR: 1}, // slipway up: not the controller's
	}
	configured := func(repo string) bool { return repo == "acme/shop" }
	reserved := map[string]bool{"acme-shop-pr-2": true, "acme-shop-pr-3": true, "acme-shop-pr-4": true}
	for _, tc := range []struct {
		project string
		want    int
	}{
		{"acme-shop-pr-9", 4}, // 1, 2 on the engine; 3, 4 reserved
		{"acme-shop-pr-1", 3}, // not itself
		{"acme-shop-pr-3", 3}, // its own reservation does not count
	} {
		if got := countRunning(onEngine, configured, reserved, tc.project); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.project, got, tc.want)
		}
	}
}
