package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/dotenv"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// PreLoad checks the compose files (absolute, or relative to root) before
// compose-go reads them: every file the loader would read — the compose
// files, .env, include paths, project directories and env files,
// extends.file, env_file and label_file — must lie inside the checkout
// (symlinks followed), and include and extends must not be remote. It
// follows include and extends into the files they reach inside the
// checkout. (A top-level name is no longer refused: see RetiredRules.)
//
// env is the environment the caller passes to compose-go (cli.WithEnv);
// PreLoad adds the checkout's .env as cli.WithDotEnv does and interpolates
// each path as the loader will. Call it with the same env before every
// LoadProject: a path such as "${SLIPWAY_URL:+/etc/passwd}" changes with it.
//
// The error is for I/O trouble that is not a violation (an unreadable
// checkout or compose file); violations are returned, all of them, in a
// stable order.
func PreLoad(root string, files []string, env map[string]string, opts Options) ([]Violation, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("checkout %s: %w", root, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("checkout %s: %w", root, err)
	}
	p := &preloader{
		root:    real,
		given:   abs,
		allowed: opts.allowSet(),
		seen:    map[string]bool{},
	}
	environment := types.Mapping{}
	for k, v := range env {
		environment[k] = v
	}
	dotEnv := filepath.Join(abs, ".env")
	if fi, err := os.Stat(dotEnv); err == nil && !fi.IsDir() || isDanglingLink(dotEnv) {
		if p.checkLoadPath(fileLoc{}, ".env", ".env", abs) && p.checkReadable(fileLoc{file: ".env"}, dotEnv) {
			fromFile, err := dotenv.GetEnvFromFile(environment, []string{dotEnv})
			if err != nil {
				// The loader fails on the same file and says why.
				fromFile = nil
			}
			environment.Merge(fromFile)
		}
	}
	for i, f := range files {
		if !filepath.IsAbs(f) {
			f = filepath.Join(abs, f)
		}
		if !p.checkLoadPath(fileLoc{}, fmt.Sprintf("compose file [%d]", i), f, abs) {
			continue
		}
		if err := p.scanFile(f, abs, environment, true); err != nil {
			return nil, err
		}
	}
	sortViolations(p.out)
	return p.out, nil
}

// preloader walks compose files as compose-go will load them.
type preloader struct {
	root    string // checkout, symlinks resolved
	given   string // checkout as given (absolute), for relative file names
	allowed map[string]bool
	seen    map[string]bool
	out     []Violation
}

// fileLoc says where in which file a path was found.
type fileLoc struct {
	file    string // compose file, relative to the checkout
	service string
	prefix  string // field prefix, e.g. "jobs.migrate." or "pre_start[0]."
}

func (p *preloader) add(loc fileLoc, rule, field, value, msg string) {
	if p.allowed[rule] {
		return
	}
	p.out = append(p.out, Violation{Rule: rule, File: loc.file, Service: loc.service,
		Field: loc.prefix + field, Value: value, Message: msg})
}

func (p *preloader) rel(path string) string {
	for _, base := range []string{p.given, p.root} {
		if r, err := filepath.Rel(base, path); err == nil && within(base, path) {
			return filepath.ToSlash(r)
		}
	}
	return path
}

// checkLoadPath reports (SW-FILE-001) a path the loader reads that is not
// inside the checkout when resolved against any of bases, and reports
// whether it is inside.
func (p *preloader) checkLoadPath(loc fileLoc, field, value string, bases ...string) bool {
	for _, base := range bases {
		hp := resolveHostPath(p.root, base, value)
		if !hp.inside {
			p.add(loc, LoadFileOutside, field, value, "compose-go would read this file while loading, and it "+hp.describe(value))
			return false
		}
	}
	return true
}

// scanFile checks one compose file. base is the directory its relative
// paths are resolved against; top says it is one of the files Slipway was
// given (not included or extended).
func (p *preloader) scanFile(path, base string, env types.Mapping, top bool) error {
	key := path + "\x00" + base
	if p.seen[key] {
		return nil
	}
	p.seen[key] = true
	if _, err := os.Stat(path); err == nil && !p.checkReadable(fileLoc{file: p.rel(path)}, path) {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if top {
			return fmt.Errorf("read compose file %s: %w", p.rel(path), err)
		}
		return nil // the loader reports a missing include or extends file
	}
	loc := fileLoc{file: p.rel(path)}
	// Paths in a file Slipway was given resolve against the project
	// directory; be strict and check them against the file's own directory
	// too, in case a loader version resolves them that way.
	bases := []string{base}
	if dir := filepath.Dir(path); dir != base {
		bases = append(bases, dir)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var doc yaml.Node
		if err := dec.Decode(&doc); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			// Fail closed: what this parser cannot read, the check cannot
			// have checked.
			p.add(loc, YAMLForm, "(file)", "", "does not parse as YAML: "+err.Error())
			return nil
		}
		if bad := p.checkForm(&doc, loc); bad {
			continue // what the tags mean is not what the check would read
		}
		if err := flattenMerges(&doc); err != nil {
			p.add(loc, YAMLForm, "(document)", "", err.Error())
			continue
		}
		if err := p.scanDocument(&doc, loc, base, bases, env); err != nil {
			return err
		}
	}
}

