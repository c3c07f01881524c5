package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	bolt "go.etcd.io/bbolt"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/internal/contract"
)

// Phase is a step of an environment's life: contract.Phase, the one
// phase model; the store records it as it is.
type Phase = contract.Phase

// Bounds on free text, so one chatty caller cannot bloat every listing.
const (
	maxDetail  = 1 << 10
	maxMessage = 4 << 10
	maxField   = 512
)

// EnvironmentInfo identifies an environment and says what it previews.
type EnvironmentInfo struct {
	// Project is the compose project name (contract.ProjectName): the key.
	Project string `json:"project"`
	// Repo is the base repository, owner/name.
	Repo string `json:"repo"`
	// PR is the pull request number.
	PR int `json:"pr"`
	// Title and Author of the pull request.
	Title  string `json:"title,omitempty"`
	Author string `json:"author,omitempty"`
	// HeadRepo is the head repository, owner/name (differs from Repo for a
	// fork; empty when unknown or deleted).
	HeadRepo string `json:"head_repo,omitempty"`
	// LastPush is when the head last moved; the TTL counts from it.
	LastPush time.Time `json:"last_push,omitzero"`
}

// Environment is everything the store knows about one environment, except
// its timeline and build logs.
type Environment struct {
	EnvironmentInfo
	// Phase, SHA, Detail and PhaseAt are those of the latest phase
	// recorded. SHA is the latest non-empty SHA recorded.
	Phase   Phase     `json:"phase,omitempty"`
	SHA     string    `json:"sha,omitempty"`
	Detail  string    `json:"detail,omitempty"`
	PhaseAt time.Time `json:"phase_at,omitzero"`
	// Wait, Held and Retry are those of the latest phase (see PhaseEntry).
	Wait  contract.Wait `json:"wait,omitempty"`
	Held  bool          `json:"held,omitempty"`
	Retry bool          `json:"retry,omitempty"`
	// Created is when the store first heard of the environment.
	Created time.Time `json:"created"`
	// Updated is the latest time anything was recorded; listings sort on it.
	Updated time.Time `json:"updated"`
	// Removed is when the environment reached PhaseRemoved; zero while it
	// exists. Removed environments are pruned after Options.RetainRemoved.
	Removed time.Time `json:"removed,omitzero"`
	// LastError is the latest failure, kept until the environment is
	// ready again.
	LastError *Failure `json:"last_error,omitempty"`
	// Keep overrides the TTL (`/slipway keep 7d`, `keep forever`).
	Keep Keep `json:"keep,omitzero"`
	// FileTTL is the ttl the repository's .slipway.yml set at the
	// environment's last deploy; nil when it set none (or no deploy was
	// recorded since Slipway kept it). slipway.yaml's repos[].ttl still
	// wins over it: see config.RepoPolicy.TTLFor.
	FileTTL *config.Duration `json:"file_ttl,omitempty"`
}

// Failure says what went wrong.
type Failure struct {
	// Step that failed: fetch, plan, build, deploy, after_deploy, ...
	Step string `json:"step"`
	// Service concerned, if any.
	Service string `json:"service,omitempty"`
	// Message is the error, possibly with the last lines of output.
	Message string `json:"message"`
	// SHA and At are filled from the phase entry that carried the failure.
	SHA string    `json:"sha,omitempty"`
	At  time.Time `json:"at,omitzero"`
}

// Keep overrides an environment's TTL. The zero Keep means "no override".
type Keep struct {
	// Until keeps the environment at least until then.
	Until time.Time `json:"until,omitzero"`
	// Forever pins the environment: the TTL never removes it.
	Forever bool `json:"forever,omitempty"`
	// By is who asked, At when.
	By string    `json:"by,omitempty"`
	At time.Time `json:"at,omitzero"`
}

// PhaseEntry is one step in an environment's timeline.
type PhaseEntry struct {
	Phase Phase `json:"phase"`
	// SHA the phase is about (may be empty, e.g. for removed).
	SHA string `json:"sha,omitempty"`
	// Detail is a short human-readable note ("waiting for approval",
	// "2 of 2 builds running"). Longer text is cut at 1 KiB.
	Detail string `json:"detail,omitempty"`
	// At defaults to now.
	At time.Time `json:"at"`
	// Failure, when set, becomes the environment's LastError.
	Failure *Failure `json:"failure,omitempty"`
	// Wait says what a PhaseWaiting entry waits for.
	Wait contract.Wait `json:"wait,omitempty"`
	// Held marks a PhaseRemoved entry that sticks until the next push or
	// an explicit redeploy (/slipway destroy, TTL expiry).
	Held bool `json:"held,omitempty"`
	// Retry marks a PhaseFailed entry the controller retries (the host's
	// fault, not the pull request's).
	Retry bool `json:"retry,omitempty"`
}

