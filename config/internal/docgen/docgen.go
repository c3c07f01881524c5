package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/slipwayhq/slipway/config"
)

//go:embed configuration.md.tmpl
var docTemplate string

// Document is what configuration.md.tmpl renders.
type Document struct {
	// Controller are the sections of slipway.yaml, the top level first.
	Controller []Section
	// Repo are the sections of .slipway.yml, the top level first.
	Repo []Section
	// Env lists the SLIPWAY_* variables that override slipway.yaml keys.
	Env []EnvRow
	// Files lists the secrets that may be read from a file.
	Files []FileRow
	// DefaultTTL is config.DefaultTTL, as a user writes it.
	DefaultTTL string
	// ComposeFiles are config.DefaultComposeFiles as a Markdown list: "`a`, `b`".
	ComposeFiles string
}

// Section is one object of a configuration file: its keys as table rows.
type Section struct {
	// ID is the HTML anchor of the section.
	ID string
	// Key is the object's path, e.g. "tls" or "repos[]"; "" at the top level.
	Key string
	// Doc describes the object (from its Go type's doc comment).
	Doc string
	// Rows are the object's keys in declaration order.
	Rows []Row
}

// Row is one key.
type Row struct {
	// Key is the full path of the key, e.g. "tls.mode" or "repos[].forks".
	Key string
	// Type is the value's type in Markdown (may link to another section).
	Type string
	// Default is the value the loader (or the config code that resolves the
	// key where it is used) gives the key when it is absent, in Markdown, or
	// "—" when it gives none.
	Default string
	// Env is the SLIPWAY_* variable that overrides the key, or "—".
	Env string
	// Doc is the field's doc comment, with Go names turned into keys.
	Doc string
}

// EnvRow is one SLIPWAY_* variable.
type EnvRow struct {
	Name, Key, Type string
}

// FileRow is a secret that may be given in a file.
type FileRow struct {
	// Key holds the value, FileKey names the file, Env is FileKey's variable ("" if none).
	Key, FileKey, Env string
}

// Anchor prefixes of the two files' sections.
const (
	controllerID = "slipway-yaml"
	repoID       = "slipway-yml"
)

// serveProbe is the least slipway.yaml for GitHub: a github section and
// one repository, so that the defaults the loader gives them show up too.
// probeKeys are the keys it sets: their values are not defaults.
const serveProbe = "github: {token: probe, webhook_secret: probe}\nrepos: [{name: probe/probe}]\n"

var probeKeys = map[string]bool{"github.token": true, "github.webhook_secret": true, "repos[].name": true}

// describedDefaults are the defaults that are no single value, written from
// the code that applies them (keyed by file anchor and key).
var describedDefaults = map[string]func() string{
	// stack.Load takes the first of these files that exists.
	repoID + ":compose": func() string { return "the first of " + codeList(config.DefaultComposeFiles) + " that exists" },
}

// proseDefaultRE finds a default stated in a doc comment ("Default 5m.",
// "(default 7d)", "; default :80"). Where the code gives the key a default,
// the Default column shows it and the comment must not say it again: prose
// is where the two used to disagree.
var proseDefaultRE = regexp.MustCompile(`\bDefault\b|\(default\b|[;,]\s*default\b`)

// Generate renders docs/configuration.md from the config package's source
// directory srcDir.
func Generate(srcDir string) ([]byte, error) {
	doc, err := Build(srcDir)
	if err != nil {
		return nil, err
	}
	t, err := template.New("configuration.md").Delims("[[", "]]").Parse(docTemplate)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, doc); err != nil {
		return nil, fmt.Errorf("render template: %w", err)
	}
	return b.Bytes(), nil
}

