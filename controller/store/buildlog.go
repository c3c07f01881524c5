package store

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
)

// BuildLog is the kept tail of one build's output.
type BuildLog struct {
	// SHA that was built.
	SHA string `json:"sha"`
	// Data is the kept output from Offset on (nil in BuildLogs listings).
	Data []byte `json:"data,omitempty"`
	// Offset is the position of Data[0] in the whole output; bytes before
	// it were dropped to keep the log bounded.
	Offset int64 `json:"offset"`
	// Size is the length of the whole output written so far.
	Size int64 `json:"size"`
	// Started is when the build began, Finished when its writer closed
	// (zero while it runs).
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished,omitzero"`
	// Interrupted is set when the process died before the log was closed.
	Interrupted bool `json:"interrupted,omitempty"`
}

// Truncated reports whether output before Offset was dropped.
func (l BuildLog) Truncated() bool { return l.Offset > 0 }

// Running reports whether the build is still writing.
func (l BuildLog) Running() bool { return l.Finished.IsZero() }

// String returns the kept output, preceded by a note when earlier output
// was dropped.
func (l BuildLog) String() string {
	if !l.Truncated() {
		return string(l.Data)
	}
	return fmt.Sprintf("[… %d earlier bytes dropped …]\n%s", l.Offset, l.Data)
}

// logMeta is stored under metaKey in a SHA's log bucket.
type logMeta struct {
	// ID distinguishes successive builds of one SHA.
	ID          uint64    `json:"id"`
	Size        int64     `json:"size"`
	Kept        int64     `json:"kept"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished,omitzero"`
	Interrupted bool      `json:"interrupted,omitempty"`
}

var (
	metaKey   = []byte("meta")
	chunksKey = []byte("chunks") // offset (8 bytes) -> data
)

func (m logMeta) buildLog(sha string) BuildLog {
	return BuildLog{SHA: sha, Offset: m.Size - m.Kept, Size: m.Size, Started: m.Started, Finished: m.Finished, Interrupted: m.Interrupted}
}

// NewBuildLog starts the build log of sha in project, replacing any earlier
// log of the same SHA, and evicting the least recently started logs beyond
// Options.MaxBuildLogs. The returned writer batches output (see
// Options.LogFlushInterval and LogFlushBytes); Close it when the build
// ends, successfully or not. ErrNotFound if the environment is unknown.
func (s *Store) NewBuildLog(ctx context.Context, project, sha string) (*LogWriter, error) {
	if err := validProject(project); err != nil {
		return nil, err
	}
	if err := validSHA(sha); err != nil {
		return nil, err
	}
	sha = strings.ToLower(sha)
	var meta logMeta
	err := s.update(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketEnvs).Get([]byte(project)) == nil {
			return ErrNotFound
		}
		logs := tx.Bucket(bucketLogs)
		pb, err := logs.CreateBucketIfNotExists([]byte(project))
		if err != nil {
			return err
		}
		if err := pb.DeleteBucket([]byte(sha)); err != nil && !isBucketNotFound(err) {
			return err
		}
		id, err := logs.NextSequence()
		if err != nil {
			return err
		}
		meta = logMeta{ID: id, Started: s.opts.Now()}
		sb, err := pb.CreateBucket([]byte(sha))
		if err != nil {
			return err
		}
		if _, err := sb.CreateBucket(chunksKey); err != nil {
			return err
		}
		if err := putJSON(sb, metaKey, meta); err != nil {
			return err
		}
		return evictLogs(pb, s.opts.MaxBuildLogs)
	})
	if err != nil {
		return nil, fmt.Errorf("start build log of %s at %s: %w", project, sha, err)
	}
	return &LogWriter{s: s, project: project, sha: sha, id: meta.ID}, nil
}

// evictLogs deletes the least recently started SHA logs of one project
// beyond max.
func evictLogs(pb *bolt.Bucket, max int) error {
	type entry struct {
		sha  []byte
		meta logMeta
	}
	var all []entry
	err := pb.ForEachBucket(func(k []byte) error {
		var m logMeta
		if _, err := getJSON(pb.Bucket(k), metaKey, &m); err != nil {
			return err
		}
		all = append(all, entry{bytes.Clone(k), m})
		return nil
	})
	if err != nil || len(all) <= max {
		return err
	}
	slices.SortFunc(all, func(a, b entry) int { return cmp.Compare(b.meta.ID, a.meta.ID) })
	for _, e := range all[max:] {
		if err := pb.DeleteBucket(e.sha); err != nil {
			return err
		}
	}
	return nil
}

