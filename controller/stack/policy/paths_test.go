package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// pathFixture builds, in a fresh directory, a checkout with the symlinks
// the path tests walk through, and returns the directory holding it (the
// checkout's parent) and the checkout, both with symlinks resolved.
func pathFixture(t *testing.T) (parent, root string) {
	t.Helper()
	parent, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	root = filepath.Join(parent, "checkout")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(root, "a", "b"), 0o755))
	must(os.MkdirAll(filepath.Join(parent, "outside"), 0o755))
	for link, target := range map[string]string{
		"ab":       "a/b",
		"a/b/up":   "../..",
		"loop1":    "loop2",
		"loop2":    "loop1",
		"dangling": "/nonexistent/target",
		"missing":  "nothing-here",
		"ssl":      "/etc/ssl",
		"parent":   "..",
		"self":     ".",
		"absolute": filepath.Join(root, "a"),
	} {
		must(os.Symlink(target, filepath.Join(root, link)))
	}
	// The checkout reached through a symlink outside it, as a caller may
	// give it (on macOS, /tmp is /private/tmp).
	must(os.Symlink(root, filepath.Join(parent, "alias")))
	return parent, root
}

func TestKernelPath(t *testing.T) {
	parent, root := pathFixture(t)
	for _, tc := range []struct {
		in, want string
		err      bool
	}{
		{in: root + "/a/b", want: root + "/a/b"},
		{in: root + "/ab/new/file", want: root + "/a/b/new/file"},
		// ".." after a symlink climbs from the target, as the kernel does.
		{in: root + "/ab/..", want: root + "/a"},
		{in: root + "/ab/up", want: root},
		{in: root + "/ab/up/../x", want: parent + "/x"},
		{in: root + "/ssl/..", want: "/etc"},
		{in: root + "/self/self/a", want: root + "/a"},
		{in: parent + "/alias/a", want: root + "/a"},
		// Fail closed: loops, dangling symlinks, ".." below nothing.
		{in: root + "/loop1", err: true},
		{in: root + "/dangling/x", err: true},
		{in: root + "/missing", err: true},
		{in: root + "/nowhere/../a", err: true},
	} {
		got, err := kernelPath(tc.in)
		switch {
		case tc.err && err == nil:
			t.Errorf("kernelPath(%q) = %q, want an error", tc.in, got)
		case !tc.err && (err != nil || got != tc.want):
			t.Errorf("kernelPath(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestResolveHostPath(t *testing.T) {
	parent, root := pathFixture(t)
	home, _ := os.UserHomeDir()
	for _, tc := range []struct {
		name, base, path string
		inside           bool
		real             string // when set, the reading reported
		problem          string // substring of the reason, when refused
	}{
		{name: "the checkout", base: root, path: ".", inside: true, real: root},
		{name: "a file to be created", base: root, path: "data/new", inside: true, real: root + "/data/new"},
		{name: "a symlink inside", base: root, path: "ab/c", inside: true, real: root + "/a/b/c"},
		{name: "up inside", base: root, path: "ab/up/a", inside: true, real: root + "/a"},
		{name: "given through a symlink", base: parent + "/alias", path: parent + "/alias/a/b", inside: true, real: root + "/a/b"},
		{name: "relative to a given base", base: parent + "/alias/a", path: "b", inside: true, real: root + "/a/b"},

		{name: "dotdot", base: root, path: "../outside", real: parent + "/outside", problem: "outside the checkout"},
		{name: "symlink out", base: root, path: "ssl/certs", real: "/etc/ssl/certs", problem: "resolves to /etc/ssl/certs"},
		{name: "up past the checkout", base: root, path: "ab/up/../outside", real: parent + "/outside", problem: "outside the checkout"},
		// Lexically the checkout, /etc to the kernel: the readings disagree.
		{name: "symlink then dotdot, absolute", base: root, path: root + "/ssl/..", real: "/etc", problem: "resolves to /etc"},
		{name: "symlink then dotdot, relative", base: root, path: "ssl/..", real: "/etc", problem: "resolves to /etc"},
		{name: "symlink then dotdot inside", base: root, path: root + "/ab/..", real: root, problem: "once cleaned"},
		// Out through the parent and back in: inside to the kernel, but
		// only because of where the controller keeps checkouts.
		{name: "out and back", base: root, path: "parent/checkout/a", real: root + "/a", problem: "leaves the checkout"},
		{name: "absolute symlink into the checkout", base: root, path: "absolute/b", real: root + "/a/b", problem: "leaves the checkout"},
		{name: "loop", base: root, path: "loop1/x", problem: "cannot be resolved"},
		{name: "dangling", base: root, path: "dangling/x", problem: "cannot be resolved"},
		{name: "dangling inside", base: root, path: "missing", problem: "cannot be resolved"},
		{name: "not written below the checkout", base: root, path: parent + "/outside", real: parent + "/outside", problem: "is outside the checkout"},
		{name: "home", base: root, path: "~/.ssh", real: filepath.Join(home, ".ssh"), problem: "home directory"},
		{name: "home, no slash", base: root, path: "~", real: home, problem: "home directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hp := resolveHostPath(root, tc.base, tc.path)
			if hp.inside != tc.inside {
				t.Fatalf("inside = %v, want %v (%+v)", hp.inside, tc.inside, hp)
			}
			if tc.real != "" && hp.real != tc.real {
				t.Errorf("real = %q, want %q", hp.real, tc.real)
			}
			if !tc.inside && !strings.Contains(hp.describe(tc.path), tc.problem) {
				t.Errorf("describe = %q, want it to contain %q", hp.describe(tc.path), tc.problem)
			}
		})
	}
}

// An absolute path that reaches the checkout through a symlink the
// controller did not choose (here a stand-in for /proc/self/cwd, which
// means something else to the engine) is not a path of the checkout.
func TestResolveHostPathTrustsOnlyTheGivenSpelling(t *testing.T) {
	parent, root := pathFixture(t)
	if hp := resolveHostPath(root, root, parent+"/alias/a"); hp.inside {
		t.Errorf("a path through an alias the caller did not give was accepted: %+v", hp)
	}
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"/":             "/",
		"/a//b/./c/":    "/a/b/c",
		"/a/../b":       "/a/../b",
		"/a/b/..":       "/a/b/..",
		"/./../a/./../": "/../a/..",
	} {
		if got := normalize(in); got != want {
			t.Errorf("normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOpenInside(t *testing.T) {
	parent, root := pathFixture(t)
	if err := os.WriteFile(filepath.Join(root, "a", "file"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir, name string
		notExist  bool
		problem   string // substring of the error; "" for success
	}{
		{dir: root, name: "a/file"},
		{dir: parent + "/alias", name: "ab/up/a/file"},
		{dir: root, name: "a/none", notExist: true, problem: "no such file"},
		{dir: root, name: "ssl/openssl.cnf", problem: "refused " + root + "/ssl/openssl.cnf: it resolves to /etc/ssl/openssl.cnf"},
		{dir: root + "/a", name: "b/up/a/file", problem: "a symlink that leaves " + root + "/a"},
		{dir: root, name: "missing", problem: "cannot be resolved"},
		{dir: root, name: root + "/a/file", problem: "not a relative path"},
	} {
		f, err := OpenInside(tc.dir, tc.name)
		if err == nil {
			f.Close()
		}
		switch {
		case tc.problem == "" && err != nil:
			t.Errorf("OpenInside(%s, %s): %v", tc.dir, tc.name, err)
		case tc.problem != "" && (err == nil || !strings.Contains(err.Error(), tc.problem)):
			t.Errorf("OpenInside(%s, %s) = %v, want an error containing %q", tc.dir, tc.name, err, tc.problem)
		case errors.Is(err, fs.ErrNotExist) != tc.notExist:
			t.Errorf("OpenInside(%s, %s) = %v, not-exist %v, want %v", tc.dir, tc.name, err, !tc.notExist, tc.notExist)
		}
	}
}
