package store

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"
)

// A command is written with its delivery, survives a reopen, is accepted
// once however often it is delivered, and is gone once done.
func TestCommandsAreDurableUntilDone(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, path := openTest(t, Options{Now: clk.Now})
	approve := Command{Delivery: "d-1", Repo: "acme/webshop", PR: 4, CommentID: 77, Body: "/slipway approve", Sender: "mara-maint", HeadSHA: sha1}
	label := Command{Delivery: "d-2", Repo: "acme/webshop", PR: 5, Label: "slipway:approved", Sender: "mara-maint", HeadSHA: sha2}
	for _, cmd := range []Command{approve, label} {
		if first, err := s.AcceptCommand(ctx, cmd); err != nil || !first {
			t.Fatalf("accept %s: first %v, err %v", cmd.Delivery, first, err)
		}
	}
	// A redelivery stores nothing more, and the webhook dedupe knows it.
	if first, err := s.AcceptCommand(ctx, approve); err != nil || first {
		t.Errorf("redelivered command: first %v, err %v; want false, nil", first, err)
	}
	if first, err := s.FirstSeen(ctx, "d-1"); err != nil || first {
		t.Errorf("FirstSeen of an accepted command's delivery: %v, %v; want false", first, err)
	}
	// A delivery already acted on by the plain dedupe is not accepted again.
	if _, err := s.FirstSeen(ctx, "d-3"); err != nil {
		t.Fatal(err)
	}
	if first, err := s.AcceptCommand(ctx, Command{Delivery: "d-3", Repo: "acme/webshop", PR: 6, Body: "/slipway destroy", Sender: "x"}); err != nil || first {
		t.Errorf("command of a delivery already seen: first %v, err %v; want false, nil", first, err)
	}

	s.Close()
	s, err := Open(path, Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	approve.At, label.At = clk.Now(), clk.Now()
	got, err := s.PendingCommands(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []Command{approve, label}; !reflect.DeepEqual(got, want) {
		t.Fatalf("pending after reopen:\n got %+v\nwant %+v", got, want)
	}
	if err := s.CommandDone(ctx, "d-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.CommandDone(ctx, "d-1"); err != nil {
		t.Errorf("done twice: %v", err)
	}
	if got, _ := s.PendingCommands(ctx); !reflect.DeepEqual(got, []Command{label}) {
		t.Errorf("pending after done: %+v", got)
	}
	// Done: a redelivery is still a duplicate, not a new command.
	if first, err := s.AcceptCommand(ctx, approve); err != nil || first {
		t.Errorf("redelivery of a done command: first %v, err %v", first, err)
	}
	if got, _ := s.PendingCommands(ctx); len(got) != 1 {
		t.Errorf("pending after a redelivery of a done command: %+v", got)
	}
}

func TestAcceptCommandRefusesBadInputAndRecordsNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := openTest(t, Options{})
	for _, cmd := range []Command{
		{Repo: "acme/webshop", PR: 1, Body: "/slipway approve"},
		{Delivery: "bad-repo", Repo: "acme", PR: 1, Body: "/slipway approve"},
		{Delivery: "bad-pr", Repo: "acme/webshop", PR: 0, Body: "/slipway approve"},
	} {
		if _, err := s.AcceptCommand(ctx, cmd); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err %v, want ErrInvalid", cmd, err)
		}
		if cmd.Delivery == "" {
			continue
		}
		if seen, _ := s.Seen(ctx, cmd.Delivery); seen {
			t.Errorf("refused delivery %s was recorded", cmd.Delivery)
		}
	}
	if got, _ := s.PendingCommands(ctx); len(got) != 0 {
		t.Errorf("pending after refusals: %+v", got)
	}
}

// A command never acted on (its repository left the configuration) does
// not stay forever.
func TestPruneForgetsStaleCommands(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, _ := openTest(t, Options{Now: clk.Now, RetainRemoved: 24 * time.Hour})
	if _, err := s.AcceptCommand(ctx, Command{Delivery: "old", Repo: "gone/repo", PR: 1, Body: "/slipway approve"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(23 * time.Hour)
	if _, err := s.AcceptCommand(ctx, Command{Delivery: "new", Repo: "acme/webshop", PR: 1, Body: "/slipway approve"}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Hour)
	if _, err := s.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := s.PendingCommands(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Delivery != "new" {
		t.Errorf("pending after prune: %+v, want only the recent one", got)
	}
}
