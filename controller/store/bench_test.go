package store

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/slipwayhq/slipway/internal/contract"
)

// BenchmarkEnvironments lists 1000 environments (the dashboard's page load).
func BenchmarkEnvironments(b *testing.B) {
	s, err := Open(b.TempDir()+"/"+FileName, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for pr := 1; pr <= 1000; pr++ {
		in := info(pr)
		if err := s.UpsertEnvironment(ctx, in); err != nil {
			b.Fatal(err)
		}
		if err := s.RecordPhase(ctx, in.Project, PhaseEntry{Phase: contract.PhaseFailed, SHA: sha1, Detail: "build failed",
			Failure: &Failure{Step: "build", Service: "web", Message: "RUN npm ci: exit status 1"}}); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for b.Loop() {
		envs, err := s.Environments(ctx)
		if err != nil || len(envs) != 1000 {
			b.Fatal(len(envs), err)
		}
	}
}

// BenchmarkFirstSeenParallel records deliveries from many goroutines, as a
// burst of webhooks would.
func BenchmarkFirstSeenParallel(b *testing.B) {
	s, err := Open(b.TempDir()+"/"+FileName, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(50)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("delivery-%d", n.Add(1))
			if _, err := s.FirstSeen(ctx, id); err != nil {
				b.Error(err)
			}
		}
	})
}