// MaxFileSize bounds a file the controller reads from a checkout before the
// confined loader does (compose files, the files they include or extend,
// .env): YAML costs tens of times its size in memory, and the controller
// holds every preview's proxy.
const MaxFileSize = 2 << 20

// checkReadable reports (SW-FILE-005) a file that is not a regular file
// (a FIFO would block the controller) or is larger than MaxFileSize, and
// says whether it may be read.
func (p *preloader) checkReadable(loc fileLoc, path string) bool {
	fi, err := os.Stat(path)
	if err != nil {
		return true // the read reports it
	}
	switch {
	case !fi.Mode().IsRegular():
		p.add(loc, YAMLForm, "(file)", "", "not a regular file")
		return false
	case fi.Size() > MaxFileSize:
		p.add(loc, YAMLForm, "(file)", "", fmt.Sprintf("%d bytes, more than the %d a compose file may have", fi.Size(), MaxFileSize))
		return false
	}
	return true
}

// maxMergedPairs bounds the work of resolving merge keys in one document:
// anchors merged into anchors multiply (each level merging the previous one
// eight times is 8^20 pairs after twenty levels), and this check runs in the
// controller. compose-go stops at a similar count of node visits.
const maxMergedPairs = 100_000

// flattenMerges rewrites every mapping of doc that has merge keys ("<<")
// into the plain mapping they mean, each mapping once (anchors share their
// node), so that later lookups never expand a merge again. A document whose
// merges would produce more than maxMergedPairs entries in all is refused.
func flattenMerges(doc *yaml.Node) error {
	f := merger{done: map[*yaml.Node]bool{}}
	f.flatten(doc, 0)
	if f.pairs > maxMergedPairs {
		return fmt.Errorf("its merge keys expand to more than %d entries", maxMergedPairs)
	}
	if f.deep {
		return errors.New("its anchors and merge keys nest too deep to check")
	}
	return nil
}

type merger struct {
	done  map[*yaml.Node]bool
	pairs int
	deep  bool
}

func (f *merger) flatten(n *yaml.Node, depth int) {
	if n == nil || f.pairs > maxMergedPairs || f.deep {
		return
	}
	if depth > 200 {
		f.deep = true
		return
	}
	if n.Kind == yaml.AliasNode {
		f.flatten(n.Alias, depth+1)
		return
	}
	if f.done[n] {
		return
	}
	f.done[n] = true
	for _, c := range n.Content {
		f.flatten(c, depth+1)
	}
	if n.Kind != yaml.MappingNode {
		return
	}
	merges := false
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := deref(n.Content[i]); k.Value == "<<" && k.Tag != "!!str" {
			merges = true
		}
	}
	if !merges {
		return
	}
	// The sources are flattened already: pairsDepth reads them without
	// recursing further.
	kvs := pairsDepth(n, 0)
	f.pairs += len(kvs)
	content := make([]*yaml.Node, 0, 2*len(kvs))
	for _, kv := range kvs {
		content = append(content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: kv.key}, kv.value)
	}
	n.Content = content
}

// maxKeyLength is the longest mapping key accepted: YAML parsers disagree
// on longer implicit keys.
const maxKeyLength = 1024

// checkForm reports (SW-FILE-005) explicit tags other than compose's
// !reset and !override, and over-long keys, anywhere in doc; it says
// whether it found any.
func (p *preloader) checkForm(doc *yaml.Node, loc fileLoc) bool {
	found := false
	var walk func(n *yaml.Node, path string, depth int)
	walk = func(n *yaml.Node, path string, depth int) {
		if n == nil || depth > 200 {
			return
		}
		if n.Style&yaml.TaggedStyle != 0 && n.Tag != "!reset" && n.Tag != "!override" {
			found = true
			p.add(loc, YAMLForm, pathOr(path), n.Tag, "explicit YAML tags other than !reset and !override are refused")
		}
		if n.Kind == yaml.AliasNode {
			return // its anchor is walked where it is defined
		}
		for i, c := range n.Content {
			child := path
			if n.Kind == yaml.MappingNode && i%2 == 1 {
				child = joinPath(path, n.Content[i-1].Value)
			}
			if n.Kind == yaml.MappingNode && i%2 == 0 && len(c.Value) > maxKeyLength {
				found = true
				p.add(loc, YAMLForm, pathOr(path), c.Value[:40]+"…", fmt.Sprintf("a mapping key of %d characters (at most %d)", len(c.Value), maxKeyLength))
			}
			walk(c, child, depth+1)
		}
	}
	walk(doc, "", 0)
	return found
}

