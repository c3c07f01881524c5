package stack

import (
	"errors"

	"github.com/slipwayhq/slipway/internal/contract"
)

// Every error Load and Up return is a contract.Failure: the controller
// finds the step, the service and whether retrying can help with one
// errors.As. The stack's own error types implement it too, for callers
// that hold one of them directly.
var (
	_ contract.Failure = (*stepError)(nil)
	_ contract.Failure = (*inputError)(nil)
	_ contract.Failure = (*BuildError)(nil)
	_ contract.Failure = (*ServiceError)(nil)
	_ contract.Failure = (*JobError)(nil)
	_ contract.Failure = (*PolicyError)(nil)
)

// stepError is an error of Load or Up that says where the deploy failed.
// It is the outermost error they return, so errors.As finds it first.
type stepError struct {
	err     error
	step    string
	service string
}

func (e *stepError) Error() string         { return e.err.Error() }
func (e *stepError) Unwrap() error         { return e.err }
func (e *stepError) FailedStep() string    { return e.step }
func (e *stepError) FailedService() string { return e.service }

// Terminal holds when the error is bad input (ErrBadInput) anywhere in
// its chain, whatever the step.
func (e *stepError) Terminal() bool { return errors.Is(e.err, ErrBadInput) }

// loadFailure names the step of an error of Load: policy when the policy
// refused the project, else load.
func loadFailure(err error) error {
	if err == nil {
		return nil
	}
	step := contract.StepLoad
	var pe *PolicyError
	if errors.As(err, &pe) {
		step = contract.StepPolicy
	}
	return &stepError{err: err, step: step}
}

// upFailure names the step and service of an error of Up: build for a
// failed image build, after_deploy for a failed job, else deploy; the
// service of the service that did not come up, the image that did not
// build or the job that failed.
func upFailure(err error) error {
	if err == nil {
		return nil
	}
	f := &stepError{err: err, step: contract.StepDeploy}
	var se *ServiceError
	var be *BuildError
	var je *JobError
	switch {
	case errors.As(err, &be):
		f.step = contract.StepBuild
	case errors.As(err, &je):
		f.step = contract.StepAfterDeploy
	}
	switch {
	case errors.As(err, &se):
		f.service = se.Service
	case errors.As(err, &be):
		f.service = be.Service
	case errors.As(err, &je):
		f.service = je.Service
	}
	return f
}

// An inputError tells the step and service of the Failure it wraps, if
// any (a BuildError's, say), else none: Load and Up wrap it in the step
// they were at. It is always terminal.
func (e *inputError) FailedStep() string {
	if f, ok := innerFailure(e.err); ok {
		return f.FailedStep()
	}
	return ""
}

func (e *inputError) FailedService() string {
	if f, ok := innerFailure(e.err); ok {
		return f.FailedService()
	}
	return ""
}

func (e *inputError) Terminal() bool { return true }

func innerFailure(err error) (contract.Failure, bool) {
	var f contract.Failure
	ok := errors.As(err, &f)
	return f, ok
}

// A BuildError is a failed build of its service; it is terminal when the
// PR's own input failed (the Dockerfile, a refused image), not the engine.
func (e *BuildError) FailedStep() string    { return contract.StepBuild }
func (e *BuildError) FailedService() string { return e.Service }
func (e *BuildError) Terminal() bool        { return errors.Is(e.Err, ErrBadInput) }

// A ServiceError is the PR's service not coming up: terminal.
func (e *ServiceError) FailedStep() string    { return contract.StepDeploy }
func (e *ServiceError) FailedService() string { return e.Service }
func (e *ServiceError) Terminal() bool        { return true }

// Is makes a ServiceError bad input (errors.Is(err, ErrBadInput)).
func (e *ServiceError) Is(target error) bool { return target == ErrBadInput }

// A JobError is the PR's after_deploy job failing: terminal.
func (e *JobError) FailedStep() string    { return contract.StepAfterDeploy }
func (e *JobError) FailedService() string { return e.Service }
func (e *JobError) Terminal() bool        { return true }

// Is makes a JobError bad input (errors.Is(err, ErrBadInput)).
func (e *JobError) Is(target error) bool { return target == ErrBadInput }

// A PolicyError is the policy refusing the PR's project: terminal.
func (e *PolicyError) FailedStep() string    { return contract.StepPolicy }
func (e *PolicyError) FailedService() string { return "" }
func (e *PolicyError) Terminal() bool        { return true }

// Is makes a PolicyError bad input (errors.Is(err, ErrBadInput)).
func (e *PolicyError) Is(target error) bool { return target == ErrBadInput }
