package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Seen reports whether the delivery id was recorded, without recording it.
func (s *Store) Seen(ctx context.Context, id string) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	var seen bool
	err := s.db.View(func(tx *bolt.Tx) error {
		seen = tx.Bucket(bucketDeliveries).Get([]byte(id)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("look up delivery %s: %w", id, err)
	}
	return seen, nil
}

// DeliveryLog is the webhook receiver's dedupe (webhooks.DeliveryLog)
// without a disk sync on the request path: an ID is checked against the
// IDs of this process in memory, then the database (a read), and a new one
// is written to the database in the background, where bbolt batches the
// writes of a burst. A crash can lose the last IDs not yet written; a
// redelivery of one of those is acted on again, which costs one reconcile
// that changes nothing.
type DeliveryLog struct {
	store *Store
	max   int
	log   *slog.Logger

	mu      sync.Mutex
	recent  map[string]struct{}
	order   []string // ring of recent, oldest first
	pending chan string
	done    chan struct{}
	closed  bool
}

// DeliveryLog starts the write-behind dedupe, logging write failures to
// log (nil discards them). Close it before the Store.
func (s *Store) DeliveryLog(log *slog.Logger) *DeliveryLog {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &DeliveryLog{
		store: s, max: s.opts.MaxDeliveries, log: log, recent: map[string]struct{}{},
		pending: make(chan string, 4096), done: make(chan struct{}),
	}
	go d.write()
	return d
}

// FirstSeen reports whether id is new; concurrent calls with the same id
// return true exactly once.
func (d *DeliveryLog) FirstSeen(ctx context.Context, id string) (bool, error) {
	if id == "" || len(id) > maxDeliveryID {
		return false, fmt.Errorf("record delivery: %w", invalid("delivery ID of %d bytes", len(id)))
	}
	d.mu.Lock()
	if _, ok := d.recent[id]; ok {
		d.mu.Unlock()
		return false, nil
	}
	d.remember(id)
	d.mu.Unlock()
	seen, err := d.store.Seen(ctx, id)
	if err != nil {
		d.forget(id) // nothing recorded on error: a redelivery is acted on
		return false, err
	}
	if seen {
		return false, nil
	}
	d.mu.Lock()
	queued := false
	if !d.closed {
		select {
		case d.pending <- id:
			queued = true
		default: // the writer is behind
		}
	}
	d.mu.Unlock()
	if !queued { // write this one now rather than drop it
		if _, err := d.store.FirstSeen(ctx, id); err != nil {
			d.forget(id)
			return false, err
		}
	}
	return true, nil
}

// remember adds id to the in-memory set, forgetting the oldest beyond max.
func (d *DeliveryLog) remember(id string) {
	d.recent[id] = struct{}{}
	d.order = append(d.order, id)
	if len(d.order) > d.max {
		delete(d.recent, d.order[0])
		d.order = d.order[1:]
	}
}

func (d *DeliveryLog) forget(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.recent, id)
}

// write persists pending IDs; concurrent FirstSeen calls of the store
// share one transaction, so the writer runs several at once.
func (d *DeliveryLog) write() {
	defer close(d.done)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 32)
	for id := range d.pending {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := d.store.FirstSeen(ctx, id); err != nil {
				d.log.Warn("persist a webhook delivery", "delivery", id, "err", err)
			}
		}()
	}
	wg.Wait()
}

// Close writes what is pending and stops the writer.
func (d *DeliveryLog) Close() {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return
	}
	d.closed = true
	close(d.pending)
	d.mu.Unlock()
	<-d.done
}
