package examples_test

import (
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"gopkg.in/yaml.v3"
)

// The monitoring example and the metrics table of docs/operations.md use
// only metrics that Slipway's code registers, with their real types and
// labels. The metrics are read from the source: every
// prometheus.New<Kind>[Vec|Func](prometheus.<Kind>Opts{Namespace, Subsystem,
// Name, …}, []string{labels…}) call outside tests.

type metric struct {
	name   string
	kind   string // counter, gauge, histogram, summary
	labels []string
	where  string
}

// metricConstructors maps a constructor to the kind of metric it makes.
var metricConstructors = map[string]string{
	"NewCounter": "counter", "NewCounterVec": "counter", "NewCounterFunc": "counter",
	"NewGauge": "gauge", "NewGaugeVec": "gauge", "NewGaugeFunc": "gauge",
	"NewHistogram": "histogram", "NewHistogramVec": "histogram",
	"NewSummary": "summary", "NewSummaryVec": "summary",
}

// sourceMetrics returns the metrics the module's code defines, parsed once
// for all tests.
func sourceMetrics(t *testing.T) map[string]metric {
	t.Helper()
	parsed, err := parsedMetrics()
	if err != nil {
		t.Fatal(err)
	}
	ms := parsed.metrics
	for _, p := range parsed.problems {
		t.Error(p)
	}
	if len(ms) < 10 {
		t.Fatalf("found only %d metrics in the source: the extractor no longer matches the code", len(ms))
	}
	return ms
}

type metricSource struct {
	metrics  map[string]metric
	problems []string
}

var parsedMetrics = sync.OnceValues(parseMetrics)

// parseMetrics parses the module's non-test Go files (outside examples/,
// bench/ and testdata) and returns the metrics they define, and what it
// could not read.
func parseMetrics() (metricSource, error) {
	root := ".."
	var problems []string
	byDir := map[string][]*ast.File{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "testdata", "node_modules", "examples", "bench":
				return filepath.SkipDir
			}
			if p != root {
				if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
					return filepath.SkipDir // another module
				}
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		byDir[filepath.Dir(p)] = append(byDir[filepath.Dir(p)], f)
		return nil
	})
	if err != nil {
		return metricSource{}, err
	}
	out := map[string]metric{}
	for dir, files := range byDir {
		consts := stringConsts(files)
		for _, f := range files {
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok || len(call.Args) == 0 {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				kind, ok := metricConstructors[sel.Sel.Name]
				if !ok {
					return true
				}
				arg := call.Args[0]
				if u, ok := arg.(*ast.UnaryExpr); ok {
					arg = u.X
				}
				lit, ok := arg.(*ast.CompositeLit)
				if !ok {
					return true
				}
				if ts, ok := lit.Type.(*ast.SelectorExpr); !ok || !strings.HasSuffix(ts.Sel.Name, "Opts") {
					return true
				}
				where := fset.Position(call.Pos()).String()
				parts := map[string]string{}
				for _, e := range lit.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					key := kv.Key.(*ast.Ident).Name
					if key != "Namespace" && key != "Subsystem" && key != "Name" {
						continue
					}
					v, ok := stringValue(kv.Value, consts)
					if !ok {
						problems = append(problems, fmt.Sprintf("%s: %s is not a string literal or a constant of %s", where, key, dir))
					}
					parts[key] = v
				}
				var name []string
				for _, k := range []string{"Namespace", "Subsystem", "Name"} {
					if parts[k] != "" {
						name = append(name, parts[k])
					}
				}
				m := metric{name: strings.Join(name, "_"), kind: kind, where: where}
				if strings.HasSuffix(sel.Sel.Name, "Vec") && len(call.Args) > 1 {
					if ll, ok := call.Args[1].(*ast.CompositeLit); ok {
						for _, e := range ll.Elts {
							if v, ok := stringValue(e, consts); ok {
								m.labels = append(m.labels, v)
							}
						}
					}
				}
				if prev, dup := out[m.name]; dup {
					problems = append(problems, fmt.Sprintf("metric %s defined twice: %s and %s", m.name, prev.where, where))
				}
				out[m.name] = m
				return true
			})
		}
	}
	return metricSource{out, problems}, nil
}

// stringConsts collects the package-level string constants of a package.
func stringConsts(files []*ast.File) map[string]string {
	out := map[string]string{}
	for _, f := range files {
		for _, d := range f.Decls {
			g, ok := d.(*ast.GenDecl)
			if !ok || g.Tok != token.CONST {
				continue
			}
			for _, s := range g.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if i < len(vs.Values) {
						if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
							out[n.Name], _ = strconv.Unquote(lit.Value)
						}
					}
				}
			}
		}
	}
	return out
}

