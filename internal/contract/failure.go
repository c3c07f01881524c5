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

// The steps a Failure names. They are the values the controller has
// always reported (deployment statuses, the sticky comment, the
// slipway_deploy_failures_total{step} metric, docs/operations.md), so
// reports read the same whichever side names the step.
const (
	// StepFetch is fetching and unpacking the pull request's source.
	StepFetch = "fetch source"
	// StepLoad is loading the compose project and .slipway.yml.
	StepLoad = "load"
	// StepPolicy is the security policy refusing the project.
	StepPolicy = "policy"
	// StepBuild is building a service's image.
	StepBuild = "build"
	// StepDeploy is everything from the built images to a ready stack:
	// images, networks, volumes, containers, readiness.
	StepDeploy = "deploy"
	// StepAfterDeploy is an after_deploy job.
	StepAfterDeploy = "after_deploy"
)