// markInterruptedLogs closes every log a dead process left open: only one
// process holds the database, so no writer can still be running.
func (s *Store) markInterruptedLogs(tx *bolt.Tx) error {
	now := s.opts.Now()
	logs := tx.Bucket(bucketLogs)
	return logs.ForEachBucket(func(project []byte) error {
		pb := logs.Bucket(project)
		return pb.ForEachBucket(func(sha []byte) error {
			sb := pb.Bucket(sha)
			var m logMeta
			if _, err := getJSON(sb, metaKey, &m); err != nil {
				return err
			}
			if !m.Finished.IsZero() {
				return nil
			}
			m.Finished, m.Interrupted = now, true
			return putJSON(sb, metaKey, m)
		})
	})
}

// BuildLog returns the build log of sha in project from byte offset from
// on (0 for all of it). When from is before the kept tail, Data starts at
// Offset; a follower passes the previous Size as from to get only new
// output. ErrNotFound if there is no such log.
func (s *Store) BuildLog(ctx context.Context, project, sha string, from int64) (BuildLog, error) {
	sha = strings.ToLower(sha)
	var out BuildLog
	err := s.view(ctx, func(tx *bolt.Tx) error {
		sb := logBucket(tx, project, sha)
		if sb == nil {
			return ErrNotFound
		}
		var m logMeta
		if _, err := getJSON(sb, metaKey, &m); err != nil {
			return err
		}
		out = m.buildLog(sha)
		start := max(from, out.Offset)
		if start >= out.Size {
			out.Offset = out.Size
			return nil
		}
		out.Offset = start
		out.Data = make([]byte, 0, out.Size-start)
		c := sb.Bucket(chunksKey).Cursor()
		// The chunk holding start begins at or before it.
		k, v := c.Seek(u64(uint64(start)))
		if k == nil || int64(binary.BigEndian.Uint64(k)) > start {
			k, v = c.Prev()
			if k == nil {
				k, v = c.First()
			}
		}
		for ; k != nil; k, v = c.Next() {
			off := int64(binary.BigEndian.Uint64(k))
			if end := off + int64(len(v)); end <= start {
				continue
			}
			if off < start {
				v = v[start-off:]
			}
			out.Data = append(out.Data, v...)
		}
		return nil
	})
	if err != nil {
		return BuildLog{}, fmt.Errorf("build log of %s at %s: %w", project, sha, err)
	}
	return out, nil
}

// BuildLogs lists the build logs kept for project, most recently started
// first, without their data.
func (s *Store) BuildLogs(ctx context.Context, project string) ([]BuildLog, error) {
	out := []BuildLog{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketEnvs).Get([]byte(project)) == nil {
			return ErrNotFound
		}
		pb := tx.Bucket(bucketLogs).Bucket([]byte(project))
		if pb == nil {
			return nil
		}
		ids := map[string]uint64{}
		err := pb.ForEachBucket(func(sha []byte) error {
			var m logMeta
			if _, err := getJSON(pb.Bucket(sha), metaKey, &m); err != nil {
				return err
			}
			out = append(out, m.buildLog(string(sha)))
			ids[string(sha)] = m.ID
			return nil
		})
		slices.SortFunc(out, func(a, b BuildLog) int { return cmp.Compare(ids[b.SHA], ids[a.SHA]) })
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("build logs of %s: %w", project, err)
	}
	return out, nil
}

func logBucket(tx *bolt.Tx, project, sha string) *bolt.Bucket {
	pb := tx.Bucket(bucketLogs).Bucket([]byte(project))
	if pb == nil {
		return nil
	}
	return pb.Bucket([]byte(sha))
}

// LogWriter appends a build's output to its log. Writes are buffered and
// stored every Options.LogFlushInterval or Options.LogFlushBytes, whichever
// comes first, so a chatty build costs few transactions. It is safe for
// concurrent use. Write never fails because of the bound: output beyond
// Options.MaxLogBytes pushes the oldest output out.
type LogWriter struct {
	s       *Store
	project string
	sha     string
	id      uint64

	// flushMu serialises flushes, so chunks land in order.
	flushMu sync.Mutex

	mu       sync.Mutex
	buf      []byte
	bufStart int64 // offset of buf[0] in the whole output
	size     int64 // bytes written so far
	timer    *time.Timer
	err      error // first flush error; returned by every later call
	closed   bool
}

