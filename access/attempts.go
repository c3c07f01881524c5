package access

import (
	"net/http"
	"net/netip"
	"strings"
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

// passwordClient is whom wrong passwords are counted against, for one
// repository: the client's address (through the trusted proxies in front
// of Slipway, the right-most address of X-Forwarded-For that is not one of
// them), an IPv6 address by its /64, which one subscriber usually holds
// whole.
func passwordClient(r *http.Request, repo string, trusted []netip.Prefix) string {
	a := clientAddr(r, trusted)
	if !a.IsValid() {
		return repo + " " + r.RemoteAddr
	}
	if a.Is6() {
		a = netip.PrefixFrom(a, 64).Masked().Addr()
	}
	return repo + " " + a.String()
}

// clientAddr is the address of r's client: its peer, or when the peer is a
// trusted proxy, the right-most X-Forwarded-For address that is not.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	a := ap.Addr().Unmap()
	if !within(a, trusted) {
		return a
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		h, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return a // unreadable: count the proxy itself
		}
		if h = h.Unmap(); !within(h, trusted) {
			return h
		}
	}
	return a
}

func within(a netip.Addr, nets []netip.Prefix) bool {
	for _, p := range nets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// wrong counts one more wrong password of client at now, and reports
// whether that locked it.
func (w *wrongPasswords) wrong(client, repo string, now time.Time) bool {
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
			// Full of clients still counted: the newcomers of this
			// repository share one count, rather than anyone's count
			// being forgotten.
			client = overflowClient(repo)
		}
	}
	a := w.keys[client].after(now)
	w.keys[client] = a
	return a.count == maxWrongPasswords
}

// overflowClient is the count the clients of repo share while the table is full.
func overflowClient(repo string) string { return repo + " *" }

// wait returns how long client must wait before trying again (0 when it
// may try now); while the table is full, a client it does not hold waits
// as the repository's shared count says.
func (w *wrongPasswords) wait(client, repo string, now time.Time) time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	a, ok := w.keys[client]
	if !ok && len(w.keys) >= maxAttemptKeys {
		a = w.keys[overflowClient(repo)]
	}
	return lockedFor(a, now)
}