func joinPath(path, key string) string {
	if len(key) > 40 {
		key = key[:40] + "…"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

func pathOr(path string) string {
	if path == "" {
		return "(document)"
	}
	return path
}

func (p *preloader) scanDocument(doc *yaml.Node, loc fileLoc, base string, bases []string, env types.Mapping) error {
	m := deref(doc)
	if m != nil && m.Kind == yaml.DocumentNode && len(m.Content) > 0 {
		m = deref(m.Content[0])
	}
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	if inc := lookup(m, "include"); inc != nil {
		if err := p.scanInclude(inc, loc, base, bases, env); err != nil {
			return err
		}
	}
	for _, section := range []string{"services", "jobs"} {
		s := lookup(m, section)
		for _, kv := range pairs(s) {
			svcLoc := loc
			if section == "services" {
				svcLoc.service = kv.key
			} else {
				svcLoc.prefix = "jobs." + kv.key + "."
			}
			if err := p.scanService(kv.value, svcLoc, bases, env); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanInclude checks include entries: a path string, or a mapping of path
// (string or list), project_directory and env_file (string or list).
func (p *preloader) scanInclude(inc *yaml.Node, loc fileLoc, base string, bases []string, env types.Mapping) error {
	for i, entry := range items(inc) {
		field := fmt.Sprintf("include[%d]", i)
		var paths []*yaml.Node
		var projectDir *yaml.Node
		var envFiles []*yaml.Node
		if entry.Kind == yaml.MappingNode {
			paths = items(lookup(entry, "path"))
			projectDir = lookup(entry, "project_directory")
			envFiles = items(lookup(entry, "env_file"))
		} else {
			paths = []*yaml.Node{entry}
		}
		var local []string
		for j, pn := range paths {
			pf := field + ".path"
			if entry.Kind == yaml.MappingNode {
				pf = fmt.Sprintf("%s.path[%d]", field, j)
			}
			v := interpolate(pn.Value, env)
			if v == "" {
				continue
			}
			if isRemoteRef(v) {
				p.add(loc, RemoteResource, pf, v, "remote includes make the controller fetch content that is not in the pull request")
				continue
			}
			if p.checkLoadPath(loc, pf, v, bases...) {
				local = append(local, absUnder(base, v))
			}
		}
		// The included project's directory: project_directory (relative
		// to the includer's), else the first file's directory.
		incBase := ""
		if len(local) > 0 {
			incBase = filepath.Dir(local[0])
		}
		if projectDir != nil && !isNull(projectDir) {
			v := interpolate(projectDir.Value, env)
			if p.checkLoadPath(loc, field+".project_directory", v, bases...) {
				incBase = absUnder(base, v)
			} else {
				incBase = ""
			}
		}
		incEnv := env.Clone()
		var envPaths []string
		for j, en := range envFiles {
			v := interpolate(en.Value, env)
			if v == "" || v == "/dev/null" {
				continue
			}
			if p.checkLoadPath(loc, fmt.Sprintf("%s.env_file[%d]", field, j), v, bases...) {
				envPaths = append(envPaths, absUnder(base, v))
			}
		}
		if len(envFiles) == 0 && incBase != "" {
			dotEnv := filepath.Join(incBase, ".env")
			if fi, err := os.Stat(dotEnv); err == nil && !fi.IsDir() || isDanglingLink(dotEnv) {
				if p.checkLoadPath(loc, field+" (.env of the included project)", dotEnv, incBase) {
					envPaths = append(envPaths, dotEnv)
				}
			}
		}
		if len(envPaths) > 0 {
			if fromFile, err := dotenv.GetEnvFromFile(env, envPaths); err == nil {
				incEnv.Merge(fromFile)
			}
		}
		if incBase == "" {
			continue
		}
		for _, f := range local {
			if err := p.scanFile(f, incBase, incEnv, false); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanService checks the load-time paths of one service (or job) node.
func (p *preloader) scanService(svc *yaml.Node, loc fileLoc, bases []string, env types.Mapping) error {
	if svc == nil || svc.Kind != yaml.MappingNode {
		return nil
	}
	p.scanEnvAndLabelFiles(svc, loc, bases, env)
	for i, hook := range items(lookup(svc, "pre_start")) {
		hookLoc := loc
		hookLoc.prefix = fmt.Sprintf("%spre_start[%d].", loc.prefix, i)
		p.scanEnvAndLabelFiles(hook, hookLoc, bases, env)
	}
	ext := lookup(svc, "extends")
	if ext == nil || ext.Kind != yaml.MappingNode {
		return nil // a string extends a service of the same file
	}
	fn := lookup(ext, "file")
	if fn == nil || isNull(fn) {
		return nil
	}
	v := interpolate(fn.Value, env)
	if v == "" {
		return nil
	}
	if isRemoteRef(v) {
		p.add(loc, RemoteResource, "extends.file", v, "remote extends make the controller fetch content that is not in the pull request")
		return nil
	}
	if !p.checkLoadPath(loc, "extends.file", v, bases...) {
		return nil
	}
	f := absUnder(bases[0], v)
	// Paths in an extended file are relative to that file.
	return p.scanFile(f, filepath.Dir(f), env, false)
}

func (p *preloader) scanEnvAndLabelFiles(n *yaml.Node, loc fileLoc, bases []string, env types.Mapping) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i, ef := range items(lookup(n, "env_file")) {
		pn := ef
		if ef.Kind == yaml.MappingNode {
			pn = lookup(ef, "path")
		}
		if pn == nil || isNull(pn) {
			continue
		}
		if v := interpolate(pn.Value, env); v != "" {
			p.checkLoadPath(loc, fmt.Sprintf("env_file[%d]", i), v, bases...)
		}
	}
	for i, lf := range items(lookup(n, "label_file")) {
		if isNull(lf) {
			continue
		}
		if v := interpolate(lf.Value, env); v != "" {
			p.checkLoadPath(loc, fmt.Sprintf("label_file[%d]", i), v, bases...)
		}
	}
}

// interpolate substitutes ${VAR} as compose-go does. On a substitution
// error (a required variable missing) the loader fails before reading the
// file, so the raw value is as good as any.
func interpolate(s string, env types.Mapping) string {
	out, err := template.Substitute(s, func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	})
	if err != nil {
		return s
	}
	return out
}

func absUnder(base, p string) string {
	if filepath.IsAbs(p) {
		return filepath.Clean(p)
	}
	return filepath.Join(base, p)
}

func isDanglingLink(p string) bool {
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return false
	}
	_, err = os.Stat(p)
	return err != nil
}

// YAML helpers that see through anchors, aliases and merge keys, and
// tolerate compose's !reset and !override tags.

func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && (n.Tag == "!!null" || n.Tag == "!reset" && n.Value == "")
}

type keyValue struct {
	key   string
	value *yaml.Node
}

// pairs returns the entries of a mapping, merge keys ("<<") expanded, the
// mapping's own entries overriding merged ones and earlier merge sources
// overriding later ones, as YAML specifies.
func pairs(n *yaml.Node) []keyValue {
	return pairsDepth(n, 0)
}

func pairsDepth(n *yaml.Node, depth int) []keyValue {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode || depth > 20 {
		return nil
	}
	var merged, own []keyValue
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Value == "<<" && k.Tag != "!!str" {
			// Of several merged mappings the first wins (as compose-go's
			// parser merges): apply them last to first.
			srcs := mergeSources(v)
			for i := len(srcs) - 1; i >= 0; i-- {
				merged = append(merged, pairsDepth(srcs[i], depth+1)...)
			}
			continue
		}
		own = append(own, keyValue{key: k.Value, value: deref(v)})
	}
	var out []keyValue
	index := map[string]int{}
	for _, kv := range append(merged, own...) {
		if i, ok := index[kv.key]; ok {
			out[i] = kv
			continue
		}
		index[kv.key] = len(out)
		out = append(out, kv)
	}
	return out
}

func mergeSources(v *yaml.Node) []*yaml.Node {
	v = deref(v)
	if v == nil {
		return nil
	}
	if v.Kind == yaml.SequenceNode {
		out := make([]*yaml.Node, 0, len(v.Content))
		for _, c := range v.Content {
			out = append(out, deref(c))
		}
		return out
	}
	return []*yaml.Node{v}
}

func lookup(n *yaml.Node, key string) *yaml.Node {
	for _, kv := range pairs(n) {
		if kv.key == key {
			return kv.value
		}
	}
	return nil
}

// items returns the elements of a sequence, or the node itself when it is a
// single scalar or mapping (compose accepts both forms).
func items(n *yaml.Node) []*yaml.Node {
	n = deref(n)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind == yaml.SequenceNode {
		out := make([]*yaml.Node, 0, len(n.Content))
		for _, c := range n.Content {
			out = append(out, deref(c))
		}
		return out
	}
	return []*yaml.Node{n}
}
