package store

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

func TestDeliveryLogDedupesAndPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), FileName)
	s, err := Open(path, Options{MaxDeliveries: 100})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	d := s.DeliveryLog(nil)
	// The same ID from many goroutines at once: exactly one is first.
	var firsts atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if first, err := d.FirstSeen(ctx, "same"); err != nil {
				t.Error(err)
			} else if first {
				firsts.Add(1)
			}
		}()
	}
	wg.Wait()
	if firsts.Load() != 1 {
		t.Errorf("%d firsts for one ID, want 1", firsts.Load())
	}
	for i := 0; i < 20; i++ {
		if first, _ := d.FirstSeen(ctx, fmt.Sprint("id-", i)); !first {
			t.Errorf("id-%d not new", i)
		}
	}
	if _, err := d.FirstSeen(ctx, ""); err == nil {
		t.Error("an empty ID was accepted")
	}
	d.Close()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// After a restart, the database still knows them.
	s, err = Open(path, Options{MaxDeliveries: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d = s.DeliveryLog(nil)
	defer d.Close()
	for _, id := range []string{"same", "id-0", "id-19"} {
		if first, err := d.FirstSeen(ctx, id); err != nil || first {
			t.Errorf("%s after a restart: first=%v err=%v, want a duplicate", id, first, err)
		}
	}
	if first, _ := d.FirstSeen(ctx, "new-after-restart"); !first {
		t.Error("a new ID after a restart was not new")
	}
}

func TestDeliveryLogFirstSeenAfterCloseStillRecords(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), FileName), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := s.DeliveryLog(nil)
	d.Close()
	d.Close() // idempotent
	if first, err := d.FirstSeen(context.Background(), "late"); err != nil || !first {
		t.Fatalf("late: %v %v", first, err)
	}
	if seen, _ := s.Seen(context.Background(), "late"); !seen {
		t.Error("a delivery after Close was not written")
	}
}
