// Package lifetime decides when a preview environment's TTL removes it:
// counted from the last push, suspended by a keep. Which TTL applies is
// config.RepoPolicy.TTLFor. The controller removes environments by it and the
// dashboard shows their expiry by it, so the two never disagree.
//
// Everything here is pure: the caller passes the clock's reading.
package lifetime

import (
	"time"
)

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