// Build reads srcDir and computes the document. Every exported struct
// field reachable from config.Controller and config.Repo must carry a yaml
// tag and a doc comment, every envKeys entry must set a documented key, and
// the doc comment of a key the code gives a default must not state one:
// the Default column is what the loaders apply, never prose.
func Build(srcDir string) (*Document, error) {
	src, err := parseSource(srcDir)
	if err != nil {
		return nil, err
	}
	defaults, err := loadDefaults()
	if err != nil {
		return nil, err
	}
	envByField := map[string]string{}
	for name, chain := range src.envKeys {
		envByField[strings.Join(chain, ".")] = name
	}
	g := &generator{src: src, envByField: envByField, usedEnv: map[string]bool{}}
	doc := &Document{DefaultTTL: formatDuration(config.DefaultTTL), ComposeFiles: codeList(config.DefaultComposeFiles)}
	doc.Controller = g.walk(reflect.TypeFor[config.Controller](), reflect.ValueOf(defaults.serve), reflect.ValueOf(defaults.local), controllerID)
	doc.Repo = g.walk(reflect.TypeFor[config.Repo](), reflect.ValueOf(defaults.repo), reflect.Value{}, repoID)
	for name := range src.envKeys {
		if !g.usedEnv[name] {
			g.errs = append(g.errs, fmt.Errorf("envKeys: %s sets %s, which is not a documented key", name, strings.Join(src.envKeys[name], ".")))
		}
	}
	for _, s := range doc.Controller {
		for _, r := range s.Rows {
			if r.Env != "—" {
				doc.Env = append(doc.Env, EnvRow{Name: strings.Trim(r.Env, "`"), Key: r.Key, Type: r.Type})
			}
		}
	}
	slices.SortFunc(doc.Env, func(a, b EnvRow) int { return strings.Compare(a.Name, b.Name) })
	doc.Files = g.files
	if len(g.errs) > 0 {
		return nil, errors.Join(g.errs...)
	}
	return doc, nil
}

// defaults are what the loaders make of files that leave every key out.
type defaults struct {
	// serve is serveProbe loaded; local an empty slipway.yaml (local mode).
	serve, local config.Controller
	// repo is an empty .slipway.yml.
	repo config.Repo
}

// loadDefaults loads the probes through the real loaders, with an empty
// environment, and resolves the keys that config's code completes where
// they are used: the host templates (HostTemplates) and the repository's
// ttl (RepoPolicy.TTLFor).
func loadDefaults() (defaults, error) {
	noEnv := func(string) (string, bool) { return "", false }
	serve, err := config.ParseController([]byte(serveProbe), noEnv)
	if err != nil {
		return defaults{}, fmt.Errorf("load the probe configuration: %w", err)
	}
	local, err := config.ParseController(nil, noEnv)
	if err != nil {
		return defaults{}, fmt.Errorf("load an empty configuration: %w", err)
	}
	repo, err := config.ParseRepo(nil)
	if err != nil {
		return defaults{}, fmt.Errorf("load an empty .slipway.yml: %w", err)
	}
	ttl := config.Duration(config.RepoPolicy{}.TTLFor(repo))
	repo.TTL = &ttl
	return defaults{serve: resolveHosts(*serve), local: resolveHosts(*local), repo: *repo}, nil
}

// resolveHosts fills in the host templates c.HostTemplates gives.
func resolveHosts(c config.Controller) config.Controller {
	t := c.HostTemplates()
	c.HostTemplate, c.ServiceHostTemplate = t.Primary, t.Service
	return c
}

// codeList writes names as "`a`, `b`, `c`".
func codeList(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "`" + n + "`"
	}
	return strings.Join(quoted, ", ")
}

// source is what the generator reads from the config package's Go files.
type source struct {
	// types maps a type name to its doc comment and its fields' doc comments.
	types map[string]typeDoc
	// envKeys maps each SLIPWAY_* variable of envKeys to the Go field path
	// it sets, e.g. ["GitHub", "APIURL"].
	envKeys map[string][]string
}

type typeDoc struct {
	doc    string
	fields map[string]string
}

// parseSource parses the non-test Go files of dir.
func parseSource(dir string) (*source, error) {
	matches, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, m := range matches {
		if strings.HasSuffix(m, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, m, nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", m, err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	s := &source{types: map[string]typeDoc{}, envKeys: map[string][]string{}}
	methods := map[string][]string{}
	var envLit *ast.CompositeLit
	for _, f := range files {
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch sp := spec.(type) {
					case *ast.TypeSpec:
						st, ok := sp.Type.(*ast.StructType)
						if !ok {
							continue
						}
						td := typeDoc{doc: commentText(sp.Doc), fields: map[string]string{}}
						if td.doc == "" {
							td.doc = commentText(d.Doc)
						}
						for _, fld := range st.Fields.List {
							text := commentText(fld.Doc)
							if text == "" {
								text = commentText(fld.Comment)
							}
							for _, n := range fld.Names {
								td.fields[n.Name] = text
							}
						}
						s.types[sp.Name.Name] = td
					case *ast.ValueSpec:
						for i, n := range sp.Names {
							if n.Name == "envKeys" && i < len(sp.Values) {
								envLit, _ = sp.Values[i].(*ast.CompositeLit)
							}
						}
					}
				}
			case *ast.FuncDecl:
				if chain, ok := accessorChain(d); ok {
					methods[d.Name.Name] = chain
				}
			}
		}
	}
	if envLit == nil {
		return nil, errors.New("envKeys: no map literal found")
	}
	for _, e := range envLit.Elts {
		kv, ok := e.(*ast.KeyValueExpr)
		if !ok {
			return nil, fmt.Errorf("envKeys: unexpected element at %s", fset.Position(e.Pos()))
		}
		lit, ok := kv.Key.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			return nil, fmt.Errorf("envKeys: key at %s is not a string literal", fset.Position(kv.Pos()))
		}
		name, err := strconv.Unquote(lit.Value)
		if err != nil {
			return nil, err
		}
		fn, ok := kv.Value.(*ast.FuncLit)
		if !ok || len(fn.Type.Params.List) == 0 || len(fn.Type.Params.List[0].Names) == 0 {
			return nil, fmt.Errorf("envKeys[%s]: want a func(c *Controller, v string) literal", name)
		}
		chain := longestChain(fn.Body, fn.Type.Params.List[0].Names[0].Name, methods)
		if len(chain) == 0 {
			return nil, fmt.Errorf("envKeys[%s]: found no field of the Controller that it sets", name)
		}
		s.envKeys[name] = chain
	}
	return s, nil
}

