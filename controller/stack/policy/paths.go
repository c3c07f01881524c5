package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
)

// A path the project names is accepted as a path of the checkout only when
// three readings of it agree on one place inside the checkout:
//
//   - the kernel's, as written: what compose-go opens for an absolute
//     env_file, and what the engine's local driver mounts as a device (".."
//     after a symlink climbs from the link's target);
//   - the kernel's, after lexical cleaning: what compose-go makes of a
//     relative path (filepath.Join) and what the engine mounts as a bind
//     source (path.Clean in its mount parser);
//   - the checkout's alone: the path resolved with the checkout as the root
//     of the filesystem (securejoin.SecureJoin), so that no symlink in it
//     leaves the checkout, even one that leads back in.
//
// A path that cannot be resolved (a symlink loop, a dangling symlink, a
// permission error, ".." below a directory that does not exist) is refused.
// Components that do not exist yet are taken as written: the engine would
// create them, and nothing in them can be a symlink yet.

// hostPath is a path on the host that some field of the project names,
// resolved.
type hostPath struct {
	// real is where the kernel's reading of the path ends: the reading
	// that leaves the checkout when one does, else the cleaned one (what
	// the engine mounts).
	real string
	// inside says whether the path was accepted as a path of the checkout.
	inside bool
	// problem says why it was not, as a phrase following "it".
	problem string
}

// describe says why a path was refused, for messages that already show the
// path as written (the parameter).
func (h hostPath) describe(string) string {
	if h.inside {
		return "is inside the checkout"
	}
	return h.problem
}

// resolveHostPath resolves p (absolute, or relative to base, a directory
// of the checkout the caller chose) against the checkout root, whose
// symlinks are resolved. A path counts as a path of the checkout only when
// it is written below the checkout (as root, or as the ancestor of base
// that resolves to root); an absolute path that reaches the checkout some
// other way (/proc/self/cwd/...) is refused.
func resolveHostPath(root, base, p string) hostPath {
	return resolveBelow(root, base, p, "the checkout")
}

// resolveBelow is resolveHostPath for any trusted directory root, named
// in messages as what.
func resolveBelow(root, base, p, what string) hostPath {
	if strings.HasPrefix(p, "~") {
		return inHome(p, what)
	}
	written := p
	if !filepath.IsAbs(p) {
		written = base + string(filepath.Separator) + p
	}
	written = normalize(written)
	rel, ok := belowCheckout(root, base, written)
	if !ok {
		return outsideCheckout(written, "", what)
	}
	return agree(root, rel, written, what)
}

// agree accepts written (below the checkout root as rel) when its three
// readings agree.
func agree(root, rel, written, what string) hostPath {
	cleaned := filepath.Clean(written)
	asCleaned, err := kernelPath(cleaned)
	if err != nil {
		return refused(cleaned, "cannot be resolved (%v)", err)
	}
	if !within(root, asCleaned) {
		return refused(asCleaned, "resolves to %s, outside %s", asCleaned, what)
	}
	asWritten, err := kernelPath(written)
	if err != nil {
		return refused(cleaned, "cannot be resolved (%v)", err)
	}
	if !within(root, asWritten) {
		return refused(asWritten, "resolves to %s, outside %s", asWritten, what)
	}
	if asWritten != asCleaned {
		return refused(asCleaned, "reaches %s as written but %s once cleaned (.. after a symlink); refused as ambiguous", asWritten, asCleaned)
	}
	scoped, err := securejoin.SecureJoin(root, rel)
	if err != nil {
		return refused(asCleaned, "cannot be resolved inside %s (%v)", what, err)
	}
	if scoped != asCleaned {
		return refused(asCleaned, "reaches %s through a symlink that leaves %s (resolved inside %s alone it would be %s)", asCleaned, what, what, scoped)
	}
	return hostPath{real: asCleaned, inside: true}
}

func refused(real, format string, args ...any) hostPath {
	return hostPath{real: real, problem: fmt.Sprintf(format, args...)}
}

// outsideCheckout describes a path not written below the checkout; real is
// its kernel reading when it has one, for classifying it (engine socket,
// system path).
func outsideCheckout(written, problem, what string) hostPath {
	cleaned := filepath.Clean(written)
	real, err := kernelPath(cleaned)
	if err != nil {
		real = cleaned
	}
	if problem == "" {
		problem = "is outside " + what
		if real != cleaned {
			problem = "resolves to " + real + ", outside " + what
		}
	}
	return hostPath{real: real, problem: problem}
}

// inHome refuses a path compose-go expands to the home directory (any "~"
// prefix: the name that follows is joined to it).
func inHome(p, what string) hostPath {
	problem := "is in the controller's home directory (~), outside " + what
	home, err := os.UserHomeDir()
	if err != nil {
		return hostPath{real: p, problem: problem}
	}
	return outsideCheckout(filepath.Join(home, p[1:]), problem, what)
}

