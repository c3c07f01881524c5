package controller

import (
	"context"
	"strconv"
	"sync"
	"time"
)

// Key names one pull request: owner/repo#N. It is what the queue holds and
// what Reconcile converges.
type Key struct {
	Repo string // owner/name
	PR   int
}

func (k Key) String() string { return k.Repo + "#" + strconv.Itoa(k.PR) }

// Queue is a work queue keyed by pull request, after controller-runtime's:
// a key is never handed to two workers at once; adding a key that is already
// waiting does nothing; adding one that is being worked on marks it to run
// again once Done; failures back off per key.
type Queue struct {
	mu         sync.Mutex
	order      []Key        // waiting, in order
	waiting    map[Key]bool // in order
	processing map[Key]bool // handed out, not Done
	dirty      map[Key]bool // added while processing
	failures   map[Key]int  // consecutive failures, for backoff
	timers     map[Key]*time.Timer
	due        map[Key]time.Time // when each timer fires
	wake       chan struct{}
	stop       chan struct{}
	closed     bool
	baseDelay  time.Duration
	maxDelay   time.Duration
}

// NewQueue returns a queue whose per-key backoff starts at base and doubles
// up to max.
func NewQueue(base, max time.Duration) *Queue {
	return &Queue{
		waiting: map[Key]bool{}, processing: map[Key]bool{}, dirty: map[Key]bool{},
		failures: map[Key]int{}, timers: map[Key]*time.Timer{}, due: map[Key]time.Time{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), baseDelay: base, maxDelay: max,
	}
}

// Add queues k unless it is already waiting.
func (q *Queue) Add(k Key) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addLocked(k)
}

func (q *Queue) addLocked(k Key) {
	if q.closed {
		return
	}
	if t := q.timers[k]; t != nil {
		t.Stop()
		delete(q.timers, k)
		delete(q.due, k)
	}
	if q.processing[k] {
		q.dirty[k] = true
		return
	}
	if q.waiting[k] {
		return
	}
	q.waiting[k] = true
	q.order = append(q.order, k)
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// AddAfter queues k after d, unless it is added sooner. A later AddAfter
// for the same key replaces the earlier one only if it is sooner.
func (q *Queue) AddAfter(k Key, d time.Duration) {
	if d <= 0 {
		q.Add(k)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || q.waiting[k] {
		return
	}
	at := time.Now().Add(d)
	if old := q.timers[k]; old != nil {
		if !at.Before(q.due[k]) {
			return // the pending one fires sooner
		}
		old.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		q.mu.Lock()
		defer q.mu.Unlock()
		if q.timers[k] == t {
			delete(q.timers, k)
			delete(q.due, k)
			q.addLocked(k)
		}
	})
	q.timers[k] = t
	q.due[k] = at
}

// AddRateLimited queues k after its backoff: base × 2^(failures), capped.
func (q *Queue) AddRateLimited(k Key) time.Duration {
	q.mu.Lock()
	n := q.failures[k]
	q.failures[k] = n + 1
	q.mu.Unlock()
	d := q.baseDelay << min(n, 30)
	if d > q.maxDelay || d <= 0 {
		d = q.maxDelay
	}
	q.AddAfter(k, d)
	return d
}

// Forget resets k's backoff after a success.
func (q *Queue) Forget(k Key) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, k)
}

// Get waits for a key, hands it out and marks it processing. ok is false
// when ctx ends or the queue is shut down.
func (q *Queue) Get(ctx context.Context) (Key, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return Key{}, false
		}
		if len(q.order) > 0 {
			k := q.order[0]
			q.order = q.order[1:]
			delete(q.waiting, k)
			q.processing[k] = true
			more := len(q.order) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.wake <- struct{}{}:
				default:
				}
			}
			return k, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return Key{}, false
		case <-q.stop:
			return Key{}, false
		case <-q.wake:
		}
	}
}

// Done marks k finished; if it was added meanwhile it is queued again.
func (q *Queue) Done(k Key) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, k)
	if q.dirty[k] {
		delete(q.dirty, k)
		q.addLocked(k)
	}
}

// Len is the number of keys waiting (not those being processed).
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order)
}

// Processing reports whether k is being worked on.
func (q *Queue) Processing(k Key) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.processing[k]
}

// ShutDown stops handing out keys and cancels pending timers.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return
	}
	q.closed = true
	for k, t := range q.timers {
		t.Stop()
		delete(q.timers, k)
	}
	close(q.stop)
}
