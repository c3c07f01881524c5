package config

import "time"

// DefaultTTL is how long an environment lives without a push when neither
// repos[].ttl in slipway.yaml nor the repository's .slipway.yml sets a ttl.
const DefaultTTL = 7 * 24 * time.Hour

// TTLFor returns how long an environment of this repository lives without
// a push: repos[].ttl, else the ttl of the repository's own file (repo may
// be nil when it has none), else DefaultTTL. 0 means it never expires.
func (r RepoPolicy) TTLFor(repo *Repo) time.Duration {
	switch {
	case r.TTL != nil:
		return r.TTL.D()
	case repo != nil && repo.TTL != nil:
		return repo.TTL.D()
	}
	return DefaultTTL
}
