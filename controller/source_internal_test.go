package controller

import (
	"os"
	"path/filepath"
	"testing"
)

func TestCopyTreeKeepsLinksAsLinks(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "web", "www"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "web", "run.sh"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../web/run.sh", filepath.Join(src, "web", "www", "link")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "copy")
	if err := copyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dst, "web", "run.sh"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run.sh: %v %v", fi, err)
	}
	link, err := os.Readlink(filepath.Join(dst, "web", "www", "link"))
	if err != nil || link != "../web/run.sh" {
		t.Errorf("link %q %v: want the same relative link, not a copy of its target", link, err)
	}
	if err := copyTree(src, dst); err == nil {
		t.Error("copying over an existing tree succeeded")
	}
}

func TestDeployCopiesAndMounts(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"abc", "abc.d1", "abc.d10", "abc.d2", "abc.dx", "abd.d3", "abc.partial"} {
		os.Mkdir(filepath.Join(base, d), 0o755)
	}
	got := deployCopies(base, "abc")
	if len(got) != 3 || got[0].n != 1 || got[1].n != 2 || got[2].n != 10 {
		t.Errorf("copies %+v", got)
	}
	dir := filepath.Join(base, "abc.d1")
	for _, tt := range []struct {
		sources []string
		want    bool
	}{
		{[]string{dir}, true},
		{[]string{filepath.Join(dir, "src")}, true},
		{[]string{dir + "0/src"}, false},
		{[]string{"/var/lib/other"}, false},
		{nil, false},
	} {
		if got := mountedFrom(tt.sources, dir); got != tt.want {
			t.Errorf("mountedFrom(%v) = %v", tt.sources, got)
		}
	}
}

// A mount source that names the copy through a symlink (a volume's device
// given under a linked state directory) still marks the copy as written.
func TestMountedFromFollowsSymlinks(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "abc.d1")
	if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(t.TempDir(), "state")
	if err := os.Symlink(base, link); err != nil {
		t.Fatal(err)
	}
	if !mountedFrom([]string{filepath.Join(link, "abc.d1", "src")}, dir) {
		t.Error("a source under a link to the copy's directory is not counted")
	}
	if !mountedFrom([]string{filepath.Join(dir, "src")}, filepath.Join(link, "abc.d1")) {
		t.Error("a source under the copy named through a link is not counted")
	}
	if mountedFrom([]string{filepath.Join(link, "abc.d10")}, dir) {
		t.Error("a sibling copy is counted")
	}
}
