package controller

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestQueueCollapsesDuplicateAdds(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	a, b := Key{"o/r", 1}, Key{"o/r", 2}
	q.Add(a)
	q.Add(b)
	q.Add(a)
	if q.Len() != 2 {
		t.Fatalf("len %d, want 2", q.Len())
	}
	ctx := context.Background()
	if k, _ := q.Get(ctx); k != a {
		t.Errorf("first %v, want %v (order kept)", k, a)
	}
	if k, _ := q.Get(ctx); k != b {
		t.Errorf("second %v, want %v", k, b)
	}
}

func TestQueueNeverHandsOutAKeyTwiceAtOnce(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	k := Key{"o/r", 1}
	q.Add(k)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	got, _ := q.Get(ctx)
	q.Add(k) // while processing: marked dirty, not handed out
	short, cancelShort := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancelShort()
	if k2, ok := q.Get(short); ok {
		t.Fatalf("handed out %v while it was processing", k2)
	}
	q.Done(got)
	if k2, ok := q.Get(ctx); !ok || k2 != k {
		t.Fatalf("dirty key not requeued after Done: %v %v", k2, ok)
	}
}

func TestQueueConcurrentWorkersSerializePerKey(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var inFlight sync.Map
	var overlaps, runs atomic.Int32
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k, ok := q.Get(ctx)
				if !ok {
					return
				}
				if _, loaded := inFlight.LoadOrStore(k, true); loaded {
					overlaps.Add(1)
				}
				runs.Add(1)
				time.Sleep(time.Millisecond)
				inFlight.Delete(k)
				q.Done(k)
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		q.Add(Key{"o/r", i % 5})
	}
	deadline := time.Now().Add(5 * time.Second)
	for (q.Len() > 0 || anyProcessing(q, 5)) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	q.ShutDown()
	cancel()
	wg.Wait()
	if overlaps.Load() != 0 {
		t.Errorf("%d overlapping runs of one key", overlaps.Load())
	}
	if r := runs.Load(); r >= 2000 {
		t.Errorf("%d runs for 2000 adds of 5 keys: duplicates did not collapse", r)
	}
}

func anyProcessing(q *Queue, n int) bool {
	for i := 0; i < n; i++ {
		if q.Processing(Key{"o/r", i}) {
			return true
		}
	}
	return false
}

func TestQueueBackoffGrowsAndForgetResets(t *testing.T) {
	q := NewQueue(10*time.Millisecond, 40*time.Millisecond)
	k := Key{"o/r", 1}
	var got []time.Duration
	for i := 0; i < 4; i++ {
		got = append(got, q.AddRateLimited(k))
	}
	want := []time.Duration{10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("backoff %d = %v, want %v", i, got[i], want[i])
		}
	}
	q.Forget(k)
	if d := q.AddRateLimited(k); d != 10*time.Millisecond {
		t.Errorf("after Forget backoff %v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if k2, ok := q.Get(ctx); !ok || k2 != k {
		t.Errorf("rate-limited key never arrived")
	}
}

func TestQueueShutDownReleasesGetters(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	done := make(chan bool)
	go func() {
		_, ok := q.Get(context.Background())
		done <- ok
	}()
	time.Sleep(10 * time.Millisecond)
	q.ShutDown()
	q.Add(Key{"o/r", 1}) // no panic after shutdown
	if ok := <-done; ok {
		t.Error("Get returned a key after ShutDown")
	}
}

func TestQueueAddAfterKeepsTheSoonerTimer(t *testing.T) {
	q := NewQueue(time.Millisecond, time.Second)
	k := Key{"o/r", 1}
	q.AddAfter(k, 20*time.Millisecond)
	q.AddAfter(k, time.Hour) // later: must not postpone the first
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if got, ok := q.Get(ctx); !ok || got != k {
		t.Fatal("a later AddAfter postponed the sooner one")
	}
	q.Done(k)
	q.AddAfter(k, time.Hour)
	q.AddAfter(k, 20*time.Millisecond) // sooner: replaces
	if got, ok := q.Get(ctx); !ok || got != k {
		t.Fatal("a sooner AddAfter did not replace the later one")
	}
}
