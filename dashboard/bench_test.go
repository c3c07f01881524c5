package dashboard

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/controller/store"
	"github.com/slipwayhq/slipway/internal/contract"
)

// benchServer is a dashboard over 200 environments: each in the real store
// with a few phases, each running three containers with stats samples and
// a recent request.
func benchServer(b *testing.B, n int) *Server {
	b.Helper()
	st := openStore(b, nil)
	eng := &fakeEngine{}
	requests := requestTimes{}
	phases := []store.Phase{contract.PhaseReady, contract.PhaseReady, contract.PhaseReady, contract.PhaseFailed, contract.PhaseSleeping, contract.PhaseBuilding}
	for i := range n {
		repo := fmt.Sprintf("acme/service-%d", i%7)
		project := fmt.Sprintf("acme-service-%d-pr-%d", i%7, 1000+i)
		ph := phases[i%len(phases)]
		entry := store.PhaseEntry{Phase: ph, SHA: shaA, Detail: "2 services running"}
		if ph == contract.PhaseFailed {
			entry.Failure = &store.Failure{Step: "deploy", Service: "web", Message: "web exited with code 1"}
		}
		track(b, st, store.EnvironmentInfo{Project: project, Repo: repo, PR: 1000 + i, Title: fmt.Sprintf("Change number %d with a realistic title", i), Author: "dev"},
			store.PhaseEntry{Phase: contract.PhaseWaiting, SHA: shaA}, store.PhaseEntry{Phase: contract.PhaseBuilding, SHA: shaA}, entry)
		env := runningEnv(project, repo, 1000+i, shaA)
		for _, svc := range []string{"api", "db"} {
			env.Services = append(env.Services, stack.ServiceState{Service: svc, Containers: []stack.ContainerState{{Name: project + "-" + svc + "-1", ID: svc + project, State: "running"}}})
		}
		eng.envs = append(eng.envs, env)
		requests[project] = time.Now().Add(-time.Duration(i) * time.Minute)
	}
	s, err := New(Options{Engine: eng, History: st, Requests: requests, Token: testToken})
	if err != nil {
		b.Fatal(err)
	}
	usage := map[string]Usage{}
	for _, e := range eng.envs {
		for _, svc := range e.Services {
			cpu := 1.5
			usage[svc.Containers[0].ID] = Usage{CPUPercent: &cpu, MemoryBytes: 64 << 20, MemoryLimitBytes: 1 << 30, SampledAt: time.Now()}
		}
	}
	s.stats = &sampler{usage: usage}
	return s
}

func benchmarkGet(b *testing.B, path string) {
	s := benchServer(b, 200)
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Accept-Encoding", "gzip")
	b.ReportAllocs()
	b.ResetTimer()
	var size int
	for b.Loop() {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d", rec.Code)
		}
		size = rec.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/response")
}

// BenchmarkListPage renders the environment list with 200 environments.
func BenchmarkListPage(b *testing.B) { benchmarkGet(b, "/") }

// BenchmarkListPageFiltered renders it filtered to one repository.
func BenchmarkListPageFiltered(b *testing.B) { benchmarkGet(b, "/?repo=acme%2Fservice-3&phase=ready") }

// BenchmarkAPIEnvironments serves the JSON list of 200 environments.
func BenchmarkAPIEnvironments(b *testing.B) { benchmarkGet(b, "/api/v1/environments") }