// validProject reports whether project is a name contract.ProjectName can
// produce.
func validProject(project string) error {
	if project == "" || len(project) > 255 || contract.Sanitize(project) != project {
		return invalid("project name %q: want lower-case [a-z0-9_-]", project)
	}
	return nil
}

// validRepo checks an owner/name.
func validRepo(repo string) error {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") || len(repo) > 200 {
		return invalid("repository %q: want owner/name", repo)
	}
	return nil
}

// clip cuts s to at most n bytes on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const mark = "…"
	cut := n - len(mark)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// UpsertEnvironment creates the environment info.Project or updates it.
// Empty fields of info leave the stored values alone; LastPush only moves
// forward (at creation it defaults to now). Call it whenever the
// reconciler has read the PR, before RecordPhase.
func (s *Store) UpsertEnvironment(ctx context.Context, info EnvironmentInfo) error {
	if err := validProject(info.Project); err != nil {
		return err
	}
	if err := validRepo(info.Repo); err != nil {
		return err
	}
	if info.PR <= 0 {
		return invalid("pull request number %d", info.PR)
	}
	if info.HeadRepo != "" {
		if err := validRepo(info.HeadRepo); err != nil {
			return err
		}
	}
	info.Title = clip(info.Title, maxField)
	info.Author = clip(info.Author, maxField)
	now := s.opts.Now()
	err := s.update(ctx, func(tx *bolt.Tx) error {
		envs := tx.Bucket(bucketEnvs)
		var env Environment
		found, err := getJSON(envs, []byte(info.Project), &env)
		if err != nil {
			return err
		}
		if !found {
			env = Environment{EnvironmentInfo: info, Created: now, Updated: now}
			if env.LastPush.IsZero() {
				env.LastPush = now
			}
			return putJSON(envs, []byte(info.Project), env)
		}
		if !strings.EqualFold(env.Repo, info.Repo) || env.PR != info.PR {
			return invalid("project %s belongs to %s#%d, not %s#%d", info.Project, env.Repo, env.PR, info.Repo, info.PR)
		}
		env.Repo = info.Repo // GitHub's spelling may change case
		set := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		set(&env.Title, info.Title)
		set(&env.Author, info.Author)
		set(&env.HeadRepo, info.HeadRepo)
		if info.LastPush.After(env.LastPush) {
			env.LastPush = info.LastPush
		}
		return putJSON(envs, []byte(info.Project), env)
	})
	if err != nil {
		return fmt.Errorf("upsert environment %s: %w", info.Project, err)
	}
	return nil
}

