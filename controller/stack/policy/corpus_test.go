package policy

import (
	"bufio"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

// The corpus: testdata/hostile holds one compose project per forbidden
// construct (a compose.yaml, or a directory with compose.yaml and the files
// it includes), each rejected with the rule and field its header names;
// testdata/benign holds real-world-shaped projects that must pass. Every
// file goes through PreLoad and then, if that passes, through compose-go
// exactly as the stack engine loads it, and Check.
//
// Header directives of a hostile compose.yaml:
//
//	# expect: SW-MNT-002 volumes[0].source   (rule, and a substring of the field)
//	# setup: symlink data -> /etc             (made at run time: git stores symlinks awkwardly)
//	# setup: dir data
//	# setup: write data/site.conf server {}   (a file and its one-line content)
//	# setup: write .env CHECKOUT={checkout}   ({checkout} is the checkout's absolute path)

const testProject = "acme-shop-pr-7"

// testEnv is what the stack engine hands compose-go for interpolation: the
// SLIPWAY_* variables, never the process environment.
func testEnv() map[string]string {
	return map[string]string{
		"SLIPWAY_PR":   "7",
		"SLIPWAY_REPO": "acme/shop",
		"SLIPWAY_SHA":  "0123456789abcdef0123456789abcdef01234567",
		"SLIPWAY_URL":  "http://pr-7.localhost",
	}
}

// loadProject loads compose files the way controller/stack does: working
// directory = checkout, explicit name, SLIPWAY_* env and the checkout's
// .env, resolved paths; no WithOsEnv, no WithDefaultConfigPath.
func loadProject(t *testing.T, root string, files []string, profiles []string) (*types.Project, error) {
	t.Helper()
	env := testEnv()
	var vars []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		vars = append(vars, k+"="+env[k])
	}
	opts, err := cli.NewProjectOptions(files,
		cli.WithWorkingDirectory(root),
		cli.WithName(testProject),
		cli.WithEnv(vars),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles(profiles),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

type expectation struct {
	rule  string
	field string
}

type hostileCase struct {
	name    string
	src     string // file or directory under testdata/hostile
	expects []expectation
	setups  []string
}

func readHostileCases(t *testing.T) []hostileCase {
	t.Helper()
	entries, err := os.ReadDir("testdata/hostile")
	if err != nil {
		t.Fatal(err)
	}
	var cases []hostileCase
	for _, e := range entries {
		c := hostileCase{name: strings.TrimSuffix(e.Name(), ".yaml"), src: filepath.Join("testdata/hostile", e.Name())}
		compose := c.src
		if e.IsDir() {
			compose = filepath.Join(c.src, "compose.yaml")
		}
		f, err := os.Open(compose)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "# expect: "); ok {
				rule, field, _ := strings.Cut(strings.TrimSpace(v), " ")
				c.expects = append(c.expects, expectation{rule: rule, field: strings.TrimSpace(field)})
			}
			if v, ok := strings.CutPrefix(line, "# setup: "); ok {
				c.setups = append(c.setups, strings.TrimSpace(v))
			}
		}
		f.Close()
		if len(c.expects) == 0 {
			t.Fatalf("%s: no '# expect:' line", compose)
		}
		cases = append(cases, c)
	}
	return cases
}

// materialize copies a case into a fresh checkout and applies its setup.
func materialize(t *testing.T, c hostileCase) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "checkout")
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(c.src)
	if err != nil {
		t.Fatal(err)
	}
	if fi.IsDir() {
		if err := os.CopyFS(root, os.DirFS(c.src)); err != nil {
			t.Fatal(err)
		}
	} else {
		b, err := os.ReadFile(c.src)
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(root, "compose.yaml"), string(b))
	}
	for _, s := range c.setups {
		verb, rest, _ := strings.Cut(s, " ")
		switch verb {
		case "symlink":
			link, target, ok := strings.Cut(rest, " -> ")
			if !ok {
				t.Fatalf("setup %q: want 'symlink LINK -> TARGET'", s)
			}
			p := filepath.Join(root, link)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		case "dir":
			if err := os.MkdirAll(filepath.Join(root, rest), 0o755); err != nil {
				t.Fatal(err)
			}
		case "write":
			p, content, _ := strings.Cut(rest, " ")
			content = strings.ReplaceAll(content, "{checkout}", root)
			writeFile(t, filepath.Join(root, p), content+"\n")
		default:
			t.Fatalf("unknown setup %q", s)
		}
	}
	return root
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// evaluate runs the policy as the stack engine does: PreLoad, and only if
// it passes, load and Check. It reports which phase found violations.
func evaluate(t *testing.T, root string, files []string, opts Options) ([]Violation, Phase) {
	t.Helper()
	vs, err := PreLoad(root, files, testEnv(), opts)
	if err != nil {
		t.Fatalf("PreLoad: %v", err)
	}
	if len(vs) > 0 {
		return vs, PhasePreLoad
	}
	project, err := loadProject(t, root, files, []string{"*"})
	if err != nil {
		t.Fatalf("compose-go rejects the project, so it cannot test the policy: %v", err)
	}
	return Check(project, root, opts), PhaseCheck
}

