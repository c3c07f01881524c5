package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func newLog(t *testing.T, s *Store, pr int, sha string) *LogWriter {
	t.Helper()
	w, err := s.NewBuildLog(context.Background(), info(pr).Project, sha)
	if err != nil {
		t.Fatalf("NewBuildLog: %v", err)
	}
	return w
}

func readLog(t *testing.T, s *Store, pr int, sha string, from int64) BuildLog {
	t.Helper()
	l, err := s.BuildLog(context.Background(), info(pr).Project, sha, from)
	if err != nil {
		t.Fatalf("BuildLog: %v", err)
	}
	return l
}

func TestBuildLogFollow(t *testing.T) {
	s, _ := openTest(t, Options{LogFlushInterval: time.Hour})
	mustUpsert(t, s, info(1))
	w := newLog(t, s, 1, sha1)

	l := readLog(t, s, 1, sha1, 0)
	if len(l.Data) != 0 || !l.Running() || l.Size != 0 {
		t.Errorf("new log = %+v", l)
	}
	fmt.Fprint(w, "Step 1/3 : FROM scratch\n")
	// Buffered, not flushed yet (the interval is an hour).
	if l := readLog(t, s, 1, sha1, 0); len(l.Data) != 0 {
		t.Errorf("unflushed output visible: %q", l.Data)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	l = readLog(t, s, 1, sha1, 0)
	if string(l.Data) != "Step 1/3 : FROM scratch\n" || l.Size != int64(len(l.Data)) || l.Offset != 0 {
		t.Errorf("after flush = %+v", l)
	}
	// A follower asks for what came after the previous Size.
	fmt.Fprint(w, "Step 2/3 : COPY app /app\n")
	fmt.Fprint(w, "Step 3/3 : CMD [\"/app\"]\n")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := readLog(t, s, 1, sha1, l.Size)
	if string(next.Data) != "Step 2/3 : COPY app /app\nStep 3/3 : CMD [\"/app\"]\n" || next.Offset != l.Size || next.Running() {
		t.Errorf("follow from %d = %+v", l.Size, next)
	}
	if end := readLog(t, s, 1, sha1, next.Size); len(end.Data) != 0 || end.Offset != next.Size {
		t.Errorf("read at end = %+v", end)
	}
	// Mid-chunk start.
	if mid := readLog(t, s, 1, sha1, 5); string(mid.Data) != "1/3 : FROM scratch\nStep 2/3 : COPY app /app\nStep 3/3 : CMD [\"/app\"]\n" {
		t.Errorf("read from 5 = %q", mid.Data)
	}
	if _, err := w.Write([]byte("x")); !errors.Is(err, ErrClosed) {
		t.Errorf("Write after Close: err = %v, want ErrClosed", err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestBuildLogFlushesOnItsOwn(t *testing.T) {
	s, _ := openTest(t, Options{LogFlushInterval: 20 * time.Millisecond, LogFlushBytes: 1 << 10})
	mustUpsert(t, s, info(1))
	w := newLog(t, s, 1, sha1)
	defer w.Close()

	// Past LogFlushBytes: stored by Write itself.
	big := bytes.Repeat([]byte("#"), 2<<10)
	w.Write(big)
	if l := readLog(t, s, 1, sha1, 0); !bytes.Equal(l.Data, big) {
		t.Errorf("after a write past LogFlushBytes, %d bytes stored, want %d", len(l.Data), len(big))
	}
	// A small write: stored by the timer.
	w.Write([]byte("tail\n"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		l := readLog(t, s, 1, sha1, int64(len(big)))
		if string(l.Data) == "tail\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timer never flushed; stored %q", l.Data)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestBuildLogKeepsTail(t *testing.T) {
	const limit = 1000
	for _, c := range []struct {
		name   string
		writes []int // sizes
		flush  bool  // flush after every write
	}{
		{"small flushed writes", repeatSizes(37, 60), true},
		{"mixed sizes", []int{10, 990, 1, 500, 2000, 3, 700}, true},
		{"one huge write", []int{5000}, true},
		{"buffered past limit", repeatSizes(300, 20), false},
		{"exactly the limit", []int{400, 600}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, _ := openTest(t, Options{MaxLogBytes: limit, LogFlushInterval: time.Hour, LogFlushBytes: 1 << 20})
			mustUpsert(t, s, info(1))
			w := newLog(t, s, 1, sha1)
			var all []byte
			n := 0
			for _, size := range c.writes {
				p := make([]byte, size)
				for i := range p {
					p[i] = byte('a' + (n+i)%26)
				}
				n += size
				all = append(all, p...)
				w.Write(p)
				if c.flush {
					if err := w.Flush(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			l := readLog(t, s, 1, sha1, 0)
			wantKept := all[max(0, len(all)-limit):]
			if !bytes.Equal(l.Data, wantKept) {
				t.Errorf("kept %d bytes, want the last %d", len(l.Data), len(wantKept))
			}
			if l.Size != int64(len(all)) || l.Offset != int64(len(all)-len(wantKept)) || l.Truncated() != (len(all) > limit) {
				t.Errorf("size %d offset %d truncated %v; wrote %d", l.Size, l.Offset, l.Truncated(), len(all))
			}
			if l.Truncated() && !strings.HasPrefix(l.String(), fmt.Sprintf("[… %d earlier bytes dropped …]\n", l.Offset)) {
				t.Errorf("String() does not mark the truncation: %.60q", l.String())
			}
			// A follower that fell behind the tail gets the tail.
			if old := readLog(t, s, 1, sha1, 1); !bytes.Equal(old.Data, all[max(1, len(all)-limit):]) {
				t.Errorf("read from 1: %d bytes", len(old.Data))
			}
		})
	}
}

func repeatSizes(size, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = size
	}
	return out
}

func TestBuildLogReplacedAndEvicted(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{MaxBuildLogs: 2, LogFlushInterval: time.Hour})
	mustUpsert(t, s, info(1))
	p := info(1).Project

	old := newLog(t, s, 1, sha1)
	fmt.Fprint(old, "first build\n")
	old.Flush()
	// A retry of the same SHA replaces the log; the old writer's output is
	// discarded from then on.
	retry := newLog(t, s, 1, sha1)
	fmt.Fprint(old, "stale output\n")
	if err := old.Flush(); !errors.Is(err, ErrLogReplaced) {
		t.Errorf("flush of a replaced log: err = %v, want ErrLogReplaced", err)
	}
	fmt.Fprint(retry, "second build\n")
	retry.Close()
	if l := readLog(t, s, 1, sha1, 0); string(l.Data) != "second build\n" {
		t.Errorf("log after retry = %q", l.Data)
	}

	third := "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	newLog(t, s, 1, sha2).Close()
	newLog(t, s, 1, third).Close()
	logs, err := s.BuildLogs(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	var shas []string
	for _, l := range logs {
		shas = append(shas, l.SHA)
		if l.Data != nil {
			t.Errorf("listing carries data of %s", l.SHA)
		}
	}
	if want := []string{third, sha2}; fmt.Sprint(shas) != fmt.Sprint(want) {
		t.Errorf("kept logs = %v, want %v (most recent first)", shas, want)
	}
	if _, err := s.BuildLog(ctx, p, sha1, 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("evicted log: err = %v, want ErrNotFound", err)
	}
}

func TestBuildLogConcurrentWrites(t *testing.T) {
	s, _ := openTest(t, Options{LogFlushInterval: time.Millisecond, LogFlushBytes: 512})
	mustUpsert(t, s, info(1))
	w := newLog(t, s, 1, sha1)
	const writers, lines = 8, 200
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			for j := range lines {
				fmt.Fprintf(w, "writer %d line %03d\n", i, j)
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	l := readLog(t, s, 1, sha1, 0)
	got := strings.Split(strings.TrimSuffix(string(l.Data), "\n"), "\n")
	if len(got) != writers*lines {
		t.Fatalf("%d lines, want %d", len(got), writers*lines)
	}
	// Each writer's lines are in its own order.
	next := make([]int, writers)
	for _, line := range got {
		var i, j int
		if _, err := fmt.Sscanf(line, "writer %d line %d", &i, &j); err != nil {
			t.Fatalf("garbled line %q", line)
		}
		if j != next[i] {
			t.Fatalf("writer %d: line %d after %d", i, j, next[i]-1)
		}
		next[i]++
	}
}
