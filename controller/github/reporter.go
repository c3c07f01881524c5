package github

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/slipwayhq/slipway/internal/contract"
)

// ReporterOptions configures a Reporter.
type ReporterOptions struct {
	// Mask replaces secrets in any text before it is sent to GitHub
	// (descriptions, the comment, log excerpts, URLs). Default: identity.
	Mask func(string) string
	// Logger. Default: discard.
	Logger *slog.Logger
}

// Reporter turns an environment's phase changes into what GitHub shows on
// the pull request: a deployment (with its status) per environment and head
// SHA, the slipway/preview commit status, and the sticky comment.
//
// It remembers per (repo, PR) the deployments, comment and statuses it
// already sent, so a Report repeated after a partial failure sends only what
// is missing, and identical reports send nothing. Memory is a cache: after a
// restart deployments and the comment are found again on GitHub. Errors are
// returned and nothing is lost: the reconciler reports again later.
type Reporter struct {
	c    *Client
	mask func(string) string
	log  *slog.Logger

	mu  sync.Mutex
	prs map[prKey]*prMemory
}

type prKey struct {
	repo string
	pr   int
}

type prMemory struct {
	mu           sync.Mutex
	commentID    int64
	commentBody  string
	deployments  map[depKey]*depMemory
	commitStatus map[string]string // sha → last status sent
}

type depKey struct{ env, sha string }

type depMemory struct {
	id    int64
	state DeploymentState // last state known on GitHub, "" when unknown
	sent  string          // the last status sent, in full
}

// NewReporter returns a Reporter sending through c.
func NewReporter(c *Client, opts ReporterOptions) *Reporter {
	r := &Reporter{c: c, mask: opts.Mask, log: opts.Logger, prs: map[prKey]*prMemory{}}
	if r.mask == nil {
		r.mask = func(s string) string { return s }
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	return r
}

// Report sends one phase change of the environment of s.PR: the deployment
// status, the commit status and the sticky comment for that phase. Each of
// the three is attempted even when another fails; the errors are returned
// joined.
//
// Per phase: queued → deployment "queued", commit "pending"; building and
// deploying → "in_progress", "pending"; ready → "success" with each
// environment's URL, commit "success" linking the primary URL; failed →
// "failure" (or "error" when Failure.Internal) with a one-line reason, commit
// "failure"/"error"; removed → every deployment of the PR "inactive", commit
// status untouched; awaiting-approval → no deployment, commit "pending". A
// report for a new SHA marks the remembered deployments of older SHAs
// inactive; CleanupDeployments catches those a restart forgot.
func (r *Reporter) Report(ctx context.Context, s Status) error {
	if s.PR <= 0 {
		return fmt.Errorf("report %s: pull request number %d", s.Repo, s.PR)
	}
	if !s.Phase.valid() {
		return fmt.Errorf("report %s#%d: unknown phase %q", s.Repo, s.PR, s.Phase)
	}
	if s.Phase != PhaseRemoved && !validSHA(s.SHA) || s.SHA != "" && !validSHA(s.SHA) {
		return fmt.Errorf("report %s#%d: %q is not a commit SHA", s.Repo, s.PR, s.SHA)
	}
	s = r.masked(s)
	mem := r.memory(s.Repo, s.PR)
	mem.mu.Lock()
	defer mem.mu.Unlock()

	var errs []error
	if err := r.reportDeployments(ctx, mem, s); err != nil {
		errs = append(errs, err)
	}
	if err := r.reportCommitStatus(ctx, mem, s); err != nil {
		errs = append(errs, err)
	}
	if err := r.reportComment(ctx, mem, s); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("report %s of %s#%d: %w", s.Phase, s.Repo, s.PR, err)
	}
	return nil
}

// Forget drops what the Reporter remembers about a pull request.
func (r *Reporter) Forget(repo Repo, pr int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.prs, prKey{repo.key(), pr})
}

func (r *Reporter) memory(repo Repo, pr int) *prMemory {
	r.mu.Lock()
	defer r.mu.Unlock()
	k := prKey{repo.key(), pr}
	m, ok := r.prs[k]
	if !ok {
		m = &prMemory{deployments: map[depKey]*depMemory{}, commitStatus: map[string]string{}}
		r.prs[k] = m
	}
	return m
}

// masked returns s with every text field passed through the mask.
func (r *Reporter) masked(s Status) Status {
	s.Reason = r.mask(s.Reason)
	s.LogURL = r.mask(s.LogURL)
	s.Services = slices.Clone(s.Services)
	for i := range s.Services {
		s.Services[i].Name = r.mask(s.Services[i].Name)
		s.Services[i].URL = r.mask(s.Services[i].URL)
	}
	if s.Failure != nil {
		f := *s.Failure
		f.Step, f.Service, f.Log = r.mask(f.Step), r.mask(f.Service), r.mask(f.Log)
		s.Failure = &f
	}
	return s
}