// normalize drops the empty and "." components of an absolute path, which
// change nothing for the kernel, and keeps "..", which does.
func normalize(p string) string {
	var kept []string
	for _, c := range strings.Split(filepath.ToSlash(p), "/") {
		if c != "" && c != "." {
			kept = append(kept, c)
		}
	}
	return "/" + strings.Join(kept, "/")
}

// OpenInside opens the file name, relative to the trusted directory dir
// (a build context), for reading, only if it is a file of dir by the rule
// every path of the project is held to: a symlink leaving dir, or one that
// cannot be resolved, is refused with an error that says which file and
// why. A missing file gives an error that matches fs.ErrNotExist. The file
// is opened through an os.Root, so what is read lies inside dir even if the
// tree changed since it was resolved.
func OpenInside(dir, name string) (*os.File, error) {
	if filepath.IsAbs(name) {
		return nil, fmt.Errorf("open %s in %s: not a relative path", name, dir)
	}
	given, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", name, dir, err)
	}
	root, err := filepath.EvalSymlinks(given)
	if err != nil {
		return nil, fmt.Errorf("open %s in %s: %w", name, dir, err)
	}
	if hp := resolveBelow(root, given, name, given); !hp.inside {
		return nil, fmt.Errorf("refused %s: it %s", filepath.Join(given, name), hp.problem)
	}
	return os.OpenInRoot(root, name)
}

// belowCheckout reports whether the normalized absolute path written starts
// with a spelling of the checkout, and returns the rest of it, unresolved.
func belowCheckout(root, base, written string) (string, bool) {
	for _, spelling := range checkoutSpellings(root, base) {
		if written == spelling {
			return ".", true
		}
		prefix := strings.TrimSuffix(spelling, "/") + "/"
		if rest, ok := strings.CutPrefix(written, prefix); ok {
			return rest, true
		}
	}
	return "", false
}

// checkoutSpellings returns the ways a path of the checkout can begin: the
// resolved root, and the checkout as the loader was given it — the
// shortest ancestor of base (trusted: chosen by the caller) that resolves
// to root.
func checkoutSpellings(root, base string) []string {
	spellings := []string{root}
	var given string
	for dir := filepath.Clean(base); ; dir = filepath.Dir(dir) {
		if real, err := filepath.EvalSymlinks(dir); err == nil && real == root {
			given = dir
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	if given != "" && given != root {
		spellings = append(spellings, given)
	}
	return spellings
}

// kernelPath resolves every symlink in the normalized absolute path p as
// the kernel does when it opens p: ".." after a symlink climbs from the
// link's target. A last component that does not exist is taken as written,
// below its resolved parent, when it is a plain name; a dangling symlink,
// or ".." below something that does not exist, is an error.
func kernelPath(p string) (string, error) {
	real, err := filepath.EvalSymlinks(p)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return real, err
	}
	if _, lerr := os.Lstat(p); lerr == nil {
		return "", fmt.Errorf("%s is a symlink to something that does not exist", p)
	}
	parent, name := splitLast(p)
	if name == "" || name == ".." {
		return "", err
	}
	realParent, err := kernelPath(parent)
	if err != nil {
		return "", err
	}
	return filepath.Join(realParent, name), nil
}

// splitLast splits a normalized absolute path into its parent, unresolved
// and uncleaned, and its last component.
func splitLast(p string) (parent, name string) {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/", p[i+1:]
	}
	return p[:i], p[i+1:]
}

// within reports whether p is root or lies below it. Both must be clean and
// absolute.
func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// strictlyWithin reports whether p lies below dir (and is not dir itself).
func strictlyWithin(dir, p string) bool {
	return p != dir && within(dir, p)
}

// isEngineSocket reports whether the host path p is, or contains, a
// container engine socket: any *.sock, and /run or /var/run (or one of
// their ancestors), where the Docker, containerd and rootless sockets live.
func isEngineSocket(p string) bool {
	if strings.HasSuffix(filepath.Base(p), ".sock") {
		return true
	}
	for _, dir := range []string{"/run", "/var/run"} {
		if within(p, dir) || within(dir, p) {
			return true
		}
	}
	return false
}

// isHostSystemPath reports whether the host path p is the root, a top-level
// directory, or lies below a directory that holds the host's configuration,
// credentials, kernel interfaces, binaries or the engine's own data.
func isHostSystemPath(p string) bool {
	if p == "/" || filepath.Dir(p) == "/" {
		return true
	}
	for _, dir := range []string{
		"/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32",
		"/proc", "/root", "/run", "/sbin", "/snap", "/sys", "/usr",
		"/var/backups", "/var/lib", "/var/log", "/var/mail", "/var/run", "/var/spool",
	} {
		if within(dir, p) {
			return true
		}
	}
	return false
}

// isRemoteRef reports whether an include or extends reference names a
// remote resource (the git and OCI loaders docker compose can be given).
func isRemoteRef(s string) bool {
	return strings.Contains(s, "://") || isRemoteContext(s)
}

// isRemoteContext reports whether a build context is fetched by the builder
// (the prefixes buildkit recognises).
func isRemoteContext(s string) bool {
	for _, prefix := range []string{"https://", "http://", "git://", "ssh://", "github.com/", "git@"} {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}
