package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack"
	"github.com/slipwayhq/slipway/internal/contract"
)

// target names one environment from the local commands' flags: --repo
// owner/repo, else owner "local" and the basename of --dir.
type target struct {
	dir  string
	repo string
	pr   int
}

func (t *target) addFlags(cmd *cobra.Command, dirHelp string) {
	cmd.Flags().StringVar(&t.dir, "dir", ".", dirHelp)
	cmd.Flags().StringVar(&t.repo, "repo", "", "repository as owner/repo (default: local/<basename of --dir>)")
	cmd.Flags().IntVar(&t.pr, "pr", 0, "pull request number")
}

// ownerRepo splits --repo, or derives the local default from --dir.
func (t *target) ownerRepo() (string, string, error) {
	if t.repo != "" {
		owner, repo, ok := strings.Cut(t.repo, "/")
		if !ok || owner == "" || repo == "" || strings.Contains(repo, "/") {
			return "", "", fmt.Errorf("--repo %q: want owner/repo", t.repo)
		}
		return owner, repo, nil
	}
	abs, err := filepath.Abs(t.dir)
	if err != nil {
		return "", "", fmt.Errorf("--dir %s: %w", t.dir, err)
	}
	return contract.LocalOwner, filepath.Base(abs), nil
}

func (t *target) project() (string, error) {
	if t.pr <= 0 {
		return "", errors.New("--pr is required (a positive pull request number)")
	}
	owner, repo, err := t.ownerRepo()
	if err != nil {
		return "", err
	}
	return contract.ProjectName(owner, repo, t.pr), nil
}

// localConfig reads the optional --config file for policy, limits and domain.
func localConfig(path string) (*config.Controller, error) {
	return config.LoadController(path, nil)
}

// loadFlags are the flags of the commands that load a compose project the
// way a pull request's would be (up, plan).
type loadFlags struct {
	target
	sha, domain, configPath string
	port                    int
}

func (f *loadFlags) addFlags(cmd *cobra.Command, shaHelp string) {
	f.target.addFlags(cmd, "directory holding the compose project")
	cmd.Flags().StringVar(&f.sha, "sha", "", shaHelp)
	cmd.Flags().StringVar(&f.domain, "domain", "localhost", "domain of the preview hosts")
	cmd.Flags().StringVar(&f.configPath, "config", "", "slipway.yaml to take the policy, limits and domain from")
}

// load reads the configuration and loads the project in --dir: policy (the
// repository's relaxations included), limits and host templates from the
// configuration, the domain from --domain or the configuration, the SHA from
// --sha or the checkout.
func (f *loadFlags) load(cmd *cobra.Command) (*stack.Plan, *config.Controller, error) {
	ctx := cmd.Context()
	owner, repo, err := f.ownerRepo()
	if err != nil {
		return nil, nil, err
	}
	cfg, err := localConfig(f.configPath)
	if err != nil {
		return nil, nil, err
	}
	domain := f.domain
	if !cmd.Flags().Changed("domain") && f.configPath != "" {
		domain = cfg.Domain
	}
	sha := f.sha
	if sha == "" {
		if sha, err = sourceSHA(ctx, f.dir); err != nil {
			return nil, nil, err
		}
	}
	rp, _ := cfg.Repo(owner + "/" + repo)
	policy := cfg.PolicyFor(rp)
	loader, err := stack.NewLoader(cfg.Loader, slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)))
	if err != nil {
		return nil, nil, err
	}
	// The templates serve checks routes against (with several repositories
	// configured, the defaults name the repository).
	tmpl := cfg.HostTemplates()
	key, err := hostKey(cfg) // hostname: random, the key serve uses
	if err != nil {
		return nil, nil, err
	}
	plan, err := stack.Load(ctx, stack.Source{Dir: f.dir, Owner: owner, Repo: repo, PR: f.pr, SHA: sha}, stack.LoadOptions{
		Hosts:       stack.HostOptions{Domain: domain, Port: f.port, PrimaryTemplate: tmpl.Primary, ServiceTemplate: tmpl.Service, Key: key},
		Policy:      policy,
		OwnRegistry: cfg.OwnRegistry(),
		Limits:      cfg.Limits,
		Loader:      loader,
	})
	return plan, cfg, err
}

// localEngine is the logger and an engine on the local Docker Engine for
// the commands that work without a server; close releases the client.
func (g *globals) localEngine(ctx context.Context, opts stack.EngineOptions) (engine *stack.Engine, log *slog.Logger, close func(), err error) {
	if log, err = g.logger(); err != nil {
		return nil, nil, nil, err
	}
	cli, err := dockerClient(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	return stack.NewEngine(cli, log, opts), log, func() { cli.Close() }, nil
}

// sourceSHA is the commit to label an environment with when --sha is not
// given: the git HEAD of dir when it is a clean checkout, else a hash of
// the directory's content (so a changed working tree rebuilds).
func sourceSHA(ctx context.Context, dir string) (string, error) {
	if _, err := exec.LookPath("git"); err == nil {
		head, herr := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "--verify", "HEAD").Output()
		status, serr := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain").Output()
		if herr == nil && serr == nil && len(strings.TrimSpace(string(status))) == 0 {
			return strings.TrimSpace(string(head)), nil
		}
	}
	return contentHash(dir)
}

// contentHash hashes every regular file's path and content under dir
// (skipping .git), as 40 hex characters like a commit SHA.
func contentHash(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash %s: %w", dir, err)
	}
	sort.Strings(files)
	h := sha256.New()
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s\x00", filepath.ToSlash(rel))
		fh, err := os.Open(f)
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", f, err)
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", fmt.Errorf("hash %s: %w", f, err)
		}
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:40], nil
}
