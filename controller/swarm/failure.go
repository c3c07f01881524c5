package swarm

import (
	"errors"

	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
)

// stepError is a contract.Failure: what the controller reports and whether
// retrying the same SHA can help.
type stepError struct {
	step, service string
	err           error
}

func (e *stepError) Error() string         { return e.err.Error() }
func (e *stepError) Unwrap() error         { return e.err }
func (e *stepError) FailedStep() string    { return e.step }
func (e *stepError) FailedService() string { return e.service }
func (e *stepError) Terminal() bool        { return errors.Is(e.err, stack.ErrBadInput) }

// badInput marks an error retrying the same source cannot fix.
type inputError struct{ err error }

func (e *inputError) Error() string        { return e.err.Error() }
func (e *inputError) Unwrap() []error      { return []error{e.err, stack.ErrBadInput} }
func (e *inputError) Is(target error) bool { return target == stack.ErrBadInput }

func badInput(err error) error {
	if err == nil || errors.Is(err, stack.ErrBadInput) {
		return err
	}
	return &inputError{err}
}

// failure gives err a step unless it already names one (a build error).
func failure(step, service string, err error) error {
	if err == nil {
		return nil
	}
	var f contract.Failure
	if errors.As(err, &f) {
		return err
	}
	return &stepError{step: step, service: service, err: err}
}