func stringValue(e ast.Expr, consts map[string]string) (string, bool) {
	switch v := e.(type) {
	case *ast.BasicLit:
		if v.Kind == token.STRING {
			s, err := strconv.Unquote(v.Value)
			return s, err == nil
		}
	case *ast.Ident:
		s, ok := consts[v.Name]
		return s, ok
	}
	return "", false
}

func TestMonitoringSourceMetrics(t *testing.T) {
	ms := sourceMetrics(t)
	// A few that the example relies on, with their shapes: the extractor
	// must see Namespace/Subsystem-built names as well as plain ones.
	for name, kind := range map[string]string{
		"slipway_webhook_deliveries_total":       "counter",
		"slipway_queue_depth":                    "gauge",
		"slipway_deploy_duration_seconds":        "histogram",
		"slipway_proxy_request_duration_seconds": "histogram",
	} {
		if ms[name].kind != kind {
			t.Errorf("%s: kind %q, want %q (found %d metrics)", name, ms[name].kind, kind, len(ms))
		}
	}
	if got := ms["slipway_webhook_deliveries_total"].labels; !slices.Equal(got, []string{"event", "outcome"}) {
		t.Errorf("slipway_webhook_deliveries_total labels %v", got)
	}
}

// targetLabels are added by Prometheus to every series it scrapes.
var targetLabels = []string{"job", "instance", "slipway"}

var (
	metricRE   = regexp.MustCompile(`\bslipway_[a-z0-9_]+`)
	selectorRE = regexp.MustCompile(`^\{([^}]*)\}`)
	matcherRE  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	groupingRE = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	rateRE     = regexp.MustCompile(`\b(?:rate|irate|increase)\(\s*(slipway_[a-z0-9_]+)`)
	upRE       = regexp.MustCompile(`\bup\{job="([^"]+)"\}`)
)

// checkPromQL checks the Slipway metrics used in a PromQL expression: they
// exist, histograms are used through their _bucket/_sum/_count series,
// rate() and increase() take counters, and every label in a selector or a
// by/without clause is one the metrics carry. It returns the metrics used.
func checkPromQL(t *testing.T, where, expr string, ms map[string]metric, jobs []string) []string {
	t.Helper()
	if strings.Count(expr, "(") != strings.Count(expr, ")") || strings.Count(expr, "{") != strings.Count(expr, "}") {
		t.Errorf("%s: unbalanced brackets in %q", where, expr)
	}
	var used []string
	allowed := slices.Clone(targetLabels)
	resolve := func(series string) (metric, string, bool) {
		if m, ok := ms[series]; ok {
			return m, "", true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(series, suffix); ok {
				if m, ok := ms[base]; ok && (m.kind == "histogram" || m.kind == "summary" && suffix != "_bucket") {
					return m, suffix, true
				}
			}
		}
		return metric{}, "", false
	}
	for _, loc := range metricRE.FindAllStringIndex(expr, -1) {
		series := expr[loc[0]:loc[1]]
		m, suffix, ok := resolve(series)
		if !ok {
			t.Errorf("%s: %s is not a metric Slipway exports (%q)", where, series, expr)
			continue
		}
		if suffix == "" && (m.kind == "histogram" || m.kind == "summary") {
			t.Errorf("%s: %s is a %s: use %s_bucket, _sum or _count", where, series, m.kind, series)
		}
		used = append(used, m.name)
		labels := append(slices.Clone(m.labels), targetLabels...)
		if suffix == "_bucket" {
			labels = append(labels, "le")
		}
		allowed = append(allowed, labels...)
		if sm := selectorRE.FindStringSubmatch(expr[loc[1]:]); sm != nil {
			for _, mm := range matcherRE.FindAllStringSubmatch(sm[1], -1) {
				if !slices.Contains(labels, mm[1]) {
					t.Errorf("%s: %s has no label %q (it has %v)", where, series, mm[1], m.labels)
				}
			}
		}
	}
	for _, g := range groupingRE.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if l = strings.TrimSpace(l); l != "" && !slices.Contains(allowed, l) {
				t.Errorf("%s: groups by %q, which no metric in %q carries", where, l, expr)
			}
		}
	}
	for _, r := range rateRE.FindAllStringSubmatch(expr, -1) {
		if m, suffix, ok := resolve(r[1]); ok && suffix == "" && m.kind != "counter" {
			t.Errorf("%s: rate/increase of %s, a %s", where, r[1], m.kind)
		}
	}
	for _, u := range upRE.FindAllStringSubmatch(expr, -1) {
		if !slices.Contains(jobs, u[1]) {
			t.Errorf("%s: up{job=%q}, but prometheus.yml scrapes jobs %v", where, u[1], jobs)
		}
	}
	if len(used) == 0 && !upRE.MatchString(expr) {
		t.Errorf("%s: %q uses no Slipway metric", where, expr)
	}
	return used
}

