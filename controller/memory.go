package controller

import (
	"context"
	"sync"
	"time"

	"github.com/slipwayhq/slipway/config"
)

// memory is what this process's own deploys left: the environments it
// converged, and the deploys in flight. It is lost on a restart, which is
// fine: Docker's labels and the store are the truth, and the first
// reconcile after a start re-converges quietly.
type memory struct {
	mu        sync.Mutex
	converged map[string]convergedState
	inflight  map[Key]*inflight
}

func newMemory() memory {
	return memory{converged: map[string]convergedState{}, inflight: map[Key]*inflight{}}
}

// inflight is a reconcile that is building or deploying.
type inflight struct {
	sha    string
	cancel context.CancelCauseFunc
}

// convergedState is what the last successful deploy of a project left.
type convergedState struct {
	sha        string
	containers []string
	repo       config.Repo
	ready      time.Time
}

// start records key's deploy of sha as in flight; the returned func ends it.
func (m *memory) start(key Key, sha string, cancel context.CancelCauseFunc) (done func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	f := &inflight{sha: sha, cancel: cancel}
	m.inflight[key] = f
	return func() {
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.inflight[key] == f {
			delete(m.inflight, key)
		}
	}
}

// cancel cancels key's in-flight deploy with cause; with a non-empty
// head, only a deploy of another SHA.
func (m *memory) cancel(key Key, head string, cause error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if f := m.inflight[key]; f != nil && (head == "" || f.sha != head) {
		f.cancel(cause)
	}
}

// cancelAll cancels every deploy in flight.
func (m *memory) cancelAll(cause error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, f := range m.inflight {
		f.cancel(cause)
	}
}

// converge records what a deploy of project left.
func (m *memory) setConverged(project string, cs convergedState) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.converged[project] = cs
}

// convergedOf returns what the last deploy of project left.
func (m *memory) convergedOf(project string) (convergedState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cs, ok := m.converged[project]
	return cs, ok
}

// woken moves project's ready time to now, so sleep_after counts from the wake.
func (m *memory) woken(project string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if cs, ok := m.converged[project]; ok {
		cs.ready = now
		m.converged[project] = cs
	}
}

// forget drops project (removed).
func (m *memory) forget(project string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.converged, project)
}

// projects lists the projects this process converged.
func (m *memory) projects() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.converged))
	for p := range m.converged {
		out = append(out, p)
	}
	return out
}
