package main

import (
	"cmp"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/slipwayhq/slipway/config"
)

// probeName is the entry a test creates in a map of objects ("secrets.<name>").
const probeName = "PROBE"

// defaultCellRE is a Default cell that states a value: the value, and the
// one of local mode (no github section) where that differs.
var defaultCellRE = regexp.MustCompile("^`([^`]*)`(?:; local mode: `([^`]*)`)?$")

// TestControllerDefaultsAreTheLoaders checks the Default column of
// slipway.yaml against the real loader, not against the generator: a key
// written with its documented default loads the same configuration as the
// key left out (for GitHub, and in local mode), and a key documented
// without a default loads empty.
func TestControllerDefaultsAreTheLoaders(t *testing.T) {
	doc, err := Build(configDir)
	if err != nil {
		t.Fatal(err)
	}
	load := func(b []byte) (any, error) {
		return config.ParseController(b, func(string) (string, bool) { return "", false })
	}
	resolve := func(c any) any { return resolveHosts(*c.(*config.Controller)) }
	withGitHub := fileProbe{name: "with github", load: load, resolve: resolve, base: func() map[string]any {
		// The least a configuration for GitHub needs, with one repository.
		return map[string]any{
			"github": map[string]any{"token": "probe-token", "webhook_secret": "probe-secret"},
			"repos":  []any{map[string]any{"name": "probe/probe"}},
		}
	}}
	localMode := fileProbe{name: "local mode", load: load, resolve: resolve, base: func() map[string]any { return map[string]any{} }}
	rows := scalarRows(doc.Controller)
	if len(rows) < 50 {
		t.Errorf("only %d keys of slipway.yaml documented", len(rows))
	}
	for _, r := range rows {
		t.Run(r.Key, func(t *testing.T) {
			cell := defaultCellRE.FindStringSubmatch(r.Default)
			if r.Default != "—" && cell == nil {
				t.Fatalf("Default %q is neither — nor a value the loader can be checked against", r.Default)
			}
			var value, local string
			if cell != nil {
				value, local = cell[1], cmp.Or(cell[2], cell[1])
			}
			withGitHub.check(t, r.Key, value)
			if !strings.HasPrefix(r.Key, "github.") && !strings.HasPrefix(r.Key, "repos[]") {
				localMode.check(t, r.Key, local)
			}
		})
	}
}

// TestRepoDefaultsAreWhatSlipwayApplies checks the Default column of
// .slipway.yml against ParseRepo and the code that completes its result
// where it is used (config.RepoPolicy.TTLFor). A default that is a choice
// among files (compose) comes from the list stack.Load tries.
func TestRepoDefaultsAreWhatSlipwayApplies(t *testing.T) {
	doc, err := Build(configDir)
	if err != nil {
		t.Fatal(err)
	}
	probe := fileProbe{
		name: ".slipway.yml",
		base: func() map[string]any {
			return map[string]any{
				"expose":       []any{map[string]any{"service": "probe"}},
				"after_deploy": []any{map[string]any{"service": "probe"}},
			}
		},
		load:    func(b []byte) (any, error) { return config.ParseRepo(b) },
		resolve: func(r any) any { return resolvedRepo(*r.(*config.Repo)) },
	}
	values := 0
	for _, r := range scalarRows(doc.Repo) {
		t.Run(r.Key, func(t *testing.T) {
			if describe, ok := describedDefaults[repoID+":"+r.Key]; ok {
				if r.Default != describe() {
					t.Errorf("Default %q, want %q", r.Default, describe())
				}
				return
			}
			cell := defaultCellRE.FindStringSubmatch(r.Default)
			switch {
			case r.Default == "—":
				probe.check(t, r.Key, "")
			case cell == nil || cell[2] != "":
				t.Fatalf("Default %q is neither — nor a value", r.Default)
			default:
				values++
				probe.check(t, r.Key, cell[1])
			}
		})
	}
	if values == 0 {
		t.Error("no .slipway.yml key documents a default value (ttl has one)")
	}
}

// fileProbe loads variants of one configuration file.
type fileProbe struct {
	name string
	// base is the least file that loads, as maps.
	base func() map[string]any
	// load is the file's loader.
	load func([]byte) (any, error)
	// resolve completes what load returned the way its users read it.
	resolve func(any) any
}

// check compares the documented default of key (value, "" for none) with
// what loading base does: written with its default, the key must load what
// leaving it out loads; documented without one, it must load empty.
func (p fileProbe) check(t *testing.T, key, value string) {
	t.Helper()
	base := p.base()
	if parent, _, ok := strings.Cut(key, ".<name>."); ok {
		setPath(base, parent+".<name>", map[string]any{})
	}
	load := func(key, value string) any {
		t.Helper()
		c, err := p.load(yamlWith(t, base, key, value))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return c
	}
	absent := load("", "")
	if value == "" {
		if _, set := getPath(base, key); set {
			return // the probe itself sets it
		}
		if v := fieldByKey(t, absent, key); !v.IsZero() {
			t.Errorf("%s: documented without a default, but loading gives %v", p.name, v.Interface())
		}
		return
	}
	written := load(key, value)
	if diff := fieldDiff(reflect.ValueOf(p.resolve(absent)), reflect.ValueOf(p.resolve(written)), ""); len(diff) > 0 {
		t.Errorf("%s: writing the documented default %q changes what is loaded:\n%s", p.name, value, strings.Join(diff, "\n"))
	}
}