func readYAML(t *testing.T, p string, v any) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
}

type promConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		MetricsPath   string `yaml:"metrics_path"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func prometheusJobs(t *testing.T) (promConfig, []string) {
	var pc promConfig
	readYAML(t, "monitoring/prometheus.yml", &pc)
	var jobs []string
	for _, sc := range pc.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
	}
	return pc, jobs
}

func TestMonitoringPrometheusConfig(t *testing.T) {
	pc, jobs := prometheusJobs(t)
	if !slices.Contains(jobs, "slipway") {
		t.Fatalf("no slipway scrape job in %v", jobs)
	}
	for _, sc := range pc.ScrapeConfigs {
		if sc.JobName == "slipway" && (sc.MetricsPath != "/metrics" || len(sc.StaticConfigs) == 0 || len(sc.StaticConfigs[0].Targets) == 0) {
			t.Errorf("slipway job: %+v", sc)
		}
	}
	if !slices.Contains(pc.RuleFiles, "/etc/prometheus/alerts.yml") {
		t.Errorf("rule_files %v do not load alerts.yml where docker-compose.yml mounts it", pc.RuleFiles)
	}
}

func TestMonitoringAlerts(t *testing.T) {
	ms := sourceMetrics(t)
	_, jobs := prometheusJobs(t)
	var rules struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []struct {
				Alert       string            `yaml:"alert"`
				Expr        string            `yaml:"expr"`
				For         string            `yaml:"for"`
				Labels      map[string]string `yaml:"labels"`
				Annotations map[string]string `yaml:"annotations"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	readYAML(t, "monitoring/alerts.yml", &rules)
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			where := "alerts.yml " + r.Alert
			if r.Alert == "" || r.Expr == "" || r.Labels["severity"] == "" || r.Annotations["summary"] == "" {
				t.Errorf("%s: needs alert, expr, labels.severity and annotations.summary: %+v", where, r)
			}
			checkPromQL(t, where, r.Expr, ms, jobs)
		}
	}
	if n < 5 {
		t.Errorf("only %d alerting rules", n)
	}
}

type grafanaPanel struct {
	ID         int               `json:"id"`
	Type       string            `json:"type"`
	Title      string            `json:"title"`
	Datasource map[string]string `json:"datasource"`
	GridPos    struct{ H, W, X, Y int }
	Targets    []struct {
		Expr       string            `json:"expr"`
		RefID      string            `json:"refId"`
		Datasource map[string]string `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

func TestMonitoringGrafanaDashboard(t *testing.T) {
	ms := sourceMetrics(t)
	_, jobs := prometheusJobs(t)
	b, err := os.ReadFile("monitoring/slipway.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string         `json:"uid"`
		Title      string         `json:"title"`
		Panels     []grafanaPanel `json:"panels"`
		Templating struct {
			List []struct{ Name, Type, Query string } `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("slipway.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" {
		t.Error("the dashboard needs a uid and a title")
	}
	if !slices.ContainsFunc(dash.Templating.List, func(v struct{ Name, Type, Query string }) bool {
		return v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus"
	}) {
		t.Error("no Prometheus data source variable named datasource")
	}
	var all []grafanaPanel
	for _, p := range dash.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]bool{}
	// queries maps each metric to the expressions that use it.
	queries := map[string][]string{}
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource["uid"] != "${datasource}" {
			t.Errorf("panel %q: data source %v, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Datasource["uid"] != "${datasource}" || tg.RefID == "" {
				t.Errorf("panel %q: target %+v", p.Title, tg)
			}
			for _, m := range checkPromQL(t, fmt.Sprintf("panel %q", p.Title), tg.Expr, ms, jobs) {
				queries[m] = append(queries[m], tg.Expr)
			}
		}
	}
	// What the dashboard is for.
	for _, m := range []string{
		"slipway_webhook_deliveries_total", "slipway_queue_depth", "slipway_environments",
		"slipway_proxy_requests_total", "slipway_proxy_request_duration_seconds",
		"slipway_proxy_certificate_orders_total", "slipway_proxy_certificate_failures_total",
	} {
		if len(queries[m]) == 0 {
			t.Errorf("no panel shows %s", m)
		}
	}
	if !slices.ContainsFunc(queries["slipway_webhook_deliveries_total"], func(e string) bool { return strings.Contains(e, "by (outcome)") }) {
		t.Error("no panel shows webhook deliveries by outcome")
	}
	if !slices.ContainsFunc(queries["slipway_proxy_requests_total"], func(e string) bool { return strings.Contains(e, "by (class)") }) {
		t.Error("no panel shows proxy requests by status class")
	}
	for _, m := range []string{"slipway_reconcile_duration_seconds", "slipway_build_duration_seconds", "slipway_deploy_duration_seconds"} {
		for _, q := range []string{"0.5", "0.95"} {
			if !slices.ContainsFunc(queries[m], func(e string) bool { return strings.Contains(e, "histogram_quantile("+q+",") }) {
				t.Errorf("no panel shows the %s quantile of %s", q, m)
			}
		}
	}
}

