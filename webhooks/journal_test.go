package webhooks

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/slipwayhq/slipway/controller/store"
)

// storeJournal journals ChatOps comments into the real store, as the
// controller does, and can be made to fail.
type storeJournal struct {
	st *store.Store

	mu       sync.Mutex
	fail     error
	recorded []Event // acted on (new deliveries)
}

func (j *storeJournal) Journaled(ev Event) bool {
	return ev.Comment != nil && strings.HasPrefix(ev.Comment.Body, "/slipway")
}

func (j *storeJournal) Record(ctx context.Context, ev Event) (bool, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.fail != nil {
		return false, j.fail
	}
	first, err := j.st.AcceptCommand(ctx, store.Command{Delivery: ev.DeliveryID, Repo: ev.Repo, PR: ev.PR,
		CommentID: ev.Comment.ID, Body: ev.Comment.Body, Sender: ev.Comment.Author})
	if first {
		j.recorded = append(j.recorded, ev)
	}
	return first, err
}

func (j *storeJournal) setFail(err error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.fail = err
}

func (j *storeJournal) Recorded() []Event {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Event(nil), j.recorded...)
}

// A command is acknowledged only once it is written; one that could not be
// written leaves no trace, so GitHub's Redeliver brings it back.
func TestJournaledCommandIsWrittenBeforeItIsAcknowledged(t *testing.T) {
	j := &storeJournal{}
	r := newRig(t, func(o *Options) { o.Journal = j })
	j.st = r.store
	ctx := context.Background()
	command := load(t, "issue_comment")

	j.setFail(errors.New("disk full"))
	got := r.send(t, jsonDelivery(KindIssueComment, "cmd-1", command))
	if got.status != 503 || !strings.Contains(got.body, "disk full") {
		t.Errorf("journal down: got %d %q, want 503", got.status, got.body)
	}
	if seen, err := r.store.Seen(ctx, "cmd-1"); err != nil || seen {
		t.Errorf("a command that was not written was recorded as seen (%v)", err)
	}

	j.setFail(nil)
	if got := r.send(t, jsonDelivery(KindIssueComment, "cmd-1", command)); got.status != 202 {
		t.Fatalf("redelivery once the journal works: got %d %q, want 202", got.status, got.body)
	}
	// Acknowledged means written: no waiting.
	pending, err := r.store.PendingCommands(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Delivery != "cmd-1" || pending[0].Body != "/slipway approve" || pending[0].PR != 42 {
		t.Errorf("pending after 202: %+v", pending)
	}
	if got := r.send(t, jsonDelivery(KindIssueComment, "cmd-1", command)); got.status != 200 || !strings.Contains(got.body, "duplicate") {
		t.Errorf("second redelivery: got %d %q, want 200 duplicate", got.status, got.body)
	}
	if n := len(j.Recorded()); n != 1 {
		t.Errorf("acted on %d times, want once", n)
	}
	// The journal took it in place of the enqueuer.
	if evs := r.queue.Events(); len(evs) != 0 {
		t.Errorf("journaled command also enqueued: %+v", evs)
	}
}

// Events that carry no command keep the fast path: dedupe, then enqueue.
func TestUnjournaledEventsAreEnqueued(t *testing.T) {
	j := &storeJournal{}
	r := newRig(t, func(o *Options) { o.Journal = j })
	j.st = r.store
	if got := r.send(t, jsonDelivery(KindPullRequest, "pr-1", load(t, "pull_request"))); got.status != 202 {
		t.Fatalf("got %d %q", got.status, got.body)
	}
	plain := load(t, "issue_comment", set("comment.body", "looks good"))
	if got := r.send(t, jsonDelivery(KindIssueComment, "c-1", plain)); got.status != 202 {
		t.Fatalf("got %d %q", got.status, got.body)
	}
	waitFor(t, func() bool { return len(r.queue.Events()) == 2 })
	if n := len(j.Recorded()); n != 0 {
		t.Errorf("%d events journaled, want none", n)
	}
}