// envTarget is one deployment environment and the URL it shows.
type envTarget struct{ env, url string }

// environments are "pr-N" for zero or one exposed service, else "pr-N/<service>" each.
func environments(s Status) []envTarget {
	svcs := orderedServices(s.Services)
	if len(svcs) <= 1 {
		return []envTarget{{Environment(s.PR, ""), primaryURL(svcs)}}
	}
	out := make([]envTarget, 0, len(svcs))
	for _, svc := range svcs {
		out = append(out, envTarget{Environment(s.PR, svc.Name), svc.URL})
	}
	return out
}

func deploymentStatusFor(s Status) (DeploymentStatus, bool) {
	short := contract.ShortSHA(s.SHA)
	switch s.Phase {
	case PhaseQueued:
		return DeploymentStatus{State: DeploymentQueued, Description: "Queued " + short}, true
	case PhaseBuilding:
		return DeploymentStatus{State: DeploymentInProgress, Description: "Building " + short, LogURL: s.LogURL}, true
	case PhaseDeploying:
		return DeploymentStatus{State: DeploymentInProgress, Description: "Deploying " + short, LogURL: s.LogURL}, true
	case PhaseReady:
		d := "Preview of " + short + " ready"
		if s.BuildDuration > 0 {
			d += " (built in " + formatDuration(s.BuildDuration) + ")"
		}
		return DeploymentStatus{State: DeploymentSuccess, Description: d, LogURL: s.LogURL}, true
	case PhaseFailed:
		st := DeploymentFailure
		if s.Failure != nil && s.Failure.Internal {
			st = DeploymentError
		}
		return DeploymentStatus{State: st, Description: failureLine(s), LogURL: s.LogURL}, true
	}
	return DeploymentStatus{}, false
}

// failureLine is "<step> failed for <service>: <reason>".
func failureLine(s Status) string {
	line := "Failed"
	if s.Failure != nil && s.Failure.Step != "" {
		line = s.Failure.Step + " failed"
	}
	if s.Failure != nil && s.Failure.Service != "" {
		line += " for " + s.Failure.Service
	}
	if s.Reason != "" {
		line += ": " + s.Reason
	}
	return oneLine(line, maxDescription)
}