// TestMonitoringCompose loads examples/monitoring/docker-compose.yml with
// the compose loader and checks that the files it mounts exist and agree
// with the Prometheus and Grafana configuration.
func TestMonitoringCompose(t *testing.T) {
	dir, err := filepath.Abs("monitoring")
	if err != nil {
		t.Fatal(err)
	}
	opts, err := cli.NewProjectOptions([]string{filepath.Join(dir, "docker-compose.yml")},
		cli.WithWorkingDirectory(dir), cli.WithResolvedPaths(true), cli.WithEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	p, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	if _, ok := p.Services["prometheus"]; !ok {
		t.Fatal("no prometheus service")
	}
	if _, ok := p.Services["grafana"]; !ok {
		t.Fatal("no grafana service")
	}
	targets := map[string]string{} // mount target → host source
	for _, svc := range p.Services {
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s mounts %s, which does not exist", svc.Name, v.Source)
			}
			targets[v.Target] = v.Source
		}
	}
	if !slices.Contains(p.Services["prometheus"].ExtraHosts["host.docker.internal"], "host-gateway") {
		t.Error("prometheus cannot reach the host: extra_hosts host.docker.internal:host-gateway is missing")
	}
	pc, _ := prometheusJobs(t)
	for _, rf := range pc.RuleFiles {
		if targets[rf] == "" {
			t.Errorf("prometheus.yml loads %s, which docker-compose.yml does not mount", rf)
		}
	}
	var provider struct {
		Providers []struct {
			Options struct{ Path string } `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, "monitoring/grafana/provisioning/dashboards/slipway.yml", &provider)
	if len(provider.Providers) != 1 || filepath.Base(targets[path.Join(provider.Providers[0].Options.Path, "slipway.json")]) != "slipway.json" {
		t.Errorf("the dashboard provider reads %+v, but slipway.json is mounted at %v", provider.Providers, targets)
	}
	var ds struct {
		Datasources []struct{ Type, URL string } `yaml:"datasources"`
	}
	readYAML(t, "monitoring/grafana/provisioning/datasources/prometheus.yml", &ds)
	if len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL != "http://prometheus:9090" {
		t.Errorf("data sources %+v, want the compose service prometheus:9090", ds.Datasources)
	}
}

// TestOperationsDocListsEveryMetric: the metrics table of
// docs/operations.md names every metric of the code, with its type and
// labels, and nothing else.
func TestOperationsDocListsEveryMetric(t *testing.T) {
	ms := sourceMetrics(t)
	doc := readDoc(t, "operations.md")
	start := strings.Index(doc, "## Metrics")
	if start < 0 {
		t.Fatal("docs/operations.md has no Metrics section")
	}
	section := doc[start:]
	section = section[:strings.Index(section[3:], "\n## ")+3]
	rowRE := regexp.MustCompile("(?m)^\\| `(slipway_[a-z0-9_]+)` \\| ([a-z]+) \\|([^|]*)\\|")
	documented := map[string]bool{}
	for _, m := range rowRE.FindAllStringSubmatch(section, -1) {
		name, kind := m[1], m[2]
		var labels []string
		for _, l := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(m[3], -1) {
			labels = append(labels, l[1])
		}
		documented[name] = true
		got, ok := ms[name]
		if !ok {
			t.Errorf("docs/operations.md lists %s, which the code does not define", name)
			continue
		}
		if got.kind != kind || !slices.Equal(got.labels, labels) {
			t.Errorf("docs/operations.md: %s is a %s with labels %v; the code makes a %s with %v (%s)", name, kind, labels, got.kind, got.labels, got.where)
		}
	}
	for name, m := range ms {
		if !documented[name] {
			t.Errorf("docs/operations.md does not list %s (%s, labels %v, defined at %s)", name, m.kind, m.labels, m.where)
		}
	}
	// The example queries in the section are checked like the dashboard's.
	_, jobs := prometheusJobs(t)
	for _, block := range regexp.MustCompile("(?s)```promql\n(.*?)```").FindAllStringSubmatch(section, -1) {
		var expr strings.Builder
		for _, line := range strings.Split(block[1], "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") || strings.TrimSpace(line) == "" {
				if expr.Len() > 0 {
					checkPromQL(t, "operations.md", expr.String(), ms, jobs)
					expr.Reset()
				}
				continue
			}
			expr.WriteString(line + " ")
		}
		if expr.Len() > 0 {
			checkPromQL(t, "operations.md", expr.String(), ms, jobs)
		}
	}
}
