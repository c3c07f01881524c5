package access

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// Wrong passwords: a client (its address, for one repository) may get the
// password wrong maxWrongPasswords times within wrongPasswordWindow; then
// the form refuses it, without checking, until the window has passed.
const (
	maxWrongPasswords   = 10
	wrongPasswordWindow = 10 * time.Minute
	// maxAttemptKeys bounds the table; it is emptied of lapsed entries
	// when full, and emptied altogether if that is not enough.
	maxAttemptKeys = 1 << 16
)

// wrongPasswords counts the wrong passwords of each client, so that a
// shared password cannot be guessed at the speed of the network.
type wrongPasswords struct {
	mu   sync.Mutex
	keys map[string]attempts
}

// attempts are one client's wrong passwords since first.
type attempts struct {
	first time.Time
	count int
}

// lockedFor decides whether a client with the attempts a may try a
// password at now, and if not, how long until it may.
func lockedFor(a attempts, now time.Time) time.Duration {
	if a.count < maxWrongPasswords {
		return 0
	}
	if until := a.first.Add(wrongPasswordWindow); now.Before(until) {
		return until.Sub(now)
	}
	return 0
}

// after returns the attempts once one more wrong password came at now.
func (a attempts) after(now time.Time) attempts {
	if a.count == 0 || !now.Before(a.first.Add(wrongPasswordWindow)) {
		return attempts{first: now, count: 1}
	}
	return attempts{first: a.first, count: a.count + 1}
}

// passwordClient is whom wrong passwords are counted against: the client's
// address, for one repository.
func passwordClient(r *http.Request, repo string) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return repo + " " + host
}

// wait returns how long the client must wait before trying again; 0 when
// it may try now.
func (w *wrongPasswords) wait(client string, now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return lockedFor(w.keys[client], now)
}

// wrong counts one more wrong password of client at now.
func (w *wrongPasswords) wrong(client string, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.keys == nil {
		w.keys = make(map[string]attempts)
	}
	if _, ok := w.keys[client]; !ok && len(w.keys) >= maxAttemptKeys {
		for k, a := range w.keys {
			if !now.Before(a.first.Add(wrongPasswordWindow)) {
				delete(w.keys, k)
			}
		}
		if len(w.keys) >= maxAttemptKeys {
			clear(w.keys)
		}
	}
	w.keys[client] = w.keys[client].after(now)
}
