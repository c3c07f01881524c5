package policy

import (
	"os"
	"path/filepath"
	"testing"
)

func TestSubpathProblem(t *testing.T) {
	for sub, bad := range map[string]bool{
		"":                 false,
		"data":             false,
		"site/uploads":     false,
		"a..b/c":           false,
		"..":               true,
		"../../..":         true,
		"data/../../other": true,
		`data\..\..`:       true,
		"/etc":             true,
	} {
		if got := subpathProblem(sub) != ""; got != bad {
			t.Errorf("subpathProblem(%q) = %q, want a problem: %v", sub, subpathProblem(sub), bad)
		}
	}
}

// TestBindSourceCheckedAsMounted pins what the engine receives for a
// relative bind source through a symlink and "..": compose-go joins it to
// the working directory (filepath.Join cleans), so ./ssl/.. reaches the
// engine as the checkout itself — lexically and to the kernel — and that
// string is what the policy checks and spec.go mounts. (Written as an
// absolute path it stays uncleaned and is refused: the hostile case
// mnt-symlink-dotdot-absolute.)
func TestBindSourceCheckedAsMounted(t *testing.T) {
	root := filepath.Join(t.TempDir(), "checkout")
	writeFile(t, filepath.Join(root, "compose.yaml"), `services:
  short:
    image: busybox
    volumes: ["./ssl/..:/short"]
  long:
    image: busybox
    volumes:
      - {type: bind, source: ./ssl/.., target: /long}
`)
	if err := os.Symlink("/etc/ssl", filepath.Join(root, "ssl")); err != nil {
		t.Fatal(err)
	}
	project, err := loadProject(t, root, []string{filepath.Join(root, "compose.yaml")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"short", "long"} {
		if got := project.Services[name].Volumes[0].Source; got != root {
			t.Errorf("%s: compose-go hands the engine %q, want the checkout %q", name, got, root)
		}
	}
	for _, v := range Check(project, root, Options{}) {
		t.Errorf("the checkout itself is refused: %s", v)
	}
}