// scalarRows are the rows of the keys that hold values, not objects.
func scalarRows(sections []Section) []Row {
	var out []Row
	for _, s := range sections {
		for _, r := range s.Rows {
			if !strings.Contains(r.Type, "[object") { // [object](…), list of [objects](…), map of name to [object](…)
				out = append(out, r)
			}
		}
	}
	return out
}

// resolvedRepo completes r the way the controller reads it: the ttl
// through TTLFor (of a repository slipway.yaml sets no ttl for).
func resolvedRepo(r config.Repo) config.Repo {
	ttl := config.Duration(config.RepoPolicy{}.TTLFor(&r))
	r.TTL = &ttl
	return r
}

// fieldDiff lists the fields in which a (the key left out) and b (the key
// written) differ, as "path: a → b".
func fieldDiff(a, b reflect.Value, path string) []string {
	if reflect.DeepEqual(a.Interface(), b.Interface()) {
		return nil
	}
	for a.Kind() == reflect.Pointer && b.Kind() == reflect.Pointer && !a.IsNil() && !b.IsNil() {
		a, b = a.Elem(), b.Elem()
	}
	if a.Kind() != reflect.Struct {
		return []string{fmt.Sprintf("%s: %v → %v", path, a.Interface(), b.Interface())}
	}
	var out []string
	for i := range a.NumField() {
		out = append(out, fieldDiff(a.Field(i), b.Field(i), joinKey(path, a.Type().Field(i).Name))...)
	}
	return out
}

// yamlWith writes m with key (a documented key such as "repos[].ttl") set
// to value as the user would write it; key "" writes m alone.
func yamlWith(t *testing.T, m map[string]any, key, value string) []byte {
	t.Helper()
	const marker = "DOCGEN_PROBE_VALUE"
	if key != "" {
		setPath(m, key, marker)
	}
	b, err := yaml.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if key == "" {
		return b
	}
	// Strings are quoted ({{.Service}} would start a flow mapping); other
	// values (1.0, 5m, 1g, false) are written as they are.
	literal := value
	if _, isString := stringKeys()[key]; isString {
		q, err := yaml.Marshal(value)
		if err != nil {
			t.Fatal(err)
		}
		literal = strings.TrimSpace(string(q))
	}
	return []byte(strings.Replace(string(b), marker, literal, 1))
}

// stringKeys lists the keys of both files whose values are strings.
func stringKeys() map[string]bool {
	out := map[string]bool{}
	var visit func(t reflect.Type, prefix string, depth int)
	visit = func(t reflect.Type, prefix string, depth int) {
		if depth > 5 {
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			key := joinKey(prefix, yamlName(f))
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch {
			case ft.Kind() == reflect.String:
				out[key] = true
			case ft.Kind() == reflect.Struct:
				visit(ft, key, depth+1)
			case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
				visit(ft.Elem(), key+"[]", depth+1)
			case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct:
				visit(ft.Elem(), key+".<name>", depth+1)
			}
		}
	}
	visit(reflect.TypeFor[config.Controller](), "", 0)
	visit(reflect.TypeFor[config.Repo](), "", 0)
	return out
}

// setPath sets a documented key in a YAML document held as maps: "x[]" is
// the list's first element (created when missing), "<name>" the entry PROBE.
func setPath(m map[string]any, key string, v any) {
	parts := strings.Split(strings.ReplaceAll(key, "<name>", probeName), ".")
	for _, p := range parts[:len(parts)-1] {
		m = child(m, p)
	}
	m[parts[len(parts)-1]] = v
}

func child(m map[string]any, part string) map[string]any {
	name, list := strings.CutSuffix(part, "[]")
	if !list {
		next, ok := m[name].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[name] = next
		}
		return next
	}
	items, _ := m[name].([]any)
	if len(items) == 0 {
		items = []any{map[string]any{}}
		m[name] = items
	}
	return items[0].(map[string]any)
}

// getPath reports whether m sets a documented key.
func getPath(m map[string]any, key string) (any, bool) {
	var cur any = m
	for _, p := range strings.Split(strings.ReplaceAll(key, "<name>", probeName), ".") {
		name, list := strings.CutSuffix(p, "[]")
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = mm[name]; !ok {
			return nil, false
		}
		if list {
			items, _ := cur.([]any)
			if len(items) == 0 {
				return nil, false
			}
			cur = items[0]
		}
	}
	return cur, true
}
