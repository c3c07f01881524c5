package stack

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestReadIgnore covers which ignore file a build reads, and that one
// leaving the build context (a symlink in a PR's checkout, with a local
// `slipway up`) is refused, by name, instead of read.
func TestReadIgnore(t *testing.T) {
	type file struct{ content, link string }
	for _, tc := range []struct {
		name    string
		files   map[string]file // relative to the context; link makes a symlink
		want    []string
		wantErr string // substring of the error: the refused file
	}{
		{name: "none"},
		{name: "plain", files: map[string]file{".dockerignore": {content: "node_modules\n"}}, want: []string{"node_modules"}},
		{name: "dockerfile-specific first", files: map[string]file{
			".dockerignore":           {content: "a\n"},
			"Dockerfile.dockerignore": {content: "b\n"},
		}, want: []string{"b"}},
		{name: "symlink inside the context", files: map[string]file{
			"ignore/list":   {content: "tmp\n"},
			".dockerignore": {link: "ignore/list"},
		}, want: []string{"tmp"}},
		{name: "symlink out of the context", files: map[string]file{
			".dockerignore": {link: "../secret"},
		}, wantErr: ".dockerignore: it resolves to"},
		{name: "absolute symlink out", files: map[string]file{
			".dockerignore": {link: "/etc/hostname"},
		}, wantErr: ".dockerignore: it resolves to /etc/hostname"},
		{name: "dockerfile-specific symlink out", files: map[string]file{
			".dockerignore":           {content: "a\n"},
			"Dockerfile.dockerignore": {link: "/etc/hostname"},
		}, wantErr: "Dockerfile.dockerignore: it resolves to /etc/hostname"},
		{name: "dangling symlink", files: map[string]file{
			".dockerignore": {link: "/nonexistent/ignore"},
		}, wantErr: ".dockerignore: it cannot be resolved"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx := filepath.Join(dir, "context")
			writeTestFile(t, filepath.Join(dir, "secret"), "*\n")
			if err := os.MkdirAll(ctx, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, f := range tc.files {
				p := filepath.Join(ctx, name)
				if f.link == "" {
					writeTestFile(t, p, f.content)
				} else if err := os.Symlink(f.link, p); err != nil {
					t.Fatal(err)
				}
			}
			got, err := readIgnore(ctx, "Dockerfile")
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("readIgnore = %q, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("readIgnore = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func writeTestFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