// Write buffers p. It returns the error of an earlier failed flush, or
// ErrClosed.
func (w *LogWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return 0, ErrClosed
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return 0, err
	}
	if len(w.buf) == 0 {
		w.bufStart = w.size
	}
	w.buf = append(w.buf, p...)
	w.size += int64(len(p))
	// Never hold more than the log can keep.
	if over := len(w.buf) - w.s.opts.MaxLogBytes; over > 0 {
		w.buf = append(w.buf[:0], w.buf[over:]...)
		w.bufStart += int64(over)
	}
	full := len(w.buf) >= w.s.opts.LogFlushBytes
	if !full && w.timer == nil {
		w.timer = time.AfterFunc(w.s.opts.LogFlushInterval, func() { w.flush(false) })
	}
	w.mu.Unlock()
	if full {
		if err := w.flush(false); err != nil {
			return len(p), err
		}
	}
	return len(p), nil
}

// Flush stores what is buffered now.
func (w *LogWriter) Flush() error {
	return w.flush(false)
}

// Close stores what is buffered and marks the build finished. Calling it
// again returns nil.
func (w *LogWriter) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	return w.flush(true)
}

// flush takes the buffer and appends it as one chunk; finish also marks the
// log finished.
func (w *LogWriter) flush(finish bool) error {
	w.flushMu.Lock()
	defer w.flushMu.Unlock()

	w.mu.Lock()
	if w.timer != nil {
		w.timer.Stop()
		w.timer = nil
	}
	if w.err != nil {
		err := w.err
		w.mu.Unlock()
		return err
	}
	data, start, size := w.buf, w.bufStart, w.size
	w.buf = nil
	w.mu.Unlock()

	if len(data) == 0 && !finish {
		return nil
	}
	err := w.s.db.Update(func(tx *bolt.Tx) error {
		sb := logBucket(tx, w.project, w.sha)
		if sb == nil {
			return ErrLogReplaced // evicted or pruned
		}
		var m logMeta
		if _, err := getJSON(sb, metaKey, &m); err != nil {
			return err
		}
		if m.ID != w.id {
			return ErrLogReplaced
		}
		if len(data) > 0 {
			if err := appendChunk(sb.Bucket(chunksKey), &m, start, data, int64(w.s.opts.MaxLogBytes)); err != nil {
				return err
			}
		}
		m.Size = max(m.Size, size)
		if finish {
			m.Finished = w.s.opts.Now()
		}
		return putJSON(sb, metaKey, m)
	})
	if err != nil {
		err = fmt.Errorf("write build log of %s at %s: %w", w.project, w.sha, err)
		w.mu.Lock()
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}
	return err
}

// appendChunk stores data at offset start and trims the oldest output so
// that at most limit bytes are kept. Output between the previous end and
// start was dropped by the writer and is accounted as gone.
func appendChunk(chunks *bolt.Bucket, m *logMeta, start int64, data []byte, limit int64) error {
	if start > m.Size {
		// A gap: everything kept so far is older than dropped output.
		c := chunks.Cursor()
		for k, _ := c.First(); k != nil; k, _ = c.First() {
			if err := chunks.Delete(k); err != nil {
				return err
			}
		}
		m.Kept = 0
	}
	if err := chunks.Put(u64(uint64(start)), data); err != nil {
		return err
	}
	m.Kept += int64(len(data))
	m.Size = start + int64(len(data))
	c := chunks.Cursor()
	for m.Kept > limit {
		k, v := c.First()
		if k == nil {
			break
		}
		off, n := int64(binary.BigEndian.Uint64(k)), int64(len(v))
		if m.Kept-n >= limit {
			if err := chunks.Delete(k); err != nil {
				return err
			}
			m.Kept -= n
			continue
		}
		// Keep the tail of this chunk only.
		cut := m.Kept - limit
		tail := bytes.Clone(v[cut:])
		if err := chunks.Delete(k); err != nil {
			return err
		}
		if err := chunks.Put(u64(uint64(off+cut)), tail); err != nil {
			return err
		}
		m.Kept = limit
	}
	return nil
}
