package config

import (
	"testing"
	"time"
)

func TestTTLFor(t *testing.T) {
	d := func(v time.Duration) *Duration { x := Duration(v); return &x }
	cases := []struct {
		name   string
		policy RepoPolicy
		repo   *Repo
		want   time.Duration
	}{
		{"nothing set", RepoPolicy{}, nil, 7 * 24 * time.Hour},
		{"a .slipway.yml without ttl", RepoPolicy{}, &Repo{}, 7 * 24 * time.Hour},
		{"the repository's ttl", RepoPolicy{}, &Repo{TTL: d(72 * time.Hour)}, 72 * time.Hour},
		{"the repository disables expiry", RepoPolicy{}, &Repo{TTL: d(0)}, 0},
		{"repos[].ttl wins", RepoPolicy{TTL: d(time.Hour)}, &Repo{TTL: d(72 * time.Hour)}, time.Hour},
		{"repos[].ttl 0 disables expiry", RepoPolicy{TTL: d(0)}, &Repo{TTL: d(72 * time.Hour)}, 0},
		{"repos[].ttl without a .slipway.yml", RepoPolicy{TTL: d(time.Hour)}, nil, time.Hour},
	}
	for _, tc := range cases {
		if got := tc.policy.TTLFor(tc.repo); got != tc.want {
			t.Errorf("%s: TTLFor = %v, want %v", tc.name, got, tc.want)
		}
	}
}
