package github

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// entry is one crafted tar entry.
type entry struct {
	hdr  tar.Header
	body string
}

func file(name, body string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body))}, body: body}
}

func dir(name string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755}}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func buildTar(t *testing.T, gz bool, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("write header %s: %v", h.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatalf("write body %s: %v", h.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

func TestExtractTarballGitHubArchive(t *testing.T) {
	for _, gz := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzip=%v", gz), func(t *testing.T) {
			setuid := file("acme-web-abc1234/bin/run", "#!/bin/sh\n")
			setuid.hdr.Mode = 0o4755
			sticky := dir("acme-web-abc1234/tmp/")
			sticky.hdr.Mode = 0o1777
			archive := buildTar(t, gz,
				entry{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header",
					PAXRecords: map[string]string{"comment": "abc1234"}, Format: tar.FormatPAX}},
				dir("acme-web-abc1234/"),
				file("acme-web-abc1234/compose.yaml", "services: {}\n"),
				dir("acme-web-abc1234/bin/"),
				setuid,
				sticky,
				file("acme-web-abc1234/deep/er/still.txt", "x"), // parents implied
				symlink("acme-web-abc1234/link", "compose.yaml"),
				symlink("acme-web-abc1234/deep/up", "../bin/run"),
				hardlink("acme-web-abc1234/hard", "acme-web-abc1234/compose.yaml"),
			)
			dst := filepath.Join(t.TempDir(), "src")
			stats, err := ExtractTarball(context.Background(), bytes.NewReader(archive), dst, ExtractLimits{})
			if err != nil {
				t.Fatalf("extract: %v", err)
			}
			want := ExtractStats{Files: 3, Dirs: 2, Symlinks: 2, Hardlinks: 1, Bytes: int64(len("services: {}\n#!/bin/sh\nx")), TopLevel: "acme-web-abc1234"}
			if stats != want {
				t.Errorf("stats = %+v, want %+v", stats, want)
			}
			readFile := func(name string) string {
				b, err := os.ReadFile(filepath.Join(dst, name))
				if err != nil {
					t.Fatalf("read %s: %v", name, err)
				}
				return string(b)
			}
			if got := readFile("compose.yaml"); got != "services: {}\n" {
				t.Errorf("compose.yaml = %q", got)
			}
			if got := readFile("link"); got != "services: {}\n" {
				t.Errorf("link reads %q", got)
			}
			if got := readFile("hard"); got != "services: {}\n" {
				t.Errorf("hard reads %q", got)
			}
			if got := readFile("deep/up"); got != "#!/bin/sh\n" {
				t.Errorf("deep/up reads %q", got)
			}
			for name, mode := range map[string]os.FileMode{"bin/run": 0o755, "compose.yaml": 0o644, "tmp": os.ModeDir | 0o755} {
				fi, err := os.Lstat(filepath.Join(dst, name))
				if err != nil {
					t.Fatal(err)
				}
				if fi.Mode() != mode {
					t.Errorf("%s mode = %v, want %v (setuid/sticky dropped)", name, fi.Mode(), mode)
				}
			}
		})
	}
}