// RecordPhase appends e to the timeline of project and makes it the
// environment's current phase. A Failure becomes LastError; PhaseReady
// clears LastError; PhaseRemoved marks the environment removed (any later
// phase un-marks it, e.g. when the PR is reopened). The timeline keeps the
// latest Options.MaxPhases entries. ErrNotFound if UpsertEnvironment was
// never called for project.
func (s *Store) RecordPhase(ctx context.Context, project string, e PhaseEntry) error {
	if err := validProject(project); err != nil {
		return err
	}
	if !e.Phase.Valid() {
		return invalid("phase %q: want one of %v", e.Phase, contract.Phases())
	}
	if e.At.IsZero() {
		e.At = s.opts.Now()
	}
	e.SHA = strings.ToLower(e.SHA)
	e.Detail = clip(e.Detail, maxDetail)
	if e.Failure != nil {
		f := *e.Failure
		f.Step = clip(f.Step, maxField)
		f.Service = clip(f.Service, maxField)
		f.Message = clip(f.Message, maxMessage)
		f.SHA, f.At = e.SHA, e.At
		e.Failure = &f
	}
	err := s.update(ctx, func(tx *bolt.Tx) error {
		envs := tx.Bucket(bucketEnvs)
		var env Environment
		found, err := getJSON(envs, []byte(project), &env)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		env.Phase, env.Detail, env.PhaseAt = e.Phase, e.Detail, e.At
		env.Wait, env.Held, env.Retry = e.Wait, e.Held, e.Retry
		if e.SHA != "" {
			env.SHA = e.SHA
		}
		if e.At.After(env.Updated) {
			env.Updated = e.At
		}
		switch {
		case e.Failure != nil:
			env.LastError = e.Failure
		case e.Phase == contract.PhaseReady:
			env.LastError = nil
		}
		env.Removed = time.Time{}
		if e.Phase == contract.PhaseRemoved {
			env.Removed = e.At
		}
		if err := putJSON(envs, []byte(project), env); err != nil {
			return err
		}
		tl, err := tx.Bucket(bucketTimelines).CreateBucketIfNotExists([]byte(project))
		if err != nil {
			return err
		}
		seq, err := tl.NextSequence()
		if err != nil {
			return err
		}
		if err := putJSON(tl, u64(seq), e); err != nil {
			return err
		}
		// Trim the oldest entries beyond the bound.
		if seq > uint64(s.opts.MaxPhases) {
			oldest := seq - uint64(s.opts.MaxPhases)
			c := tl.Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k, u64(oldest)) <= 0; k, _ = c.First() {
				if err := tl.Delete(k); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record phase %s of %s: %w", e.Phase, project, err)
	}
	if e.Phase == contract.PhaseRemoved {
		if _, err := s.Prune(ctx); err != nil {
			return fmt.Errorf("record phase %s of %s: %w", e.Phase, project, err)
		}
	}
	return nil
}

// SetKeep sets (or, with the zero Keep, clears) the TTL override of
// project. At defaults to now.
func (s *Store) SetKeep(ctx context.Context, project string, k Keep) error {
	if k != (Keep{}) && k.At.IsZero() {
		k.At = s.opts.Now()
	}
	k.By = clip(k.By, maxField)
	if err := s.modify(ctx, project, func(env *Environment) { env.Keep = k }); err != nil {
		return fmt.Errorf("set keep of %s: %w", project, err)
	}
	return nil
}

// SetFileTTL records the ttl the repository's .slipway.yml set for the
// deploy of project just made (nil: it set none), for Environment.FileTTL.
// Recording the value already stored writes nothing.
func (s *Store) SetFileTTL(ctx context.Context, project string, ttl *config.Duration) error {
	if env, err := s.Environment(ctx, project); err == nil && sameDuration(env.FileTTL, ttl) {
		return nil
	}
	if ttl != nil {
		v := *ttl
		ttl = &v
	}
	if err := s.modify(ctx, project, func(env *Environment) { env.FileTTL = ttl }); err != nil {
		return fmt.Errorf("set the .slipway.yml ttl of %s: %w", project, err)
	}
	return nil
}

func sameDuration(a, b *config.Duration) bool {
	return a == b || (a != nil && b != nil && *a == *b)
}

// modify applies change to the stored environment project, or returns
// ErrNotFound.
func (s *Store) modify(ctx context.Context, project string, change func(*Environment)) error {
	if err := validProject(project); err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		envs := tx.Bucket(bucketEnvs)
		var env Environment
		found, err := getJSON(envs, []byte(project), &env)
		if err != nil {
			return err
		}
		if !found {
			return ErrNotFound
		}
		change(&env)
		return putJSON(envs, []byte(project), env)
	})
}

