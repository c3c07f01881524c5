package access

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// permCache caches "may login read repo" for ttl. A hit is never a call to
// GitHub; an entry past half its life is refreshed in the background while
// it is still served, so a user who keeps using a preview is not made to
// wait, and an entry past ttl is never served: a user who loses access
// loses it within ttl.
type permCache struct {
	src Permissions
	ttl time.Duration
	now func() time.Time
	log *slog.Logger

	mu      sync.Mutex
	entries map[permKey]*permEntry
}

type permKey struct{ repo, login string }

type permEntry struct {
	allowed    bool
	fetched    time.Time
	refreshing bool
}

// permissionTimeout bounds one question to GitHub.
const permissionTimeout = 10 * time.Second

// maxPermEntries bounds the cache; expired entries go first.
const maxPermEntries = 10000

func newPermCache(src Permissions, ttl time.Duration, now func() time.Time, log *slog.Logger) *permCache {
	return &permCache{src: src, ttl: ttl, now: now, log: log, entries: map[permKey]*permEntry{}}
}

// readRoles are the roles that may open a repository's previews.
func readRole(role string) bool {
	switch role {
	case "admin", "maintain", "write", "triage", "read":
		return true
	}
	return false
}

// check answers from the cache, asking GitHub only on a miss.
func (c *permCache) check(ctx context.Context, repo, login string) permission {
	if c.src == nil {
		return permDenied
	}
	key := permKey{strings.ToLower(repo), strings.ToLower(login)}
	now := c.now()
	c.mu.Lock()
	e, ok := c.entries[key]
	if ok && now.Sub(e.fetched) < c.ttl {
		if now.Sub(e.fetched) >= c.ttl/2 && !e.refreshing {
			e.refreshing = true
			go c.refresh(key, repo, login)
		}
		allowed := e.allowed
		c.mu.Unlock()
		return verdictOf(allowed)
	}
	c.mu.Unlock()
	allowed, err := c.ask(ctx, repo, login)
	if err != nil {
		c.log.Warn("could not check a preview visitor's permission", "repo", repo, "user", login, "err", err)
		return permError
	}
	c.store(key, allowed, now)
	return verdictOf(allowed)
}

func verdictOf(allowed bool) permission {
	if allowed {
		return permAllowed
	}
	return permDenied
}

func (c *permCache) ask(ctx context.Context, repo, login string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, permissionTimeout)
	defer cancel()
	role, err := c.src.Permission(ctx, repo, login)
	if err != nil {
		return false, err
	}
	return readRole(role), nil
}

// refresh asks again in the background; on failure the entry simply ages out.
func (c *permCache) refresh(key permKey, repo, login string) {
	now := c.now()
	allowed, err := c.ask(context.Background(), repo, login)
	c.mu.Lock()
	if e := c.entries[key]; e != nil {
		e.refreshing = false
	}
	c.mu.Unlock()
	if err != nil {
		c.log.Warn("could not refresh a preview visitor's permission", "repo", repo, "user", login, "err", err)
		return
	}
	c.store(key, allowed, now)
}

func (c *permCache) store(key permKey, allowed bool, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= maxPermEntries {
		for k, e := range c.entries {
			if at.Sub(e.fetched) >= c.ttl {
				delete(c.entries, k)
			}
		}
	}
	if len(c.entries) >= maxPermEntries {
		return // full of live entries: answer uncached
	}
	if e := c.entries[key]; e != nil && e.fetched.After(at) {
		return // a newer answer is already in
	}
	c.entries[key] = &permEntry{allowed: allowed, fetched: at}
}