func TestExtractTarballRefuses(t *testing.T) {
	top := "acme-web-abc1234/"
	device := func(typ byte) entry {
		return entry{hdr: tar.Header{Typeflag: typ, Name: top + "dev", Devmajor: 1, Devminor: 3, Mode: 0o666}}
	}
	cases := []struct {
		name    string
		entries []entry
		limits  ExtractLimits
		entry   string // the entry the error must name
		reason  string
	}{
		{"absolute path", []entry{dir(top), file("/etc/passwd", "x")}, ExtractLimits{}, "/etc/passwd", "absolute path"},
		{"dot-dot", []entry{dir(top), file(top+"../../evil", "x")}, ExtractLimits{}, top + "../../evil", `".."`},
		{"dot-dot inside", []entry{dir(top), file(top+"a/../b", "x")}, ExtractLimits{}, top + "a/../b", `".."`},
		{"second top-level", []entry{dir(top), file("other/x", "x")}, ExtractLimits{}, "other/x", "outside the top-level"},
		{"absolute symlink", []entry{dir(top), symlink(top+"l", "/etc/shadow")}, ExtractLimits{}, top + "l", "outside"},
		{"symlink out", []entry{dir(top), symlink(top+"a/l", "../../x")}, ExtractLimits{}, top + "a/l", "outside"},
		{"write through symlink", []entry{dir(top), symlink(top+"l", "sub"), dir(top + "sub/"), file(top+"l/x", "x")}, ExtractLimits{}, top + "l/x", "symlink"},
		{"symlink chain out", []entry{dir(top), symlink(top+"d/l", ".."), symlink(top+"e", "d/l/..")}, ExtractLimits{}, top + "e", "outside"},
		{"symlink escaping through a later one", []entry{dir(top), symlink(top+"e", "d/l/.."), symlink(top+"d/l", "..")}, ExtractLimits{}, top + "e", "outside"},
		{"symlink loop", []entry{dir(top), symlink(top+"a", "b"), symlink(top+"b", "a"), symlink(top+"c", "a/x")}, ExtractLimits{}, top + "c", "loop"},
		{"hardlink out", []entry{dir(top), hardlink(top+"h", "/etc/passwd")}, ExtractLimits{}, top + "h", "outside"},
		{"hardlink dot-dot", []entry{dir(top), hardlink(top+"h", top+"../x")}, ExtractLimits{}, top + "h", "outside"},
		{"hardlink to symlink", []entry{dir(top), symlink(top+"l", "x"), hardlink(top+"h", top+"l")}, ExtractLimits{}, top + "h", "not an earlier regular file"},
		{"hardlink to later file", []entry{dir(top), hardlink(top+"h", top+"x"), file(top+"x", "x")}, ExtractLimits{}, top + "h", "not an earlier regular file"},
		{"char device", []entry{dir(top), device(tar.TypeChar)}, ExtractLimits{}, top + "dev", "device"},
		{"block device", []entry{dir(top), device(tar.TypeBlock)}, ExtractLimits{}, top + "dev", "device"},
		{"fifo", []entry{dir(top), {hdr: tar.Header{Typeflag: tar.TypeFifo, Name: top + "p", Mode: 0o644}}}, ExtractLimits{}, top + "p", "FIFO"},
		{"duplicate", []entry{dir(top), file(top+"x", "1"), file(top+"x", "2")}, ExtractLimits{}, top + "x", "duplicate"},
		{"file over per-file limit", []entry{dir(top), file(top+"big", strings.Repeat("x", 2000))}, ExtractLimits{MaxFileBytes: 1000}, top + "big", "1000-byte limit per file"},
		{"total over limit", []entry{dir(top), file(top+"a", strings.Repeat("x", 600)), file(top+"b", strings.Repeat("x", 600))}, ExtractLimits{MaxTotalBytes: 1000}, top + "b", "1000-byte total limit"},
		{"too many entries", []entry{dir(top), file(top+"a", ""), file(top+"b", ""), file(top+"c", "")}, ExtractLimits{MaxEntries: 3}, top + "c", "more than 3 entries"},
	}
	for _, tc := range cases {
		for _, gz := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/gzip=%v", tc.name, gz), func(t *testing.T) {
				archive := buildTar(t, gz, tc.entries...)
				dst := filepath.Join(t.TempDir(), "src")
				_, err := ExtractTarball(context.Background(), bytes.NewReader(archive), dst, tc.limits)
				assertRefused(t, err, dst, tc.entry, tc.reason)
			})
		}
	}
}

func assertRefused(t *testing.T, err error, dst, entryName, reason string) {
	t.Helper()
	var xe *ExtractError
	if !errors.As(err, &xe) {
		t.Fatalf("err = %v, want an *ExtractError", err)
	}
	if xe.Entry != entryName {
		t.Errorf("error names entry %q, want %q (%v)", xe.Entry, entryName, err)
	}
	if !strings.Contains(err.Error(), reason) {
		t.Errorf("error %q does not say %q", err, reason)
	}
	if _, statErr := os.Lstat(dst); !os.IsNotExist(statErr) {
		t.Errorf("%s left behind after the error (stat: %v)", dst, statErr)
	}
}

// gnuSparseHeader crafts an old-GNU sparse file header ('S') declaring
// realSize bytes with no data at all, as an attacker would: Go's tar writer
// cannot write sparse files.
func gnuSparseHeader(name string, realSize int64) []byte {
	b := make([]byte, 512)
	copy(b[0:], name)
	copy(b[100:], "0000644\x00")
	copy(b[108:], "0000000\x00")
	copy(b[116:], "0000000\x00")
	copy(b[124:], "00000000000\x00") // no data blocks follow
	copy(b[136:], "14000000000\x00")
	b[156] = tar.TypeGNUSparse
	copy(b[257:], "ustar  \x00")
	octal12 := fmt.Sprintf("%012o", realSize)
	copy(b[386:], octal12)           // sparse[0].offset: one empty region at the end
	copy(b[398:], "00000000000\x00") // sparse[0].numbytes
	copy(b[483:], octal12)           // realsize
	copy(b[148:], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:], fmt.Sprintf("%06o\x00 ", sum))
	return b
}