func (r *Reporter) reportDeployments(ctx context.Context, mem *prMemory, s Status) error {
	if s.Phase == PhaseRemoved {
		return r.removeDeployments(ctx, mem, s)
	}
	want, ok := deploymentStatusFor(s)
	if !ok {
		return nil
	}
	targets := environments(s)
	var errs []error
	for _, t := range targets {
		st := want
		st.EnvironmentURL = ""
		if s.Phase == PhaseReady {
			st.EnvironmentURL = t.url
		}
		if err := r.sendDeploymentStatus(ctx, mem, s, t.env, st); err != nil {
			errs = append(errs, err)
		}
	}
	// Older SHAs, and environments this SHA no longer has, are superseded.
	current := map[depKey]bool{}
	for _, t := range targets {
		current[depKey{t.env, s.SHA}] = true
	}
	for k, d := range mem.deployments {
		if current[k] || d.state == DeploymentInactive {
			continue
		}
		why := "Superseded by " + contract.ShortSHA(s.SHA)
		if k.sha == s.SHA {
			why = "Environment " + k.env + " is no longer exposed"
		}
		if err := r.inactivate(ctx, mem, s.Repo, k, d, why); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// sendDeploymentStatus finds or creates the deployment of s.SHA to env and
// posts st on it unless it was the last status sent. A deployment that
// answers 404 (deleted on GitHub) is created anew, once.
func (r *Reporter) sendDeploymentStatus(ctx context.Context, mem *prMemory, s Status, env string, st DeploymentStatus) error {
	key := depKey{env, s.SHA}
	sent := fmt.Sprintf("%s|%s|%s|%s", st.State, oneLine(st.Description, maxDescription), st.EnvironmentURL, st.LogURL)
	for attempt := 0; ; attempt++ {
		d := mem.deployments[key]
		if d == nil {
			dep, created, err := r.c.EnsureDeployment(ctx, s.Repo, s.PR, env, s.SHA)
			if err != nil {
				return err
			}
			d = &depMemory{id: dep.ID}
			if !created { // found after a restart: learn where it stands
				state, err := r.c.LatestDeploymentState(ctx, s.Repo, dep.ID)
				if err != nil {
					return err
				}
				d.state = state
				if state == st.State {
					d.sent = sent
				}
			}
			mem.deployments[key] = d
		}
		if d.sent == sent {
			return nil
		}
		err := r.c.CreateDeploymentStatus(ctx, s.Repo, d.id, st)
		if IsNotFound(err) && attempt == 0 {
			r.log.Warn("deployment gone on github; creating it again", "repo", s.Repo.String(), "pr", s.PR,
				"environment", env, "deployment", d.id)
			delete(mem.deployments, key)
			continue
		}
		if err != nil {
			return err
		}
		d.state, d.sent = st.State, sent
		return nil
	}
}

func (r *Reporter) inactivate(ctx context.Context, mem *prMemory, repo Repo, k depKey, d *depMemory, why string) error {
	err := r.c.CreateDeploymentStatus(ctx, repo, d.id, DeploymentStatus{State: DeploymentInactive, Description: why})
	if err != nil && !IsNotFound(err) {
		return err
	}
	delete(mem.deployments, k) // inactive is final; a deleted one needs nothing more
	return nil
}

// removeDeployments marks every deployment of the PR inactive: those
// remembered, and those GitHub lists for the PR's environments (all SHAs).
func (r *Reporter) removeDeployments(ctx context.Context, mem *prMemory, s Status) error {
	why := "Preview removed"
	if s.Reason != "" {
		why += ": " + s.Reason
	}
	envs := map[string]bool{Environment(s.PR, ""): true}
	for _, t := range environments(s) {
		envs[t.env] = true
	}
	for k := range mem.deployments {
		envs[k.env] = true
	}
	var errs []error
	for _, env := range slices.Sorted(maps.Keys(envs)) {
		ds, err := r.c.Deployments(ctx, s.Repo, env)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, dep := range ds {
			k := depKey{dep.Environment, dep.SHA}
			d := mem.deployments[k]
			if d == nil || d.id != dep.ID {
				if r.c.knownInactive(dep.ID) {
					continue
				}
				state, err := r.c.LatestDeploymentState(ctx, s.Repo, dep.ID)
				if err != nil {
					errs = append(errs, err)
					continue
				}
				if state == DeploymentInactive {
					r.c.noteInactive(dep.ID)
					continue
				}
				d = &depMemory{id: dep.ID, state: state}
			}
			if d.state == DeploymentInactive {
				continue
			}
			if err := r.inactivate(ctx, mem, s.Repo, k, d, why); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func commitStatusFor(s Status) (CommitStatus, bool) {
	switch s.Phase {
	case PhaseQueued:
		return CommitStatus{State: CommitPending, Description: "Preview queued", TargetURL: s.LogURL}, true
	case PhaseBuilding:
		return CommitStatus{State: CommitPending, Description: "Building the preview", TargetURL: s.LogURL}, true
	case PhaseDeploying:
		return CommitStatus{State: CommitPending, Description: "Deploying the preview", TargetURL: s.LogURL}, true
	case PhaseAwaitingApproval:
		return CommitStatus{State: CommitPending, Description: "Waiting for a maintainer's approval (/slipway approve)"}, true
	case PhaseReady:
		return CommitStatus{State: CommitSuccess, Description: "Preview ready", TargetURL: primaryURL(s.Services)}, true
	case PhaseFailed:
		st := CommitFailure
		if s.Failure != nil && s.Failure.Internal {
			st = CommitError
		}
		return CommitStatus{State: st, Description: failureLine(s), TargetURL: s.LogURL}, true
	}
	return CommitStatus{}, false
}

func (r *Reporter) reportCommitStatus(ctx context.Context, mem *prMemory, s Status) error {
	st, ok := commitStatusFor(s)
	if !ok || s.SHA == "" {
		return nil
	}
	sent := strings.Join([]string{string(st.State), oneLine(st.Description, maxDescription), st.TargetURL}, "|")
	if mem.commitStatus[s.SHA] == sent {
		return nil
	}
	if err := r.c.SetCommitStatus(ctx, s.Repo, s.SHA, st); err != nil {
		return err
	}
	if len(mem.commitStatus) > 20 {
		clear(mem.commitStatus)
	}
	mem.commitStatus[s.SHA] = sent
	return nil
}

func (r *Reporter) reportComment(ctx context.Context, mem *prMemory, s Status) error {
	body := RenderComment(s)
	if mem.commentID != 0 && mem.commentBody == body {
		return nil
	}
	id, err := r.c.UpsertStickyComment(ctx, s.Repo, s.PR, body, mem.commentID)
	if err != nil {
		return err
	}
	mem.commentID, mem.commentBody = id, body
	return nil
}
