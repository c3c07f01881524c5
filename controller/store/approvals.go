package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// Approval lets an untrusted fork PR build one head SHA. A push makes a
// new head SHA, which needs a new approval.
type Approval struct {
	// Repo is the base repository, owner/name.
	Repo string `json:"repo"`
	// PR is the pull request number.
	PR int `json:"pr"`
	// SHA is the approved head commit.
	SHA string `json:"sha"`
	// By is the login of the writer who approved, At when (default now).
	By string    `json:"by"`
	At time.Time `json:"at"`
}

// approvalPrefix is the key prefix of every approval of repo#pr.
// Repository names are case-insensitive on GitHub.
func approvalPrefix(repo string, pr int) []byte {
	return fmt.Appendf(nil, "%s#%d@", strings.ToLower(repo), pr)
}

func approvalKey(repo string, pr int, sha string) []byte {
	return append(approvalPrefix(repo, pr), strings.ToLower(sha)...)
}

// validSHA accepts a full SHA-1 (40) or SHA-256 (64) commit ID in hex.
func validSHA(sha string) error {
	if len(sha) != 40 && len(sha) != 64 {
		return invalid("commit SHA %q: want 40 or 64 hex digits", sha)
	}
	for _, c := range sha {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return invalid("commit SHA %q: want 40 or 64 hex digits", sha)
		}
	}
	return nil
}

// Approve records that a.By approved head SHA a.SHA of a.Repo#a.PR. A
// second approval of the same SHA replaces the first. Approvals go when
// their environment is pruned.
func (s *Store) Approve(ctx context.Context, a Approval) error {
	if err := validRepo(a.Repo); err != nil {
		return err
	}
	if a.PR <= 0 {
		return invalid("pull request number %d", a.PR)
	}
	if err := validSHA(a.SHA); err != nil {
		return err
	}
	if a.By == "" {
		return invalid("approval without approver")
	}
	a.SHA = strings.ToLower(a.SHA)
	a.By = clip(a.By, maxField)
	if a.At.IsZero() {
		a.At = s.opts.Now()
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		return putJSON(tx.Bucket(bucketApprovals), approvalKey(a.Repo, a.PR, a.SHA), a)
	})
	if err != nil {
		return fmt.Errorf("approve %s#%d at %s: %w", a.Repo, a.PR, a.SHA, err)
	}
	return nil
}

// Approval returns the approval of exactly this head SHA of repo#pr, and
// false when there is none (an approval of an earlier SHA does not count).
func (s *Store) Approval(ctx context.Context, repo string, pr int, sha string) (Approval, bool, error) {
	var a Approval
	var found bool
	err := s.view(ctx, func(tx *bolt.Tx) error {
		var err error
		found, err = getJSON(tx.Bucket(bucketApprovals), approvalKey(repo, pr, sha), &a)
		return err
	})
	if err != nil {
		return Approval{}, false, fmt.Errorf("approval of %s#%d at %s: %w", repo, pr, sha, err)
	}
	return a, found, nil
}

// deleteApprovals deletes every approval of repo#pr.
func deleteApprovals(tx *bolt.Tx, repo string, pr int) error {
	prefix := approvalPrefix(repo, pr)
	b := tx.Bucket(bucketApprovals)
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete approval %s: %w", k, err)
		}
	}
	return nil
}

// pruneOrphanApprovals deletes approvals older than cutoff whose
// environment is gone (or never existed).
func pruneOrphanApprovals(tx *bolt.Tx, cutoff time.Time) error {
	live := map[string]bool{}
	err := tx.Bucket(bucketEnvs).ForEach(func(_, v []byte) error {
		var env Environment
		if err := json.Unmarshal(v, &env); err != nil {
			return err
		}
		live[string(approvalPrefix(env.Repo, env.PR))] = true
		return nil
	})
	if err != nil {
		return err
	}
	b := tx.Bucket(bucketApprovals)
	var stale [][]byte
	err = b.ForEach(func(k, v []byte) error {
		var a Approval
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("decode approval %s: %w", k, err)
		}
		if !live[string(approvalPrefix(a.Repo, a.PR))] && a.At.Before(cutoff) {
			stale = append(stale, bytes.Clone(k))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range stale {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("delete approval %s: %w", k, err)
		}
	}
	return nil
}

func isBucketNotFound(err error) bool {
	return errors.Is(err, bolterrors.ErrBucketNotFound)
}
