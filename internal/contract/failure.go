package contract

// Failure is what an error tells about where a deploy failed. Errors
// from controller/stack and controller/github implement it; the
// controller finds it with one errors.As.
type Failure interface {
	error
	// FailedStep names the step: "fetch", "load", "policy", "build", "deploy", "jobs", ...
	FailedStep() string
	// FailedService names the compose service, or "" when not one service.
	FailedService() string
	// Terminal reports that the failure is the pull request's own (bad input):
	// retrying the same SHA cannot help, so the controller holds until the next push.
	Terminal() bool
}