func TestHostileCorpus(t *testing.T) {
	cases := readHostileCases(t)
	if len(cases) < 40 {
		t.Fatalf("hostile corpus has %d cases, want at least 40", len(cases))
	}
	covered := map[string]bool{}
	for _, c := range cases {
		for _, e := range c.expects {
			covered[e.rule] = true
		}
		t.Run(c.name, func(t *testing.T) {
			root := materialize(t, c)
			vs, phase := evaluate(t, root, []string{filepath.Join(root, "compose.yaml")}, Options{})
			assertViolations(t, vs, c.expects)
			for _, v := range vs {
				r, ok := RuleByID(v.Rule)
				if !ok {
					t.Errorf("violation of unknown rule %s", v.Rule)
					continue
				}
				if r.Phase != phase && r.Phase != PhaseBoth {
					t.Errorf("%s is documented as a %s rule but was found by %s", r.ID, r.Phase, phase)
				}
			}
		})
	}
	for _, r := range Rules() {
		if !covered[r.ID] {
			t.Errorf("rule %s (%s) has no hostile compose file in testdata/hostile", r.ID, r.Key)
		}
	}
	t.Logf("hostile corpus: %d projects covering %d rules", len(cases), len(covered))
}

// assertViolations checks that vs holds exactly the expected rules, each
// expectation matched by a violation on a field containing its substring,
// and that every message names its field and value.
func assertViolations(t *testing.T, vs []Violation, expects []expectation) {
	t.Helper()
	var got []string
	for _, v := range vs {
		got = append(got, v.String())
	}
	want := map[string]bool{}
	for _, e := range expects {
		want[e.rule] = true
		found := false
		for _, v := range vs {
			if v.Rule == e.rule && strings.Contains(v.Field, e.field) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s violation on a field containing %q; got:\n  %s", e.rule, e.field, strings.Join(got, "\n  "))
		}
	}
	for _, v := range vs {
		if !want[v.Rule] {
			t.Errorf("unexpected violation: %s", v)
		}
		s := v.String()
		if v.Field == "" || !strings.Contains(s, v.Field) {
			t.Errorf("message does not name the field: %s", s)
		}
		if v.Value != "" && !strings.Contains(s, v.Value) {
			t.Errorf("message does not name the value: %s", s)
		}
		if !strings.HasPrefix(s, v.Rule+" ") {
			t.Errorf("message does not start with the rule ID: %s", s)
		}
	}
}

func TestBenignCorpus(t *testing.T) {
	entries, err := os.ReadDir("testdata/benign")
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) < 4 {
		t.Fatalf("benign corpus has %d projects, want at least 4", len(entries))
	}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			root, err := filepath.Abs(filepath.Join("testdata/benign", e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			files := benignFiles(t, root)
			vs, err := PreLoad(root, files, testEnv(), Options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				t.Errorf("PreLoad: %s", v)
			}
			for _, profiles := range [][]string{nil, {"*"}} {
				project, err := loadProject(t, root, files, profiles)
				if err != nil {
					t.Fatalf("load with profiles %v: %v", profiles, err)
				}
				if len(project.Services) == 0 {
					t.Fatal("no services loaded")
				}
				for _, v := range Check(project, root, Options{}) {
					t.Errorf("Check (profiles %v): %s", profiles, v)
				}
			}
		})
	}
}

// benignFiles returns compose.yaml followed by the other compose.*.yaml
// overrides of a benign project, as .slipway.yml would list them.
func benignFiles(t *testing.T, root string) []string {
	t.Helper()
	files := []string{filepath.Join(root, "compose.yaml")}
	more, err := filepath.Glob(filepath.Join(root, "compose.*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(more)
	return append(files, more...)
}

// TestBenignCorpusExercisesRealFeatures guards the benign corpus itself:
// if a refactor of the testdata dropped the features the policy must let
// through, the benign test would pass vacuously.
func TestBenignCorpusExercisesRealFeatures(t *testing.T) {
	root, err := filepath.Abs("testdata/benign/webshop")
	if err != nil {
		t.Fatal(err)
	}
	project, err := loadProject(t, root, benignFiles(t, root), []string{"*"})
	if err != nil {
		t.Fatal(err)
	}
	has := func(what string, ok bool) {
		t.Helper()
		if !ok {
			t.Errorf("webshop no longer has %s", what)
		}
	}
	web, nginx, worker := project.Services["web"], project.Services["nginx"], project.Services["worker"]
	has("a web build with args and target", web.Build != nil && web.Build.Target != "" && len(web.Build.Args) > 0)
	has("web waiting for the migration job", web.DependsOn["migrate"].Condition == types.ServiceConditionCompletedSuccessfully)
	has("a healthcheck on db", project.Services["db"].HealthCheck != nil)
	bindInside := func(s types.ServiceConfig, suffix string) bool {
		for _, v := range s.Volumes {
			if v.Type == types.VolumeTypeBind && strings.HasSuffix(v.Source, suffix) && within(realRoot(root), realRoot(v.Source)) {
				return true
			}
		}
		return false
	}
	has("nginx mounting ./nginx.conf", bindInside(nginx, "nginx.conf"))
	has("web mounting ./src for live reload", bindInside(web, "src"))
	has("a worker extending a service of another file", worker.Image != "" && worker.Command != nil)
	has("an env_file in the checkout", len(project.Services["db"].EnvFiles) > 0)
	has("a profile-only service", slices.Contains(project.ServiceNames(), "adminer"))
	has("a named volume", project.Volumes["pgdata"].Name == testProject+"_pgdata")
	has("a secret from a checkout file", project.Secrets["db_password"].File != "")
	_, hasPorts := project.Services["redis"]
	has("redis", hasPorts)
}
