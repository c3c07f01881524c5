package stack

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// reportedBefore is how the controller named a failure before errors
// carried it (controller/reconcile.go, failed and describeFailure): the
// step by the call that failed and the error's type, the service by the
// error's type, terminal iff the error is bad input. A Failure must say
// the same, so reports do not change.
func reportedBefore(call string, err error) (step, service string, terminal bool) {
	var se *ServiceError
	var be *BuildError
	var je *JobError
	var pe *PolicyError
	switch call {
	case "load":
		step = "load"
		if errors.As(err, &pe) {
			step = "policy"
		}
	case "up":
		step = "deploy"
		switch {
		case errors.As(err, &be):
			step = "build"
		case errors.As(err, &je):
			step = "after_deploy"
		}
	}
	switch {
	case errors.As(err, &se):
		service = se.Service
	case errors.As(err, &be):
		service = be.Service
	case errors.As(err, &je):
		service = je.Service
	}
	return step, service, errors.Is(err, ErrBadInput)
}

func TestFailure(t *testing.T) {
	engineDown := errors.New("Cannot connect to the Docker daemon")
	tests := []struct {
		name string
		// call is the stack function that returned err: "load" or "up"
		// (wrapped as they wrap), "" for an error used on its own.
		call     string
		err      error
		step     string
		service  string
		terminal bool
	}{
		{"policy refusal", "load", badInput(&PolicyError{Violations: []Violation{{Rule: "SW-PRIV-001"}}}), "policy", "", true},
		{"compose file that does not load", "load", badInput(errors.New("no compose file")), "load", "", true},
		{"refused Dockerfile", "up", badBuild("web", errors.New("SW-BLD-010"), nil), "build", "web", true},
		{"build that failed on the engine", "up", &BuildError{Service: "web", Err: engineDown}, "build", "web", false},
		{"several builds: terminal if one is bad input", "up",
			errors.Join(&BuildError{Service: "web", Err: engineDown}, badBuild("api", errors.New("exit 1"), nil)), "build", "web", true},
		{"dependency that did not come up", "up",
			fmt.Errorf("service api: dependency %w", &ServiceError{Service: "db", Reason: "unhealthy"}), "deploy", "db", true},
		{"service that did not come up, rollback failed too", "up",
			fmt.Errorf("%w (and rolling back: %v)", &ServiceError{Service: "web", Reason: "exited"}, engineDown), "deploy", "web", true},
		{"failed job", "up", &JobError{Index: 0, Service: "api", Reason: "exited with code 1"}, "after_deploy", "api", true},
		{"job of a service without containers", "up", badInput(errors.New("after_deploy[0]: service api has no containers")), "deploy", "", true},
		{"missing image", "up", badInput(errors.New("service db: image postgres is not present locally")), "deploy", "", true},
		{"engine error while deploying", "up", fmt.Errorf("create network x: %w", engineDown), "deploy", "", false},
		{"cancelled", "up", context.Canceled, "deploy", "", false},

		// The types on their own.
		{"BuildError of bad input", "", badBuild("web", errors.New("x"), nil), "build", "web", true},
		{"BuildError of the engine", "", &BuildError{Service: "web", Err: engineDown}, "build", "web", false},
		{"ServiceError", "", &ServiceError{Service: "db"}, "deploy", "db", true},
		{"JobError", "", &JobError{Service: "api"}, "after_deploy", "api", true},
		{"PolicyError", "", &PolicyError{}, "policy", "", true},
		{"bad input around a BuildError", "", badInput(&BuildError{Service: "web", Err: engineDown}), "build", "web", true},
		{"bad input on its own names no step", "", badInput(errors.New("x")), "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.err
			switch tt.call {
			case "load":
				err = loadFailure(err)
			case "up":
				err = upFailure(err)
			}
			var f contract.Failure
			if !errors.As(err, &f) {
				t.Fatalf("%v is not a contract.Failure", err)
			}
			if f.FailedStep() != tt.step || f.FailedService() != tt.service || f.Terminal() != tt.terminal {
				t.Errorf("step %q service %q terminal %t, want %q %q %t", f.FailedStep(), f.FailedService(), f.Terminal(), tt.step, tt.service, tt.terminal)
			}
			if f.Error() != tt.err.Error() {
				t.Errorf("message %q, want the wrapped %q", f.Error(), tt.err.Error())
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the Failure hides the error it wraps")
			}
			if tt.call == "" {
				return
			}
			step, service, terminal := reportedBefore(tt.call, tt.err)
			if f.FailedStep() != step || f.FailedService() != service || f.Terminal() != terminal {
				t.Errorf("step %q service %q terminal %t; the controller reported %q %q %t", f.FailedStep(), f.FailedService(), f.Terminal(), step, service, terminal)
			}
		})
	}
	if loadFailure(nil) != nil || upFailure(nil) != nil {
		t.Error("no error became a Failure")
	}
}

// Load's errors, as Load returns them, name their step.
func TestLoadFailure(t *testing.T) {
	for _, tc := range []struct {
		name, compose, step string
	}{
		{"policy", "services:\n  web:\n    image: busybox\n    privileged: true\n", "policy"},
		{"load", "services:\n  web:\n    image: busybox\n    depends_on: [nowhere]\n", "load"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			dockertest.WriteFiles(t, dir, map[string]string{"compose.yaml": tc.compose})
			_, err := Load(context.Background(), Source{Dir: filepath.Clean(dir), Owner: "acme", Repo: "shop", PR: 1, SHA: sha1}, LoadOptions{})
			var f contract.Failure
			if !errors.As(err, &f) {
				t.Fatalf("Load: %v, want a contract.Failure", err)
			}
			if f.FailedStep() != tc.step || !f.Terminal() || f.FailedService() != "" {
				t.Errorf("step %q terminal %t service %q, want %q, terminal, no service (%v)", f.FailedStep(), f.Terminal(), f.FailedService(), tc.step, err)
			}
		})
	}
}
