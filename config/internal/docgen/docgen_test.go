package main

import (
	"bytes"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/slipwayhq/slipway/config"
)

var update = flag.Bool("update", false, "rewrite docs/configuration.md")

const (
	configDir = "../.."
	docsDir   = "../../../docs"
)

// TestConfigurationDocIsCurrent fails while the committed
// docs/configuration.md differs from what the generator makes of the
// config package. Fix: go generate ./config (or go test -update here).
func TestConfigurationDocIsCurrent(t *testing.T) {
	want, err := Generate(configDir)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(docsDir, "configuration.md")
	if *update {
		if err := writeIfChanged(path, want); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run: go generate ./config)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("docs/configuration.md is stale: run `go generate ./config` (or `go test ./config/internal/docgen -update`)\n%s", firstDiff(string(got), string(want)))
	}
}

func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("first difference at line %d:\n committed: %s\n generated: %s", i+1, gl, wl)
		}
	}
	return ""
}

// TestEveryKeyIsDocumented: every yaml key of both files has a row, with a
// description, a type and the defaults config.Defaults() applies.
func TestEveryKeyIsDocumented(t *testing.T) {
	doc, err := Build(configDir)
	if err != nil {
		t.Fatal(err)
	}
	collect := func(file string, sections []Section, root reflect.Type) map[string]Row {
		rows := map[string]Row{}
		for _, s := range sections {
			for _, r := range s.Rows {
				if _, dup := rows[r.Key]; dup {
					t.Errorf("%s: key %s documented twice", file, r.Key)
				}
				rows[r.Key] = r
				if r.Doc == "" || r.Type == "" || r.Default == "" {
					t.Errorf("%s: row %s is incomplete: %+v", file, r.Key, r)
				}
			}
		}
		for _, key := range yamlKeys(root, "", map[reflect.Type]bool{}) {
			if _, ok := rows[key]; !ok {
				t.Errorf("%s key %s has no row", file, key)
			}
		}
		return rows
	}
	rows := collect("slipway.yaml", doc.Controller, reflect.TypeFor[config.Controller]())
	collect(".slipway.yml", doc.Repo, reflect.TypeFor[config.Repo]())
	for key, want := range map[string]string{
		"domain": "`localhost`", "state_dir": "`/var/lib/slipway`", "resync": "`5m`",
		"limits.memory": "`1g`", "limits.cpus": "`1.0`", "limits.log_size": "`10m`", "limits.builds": "`2`",
		"listen.https": "`:443`", "listen.http": "`:80`; local mode: `:8080`", "tls.mode": "`off`", "github.api_url": "`https://api.github.com/`",
		"repos[].forks": "`approve`", "repos[].trigger": "`all`", "repos[].drafts": "`false`", "repos[].ttl": "—",
		"host_template": "`pr-{{.Number}}.{{.Domain}}`", "github.token": "—", "tls.ca": "—",
	} {
		if got := rows[key].Default; got != want {
			t.Errorf("default of %s = %q, want %q", key, got, want)
		}
	}
}

// yamlKeys lists the keys of t the way the generator names them, visiting
// each struct type once (a type reached again is documented in its first
// section).
func yamlKeys(t reflect.Type, prefix string, seen map[reflect.Type]bool) []string {
	seen[t] = true
	var out []string
	var next []func()
	for i := range t.NumField() {
		f := t.Field(i)
		name := yamlName(f)
		key := joinKey(prefix, name)
		out = append(out, key)
		ft := f.Type
		if ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch {
		case ft.Kind() == reflect.Struct && !seen[ft]:
			seen[ft] = true
			next = append(next, func() { out = append(out, yamlKeys(ft, key, seen)...) })
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct && !seen[ft.Elem()]:
			seen[ft.Elem()] = true
			next = append(next, func() { out = append(out, yamlKeys(ft.Elem(), key+"[]", seen)...) })
		case ft.Kind() == reflect.Map && ft.Elem().Kind() == reflect.Struct && !seen[ft.Elem()]:
			seen[ft.Elem()] = true
			next = append(next, func() { out = append(out, yamlKeys(ft.Elem(), key+".<name>", seen)...) })
		}
	}
	for _, f := range next {
		f()
	}
	return out
}