// Environment returns what the store knows about project, or ErrNotFound.
func (s *Store) Environment(ctx context.Context, project string) (Environment, error) {
	var env Environment
	err := s.view(ctx, func(tx *bolt.Tx) error {
		found, err := getJSON(tx.Bucket(bucketEnvs), []byte(project), &env)
		if err == nil && !found {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return Environment{}, fmt.Errorf("environment %s: %w", project, err)
	}
	return env, nil
}

// Environments lists every environment, removed ones included (Removed is
// set), most recently updated first. It reads one small record per
// environment; timelines and logs are not touched.
func (s *Store) Environments(ctx context.Context) ([]Environment, error) {
	out := []Environment{}
	err := s.view(ctx, func(tx *bolt.Tx) error {
		envs := tx.Bucket(bucketEnvs)
		return envs.ForEach(func(k, v []byte) error {
			var env Environment
			if err := json.Unmarshal(v, &env); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			out = append(out, env)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list environments: %w", err)
	}
	sortRecentFirst(out)
	return out, nil
}

func sortRecentFirst(envs []Environment) {
	slices.SortFunc(envs, func(a, b Environment) int {
		if c := b.Updated.Compare(a.Updated); c != 0 {
			return c
		}
		return strings.Compare(a.Project, b.Project)
	})
}

// Timeline returns the phases of project, oldest first (at most
// Options.MaxPhases). ErrNotFound if the environment is unknown.
func (s *Store) Timeline(ctx context.Context, project string) ([]PhaseEntry, error) {
	var out []PhaseEntry
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if tx.Bucket(bucketEnvs).Get([]byte(project)) == nil {
			return ErrNotFound
		}
		tl := tx.Bucket(bucketTimelines).Bucket([]byte(project))
		if tl == nil {
			return nil
		}
		return tl.ForEach(func(k, v []byte) error {
			var e PhaseEntry
			if err := json.Unmarshal(v, &e); err != nil {
				return fmt.Errorf("decode phase %x: %w", k, err)
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("timeline of %s: %w", project, err)
	}
	return out, nil
}

// Prune deletes removed environments (their timeline, build logs and
// approvals with them) older than Options.RetainRemoved, then the oldest
// removed ones beyond Options.MaxRemoved, and approvals older than
// RetainRemoved whose environment no longer exists. It returns how many
// environments it deleted. Open and RecordPhase(PhaseRemoved) call it; the
// controller's periodic resync should too.
func (s *Store) Prune(ctx context.Context) (int, error) {
	now := s.opts.Now()
	cutoff := now.Add(-s.opts.RetainRemoved)
	n := 0
	err := s.update(ctx, func(tx *bolt.Tx) error {
		n = 0
		envs := tx.Bucket(bucketEnvs)
		var removed []Environment
		err := envs.ForEach(func(k, v []byte) error {
			var env Environment
			if err := json.Unmarshal(v, &env); err != nil {
				return fmt.Errorf("decode %s: %w", k, err)
			}
			if !env.Removed.IsZero() {
				removed = append(removed, env)
			}
			return nil
		})
		if err != nil {
			return err
		}
		// Newest removal first; everything past the count or the age goes.
		slices.SortFunc(removed, func(a, b Environment) int { return b.Removed.Compare(a.Removed) })
		for i, env := range removed {
			if i < s.opts.MaxRemoved && !env.Removed.Before(cutoff) {
				continue
			}
			if err := deleteEnvironment(tx, env); err != nil {
				return err
			}
			n++
		}
		if err := pruneOrphanApprovals(tx, cutoff); err != nil {
			return err
		}
		return pruneStaleCommands(tx, cutoff)
	})
	if err != nil {
		return 0, fmt.Errorf("prune history: %w", err)
	}
	return n, nil
}

func deleteEnvironment(tx *bolt.Tx, env Environment) error {
	key := []byte(env.Project)
	if err := tx.Bucket(bucketEnvs).Delete(key); err != nil {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	for _, b := range [][]byte{bucketTimelines, bucketLogs} {
		if err := tx.Bucket(b).DeleteBucket(key); err != nil && !isBucketNotFound(err) {
			return fmt.Errorf("delete %s of %s: %w", b, key, err)
		}
	}
	return deleteApprovals(tx, env.Repo, env.PR)
}

// Before the phase entries carried Held and Retry, the controller marked
// them as prefixes of Detail; an environment recorded then reads as if
// recorded now, so a preview destroyed before an upgrade stays destroyed.
const (
	legacyHeldPrefix  = "held: "
	legacyRetryPrefix = "will retry: "
)

// UnmarshalJSON reads an environment, including one recorded before Held
// and Retry were fields.
func (e *Environment) UnmarshalJSON(b []byte) error {
	type plain Environment
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	if d, ok := strings.CutPrefix(p.Detail, legacyHeldPrefix); ok && p.Phase == contract.PhaseRemoved {
		p.Detail, p.Held = d, true
	}
	if d, ok := strings.CutPrefix(p.Detail, legacyRetryPrefix); ok && p.Phase == contract.PhaseFailed {
		p.Detail, p.Retry = d, true
	}
	*e = Environment(p)
	return nil
}
