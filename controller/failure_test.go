package controller

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/controller/stack"
)

// stepFailure is a contract.Failure of the test's own.
type stepFailure struct {
	step, service string
	terminal      bool
}

func (e *stepFailure) Error() string         { return e.step + " failed" }
func (e *stepFailure) FailedStep() string    { return e.step }
func (e *stepFailure) FailedService() string { return e.service }
func (e *stepFailure) Terminal() bool        { return e.terminal }

func TestJudgeFailure(t *testing.T) {
	timeout := fmt.Errorf("%w (build_timeout 30m)", errDeployTimeout)
	engineDown := errors.New("Cannot connect to the Docker daemon")
	for _, tc := range []struct {
		name     string
		step     string
		err      error
		cause    error
		stopping bool
		want     outcome
		failure  failure // Message not compared
	}{
		{"superseded by a push", "build", engineDown, errSuperseded, false, outcomeAbandoned, failure{}},
		{"closed during the deploy", "deploy", errClosed, nil, false, outcomeAbandoned, failure{}},
		{"cancelled as the controller stops", "build", context.Canceled, context.Canceled, true, outcomeShutdown, failure{}},
		{"the engine is down: retried", "deploy", engineDown, nil, false, outcomeFailed, failure{Step: "deploy"}},
		{"out of time: final", "build", context.DeadlineExceeded, timeout, false, outcomeFailed, failure{Step: "build", Terminal: true}},
		{"bad input from Load: final", "load", loadErr(t, "services:\n  web:\n    privileged: true\n    image: x\n"), nil, false, outcomeFailed, failure{Step: "policy", Terminal: true}},
		{"an unwrapped error is not final", "load", fmt.Errorf("load: %w", errors.New("disk full")), nil, false, outcomeFailed, failure{Step: "load"}},
		{"a failure names its step and service", "deploy", fmt.Errorf("up: %w", &stepFailure{"after_deploy", "api", true}), nil, false, outcomeFailed,
			failure{Step: "after_deploy", Service: "api", Terminal: true}},
		{"a retryable step failure", "deploy", &stepFailure{"deploy", "web", false}, nil, false, outcomeFailed, failure{Step: "deploy", Service: "web"}},
		{"a failure without a step keeps the caller's", "load", &stepFailure{"", "", false}, nil, false, outcomeFailed, failure{Step: "load"}},
		{"an archive that cannot be unpacked: final", "fetch source", &gh.ExtractError{Entry: "../x", Reason: "outside"}, nil, false, outcomeFailed,
			failure{Step: "fetch source", Terminal: true}},
		{"a service that does not start: the PR's own", "deploy", &stack.ServiceError{Service: "web", Reason: "exited"}, nil, false, outcomeFailed,
			failure{Step: "deploy", Service: "web", Terminal: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			j := judgeFailure(tc.step, tc.err, tc.cause, tc.stopping)
			if j.outcome != tc.want {
				t.Fatalf("outcome %d, want %d", j.outcome, tc.want)
			}
			if j.outcome != outcomeFailed {
				return
			}
			got := j.failure
			if got.Message == "" {
				t.Error("no message")
			}
			got.Message = ""
			if got != tc.failure {
				t.Errorf("failure %+v, want %+v", got, tc.failure)
			}
			if tc.cause != nil && !errors.Is(j.err, tc.cause) {
				t.Errorf("the reported error %v lost the cause %v", j.err, tc.cause)
			}
		})
	}
}

// loadErr is the error stack.Load returns for a compose file.
func loadErr(t *testing.T, compose string) error {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(compose), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := stack.Load(context.Background(), stack.Source{Dir: dir, Owner: "acme", Repo: "shop", PR: 1, SHA: "abc"}, stack.LoadOptions{})
	if err == nil {
		t.Fatal("the compose file loaded")
	}
	return err
}