// accessorChain recognises a method of the form "… return c.A.B" (such as
// Controller.github, which returns c.GitHub) and returns [A B].
func accessorChain(d *ast.FuncDecl) ([]string, bool) {
	if d.Recv == nil || len(d.Recv.List) != 1 || len(d.Recv.List[0].Names) != 1 || d.Body == nil || len(d.Body.List) == 0 {
		return nil, false
	}
	ret, ok := d.Body.List[len(d.Body.List)-1].(*ast.ReturnStmt)
	if !ok || len(ret.Results) != 1 {
		return nil, false
	}
	chain, ok := selectorChain(ret.Results[0], d.Recv.List[0].Names[0].Name, nil)
	return chain, ok && len(chain) > 0
}

// longestChain returns the longest field path rooted at recv in body, such
// as [Limits Environments] for parseIntInto(&c.Limits.Environments, …).
func longestChain(body ast.Node, recv string, methods map[string][]string) []string {
	var best []string
	ast.Inspect(body, func(n ast.Node) bool {
		if e, ok := n.(ast.Expr); ok {
			if chain, ok := selectorChain(e, recv, methods); ok && len(chain) > len(best) {
				best = chain
			}
		}
		return true
	})
	return best
}

// selectorChain turns recv.A.B (or recv.m().B, with m an accessor in
// methods) into [A B].
func selectorChain(e ast.Expr, recv string, methods map[string][]string) ([]string, bool) {
	switch x := e.(type) {
	case *ast.Ident:
		return nil, x.Name == recv
	case *ast.ParenExpr:
		return selectorChain(x.X, recv, methods)
	case *ast.UnaryExpr:
		return selectorChain(x.X, recv, methods)
	case *ast.SelectorExpr:
		base, ok := selectorChain(x.X, recv, methods)
		if !ok {
			return nil, false
		}
		return append(slices.Clone(base), x.Sel.Name), true
	case *ast.CallExpr:
		sel, ok := x.Fun.(*ast.SelectorExpr)
		if !ok || len(x.Args) != 0 {
			return nil, false
		}
		base, ok := selectorChain(sel.X, recv, methods)
		m, known := methods[sel.Sel.Name]
		if !ok || !known {
			return nil, false
		}
		return append(slices.Clone(base), m...), true
	}
	return nil, false
}

func commentText(g *ast.CommentGroup) string {
	if g == nil {
		return ""
	}
	return strings.Join(strings.Fields(g.Text()), " ")
}

// generator walks a configuration struct breadth first: each struct type
// gets one section, at the first (shallowest) key that holds it.
type generator struct {
	src        *source
	envByField map[string]string
	usedEnv    map[string]bool
	files      []FileRow
	errs       []error
}

type pending struct {
	typ     reflect.Type
	key     string   // yaml path of the object, "" for the root
	goPath  []string // Go field path from the root
	def     reflect.Value
	local   reflect.Value // the object in local mode, if it exists there
	id      string
	inSlice bool // reached through a list or map: no Go path for envKeys
}

var (
	durationType = reflect.TypeFor[config.Duration]()
	byteSizeType = reflect.TypeFor[config.ByteSize]()
)

