// Package lifetime decides how long a preview environment lives without a
// push: which TTL applies to it (the operator's, the repository's own, the
// default) and when that TTL removes it (counted from the last push,
// suspended by a keep). The controller removes environments by it and the
// dashboard shows their expiry by it, so the two never disagree.
//
// Everything here is pure: the caller passes the clock's reading.
package lifetime

import (
	"time"

	"github.com/slipwayhq/slipway/config"
)

// DefaultTTL removes an environment after a week without a push, unless
// slipway.yaml's repos[].ttl or the repository's .slipway.yml ttl says
// otherwise.
const DefaultTTL = 7 * 24 * time.Hour

// TTL is how long an environment lives without a push: the operator's
// repos[].ttl from slipway.yaml when set, else the ttl of the repository's
// .slipway.yml when set, else def. 0 means it lives until its pull request
// closes.
func TTL(operator, repoFile *config.Duration, def time.Duration) time.Duration {
	switch {
	case operator != nil:
		return operator.D()
	case repoFile != nil:
		return repoFile.D()
	}
	return def
}

// Keep suspends the TTL (`/slipway keep 7d`, `/slipway keep forever`). The
// zero Keep suspends nothing.
type Keep struct {
	// Forever pins the environment: the TTL never removes it.
	Forever bool
	// Until keeps the environment through that instant.
	Until time.Time
}

// Expiry is when ttl removes an environment whose pull request's head last
// moved at lastPush (or, when that is unknown, that appeared at created),
// under keep: the end of the TTL, or the end of the keep when that is
// later. ok is false when the TTL never removes it: ttl is 0 (or less), it
// is kept forever, or both times are unknown.
func Expiry(ttl time.Duration, lastPush, created time.Time, keep Keep) (at time.Time, ok bool) {
	from := lastPush
	if from.IsZero() {
		from = created
	}
	if ttl <= 0 || keep.Forever || from.IsZero() {
		return time.Time{}, false
	}
	at = from.Add(ttl)
	if keep.Until.After(at) {
		at = keep.Until
	}
	return at, true
}

// Expired reports whether, at now, ttl has removed the environment
// Expiry describes: it is strictly past its expiry.
func Expired(ttl time.Duration, lastPush, created time.Time, keep Keep, now time.Time) bool {
	at, ok := Expiry(ttl, lastPush, created, keep)
	return ok && now.After(at)
}
