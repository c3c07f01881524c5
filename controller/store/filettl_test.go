package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/slipwayhq/slipway/config"
)

// The .slipway.yml ttl of the last deploy is kept with the environment,
// survives a reopen, is replaced by the next deploy's (none included), and
// only for an environment the store knows.
func TestSetFileTTL(t *testing.T) {
	ctx := context.Background()
	s, path := openTest(t, Options{})
	in := info(7)
	if err := s.UpsertEnvironment(ctx, in); err != nil {
		t.Fatal(err)
	}
	fileTTL := func(s *Store) *config.Duration {
		t.Helper()
		env, err := s.Environment(ctx, in.Project)
		if err != nil {
			t.Fatal(err)
		}
		return env.FileTTL
	}
	if got := fileTTL(s); got != nil {
		t.Fatalf("before any deploy: %v, want none", *got)
	}
	two := config.Duration(2 * time.Hour)
	if err := s.SetFileTTL(ctx, in.Project, &two); err != nil {
		t.Fatal(err)
	}
	two = config.Duration(time.Minute) // the store keeps its own copy
	if got := fileTTL(s); got == nil || got.D() != 2*time.Hour {
		t.Fatalf("after a deploy with ttl 2h: %v", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if got := fileTTL(s); got == nil || got.D() != 2*time.Hour {
		t.Fatalf("after a reopen: %v", got)
	}
	zero := config.Duration(0)
	if err := s.SetFileTTL(ctx, in.Project, &zero); err != nil {
		t.Fatal(err)
	}
	if got := fileTTL(s); got == nil || *got != 0 {
		t.Fatalf("after a deploy with ttl 0: %v, want 0 (not none)", got)
	}
	if err := s.SetFileTTL(ctx, in.Project, nil); err != nil {
		t.Fatal(err)
	}
	if got := fileTTL(s); got != nil {
		t.Fatalf("after a deploy without a ttl: %v, want none", *got)
	}
	if err := s.SetFileTTL(ctx, "acme-webshop-pr-404", &zero); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown environment: %v, want ErrNotFound", err)
	}
	if err := s.SetFileTTL(ctx, "Not Valid", &zero); err == nil {
		t.Error("an invalid project name was accepted")
	}
}