func (g *generator) walk(root reflect.Type, def, local reflect.Value, idPrefix string) []Section {
	queue := []pending{{typ: root, def: def, local: local, id: idPrefix}}
	ids := map[reflect.Type]string{root: idPrefix}
	var out []Section
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		td, ok := g.src.types[p.typ.Name()]
		if !ok {
			g.errs = append(g.errs, fmt.Errorf("type config.%s: not found in the source", p.typ.Name()))
			continue
		}
		sec := Section{ID: p.id, Key: p.key}
		if p.key != "" {
			sec.Doc = renderDoc(td.doc, p.typ.Name(), "`"+p.key+"`", nil)
		}
		siblings := map[string]string{}
		for i := range p.typ.NumField() {
			f := p.typ.Field(i)
			if name := yamlName(f); name != "" {
				siblings[f.Name] = name
			}
		}
		for i := range p.typ.NumField() {
			f := p.typ.Field(i)
			if !f.IsExported() {
				continue
			}
			name := yamlName(f)
			if name == "" {
				g.errs = append(g.errs, fmt.Errorf("config.%s.%s: no yaml tag", p.typ.Name(), f.Name))
				continue
			}
			path := joinKey(p.key, name)
			goPath := append(slices.Clone(p.goPath), f.Name)
			text, ok := td.fields[f.Name]
			if !ok || text == "" {
				g.errs = append(g.errs, fmt.Errorf("config.%s.%s (%s): no doc comment", p.typ.Name(), f.Name, path))
			}
			fv, lv := fieldOf(p.def, i), fieldOf(p.local, i)
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			row := Row{Key: path, Env: "—", Doc: renderDoc(text, f.Name, "`"+name+"`", siblings)}
			// Nested objects get their own section.
			var child reflect.Type
			childKey, childDef, childLocal := path, fv, lv
			switch {
			case ft.Kind() == reflect.Struct:
				child = ft
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				child, childKey = ft.Elem(), path+"[]"
				childDef, childLocal = firstOf(fv), firstOf(lv)
			case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
				child, childKey, childDef, childLocal = ft.Elem(), path+".<name>", reflect.Value{}, reflect.Value{}
			}
			if child != nil {
				id, seen := ids[child]
				if !seen {
					id = idPrefix + "-" + slug(childKey)
					ids[child] = id
					queue = append(queue, pending{typ: child, key: childKey, goPath: goPath, def: childDef, local: childLocal, id: id,
						inSlice: p.inSlice || child != ft})
				}
				row.Type = objectType(ft, id)
				row.Default = "—"
				sec.Rows = append(sec.Rows, row)
				continue
			}
			row.Type = scalarType(ft)
			row.Default = defaultCell(path, ft, fv, lv)
			if describe, ok := describedDefaults[idPrefix+":"+path]; ok {
				row.Default = describe()
			}
			if row.Default != "—" && proseDefaultRE.MatchString(text) {
				g.errs = append(g.errs, fmt.Errorf("config.%s.%s (%s): the doc comment states a default; the Default column shows the one the code applies (%s), so leave it out of the comment",
					p.typ.Name(), f.Name, path, row.Default))
			}
			if !p.inSlice && idPrefix == controllerID {
				if env, ok := g.envByField[strings.Join(goPath, ".")]; ok {
					row.Env = "`" + env + "`"
					g.usedEnv[env] = true
				}
			}
			if valueKey, ok := fileTarget(name, siblings); ok && idPrefix == controllerID {
				fr := FileRow{Key: joinKey(p.key, valueKey), FileKey: path}
				if row.Env != "—" {
					fr.Env = strings.Trim(row.Env, "`")
				}
				g.files = append(g.files, fr)
			}
			sec.Rows = append(sec.Rows, row)
		}
		out = append(out, sec)
	}
	return out
}

