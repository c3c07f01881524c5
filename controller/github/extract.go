package github

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/slipwayhq/slipway/internal/contract"
)

// ExtractLimits bound what an archive may put on disk. Zero fields get the
// defaults.
type ExtractLimits struct {
	// MaxTotalBytes bounds the sum of all file sizes. Default 1 GiB.
	MaxTotalBytes int64
	// MaxFileBytes bounds one file. Default 256 MiB.
	MaxFileBytes int64
	// MaxEntries bounds files, directories and links together. Default 100000.
	MaxEntries int
}

// DefaultExtractLimits are the limits used for zero fields.
var DefaultExtractLimits = ExtractLimits{MaxTotalBytes: 1 << 30, MaxFileBytes: 256 << 20, MaxEntries: 100_000}

func (l ExtractLimits) withDefaults() ExtractLimits {
	if l.MaxTotalBytes <= 0 {
		l.MaxTotalBytes = DefaultExtractLimits.MaxTotalBytes
	}
	if l.MaxFileBytes <= 0 {
		l.MaxFileBytes = DefaultExtractLimits.MaxFileBytes
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultExtractLimits.MaxEntries
	}
	return l
}

// ExtractStats says what an extraction wrote.
type ExtractStats struct {
	Files, Dirs, Symlinks, Hardlinks int
	Bytes                            int64
	// TopLevel is the archive's top-level directory that was stripped
	// (GitHub's "<owner>-<repo>-<short sha>").
	TopLevel string
}

// ExtractError is an archive entry that was refused.
type ExtractError struct {
	Entry  string // the entry's name as stored in the archive
	Reason string
}

func (e *ExtractError) Error() string {
	return fmt.Sprintf("archive entry %q: %s", e.Entry, e.Reason)
}

// FailedStep, FailedService and Terminal make an ExtractError a
// contract.Failure: the source could not be fetched, and since the
// refused entry is in the pull request's own tree, fetching the same SHA
// again cannot help.
func (e *ExtractError) FailedStep() string    { return contract.StepFetch }
func (e *ExtractError) FailedService() string { return "" }
func (e *ExtractError) Terminal() bool        { return true }

var _ contract.Failure = (*ExtractError)(nil)

// ExtractTarball extracts a GitHub source archive (tar, gzip-compressed or
// not) from r into dir, which must not exist yet (its parent must). GitHub's
// single top-level directory is stripped.
//
// It refuses, with an *ExtractError naming the entry: absolute paths and ".."
// components; entries outside the top-level directory; symlinks whose target
// is absolute or resolves (through the archive's other symlinks) outside dir;
// hard links to anything but an earlier regular file inside dir; any entry
// written through a symlink; devices, FIFOs and unknown types; duplicate
// entries; and archives exceeding limits, checked against each header before
// its data is read, so a 10 GB sparse file or a million tiny files are
// refused without writing them. Setuid, setgid and sticky bits are dropped;
// files are 0644, or 0755 when any execute bit is set.
//
// On any error dir is removed.
func ExtractTarball(ctx context.Context, r io.Reader, dir string, limits ExtractLimits) (stats ExtractStats, err error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return stats, fmt.Errorf("extract: create %s: %w", dir, err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		_ = os.RemoveAll(dir)
		return stats, fmt.Errorf("extract: open %s: %w", dir, err)
	}
	defer func() {
		_ = root.Close()
		if err != nil {
			_ = os.RemoveAll(dir)
		}
	}()
	tr, err := tarReader(r)
	if err != nil {
		return stats, err
	}
	x := &extractor{root: root, limits: limits.withDefaults(), kinds: map[string]byte{}, links: map[string]string{}}
	if err := x.run(ctx, tr); err != nil {
		return x.stats, err
	}
	return x.stats, nil
}

// tarReader sniffs gzip's magic number and returns a tar reader over the
// (decompressed) stream.
func tarReader(r io.Reader) (*tar.Reader, error) {
	br := bufio.NewReader(r)
	magic, err := br.Peek(2)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("extract: read archive: %w", err)
	}
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("extract: gzip: %w", err)
		}
		return tar.NewReader(zr), nil
	}
	return tar.NewReader(br), nil
}

