// Package store is Slipway's embedded history database: a bbolt file under
// state_dir.
//
// Docker is the truth for what runs; the store keeps what Docker cannot
// tell: per environment the phases it went through (with SHA, time and a
// short detail), the last error, the build log of each recent SHA, a TTL
// override; approvals of untrusted fork PRs, bound to one head SHA; the
// webhook deliveries already acted on; and users' commands (ChatOps
// comments, approval labels) received but not acted on yet. Everything it
// holds is bounded: timelines, build logs, removed environments and
// deliveries are trimmed as new ones arrive, commands once acted on (or
// after Options.RetainRemoved).
//
// Every write is one bbolt transaction, synced to disk before the call
// returns, so a SIGKILL loses at most the build-log output a LogWriter had
// not flushed yet. A Store is safe for concurrent use. Only one process can
// hold the file; a second Open fails after Options.LockTimeout with ErrLocked.
package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// FileName is the database's conventional name inside state_dir.
const FileName = "slipway.db"

// Errors callers may test with errors.Is.
var (
	// ErrNotFound: no such environment or build log.
	ErrNotFound = errors.New("not found")
	// ErrLocked: another process has the database open.
	ErrLocked = errors.New("database is locked by another process (is another slipway running on this state_dir?)")
	// ErrInvalid: bad input; nothing was written.
	ErrInvalid = errors.New("invalid input")
	// ErrClosed: the LogWriter was closed.
	ErrClosed = errors.New("build log writer is closed")
	// ErrLogReplaced: a newer build of the same SHA started its own log;
	// this writer's output is discarded.
	ErrLogReplaced = errors.New("build log replaced by a newer build of the same SHA")
)

// Options bounds the store. Zero values take the defaults.
type Options struct {
	// LockTimeout is how long Open waits for another process to release
	// the file. Default 1s.
	LockTimeout time.Duration
	// MaxPhases is the timeline length kept per environment. Default 200.
	MaxPhases int
	// MaxLogBytes is the build-log tail kept per SHA. Default 1 MiB.
	MaxLogBytes int
	// MaxBuildLogs is the number of SHAs whose build log is kept per
	// environment (the most recently started). Default 10.
	MaxBuildLogs int
	// LogFlushInterval and LogFlushBytes bound how long and how much a
	// LogWriter buffers before writing. Defaults 250ms and 64 KiB.
	LogFlushInterval time.Duration
	LogFlushBytes    int
	// MaxDeliveries is the number of webhook delivery IDs remembered.
	// Default 10000.
	MaxDeliveries int
	// RetainRemoved is how long a removed environment's history is kept.
	// Default 14 days.
	RetainRemoved time.Duration
	// MaxRemoved is the most removed environments kept. Default 500.
	MaxRemoved int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (o *Options) setDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur(&o.LockTimeout, time.Second)
	def(&o.MaxPhases, 200)
	def(&o.MaxLogBytes, 1<<20)
	def(&o.MaxBuildLogs, 10)
	defDur(&o.LogFlushInterval, 250*time.Millisecond)
	def(&o.LogFlushBytes, 64<<10)
	def(&o.MaxDeliveries, 10000)
	defDur(&o.RetainRemoved, 14*24*time.Hour)
	def(&o.MaxRemoved, 500)
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Store is the history database. Open it with Open; Close it when done.
type Store struct {
	db   *bolt.DB
	opts Options
}

// Bucket names.
var (
	bucketEnvs       = []byte("environments")   // project -> envRecord
	bucketTimelines  = []byte("timelines")      // project/ -> seq -> PhaseEntry
	bucketLogs       = []byte("buildlogs")      // project/ -> sha/ -> meta, chunks/
	bucketApprovals  = []byte("approvals")      // repo#pr@sha -> Approval
	bucketDeliveries = []byte("deliveries")     // id -> seq
	bucketDelivOrder = []byte("delivery_order") // seq -> id
	bucketCommands   = []byte("commands")       // seq -> Command not yet acted on
	allBuckets       = [][]byte{bucketEnvs, bucketTimelines, bucketLogs, bucketApprovals, bucketDeliveries, bucketDelivOrder, bucketCommands}
)

// Open opens (creating it and its directory if needed) the database at
// path, typically filepath.Join(stateDir, FileName). Build logs left
// unfinished by a previous process are marked interrupted.
func Open(path string, opts Options) (*Store, error) {
	opts.setDefaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open history database: create directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open history database %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open history database %s: %w", path, err)
	}
	// Coalesce concurrent webhook deliveries into one fsync without making
	// a lone one wait long.
	db.MaxBatchDelay = 2 * time.Millisecond
	s := &Store{db: db, opts: opts}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("create bucket %s: %w", b, err)
			}
		}
		return s.markInterruptedLogs(tx)
	})
	if err == nil {
		_, err = s.Prune(context.Background())
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open history database %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database. LogWriters still open fail afterwards.
func (s *Store) Close() error {
	return s.db.Close()
}

// update runs fn in a write transaction, after checking ctx.
func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(fn)
}

// view runs fn in a read transaction, after checking ctx.
func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(fn)
}

func u64(v uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, v)
	return b
}

func getJSON(b *bolt.Bucket, key []byte, into any) (bool, error) {
	v := b.Get(key)
	if v == nil {
		return false, nil
	}
	if err := json.Unmarshal(v, into); err != nil {
		return true, fmt.Errorf("decode %s: %w", key, err)
	}
	return true, nil
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, data)
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}
