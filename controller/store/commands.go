package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Command is a user's ChatOps comment or approval label that arrived by
// webhook and that the controller has not acted on yet. It is kept until
// the controller says it is done, so a restart in between does not lose it
// (GitHub has been told the delivery was received and never resends it by
// itself).
type Command struct {
	// Delivery is the webhook delivery that carried it (X-GitHub-Delivery).
	Delivery string `json:"delivery"`
	// Repo is the base repository, owner/name, and PR the pull request.
	Repo string `json:"repo"`
	PR   int    `json:"pr"`
	// CommentID and Body are those of a ChatOps comment.
	CommentID int64  `json:"comment_id,omitempty"`
	Body      string `json:"body,omitempty"`
	// Label is the approval label applied.
	Label string `json:"label,omitempty"`
	// Sender is the login of the user who commented or labelled.
	Sender string `json:"sender"`
	// HeadSHA is the head commit the command is about, as far as the
	// events told when it arrived ("" when unknown).
	HeadSHA string `json:"head_sha,omitempty"`
	// PrivateRepo: the delivery said the repository is private.
	PrivateRepo bool `json:"private_repo,omitempty"`
	// At is when it was accepted (default now).
	At time.Time `json:"at"`
}

// AcceptCommand records cmd's delivery as seen and stores cmd, both in one
// transaction synced to disk, and reports whether the delivery was new. A
// delivery already recorded (a redelivery) stores nothing and returns
// false; on error nothing is recorded, so a redelivery is acted on.
func (s *Store) AcceptCommand(ctx context.Context, cmd Command) (bool, error) {
	if cmd.Delivery == "" || len(cmd.Delivery) > maxDeliveryID {
		return false, fmt.Errorf("accept command: %w", invalid("delivery ID of %d bytes", len(cmd.Delivery)))
	}
	if err := validRepo(cmd.Repo); err != nil {
		return false, fmt.Errorf("accept command of delivery %s: %w", cmd.Delivery, err)
	}
	if cmd.PR <= 0 {
		return false, fmt.Errorf("accept command of delivery %s: %w", cmd.Delivery, invalid("pull request number %d", cmd.PR))
	}
	// Only a comment's first line is a command (github.ParseCommand).
	cmd.Body = clip(cmd.Body, maxMessage)
	cmd.Sender, cmd.Label, cmd.HeadSHA = clip(cmd.Sender, maxField), clip(cmd.Label, maxField), clip(cmd.HeadSHA, maxField)
	if cmd.At.IsZero() {
		cmd.At = s.opts.Now()
	}
	var first bool
	err := s.update(ctx, func(tx *bolt.Tx) error {
		var err error
		if first, err = s.recordDelivery(tx, cmd.Delivery); err != nil || !first {
			return err
		}
		b := tx.Bucket(bucketCommands)
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		return putJSON(b, u64(seq), cmd)
	})
	if err != nil {
		return false, fmt.Errorf("accept command of delivery %s: %w", cmd.Delivery, err)
	}
	return first, nil
}

// PendingCommands returns the commands accepted and not yet done, in the
// order they were accepted.
func (s *Store) PendingCommands(ctx context.Context) ([]Command, error) {
	var out []Command
	err := s.view(ctx, func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCommands).ForEach(func(k, v []byte) error {
			var cmd Command
			if err := json.Unmarshal(v, &cmd); err != nil {
				return fmt.Errorf("decode command %x: %w", k, err)
			}
			out = append(out, cmd)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read pending commands: %w", err)
	}
	return out, nil
}

// CommandDone forgets the command of delivery: the controller has acted on
// it. Forgetting one that is not pending is not an error.
func (s *Store) CommandDone(ctx context.Context, delivery string) error {
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return deleteCommands(tx, func(cmd Command) bool { return cmd.Delivery == delivery })
	})
	if err != nil {
		return fmt.Errorf("forget command of delivery %s: %w", delivery, err)
	}
	return nil
}

// pruneStaleCommands deletes commands accepted before cutoff: those of a
// repository no longer configured are never acted on.
func pruneStaleCommands(tx *bolt.Tx, cutoff time.Time) error {
	return deleteCommands(tx, func(cmd Command) bool { return cmd.At.Before(cutoff) })
}

func deleteCommands(tx *bolt.Tx, match func(Command) bool) error {
	b := tx.Bucket(bucketCommands)
	var doomed [][]byte
	err := b.ForEach(func(k, v []byte) error {
		var cmd Command
		if err := json.Unmarshal(v, &cmd); err != nil {
			return fmt.Errorf("decode command %x: %w", k, err)
		}
		if match(cmd) {
			doomed = append(doomed, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range doomed {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete command %x: %w", k, err)
		}
	}
	return nil
}