type extractor struct {
	root    *os.Root
	limits  ExtractLimits
	stats   ExtractStats
	entries int
	top     string
	kinds   map[string]byte   // relative path → tar type written there (implicit parents are dirs)
	links   map[string]string // symlink path → its target as stored
}

func (x *extractor) run(ctx context.Context, tr *tar.Reader) error {
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("extract: %w", err)
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("extract: read archive: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return err
		}
	}
	if x.top == "" {
		return errors.New("extract: archive is empty")
	}
	// A symlink checked when it was written may escape through a symlink
	// that came later in the archive; check them all against the final set.
	for name, target := range x.links {
		if _, err := x.resolve(path.Dir(name) + "/" + target); err != nil {
			return &ExtractError{Entry: path.Join(x.top, name), Reason: fmt.Sprintf("symlink to %q %v", target, err)}
		}
	}
	return nil
}

func (x *extractor) entry(hdr *tar.Header, tr *tar.Reader) error {
	bad := func(format string, args ...any) error {
		return &ExtractError{Entry: hdr.Name, Reason: fmt.Sprintf(format, args...)}
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader: // GitHub's pax header carrying the commit SHA
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeChar, tar.TypeBlock:
		return bad("device files are not allowed")
	case tar.TypeFifo:
		return bad("FIFOs are not allowed")
	default:
		return bad("unsupported entry type %q", hdr.Typeflag)
	}

	x.entries++
	if x.entries > x.limits.MaxEntries {
		return bad("archive has more than %d entries", x.limits.MaxEntries)
	}
	rel, err := x.relative(hdr.Name)
	if err != nil {
		return bad("%v", err)
	}
	if rel == "" { // the top-level directory itself
		if hdr.Typeflag != tar.TypeDir {
			return bad("top-level entry is not a directory")
		}
		return nil
	}
	if _, dup := x.kinds[rel]; dup && hdr.Typeflag != tar.TypeDir {
		return bad("duplicate entry")
	}
	if err := x.checkParents(rel); err != nil {
		return bad("%v", err)
	}

	switch hdr.Typeflag {
	case tar.TypeDir:
		if k, ok := x.kinds[rel]; ok && k != tar.TypeDir {
			return bad("directory replaces an earlier entry")
		}
		if err := x.root.MkdirAll(rel, 0o755); err != nil {
			return bad("create directory: %v", err)
		}
		x.markDirs(rel)
		x.stats.Dirs++
	case tar.TypeSymlink:
		if hdr.Linkname == "" || path.IsAbs(hdr.Linkname) {
			return bad("symlink to %q points outside the archive", hdr.Linkname)
		}
		if _, err := x.resolve(path.Dir(rel) + "/" + hdr.Linkname); err != nil {
			return bad("symlink to %q %v", hdr.Linkname, err)
		}
		if err := x.mkParents(rel); err != nil {
			return bad("%v", err)
		}
		if err := x.root.Symlink(hdr.Linkname, rel); err != nil {
			return bad("create symlink: %v", err)
		}
		x.kinds[rel] = tar.TypeSymlink
		x.links[rel] = hdr.Linkname
		x.stats.Symlinks++
	case tar.TypeLink:
		target, err := x.relative(hdr.Linkname)
		if err != nil || target == "" {
			return bad("hard link to %q points outside the archive", hdr.Linkname)
		}
		if k, ok := x.kinds[target]; !ok || k != tar.TypeReg {
			return bad("hard link to %q: target is not an earlier regular file", hdr.Linkname)
		}
		if err := x.checkParents(target); err != nil {
			return bad("hard link to %q: %v", hdr.Linkname, err)
		}
		if err := x.mkParents(rel); err != nil {
			return bad("%v", err)
		}
		if err := x.root.Link(target, rel); err != nil {
			return bad("create hard link: %v", err)
		}
		x.kinds[rel] = tar.TypeReg
		x.stats.Hardlinks++
	default: // regular file, possibly sparse
		if hdr.Size < 0 || hdr.Size > x.limits.MaxFileBytes {
			return bad("file of %d bytes exceeds the %d-byte limit per file", hdr.Size, x.limits.MaxFileBytes)
		}
		if x.stats.Bytes+hdr.Size > x.limits.MaxTotalBytes {
			return bad("archive exceeds the %d-byte total limit", x.limits.MaxTotalBytes)
		}
		if err := x.mkParents(rel); err != nil {
			return bad("%v", err)
		}
		perm := fs.FileMode(0o644)
		if hdr.Mode&0o111 != 0 {
			perm = 0o755
		}
		f, err := x.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
		if err != nil {
			return bad("create file: %v", err)
		}
		// The tar reader yields exactly hdr.Size bytes; the limit is a second guard.
		n, err := io.Copy(f, io.LimitReader(tr, hdr.Size+1))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return bad("write file: %v", err)
		}
		if n > hdr.Size {
			return bad("file is longer than its header says")
		}
		x.kinds[rel] = tar.TypeReg
		x.stats.Bytes += n
		x.stats.Files++
	}
	return nil
}