// fileTarget reports which sibling key a file key fills: token_file fills
// token, file (in a secret) fills value.
func fileTarget(name string, siblings map[string]string) (string, bool) {
	want := ""
	switch {
	case name == "file":
		want = "value"
	case strings.HasSuffix(name, "_file"):
		want = strings.TrimSuffix(name, "_file")
	default:
		return "", false
	}
	for _, s := range siblings {
		if s == want {
			return want, true
		}
	}
	return "", false
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

func joinKey(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

func slug(s string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	return strings.TrimSuffix(b.String(), "-")
}

func objectType(t reflect.Type, id string) string {
	switch t.Kind() {
	case reflect.Slice:
		return fmt.Sprintf("list of [objects](#%s)", id)
	case reflect.Map:
		return fmt.Sprintf("map of name to [object](#%s)", id)
	}
	return fmt.Sprintf("[object](#%s)", id)
}

func scalarType(t reflect.Type) string {
	switch t {
	case durationType:
		return "[duration](#durations-and-sizes)"
	case byteSizeType:
		return "[size](#durations-and-sizes)"
	}
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "integer"
	case reflect.Float64, reflect.Float32:
		return "number"
	case reflect.Slice:
		return "list of " + scalarType(t.Elem()) + "s"
	case reflect.Map:
		return "map of " + scalarType(t.Key()) + " to " + scalarType(t.Elem())
	}
	return t.String()
}

// fieldOf returns field i of the struct v (through a pointer); the zero
// Value when v is, or the pointer is nil.
func fieldOf(v reflect.Value, i int) reflect.Value {
	if !v.IsValid() {
		return v
	}
	f := v.Field(i)
	if f.Kind() == reflect.Pointer {
		if f.IsNil() {
			return reflect.Value{}
		}
		return f.Elem()
	}
	return f
}

// firstOf returns the first element of the list v, if it has one.
func firstOf(v reflect.Value) reflect.Value {
	if !v.IsValid() || v.Len() == 0 {
		return reflect.Value{}
	}
	return v.Index(0)
}

// defaultCell is the Default column of a scalar key: the value the loader
// gives it (fv, from serveProbe), and the one of local mode (lv) where that
// differs. A zero value is no default, except false for a boolean.
func defaultCell(path string, t reflect.Type, fv, lv reflect.Value) string {
	cell := func(v reflect.Value) string {
		switch {
		case v.IsValid() && !v.IsZero() && !probeKeys[path]:
			return "`" + formatValue(v) + "`"
		case t.Kind() == reflect.Bool:
			return "`false`"
		}
		return "—"
	}
	c := cell(fv)
	if lv.IsValid() && cell(lv) != c {
		c += "; local mode: " + cell(lv)
	}
	return c
}

// formatValue writes a value the way a user would write it in YAML.
func formatValue(v reflect.Value) string {
	switch {
	case v.Type() == durationType:
		return formatDuration(time.Duration(v.Int()))
	case v.Type() == byteSizeType:
		return formatSize(v.Int())
	}
	switch v.Kind() {
	case reflect.Float64, reflect.Float32:
		s := strconv.FormatFloat(v.Float(), 'f', -1, 64)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return s
	case reflect.String:
		return v.String()
	}
	return fmt.Sprint(v.Interface())
}

func formatDuration(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func formatSize(n int64) string {
	for _, u := range []struct {
		size   int64
		suffix string
	}{{1 << 40, "t"}, {1 << 30, "g"}, {1 << 20, "m"}, {1 << 10, "k"}} {
		if n != 0 && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.suffix)
		}
	}
	return strconv.FormatInt(n, 10)
}

// renderDoc turns a Go doc comment into the Description cell: the leading
// Go name becomes the key, sibling fields' Go names become their keys, and
// text outside code spans is escaped for a Markdown table.
func renderDoc(text, goName, key string, siblings map[string]string) string {
	if rest, ok := strings.CutPrefix(text, goName+" "); ok {
		text = key + " " + rest
	} else if rest, ok := strings.CutPrefix(text, goName+"."); ok && siblings == nil {
		text = key + "." + rest
	}
	parts := strings.Split(text, "`")
	for i := range parts {
		if i%2 == 1 { // inside a code span
			parts[i] = strings.ReplaceAll(parts[i], "|", `\|`)
			continue
		}
		for goField, yamlKey := range siblings {
			parts[i] = replaceWord(parts[i], goField, "`"+yamlKey+"`")
		}
		// Variable names read as code (and keep their underscores).
		parts[i] = envNameRE.ReplaceAllStringFunc(escapeText(parts[i]), func(v string) string {
			return "`" + strings.NewReplacer("&lt;", "<", "&gt;", ">").Replace(v) + "`"
		})
	}
	return strings.Join(parts, "`")
}

// envNameRE matches SLIPWAY_* variable names (after escapeText).
var envNameRE = regexp.MustCompile(`\bSLIPWAY_(?:[A-Z0-9_]|&lt;|&gt;)+`)

// replaceWord replaces whole-word occurrences of word that are not part of
// a template reference such as {{.Domain}} (preceded by a dot).
func replaceWord(s, word, with string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, word)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(word)
		before := i > 0 && (isWordByte(s[i-1]) || s[i-1] == '.' || s[i-1] == '`')
		after := end < len(s) && (isWordByte(s[end]) || s[end] == '`')
		b.WriteString(s[:i])
		if before || after {
			b.WriteString(word)
		} else {
			b.WriteString(with)
		}
		s = s[end:]
	}
}

func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// escapeText escapes text (outside code spans) for a Markdown table cell.
func escapeText(s string) string {
	return strings.NewReplacer("|", `\|`, "<", "&lt;", ">", "&gt;", "*", `\*`).Replace(s)
}

// writeIfChanged writes b to path unless it already holds exactly b.
func writeIfChanged(path string, b []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, b) {
		return nil
	}
	return os.WriteFile(path, b, 0o644)
}
