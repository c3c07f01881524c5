package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/dashboard"
)

// controllerActions adapts the controller's actions to the dashboard's:
// the controller queues each for its next reconcile of the environment,
// so each is Queued, never Done.
type controllerActions struct{ c *controller.Controller }

func (a controllerActions) queued(err error) (dashboard.Outcome, error) {
	if errors.Is(err, controller.ErrUnknownEnvironment) {
		return "", fmt.Errorf("%w: %v", dashboard.ErrNotFound, err)
	}
	if err != nil {
		return "", err
	}
	return dashboard.Queued, nil
}

func (a controllerActions) Redeploy(ctx context.Context, p string) (dashboard.Outcome, error) {
	return a.queued(a.c.Redeploy(ctx, p))
}
func (a controllerActions) Destroy(ctx context.Context, p string) (dashboard.Outcome, error) {
	return a.queued(a.c.Destroy(ctx, p))
}
func (a controllerActions) Sleep(ctx context.Context, p string) (dashboard.Outcome, error) {
	return a.queued(a.c.Sleep(ctx, p))
}
func (a controllerActions) Wake(ctx context.Context, p string) (dashboard.Outcome, error) {
	return a.queued(a.c.Wake(ctx, p))
}

// sessionKey returns the dashboard's session key, kept under state_dir so
// logins survive restarts; nil (a key per process) when it cannot be kept.
func sessionKey(stateDir string) []byte {
	if stateDir == "" {
		return nil
	}
	path := filepath.Join(stateDir, "dashboard-session.key")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return nil
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil
	}
	if err := os.WriteFile(path, key, 0o600); err != nil {
		return nil
	}
	return key
}

// repoTTL is the ttl slipway.yaml's repos[] sets for a repository (nil
// when it sets none), which wins over the repository's own .slipway.yml.
func repoTTL(cfg *config.Controller) func(string) *config.Duration {
	return func(repo string) *config.Duration {
		if rp, ok := cfg.Repo(repo); ok {
			return rp.TTL
		}
		return nil
	}
}

// maskedLogs is the engine as the dashboard sees it: services' logs pass
// through the secret masker, as build logs and reports do (the engine
// writes them a line at a time).
type maskedLogs struct {
	previewEngine
	mask *controller.Masker
}

func (m maskedLogs) Logs(ctx context.Context, project string, o stack.LogOptions, w io.Writer) error {
	return m.previewEngine.Logs(ctx, project, o, m.mask.Writer(w))
}