// relative strips the top-level directory from an entry name and checks
// that what remains is a clean relative path. The first entry fixes the
// top-level directory.
func (x *extractor) relative(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty name")
	}
	if path.IsAbs(name) || strings.HasPrefix(name, "\\") {
		return "", errors.New("absolute path")
	}
	for _, part := range strings.Split(strings.TrimSuffix(name, "/"), "/") {
		if part == ".." {
			return "", errors.New(`path contains ".."`)
		}
	}
	clean := path.Clean(name)
	if clean == "." {
		return "", errors.New("empty name")
	}
	top, rest, _ := strings.Cut(clean, "/")
	if x.top == "" {
		x.top = top
		x.stats.TopLevel = top
	} else if top != x.top {
		return "", fmt.Errorf("outside the top-level directory %q", x.top)
	}
	return rest, nil
}

// checkParents refuses a path whose parent directories include a symlink or
// a file: nothing is ever written through a link.
func (x *extractor) checkParents(rel string) error {
	for dir := path.Dir(rel); dir != "."; dir = path.Dir(dir) {
		switch k, ok := x.kinds[dir]; {
		case !ok, k == tar.TypeDir:
		case k == tar.TypeSymlink:
			return fmt.Errorf("parent %q is a symlink", dir)
		default:
			return fmt.Errorf("parent %q is not a directory", dir)
		}
	}
	return nil
}

func (x *extractor) mkParents(rel string) error {
	dir := path.Dir(rel)
	if dir == "." {
		return nil
	}
	if err := x.root.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	x.markDirs(dir)
	return nil
}

func (x *extractor) markDirs(dir string) {
	for ; dir != "."; dir = path.Dir(dir) {
		if _, ok := x.kinds[dir]; ok {
			return
		}
		x.kinds[dir] = tar.TypeDir
	}
}

// resolve follows p (relative to the root, possibly with "..", and not
// cleaned lexically: "l/.." is not "." when l is a symlink) through the
// archive's symlinks and returns where it lands, or an error when it leaves
// the root or loops.
func (x *extractor) resolve(p string) (string, error) {
	var stack []string
	todo := strings.Split(p, "/")
	for hops := 0; len(todo) > 0; {
		part := todo[0]
		todo = todo[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(stack) == 0 {
				return "", errors.New("points outside the archive")
			}
			stack = stack[:len(stack)-1]
			continue
		}
		stack = append(stack, part)
		target, ok := x.links[strings.Join(stack, "/")]
		if !ok {
			continue
		}
		if hops++; hops > 40 {
			return "", errors.New("is a loop of symlinks")
		}
		if path.IsAbs(target) {
			return "", errors.New("points outside the archive")
		}
		stack = stack[:len(stack)-1]
		todo = append(strings.Split(target, "/"), todo...)
	}
	return strings.Join(stack, "/"), nil
}
