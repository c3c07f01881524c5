package store

import (
	"bytes"
	"context"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// maxDeliveryID bounds a delivery ID (GitHub's are 36-character GUIDs).
const maxDeliveryID = 256

// FirstSeen records the webhook delivery id and reports whether it was new.
// Concurrent calls with the same id return true exactly once; on error
// nothing is recorded. The most recent Options.MaxDeliveries ids are
// remembered, the oldest forgotten first. It implements
// webhooks.DeliveryLog.
//
// Concurrent calls share one transaction (bbolt's Batch), so a burst of
// deliveries costs one disk sync, not one each.
func (s *Store) FirstSeen(ctx context.Context, id string) (bool, error) {
	if id == "" || len(id) > maxDeliveryID {
		return false, fmt.Errorf("record delivery: %w", invalid("delivery ID of %d bytes", len(id)))
	}
	if err := ctx.Err(); err != nil {
		return false, err
	}
	var first bool
	err := s.db.Batch(func(tx *bolt.Tx) error {
		// Batch may run this more than once; set every result from scratch.
		var err error
		first, err = s.recordDelivery(tx, id)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record delivery %s: %w", id, err)
	}
	return first, nil
}

// recordDelivery records id in tx and reports whether it was new,
// forgetting the oldest IDs beyond Options.MaxDeliveries.
func (s *Store) recordDelivery(tx *bolt.Tx, id string) (bool, error) {
	seen := tx.Bucket(bucketDeliveries)
	if seen.Get([]byte(id)) != nil {
		return false, nil
	}
	order := tx.Bucket(bucketDelivOrder)
	seq, err := order.NextSequence()
	if err != nil {
		return false, err
	}
	if err := seen.Put([]byte(id), u64(seq)); err != nil {
		return false, err
	}
	if err := order.Put(u64(seq), []byte(id)); err != nil {
		return false, err
	}
	// Keep the sequence numbers (seq-Max, seq]; forget older ones.
	if seq <= uint64(s.opts.MaxDeliveries) {
		return true, nil
	}
	oldest := u64(seq - uint64(s.opts.MaxDeliveries))
	c := order.Cursor()
	for k, v := c.First(); k != nil && bytes.Compare(k, oldest) <= 0; k, v = c.First() {
		if err := seen.Delete(v); err != nil {
			return false, err
		}
		if err := order.Delete(k); err != nil {
			return false, err
		}
	}
	return true, nil
}
