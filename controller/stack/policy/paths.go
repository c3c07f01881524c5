package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// maxSymlinks bounds symlink resolution, as the kernel's ELOOP does.
const maxSymlinks = 40

// resolvePath follows every symlink in the absolute path p the way the
// kernel does when the engine (or compose-go) opens it: ".." after a
// symlink climbs from the symlink's target, not lexically. The first
// component that does not exist ends the walk and the rest is appended as
// written: the engine would create it, and nothing in it can be a symlink
// yet.
func resolvePath(p string) (string, error) {
	if !filepath.IsAbs(p) {
		return "", fmt.Errorf("path %q is not absolute", p)
	}
	resolved := string(filepath.Separator)
	rest := splitPath(p)
	links := 0
	for len(rest) > 0 {
		c := rest[0]
		rest = rest[1:]
		switch c {
		case "", ".":
			continue
		case "..":
			resolved = filepath.Dir(resolved)
			continue
		}
		next := filepath.Join(resolved, c)
		fi, err := os.Lstat(next)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
			return filepath.Join(append([]string{next}, rest...)...), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			resolved = next
			continue
		}
		links++
		if links > maxSymlinks {
			return "", fmt.Errorf("resolve %s: too many levels of symbolic links", p)
		}
		target, err := os.Readlink(next)
		if err != nil {
			return "", err
		}
		if filepath.IsAbs(target) {
			resolved = string(filepath.Separator)
		}
		rest = append(splitPath(target), rest...)
	}
	return resolved, nil
}

func splitPath(p string) []string {
	return strings.Split(filepath.ToSlash(p), "/")
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

// hostPath is a path on the host that some field of the project names,
// resolved.
type hostPath struct {
	// real is the path with symlinks followed (the later of the lexical
	// and the kernel reading when they differ and one escapes).
	real string
	// inside says whether real is inside the checkout.
	inside bool
	// err is set when the path could not be resolved; it is then treated
	// as outside.
	err error
}

// resolveHostPath resolves p (absolute, or relative to base) against the
// checkout root. The path is resolved twice — as written, the kernel's way,
// and after lexical cleaning, the way compose-go and the engine clean paths
// before using them — and it is inside only if both readings are.
func resolveHostPath(root, base, p string) hostPath {
	if !filepath.IsAbs(p) {
		// Not filepath.Join: it would clean away the kernel's reading.
		p = strings.TrimSuffix(base, string(filepath.Separator)) + string(filepath.Separator) + p
	}
	var first hostPath
	for i, candidate := range []string{p, filepath.Clean(p)} {
		real, err := resolvePath(candidate)
		hp := hostPath{real: real, err: err, inside: err == nil && within(root, real)}
		if err != nil {
			hp.real = filepath.Clean(candidate)
		}
		if !hp.inside {
			return hp
		}
		if i == 0 {
			first = hp
		}
	}
	return first
}

// describe says where a path resolved to, for messages.
func (h hostPath) describe(written string) string {
	switch {
	case h.err != nil:
		return fmt.Sprintf("cannot be resolved (%v)", h.err)
	case filepath.Clean(written) != h.real:
		return "resolves to " + h.real + ", outside the checkout"
	default:
		return "is outside the checkout"
	}
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
