package main

import (
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
	modes := []struct {
		name string
		base func() map[string]any
	}{
		// The least a configuration for GitHub needs, with one repository.
		{"with github", func() map[string]any {
			return map[string]any{
				"github": map[string]any{"token": "probe-token", "webhook_secret": "probe-secret"},
				"repos":  []any{map[string]any{"name": "probe/probe"}},
			}
		}},
		{"local mode", func() map[string]any { return map[string]any{} }},
	}
	load := func(t *testing.T, m map[string]any, key, value string) *config.Controller {
		t.Helper()
		c, err := config.ParseController(yamlWith(t, m, key, value), func(string) (string, bool) { return "", false })
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return c
	}
	checked := 0
	for _, s := range doc.Controller {
		for _, r := range s.Rows {
			if objectRow(r) {
				continue
			}
			checked++
			t.Run(r.Key, func(t *testing.T) {
				cell := defaultCellRE.FindStringSubmatch(r.Default)
				if r.Default != "—" && cell == nil {
					t.Fatalf("Default %q is neither — nor a value the loader can be checked against", r.Default)
				}
				for i, mode := range modes {
					local := i == 1
					if local && (strings.HasPrefix(r.Key, "github.") || strings.HasPrefix(r.Key, "repos[]")) {
						continue // no such section in local mode
					}
					base := mode.base()
					if parent, _, ok := strings.Cut(r.Key, ".<name>."); ok {
						setPath(base, parent+".<name>", map[string]any{})
					}
					absent := load(t, base, "", "")
					if r.Default == "—" {
						if _, set := getPath(base, r.Key); set {
							continue // the probe sets it
						}
						if v := fieldByKey(t, absent, r.Key); !v.IsZero() {
							t.Errorf("%s: documented without a default, but the loader sets %v", mode.name, v.Interface())
						}
						continue
					}
					want := cell[1]
					if local && cell[2] != "" {
						want = cell[2]
					}
					written := load(t, base, r.Key, want)
					if diff := fieldDiff(reflect.ValueOf(resolveHosts(*absent)), reflect.ValueOf(resolveHosts(*written)), ""); len(diff) > 0 {
						t.Errorf("%s: writing the documented default %q changes what the loader makes of the file:\n%s", mode.name, want, strings.Join(diff, "\n"))
					}
				}
			})
		}
	}
	if checked < 50 {
		t.Errorf("only %d keys of slipway.yaml checked", checked)
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
	base := func() map[string]any {
		return map[string]any{
			"expose":       []any{map[string]any{"service": "probe"}},
			"after_deploy": []any{map[string]any{"service": "probe"}},
		}
	}
	parse := func(t *testing.T, key, value string) *config.Repo {
		t.Helper()
		r, err := config.ParseRepo(yamlWith(t, base(), key, value))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return r
	}
	values := 0
	for _, s := range doc.Repo {
		for _, r := range s.Rows {
			if objectRow(r) {
				continue
			}
			t.Run(r.Key, func(t *testing.T) {
				if describe, ok := describedDefaults[repoID+":"+r.Key]; ok {
					if r.Default != describe() {
						t.Errorf("Default %q, want %q", r.Default, describe())
					}
					return
				}
				absent := parse(t, "", "")
				if r.Default == "—" {
					if _, set := getPath(base(), r.Key); set {
						return
					}
					if v := fieldByKey(t, absent, r.Key); !v.IsZero() {
						t.Errorf("documented without a default, but ParseRepo sets %v", v.Interface())
					}
					return
				}
				cell := defaultCellRE.FindStringSubmatch(r.Default)
				if cell == nil || cell[2] != "" {
					t.Fatalf("Default %q is neither — nor a value", r.Default)
				}
				values++
				written := parse(t, r.Key, cell[1])
				if diff := fieldDiff(reflect.ValueOf(resolvedRepo(*absent)), reflect.ValueOf(resolvedRepo(*written)), ""); len(diff) > 0 {
					t.Errorf("writing the documented default %q changes what Slipway makes of the file:\n%s", cell[1], strings.Join(diff, "\n"))
				}
			})
		}
	}
	if values == 0 {
		t.Error("no .slipway.yml key documents a default value (ttl has one)")
	}
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

func objectRow(r Row) bool {
	return strings.Contains(r.Type, "[object") // [object](…), list of [objects](…), map of name to [object](…)
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
