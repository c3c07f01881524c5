package githubfake

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"
)

// getTarball answers GET /repos/{o}/{r}/tarball/{ref} as GitHub does: a 302
// to the archive host, with a one-time token in the query.
func (f *Fake) getTarball(w http.ResponseWriter, rp *repo, ref string) {
	sha := f.resolveRef(rp, ref)
	if sha == "" {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	token := hex.EncodeToString(b)
	f.archives[token] = rp.fullName() + "@" + sha
	w.Header().Set("Location", fmt.Sprintf("%s%s/legacy.tar.gz/%s?token=%s", f.CodeloadURL, rp.fullName(), sha, token))
	w.WriteHeader(http.StatusFound)
}

// serveCodeload serves GET /{owner}/{repo}/legacy.tar.gz/{sha}?token=...
func (f *Fake) serveCodeload(w http.ResponseWriter, r *http.Request) {
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if r.Method != http.MethodGet || len(seg) != 4 || seg[2] != "legacy.tar.gz" {
		http.NotFound(w, r)
		return
	}
	fullName, sha := seg[0]+"/"+seg[1], seg[3]
	f.mu.Lock()
	granted, ok := f.archives[r.URL.Query().Get("token")]
	rp := f.repos[strings.ToLower(fullName)]
	var files Files
	if rp != nil {
		files = rp.commits[sha]
	}
	f.mu.Unlock()
	if !ok || granted != fullName+"@"+sha || files == nil {
		http.NotFound(w, r)
		return
	}
	body, err := Tarball(rp.owner, rp.name, sha, files)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/x-gzip")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%s-%s-%s.tar.gz", rp.owner, rp.name, sha[:7]))
	_, _ = w.Write(body)
}

// Tarball builds a source archive the way GitHub does: gzip, a pax global
// header whose comment is the commit SHA, everything under one top-level
// directory "<owner>-<repo>-<sha[:7]>/", with directory entries.
func Tarball(owner, repo, sha string, files Files) ([]byte, error) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	tw := tar.NewWriter(zw)
	top := fmt.Sprintf("%s-%s-%s/", owner, repo, sha[:min(7, len(sha))])
	mtime := time.Unix(1700000000, 0)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
		PAXRecords: map[string]string{"comment": sha}, Format: tar.FormatPAX}); err != nil {
		return nil, err
	}
	dirs := map[string]bool{}
	var names []string
	for name := range files {
		names = append(names, name)
		for d := path.Dir(name); d != "." && d != "/"; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	entries := names
	for d := range dirs {
		entries = append(entries, d+"/")
	}
	slices.Sort(entries)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: top, Mode: 0o775, ModTime: mtime}); err != nil {
		return nil, err
	}
	for _, name := range entries {
		var hdr *tar.Header
		content := ""
		switch v := files[name]; {
		case strings.HasSuffix(name, "/"):
			hdr = &tar.Header{Typeflag: tar.TypeDir, Name: top + name, Mode: 0o775}
		case strings.HasPrefix(v, Symlink):
			hdr = &tar.Header{Typeflag: tar.TypeSymlink, Name: top + name, Linkname: strings.TrimPrefix(v, Symlink), Mode: 0o777}
		case strings.HasPrefix(v, Executable):
			content = strings.TrimPrefix(v, Executable)
			hdr = &tar.Header{Typeflag: tar.TypeReg, Name: top + name, Mode: 0o775, Size: int64(len(content))}
		default:
			content = v
			hdr = &tar.Header{Typeflag: tar.TypeReg, Name: top + name, Mode: 0o664, Size: int64(len(content))}
		}
		hdr.ModTime = mtime
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