// probeBase is a valid slipway.yaml for the environment probes: with a
// github section and the keys that other keys require.
const probeBase = `
github: {token: base-token, webhook_secret: base-secret, private_key: base-key, oauth: {client_id: base-id, client_secret: base-secret}}
tls: {dns_provider: cloudflare}
access_password: base-password
dashboard: {user: base-user, password: base-password}
`

// load writes yamlText to a file and loads it with env as the only environment.
func load(t *testing.T, yamlText string, env map[string]string) (*config.Controller, error) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "slipway.yaml")
	if err := os.WriteFile(p, []byte(yamlText), 0o600); err != nil {
		t.Fatal(err)
	}
	return config.LoadController(p, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

// fieldByKey returns the field of c (a *config.Controller or *config.Repo)
// at a documented key such as "tls.mode": "x[]" is the list's first
// element, "<name>" the map's entry PROBE.
func fieldByKey(t *testing.T, c any, key string) reflect.Value {
	t.Helper()
	v := reflect.ValueOf(c).Elem()
	for _, part := range strings.Split(key, ".") {
		if part == "<name>" {
			if v = v.MapIndex(reflect.ValueOf(probeName)); !v.IsValid() {
				t.Fatalf("%s: no entry %s", key, probeName)
			}
			continue
		}
		for v.Kind() == reflect.Pointer {
			if v.IsNil() {
				t.Fatalf("%s: %s is nil", key, part)
			}
			v = v.Elem()
		}
		name, list := strings.CutSuffix(part, "[]")
		found := false
		for i := range v.NumField() {
			if yamlName(v.Type().Field(i)) == name {
				v, found = v.Field(i), true
				break
			}
		}
		if !found {
			t.Fatalf("%s: no field %s", key, part)
		}
		if list {
			if v.Len() == 0 {
				t.Fatalf("%s: %s is empty", key, part)
			}
			v = v.Index(0)
		}
	}
	return v
}

// TestEnvironmentVariablesSetTheirKeys sets each documented variable alone
// and checks that exactly its documented key takes the value.
func TestEnvironmentVariablesSetTheirKeys(t *testing.T) {
	doc, err := Build(configDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Env) < 20 {
		t.Fatalf("only %d variables documented", len(doc.Env))
	}
	baseline, err := load(t, probeBase, nil)
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(t.TempDir(), "probe-secret")
	if err := os.WriteFile(secretFile, []byte("from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, e := range doc.Env {
		t.Run(e.Name, func(t *testing.T) {
			before := fieldByKey(t, baseline, e.Key)
			var candidates []string
			switch before.Interface().(type) {
			case config.Duration:
				candidates = []string{"7m"}
			case int, int64:
				candidates = []string{"7"}
			case string:
				candidates = []string{secretFile, "on-demand", "json", "iptables", "off", "bridge", "password", "random"}
			case bool:
				candidates = []string{"true", "false"}
			default:
				t.Fatalf("no probe value for a %T", before.Interface())
			}
			var tried []string
			for _, val := range candidates {
				c, err := load(t, probeBase, map[string]string{e.Name: val})
				if err != nil {
					tried = append(tried, fmt.Sprintf("%q: %v", val, err))
					continue
				}
				got := fmt.Sprint(fieldByKey(t, c, e.Key).Interface())
				want := val
				if _, ok := before.Interface().(config.Duration); ok {
					want = fmt.Sprint(config.Duration(7 * time.Minute))
				}
				if got != want || fmt.Sprint(before.Interface()) == want {
					tried = append(tried, fmt.Sprintf("%q: %s = %q", val, e.Key, got))
					continue
				}
				if strings.HasSuffix(e.Key, "_file") {
					valueKey := strings.TrimSuffix(e.Key, "_file")
					if v := fieldByKey(t, c, valueKey).String(); v != "from-the-file" {
						t.Errorf("%s named a file, but %s = %q", e.Name, valueKey, v)
					}
				}
				return
			}
			t.Errorf("%s does not set %s: %s", e.Name, e.Key, strings.Join(tried, "; "))
		})
	}
}

// TestSecretFilesAreRead names a file in each documented *_file key and
// checks that the value key holds its content, trailing newline removed,
// and that an unreadable file is an error.
func TestSecretFilesAreRead(t *testing.T) {
	doc, err := Build(configDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Files) < 6 {
		t.Fatalf("only %d file secrets documented", len(doc.Files))
	}
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, f := range doc.Files {
		t.Run(f.FileKey, func(t *testing.T) {
			// The github section needs a token and a webhook secret; inline
			// ones also show that the file replaces an inline value.
			withFile := func(path string) string {
				// A dashboard password goes with a user.
				doc := map[string]any{"github": map[string]any{"token": "inline", "webhook_secret": "inline"},
					"dashboard": map[string]any{"user": "probe-user", "password": "inline"}}
				parts := strings.Split(strings.ReplaceAll(f.FileKey, ".<name>", ".PROBE"), ".")
				m := doc
				for _, p := range parts[:len(parts)-1] {
					if list, ok := strings.CutSuffix(p, "[]"); ok {
						// One element, named as a list entry must be.
						next := map[string]any{"name": "probe/probe"}
						m[list] = []any{next}
						m = next
						continue
					}
					next, ok := m[p].(map[string]any)
					if !ok {
						next = map[string]any{}
						m[p] = next
					}
					m = next
				}
				m[parts[len(parts)-1]] = path
				b, err := yaml.Marshal(doc)
				if err != nil {
					t.Fatal(err)
				}
				return string(b)
			}
			c, err := load(t, withFile(secret), nil)
			if err != nil {
				t.Fatal(err)
			}
			var got string
			if strings.HasPrefix(f.Key, "secrets.") {
				got = c.Secrets["PROBE"].Value
			} else {
				got = fieldByKey(t, c, f.Key).String()
			}
			if got != "s3cret" {
				t.Errorf("%s = %q after %s named a file holding \"s3cret\\r\\n\"", f.Key, got, f.FileKey)
			}
			if !slices.Contains(slices.Collect(maps.Values(c.HeldSecrets())), "s3cret") {
				t.Errorf("%s is not among the secrets Slipway masks: %v", f.Key, c.HeldSecrets())
			}
			if _, err := load(t, withFile(filepath.Join(dir, "missing")), nil); err == nil {
				t.Errorf("%s naming a missing file loaded without error", f.FileKey)
			}
		})
	}
}

// TestPreviewSecretSources checks what the document says about
// SLIPWAY_SECRET_<NAME>: the name's normalisation and the order in which
// the four sources override each other.
func TestPreviewSecretSources(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key")
	envFile := filepath.Join(dir, "env")
	os.WriteFile(keyFile, []byte("from-key-file\n"), 0o600)
	os.WriteFile(envFile, []byte("from-env-file\n"), 0o600)
	cases := []struct {
		name string
		yaml string
		env  map[string]string
		want string
	}{
		{"value", `{value: inline}`, nil, "inline"},
		{"variable beats value", `{value: inline}`, map[string]string{"SLIPWAY_SECRET_STRIPE_KEY": "from-env"}, "from-env"},
		{"file beats variable", `{value: inline, file: ` + keyFile + `}`, map[string]string{"SLIPWAY_SECRET_STRIPE_KEY": "from-env"}, "from-key-file"},
		{"file variable beats file", `{file: ` + keyFile + `}`, map[string]string{"SLIPWAY_SECRET_STRIPE_KEY": "from-env", "SLIPWAY_SECRET_STRIPE_KEY_FILE": envFile}, "from-env-file"},
		{"declared empty, from the environment", `{}`, map[string]string{"SLIPWAY_SECRET_STRIPE_KEY": "from-env"}, "from-env"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, "secrets:\n  stripe-key: "+tc.yaml+"\n", tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Secrets["stripe-key"].Value; got != tc.want {
				t.Errorf("secret = %q, want %q", got, tc.want)
			}
		})
	}
	c, err := load(t, "secrets: {DECLARED: {}}\n", map[string]string{"SLIPWAY_SECRET_UNDECLARED": "x"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Secrets["UNDECLARED"]; ok {
		t.Error("an undeclared SLIPWAY_SECRET_ variable became a secret")
	}
}

// TestDurationsAndSizes checks the forms the document promises.
func TestDurationsAndSizes(t *testing.T) {
	for in, want := range map[string]time.Duration{"90s": 90 * time.Second, "1h30m": 90 * time.Minute, "168h": 168 * time.Hour, "7d": 7 * 24 * time.Hour} {
		var r struct {
			TTL config.Duration `yaml:"ttl"`
		}
		if err := yaml.Unmarshal([]byte("ttl: "+in), &r); err != nil || r.TTL.D() != want {
			t.Errorf("duration %s = %v, %v; want %v", in, r.TTL.D(), err, want)
		}
	}
	if _, err := config.ParseDuration("-5m"); err == nil {
		t.Error("a negative duration was accepted")
	}
	for in, want := range map[string]int64{"512m": 512 << 20, "1g": 1 << 30, "1.5g": 3 << 29, "512MiB": 512 << 20, "1048576": 1 << 20} {
		var r struct {
			Size config.ByteSize `yaml:"size"`
		}
		if err := yaml.Unmarshal([]byte("size: "+in), &r); err != nil || int64(r.Size) != want {
			t.Errorf("size %s = %d, %v; want %d", in, r.Size, err, want)
		}
	}
}

// yamlBlockRE finds fenced YAML blocks; the first line names the file.
var yamlBlockRE = regexp.MustCompile("(?s)```yaml\n(.*?)```")

// TestDocumentedExamplesLoad loads every YAML example in docs/ whose first
// line is "# slipway.yaml" or "# .slipway.yml" the way Slipway would:
// strictly (unknown keys fail) and validated. Files the examples name are
// taken as present.
func TestDocumentedExamplesLoad(t *testing.T) {
	docs, err := filepath.Glob(filepath.Join(docsDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range yamlBlockRE.FindAllStringSubmatch(string(b), -1) {
			block := m[1]
			first, _, _ := strings.Cut(block, "\n")
			name := fmt.Sprintf("%s#%d", filepath.Base(d), i+1)
			switch strings.TrimSpace(first) {
			case "# slipway.yaml":
				seen["slipway.yaml"]++
				t.Run(name, func(t *testing.T) { checkControllerExample(t, block) })
			case "# .slipway.yml":
				seen[".slipway.yml"]++
				t.Run(name, func(t *testing.T) {
					if _, err := config.ParseRepo([]byte(block)); err != nil {
						t.Errorf("%v\n%s", err, block)
					}
				})
			}
		}
	}
	if seen["slipway.yaml"] < 3 || seen[".slipway.yml"] < 1 {
		t.Errorf("examples checked: %v; the docs lost their marked examples", seen)
	}
}

// checkControllerExample decodes a slipway.yaml example strictly over the
// defaults, as LoadController does, stands in for the files it names (as if
// each held a secret) and validates it.
func checkControllerExample(t *testing.T, block string) {
	t.Helper()
	c := config.Defaults()
	dec := yaml.NewDecoder(strings.NewReader(block))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%v\n%s", err, block)
	}
	if g := c.GitHub; g != nil {
		fill(&g.Token, g.TokenFile)
		fill(&g.PrivateKey, g.PrivateKeyFile)
		fill(&g.WebhookSecret, g.WebhookSecretFile)
		fill(&g.OAuth.ClientSecret, g.OAuth.ClientSecretFile)
	}
	fill(&c.AccessPassword, c.AccessPasswordFile)
	for i := range c.Repos {
		fill(&c.Repos[i].AccessPassword, c.Repos[i].AccessPasswordFile)
	}
	fill(&c.TLS.DNSAPIToken, c.TLS.DNSAPITokenFile)
	fill(&c.Dashboard.Token, c.Dashboard.TokenFile)
	fill(&c.Dashboard.Password, c.Dashboard.PasswordFile)
	if err := c.Validate(); err != nil {
		t.Errorf("%v\n%s", err, block)
	}
}

func fill(dst *string, file string) {
	if file != "" && *dst == "" {
		*dst = "from " + file
	}
}

// TestBuildRejectsWrongDocs runs the generator on a copy of the config
// source whose doc comments state defaults (the Default column is the
// code's) or are missing, and expects it to refuse.
func TestBuildRejectsWrongDocs(t *testing.T) {
	orig, err := os.ReadFile(filepath.Join(configDir, "controller.go"))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, from, to, want string
	}{
		{"a default stated in prose", "// Builds is the most builds at once.", "// Builds is the most builds at once. Default 2.", "limits.builds"},
		{"a default in parentheses", "whatever webhooks arrived.", "whatever webhooks arrived (default 5m).", "resync"},
		{"a default after a semicolon", "// HTTP address.", `// HTTP address; default ":80".`, "listen.http"},
		{"missing doc comment", "\t// Drafts deploys draft pull requests too; otherwise a draft gets its\n\t// environment when it is marked ready for review.\n", "", "repos[].drafts"},
		{"variable of no documented field", `"SLIPWAY_DOMAIN":      func(c *Controller, v string) error { c.Domain = v; return nil },`,
			`"SLIPWAY_DOMAIN":      func(c *Controller, v string) error { c.Domain = v; return nil },
	"SLIPWAY_NOWHERE": func(c *Controller, v string) error { return nil },`, "SLIPWAY_NOWHERE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !bytes.Contains(orig, []byte(tc.from)) {
				t.Fatalf("controller.go no longer contains %q; update this test", tc.from)
			}
			dir := t.TempDir()
			for _, f := range []string{"repo.go", "types.go"} {
				b, err := os.ReadFile(filepath.Join(configDir, f))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(dir, f), b, 0o644)
			}
			os.WriteFile(filepath.Join(dir, "controller.go"), bytes.Replace(orig, []byte(tc.from), []byte(tc.to), 1), 0o644)
			_, err := Build(dir)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Build = %v, want an error naming %s", err, tc.want)
			}
		})
	}
	if _, err := Build(configDir); err != nil {
		t.Errorf("the real source: %v", err)
	}
}

func TestFormatting(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0", 5 * time.Minute: "5m", 90 * time.Minute: "1h30m", time.Hour: "1h", 90 * time.Second: "1m30s", 48 * time.Hour: "2d"} {
		if got := formatDuration(d); got != want {
			t.Errorf("formatDuration(%v) = %q, want %q", d, got, want)
		}
	}
	for n, want := range map[int64]string{1 << 30: "1g", 10 << 20: "10m", 1536: "1536", 3 << 10: "3k", 0: "0"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
	got := renderDoc("Password for User (see {{.User}}, Users, `User`) | <x> *", "Password", "`password`", map[string]string{"User": "user", "Password": "password"})
	want := "`password` for `user` (see {{.User}}, Users, `User`) \\| &lt;x&gt; \\*"
	if got != want {
		t.Errorf("renderDoc = %q\n want %q", got, want)
	}
	if got := renderDoc("Secrets from SLIPWAY_SECRET_<NAME>_FILE.", "Secrets", "`secrets`", nil); got != "`secrets` from `SLIPWAY_SECRET_<NAME>_FILE`." {
		t.Errorf("renderDoc = %q", got)
	}
}
