package controller

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	gh "github.com/slipwayhq/slipway/controller/github"
	"github.com/slipwayhq/slipway/internal/contract"
)

// Sources live under state_dir/src/<project>/: <sha> is the pristine
// extraction of a commit, never given to the engine; <sha>.d<N> are the
// copies deploys use, whose paths bind mounts point into.
//
// A deploy never reuses a copy that a container of the environment can
// write, whatever the mount type (a read-write bind, or a read-write mount
// of a volume that binds a directory of the copy): the PR's code could have
// rewritten it (say, turned a mounted directory into a symlink to /) for the
// next deploy to mount. A copy only mounted read-only, or not at all, is
// reused, so a re-converge at the same SHA keeps every container.

// deployDirPrefix separates a SHA from a copy's number.
const deployDirPrefix = ".d"

// source returns a directory holding sha's source for a deploy of project.
func (c *Controller) source(ctx context.Context, repo gh.Repo, project, sha string) (string, error) {
	base := filepath.Join(c.srcDir, project)
	pristine := filepath.Join(base, sha)
	if err := c.fetch(ctx, repo, pristine, sha); err != nil {
		return "", err
	}
	copies := deployCopies(base, sha)
	if n := len(copies); n > 0 {
		latest := filepath.Join(base, copies[n-1].name)
		writable, err := c.engine.WritableBinds(ctx, project)
		if err != nil {
			return "", err
		}
		if !mountedFrom(writable, latest) {
			return latest, nil
		}
	}
	next := 1
	if n := len(copies); n > 0 {
		next = copies[n-1].n + 1
	}
	dir := filepath.Join(base, sha+deployDirPrefix+strconv.Itoa(next))
	if err := copyTree(pristine, dir); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("copy the source for a deploy: %w", err)
	}
	return dir, nil
}

// fetch downloads and extracts sha into dir unless it is there.
func (c *Controller) fetch(ctx context.Context, repo gh.Repo, dir, sha string) error {
	if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return fmt.Errorf("create source directory: %w", err)
	}
	tmp := dir + ".partial"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("clear partial source: %w", err)
	}
	if _, err := c.gh.DownloadSource(ctx, repo, sha, tmp, c.limits); err != nil {
		return fmt.Errorf("fetch source of %s at %s: %w", repo, contract.ShortSHA(sha), err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		return fmt.Errorf("store source: %w", err)
	}
	return nil
}

type deployCopy struct {
	name string
	n    int
}

// deployCopies lists the copies of sha under base, oldest first.
func deployCopies(base, sha string) []deployCopy {
	entries, _ := os.ReadDir(base)
	var out []deployCopy
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), sha+deployDirPrefix)
		if !ok || !e.IsDir() {
			continue
		}
		if n, err := strconv.Atoi(rest); err == nil && n > 0 {
			out = append(out, deployCopy{e.Name(), n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].n < out[j].n })
	return out
}

// mountedFrom reports whether any of sources is dir or inside it, as
// written or with symlinks followed (a volume's device may name the copy
// through a link to the state directory).
func mountedFrom(sources []string, dir string) bool {
	dirs := []string{dir}
	if real, err := filepath.EvalSymlinks(dir); err == nil && real != dir {
		dirs = append(dirs, real)
	}
	for _, s := range sources {
		paths := []string{s}
		if real, err := filepath.EvalSymlinks(s); err == nil && real != s {
			paths = append(paths, real)
		}
		for _, p := range paths {
			for _, d := range dirs {
				if p == d || strings.HasPrefix(p, d+string(filepath.Separator)) {
					return true
				}
			}
		}
	}
	return false
}

// keepSources removes everything under the project's source directory but
// the named entries (the pristine tree and the copy in use).
func (c *Controller) keepSources(project string, keep ...string) {
	base := filepath.Join(c.srcDir, project)
	entries, err := os.ReadDir(base)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !contains(keep, e.Name()) {
			os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// copyTree copies the directory src to dst (which must not exist): regular
// files with their modes, directories, and symlinks as links (never
// followed; extraction only keeps links that stay inside the tree).
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.Mkdir(target, info.Mode().Perm()|0o700)
		case info.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(link, target)
		case info.Mode().IsRegular():
			return copyFile(p, target, info.Mode().Perm())
		}
		return nil // nothing else is extracted
	})
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
