package dockertest

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// CopyTree copies the files under src into dst, modes kept: a fixture
// from testdata into a checkout a test (or a benchmark) may change.
func CopyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, fi.Mode().Perm())
	})
}

// CopyFixture copies the fixture directory src into a new temporary
// directory of t and returns it.
func CopyFixture(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	if err := CopyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}
