package dashboard

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/docker/docker/api/types/container"
)

// sampler keeps the latest resource sample of every running container. It
// samples in the background (Server.Run) because a one-shot stats call can
// take a second per container on cgroup v1: pages only ever read the cache.
type sampler struct {
	client      StatsClient
	log         *slog.Logger
	concurrency int
	timeout     time.Duration
	now         func() time.Time

	mu    sync.RWMutex
	prev  map[string]container.CPUStats // by container ID, for CPU deltas
	usage map[string]Usage              // replaced, never mutated, by each round
}

func newSampler(c StatsClient, log *slog.Logger, concurrency int, timeout time.Duration, now func() time.Time) *sampler {
	return &sampler{
		client: c, log: log, concurrency: concurrency, timeout: timeout, now: now,
		prev: map[string]container.CPUStats{}, usage: map[string]Usage{},
	}
}

// snapshot returns the latest samples by container ID. The map is never
// modified afterwards; callers must not modify it either.
func (s *sampler) snapshot() map[string]Usage {
	if s == nil {
		return nil
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.usage
}

// round samples every container in ids, at most s.concurrency at once, and
// replaces the cache: containers not in ids are forgotten. A container whose
// sample fails keeps no entry.
func (s *sampler) round(ctx context.Context, ids []string) {
	type result struct {
		id    string
		stats container.StatsResponse
		err   error
	}
	results := make(chan result, len(ids))
	sem := make(chan struct{}, s.concurrency)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				results <- result{id: id, err: ctx.Err()}
				return
			}
			defer func() { <-sem }()
			st, err := s.sample(ctx, id)
			results <- result{id: id, stats: st, err: err}
		}()
	}
	wg.Wait()
	close(results)

	s.mu.RLock()
	prev := s.prev
	s.mu.RUnlock()
	nextPrev := make(map[string]container.CPUStats, len(ids))
	usage := make(map[string]Usage, len(ids))
	failed := 0
	for r := range results {
		if r.err != nil {
			failed++
			if ctx.Err() == nil {
				s.log.Debug("container stats", "container", r.id, "err", r.err)
			}
			continue
		}
		u := Usage{MemoryBytes: memoryUsage(r.stats.MemoryStats), MemoryLimitBytes: r.stats.MemoryStats.Limit, SampledAt: r.stats.Read}
		if u.SampledAt.IsZero() {
			u.SampledAt = s.now()
		}
		pre := r.stats.PreCPUStats
		if pre.SystemUsage == 0 { // one-shot: no previous sample from the daemon
			pre = prev[r.id]
		}
		if pct, ok := cpuPercent(pre, r.stats.CPUStats); ok {
			u.CPUPercent = &pct
		}
		nextPrev[r.id] = r.stats.CPUStats
		usage[r.id] = u
	}
	if failed > 0 && ctx.Err() == nil {
		s.log.Warn("container stats failed", "failed", failed, "of", len(ids))
	}
	s.mu.Lock()
	s.prev, s.usage = nextPrev, usage
	s.mu.Unlock()
}

func (s *sampler) sample(ctx context.Context, id string) (container.StatsResponse, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var st container.StatsResponse
	rd, err := s.client.ContainerStatsOneShot(ctx, id)
	if err != nil {
		return st, fmt.Errorf("stats of %s: %w", id, err)
	}
	defer rd.Body.Close()
	if err := json.NewDecoder(rd.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("decode stats of %s: %w", id, err)
	}
	return st, nil
}

// cpuPercent is the CPU used between two samples in percent of one core,
// as `docker stats` computes it. It reports false when the samples cannot
// be compared (no previous sample, a restarted container). Pure.
func cpuPercent(pre, cur container.CPUStats) (float64, bool) {
	if pre.SystemUsage == 0 || cur.SystemUsage <= pre.SystemUsage || cur.CPUUsage.TotalUsage < pre.CPUUsage.TotalUsage {
		return 0, false
	}
	cpuDelta := float64(cur.CPUUsage.TotalUsage - pre.CPUUsage.TotalUsage)
	sysDelta := float64(cur.SystemUsage - pre.SystemUsage)
	online := float64(cur.OnlineCPUs)
	if online == 0 {
		online = float64(len(cur.CPUUsage.PercpuUsage))
	}
	if online == 0 {
		online = 1
	}
	return cpuDelta / sysDelta * online * 100, true
}

// memoryUsage is the memory in use without the page cache, as `docker
// stats` shows it: usage minus inactive file pages (cgroup v1 reports
// total_inactive_file, v2 inactive_file). Pure.
func memoryUsage(m container.MemoryStats) uint64 {
	if v, ok := m.Stats["total_inactive_file"]; ok && v < m.Usage {
		return m.Usage - v
	}
	if v, ok := m.Stats["inactive_file"]; ok && v < m.Usage {
		return m.Usage - v
	}
	return m.Usage
}