func TestExtractTarballRefusesSparse10GB(t *testing.T) {
	const tenGB = 10 << 30
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "acme-web-abc1234/", Mode: 0o755}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Flush(); err != nil {
		t.Fatal(err)
	}
	buf.Truncate(512) // keep the directory header, drop the writer's end blocks
	buf.Write(gnuSparseHeader("acme-web-abc1234/sparse", tenGB))
	buf.Write(make([]byte, 1024)) // end of archive

	// The crafted header really is a 10 GB sparse file to Go's reader.
	tr := tar.NewReader(bytes.NewReader(buf.Bytes()))
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	hdr, err := tr.Next()
	if err != nil || hdr.Size != tenGB {
		t.Fatalf("crafted sparse header reads as %+v, %v", hdr, err)
	}

	dst := filepath.Join(t.TempDir(), "src")
	_, err = ExtractTarball(context.Background(), bytes.NewReader(buf.Bytes()), dst, ExtractLimits{})
	assertRefused(t, err, dst, "acme-web-abc1234/sparse", "10737418240 bytes exceeds")
}

// streamTar writes a tar to a pipe from a goroutine, entry by entry, and
// reports how many entries and bytes it managed to write before the reader
// went away.
func streamTar(t *testing.T, write func(tw *tar.Writer) error) (io.Reader, func() (entries int, bytes int64)) {
	pr, pw := io.Pipe()
	cw := &countingWriter{w: pw}
	done := make(chan struct{})
	go func() {
		defer close(done)
		tw := tar.NewWriter(cw)
		err := write(tw)
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	t.Cleanup(func() { pr.Close(); <-done })
	return pr, func() (int, int64) {
		pr.Close()
		<-done
		return cw.entries, cw.n
	}
}

type countingWriter struct {
	w       io.Writer
	n       int64
	entries int
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func TestExtractTarballStopsAMillionTinyFiles(t *testing.T) {
	const million = 1_000_000
	var written int
	r, finish := streamTar(t, func(tw *tar.Writer) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "top/", Mode: 0o755}); err != nil {
			return err
		}
		for i := range million {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "top/f" + strconv.Itoa(i), Mode: 0o644, Size: 1}); err != nil {
				return err
			}
			if _, err := tw.Write([]byte{'x'}); err != nil {
				return err
			}
			written = i + 1
		}
		return nil
	})
	dst := filepath.Join(t.TempDir(), "src")
	_, err := ExtractTarball(context.Background(), r, dst, ExtractLimits{MaxEntries: 2000})
	assertRefused(t, err, dst, "top/f1999", "more than 2000 entries") // the top directory is entry 1
	finish()
	if written >= million || written > 3000 {
		t.Errorf("the generator wrote %d of %d entries: extraction did not stop early", written, million)
	}
}

func TestExtractTarballStopsAHugeFileBeforeItsData(t *testing.T) {
	const tenGB = 10 << 30
	r, finish := streamTar(t, func(tw *tar.Writer) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "top/huge", Mode: 0o644, Size: tenGB}); err != nil {
			return err
		}
		zeros := make([]byte, 64<<10)
		for {
			if _, err := tw.Write(zeros); err != nil {
				return err
			}
		}
	})
	dst := filepath.Join(t.TempDir(), "src")
	_, err := ExtractTarball(context.Background(), r, dst, ExtractLimits{})
	assertRefused(t, err, dst, "top/huge", "exceeds the 268435456-byte limit per file")
	_, n := finish()
	if n > 1<<20 {
		t.Errorf("the generator wrote %d bytes before the refusal; want the header alone to be enough", n)
	}
}

func TestExtractTarballBadInput(t *testing.T) {
	t.Run("existing directory is left alone", func(t *testing.T) {
		dst := t.TempDir()
		keep := filepath.Join(dst, "keep")
		if err := os.WriteFile(keep, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ExtractTarball(context.Background(), bytes.NewReader(buildTar(t, false, dir("t/"))), dst, ExtractLimits{})
		if err == nil {
			t.Fatal("extracting into an existing directory succeeded")
		}
		if _, err := os.Stat(keep); err != nil {
			t.Errorf("existing content removed: %v", err)
		}
	})
	t.Run("not a tar", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "src")
		_, err := ExtractTarball(context.Background(), strings.NewReader(strings.Repeat("garbage!", 200)), dst, ExtractLimits{})
		if err == nil || !strings.Contains(err.Error(), "read archive") {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Lstat(dst); !os.IsNotExist(err) {
			t.Errorf("%s left behind", dst)
		}
	})
	t.Run("empty archive", func(t *testing.T) {
		dst := filepath.Join(t.TempDir(), "src")
		_, err := ExtractTarball(context.Background(), bytes.NewReader(buildTar(t, true)), dst, ExtractLimits{})
		if err == nil || !strings.Contains(err.Error(), "empty") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		dst := filepath.Join(t.TempDir(), "src")
		_, err := ExtractTarball(ctx, bytes.NewReader(buildTar(t, false, dir("t/"), file("t/a", "x"))), dst, ExtractLimits{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Lstat(dst); !os.IsNotExist(err) {
			t.Errorf("%s left behind", dst)
		}
	})
}
