package stack

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
	"github.com/slipwayhq/slipway/proxy"
)

// buildTestImage builds an image from one Dockerfile and tags it; the tag
// is removed when the test ends.
func buildTestImage(t *testing.T, e *Engine, cli *client.Client, tag, dockerfile string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "Dockerfile", Mode: 0o644, Size: int64(len(dockerfile)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(tw, dockerfile); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	if _, err := e.runBuild(context.Background(), "fixture", &buf, build.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true, Version: build.BuilderV1}, &lineWriter{w: &log}); err != nil {
		t.Fatalf("build %s: %v\n%s", tag, err, log.String())
	}
	t.Cleanup(func() {
		_, _ = cli.ImageRemove(context.Background(), tag, image.RemoveOptions{Force: true})
	})
}

// removeImagesLabelled removes, when the test ends (after the cleanups
// registered later, which remove the environments), the images a PR's own
// Dockerfile labelled with project: its build's untagged layers.
func removeImagesLabelled(t *testing.T, cli *client.Client, project *string) {
	t.Cleanup(func() {
		if *project == "" {
			return
		}
		ctx := context.Background()
		imgs, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", contract.LabelProject+"="+*project))})
		if err != nil {
			t.Errorf("list images of %s: %v", *project, err)
			return
		}
		for _, img := range imgs {
			_, _ = cli.ImageRemove(ctx, img.ID, image.RemoveOptions{Force: true})
		}
	})
}

// loadWithDomain loads src with its hosts under domain.
func loadWithDomain(t *testing.T, src Source, domain string) *Plan {
	t.Helper()
	p, err := Load(context.Background(), src, LoadOptions{Limits: config.Defaults().Limits, Hosts: HostOptions{Domain: domain}})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

func upPlan(t *testing.T, e *Engine, p *Plan) {
	t.Helper()
	var log bytes.Buffer
	if _, err := e.Up(context.Background(), p, UpOptions{BuildLog: &log}); err != nil {
		t.Fatalf("up %s: %v\nlog:\n%s", p.Name, err, log.String())
	}
}

// projectContainerLabels returns the labels of every container of project, by service.
func projectContainerLabels(t *testing.T, cli *client.Client, project string) map[string]map[string]string {
	t.Helper()
	list, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", contract.LabelProject+"="+project))})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, c := range list {
		out[c.Labels[contract.LabelService]] = c.Labels
	}
	return out
}

// PR 1 of a repository ships images that carry PR 2's route and compose
// project: one built from its own Dockerfile, one image-only service
// running an image made elsewhere. Deployed through the real Up path next
// to PR 2, none of its containers carries those labels, and the real proxy
// (observer, table, handler on a real socket) sends PR 2's host to PR 2.
func TestImageLabelsCannotHijackAnotherPRsRoute(t *testing.T) {
	e, cli := testEngine(t)
	domain := dockertest.UniqueName("hijack") + ".localhost"
	victimHost := "pr-2." + domain

	dir1, dir2 := t.TempDir(), t.TempDir()
	// Runs last: PR 2's environment, then the layers PR 1's Dockerfile
	// labelled with PR 2's project (untagged parents of PR 1's image).
	var victimProject string
	removeImagesLabelled(t, cli, &victimProject)
	t.Cleanup(func() {
		if err := e.Down(context.Background(), victimProject); err != nil {
			t.Errorf("down %s: %v", victimProject, err)
		}
	})
	src1 := newSource(t, e, cli, dir1)
	src2 := src1
	src2.Dir, src2.PR = dir2, 2
	victimProject = src2.Project()

	// The labels an attacker would put on an image: PR 2's host, port and
	// project, and PR 2's number.
	hostile := fmt.Sprintf(`LABEL "%s"="%s" "%s"="8080" "%s"="%s" "%s"="2" "%s"="true"`,
		contract.LabelRouteHost, victimHost, contract.LabelRoutePort, contract.LabelProject, victimProject,
		contract.LabelPR, contract.LabelPrimary)
	serve := func(body string) string {
		return fmt.Sprintf(`CMD ["sh", "-c", "mkdir -p /w && echo %s > /w/index.html && exec httpd -f -p 8080 -h /w"]`, body)
	}
	attackerImage := "slipway-test/" + dockertest.UniqueName("attacker") + ":1"
	buildTestImage(t, e, cli, attackerImage, "FROM "+dockertest.BusyboxImage+"\n"+hostile+"\n"+serve("hijacked-by-image")+"\n")

	dockertest.WriteFiles(t, dir1, map[string]string{
		"Dockerfile":      "FROM " + dockertest.BusyboxImage + "\n" + serve("pr-1") + "\n",
		"Dockerfile.evil": "FROM " + dockertest.BusyboxImage + "\n" + hostile + "\n" + serve("hijacked-by-build") + "\n",
		"compose.yaml": `services:
  web:
    build: .
    ports: ["8080"]
  evil:
    build:
      context: .
      dockerfile: Dockerfile.evil
  evilimg:
    image: ` + attackerImage + `
`,
	})
	dockertest.WriteFiles(t, dir2, map[string]string{
		"Dockerfile":   "FROM " + dockertest.BusyboxImage + "\n" + serve("pr-2") + "\n",
		"compose.yaml": "services:\n  web:\n    build: .\n    ports: [\"8080\"]\n",
	})
	// The attacker deploys first: under the old tie-break its claim was
	// the earlier one and its project name the smaller.
	p1 := loadWithDomain(t, src1, domain)
	upPlan(t, e, p1)
	p2 := loadWithDomain(t, src2, domain)
	upPlan(t, e, p2)

	t.Run("built image carries Slipway's labels only", func(t *testing.T) {
		img, err := cli.ImageInspect(context.Background(), p1.Image("evil"))
		if err != nil {
			t.Fatal(err)
		}
		l := img.Config.Labels
		if l[contract.LabelProject] != p1.Name || l[contract.LabelPR] != "1" || l[contract.LabelRouteHost] != "" || l[contract.LabelRoutePort] != "" || l[contract.LabelPrimary] != "" {
			t.Errorf("built image labels: %v", l)
		}
	})
	t.Run("containers carry Slipway's labels only", func(t *testing.T) {
		labels := projectContainerLabels(t, cli, p1.Name)
		for _, svc := range []string{"evil", "evilimg"} {
			l, ok := labels[svc]
			if !ok {
				t.Fatalf("no container of %s in %v", svc, labels)
			}
			for _, k := range []string{contract.LabelRouteHost, contract.LabelRoutePort, contract.LabelPrimary} {
				if v, set := l[k]; !set || v != "" {
					t.Errorf("%s: %s = %q (set %v), want an explicit empty value", svc, k, v, set)
				}
			}
			if l[contract.LabelProject] != p1.Name || l[contract.LabelPR] != "1" || l[contract.LabelRepo] != src1.FullName() {
				t.Errorf("%s: project/repo/pr labels %q %q %q", svc, l[contract.LabelProject], l[contract.LabelRepo], l[contract.LabelPR])
			}
		}
		if l := labels["web"]; l[contract.LabelRouteHost] != "pr-1."+domain {
			t.Errorf("web route host %q", l[contract.LabelRouteHost])
		}
		claimants, err := cli.ContainerList(context.Background(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", contract.LabelRouteHost+"="+victimHost))})
		if err != nil {
			t.Fatal(err)
		}
		if len(claimants) != 1 || claimants[0].Labels[contract.LabelProject] != victimProject {
			var names []string
			for _, c := range claimants {
				names = append(names, c.Names...)
			}
			t.Errorf("containers claiming %s: %v, want only %s's", victimHost, names, victimProject)
		}
	})

	t.Run("the real proxy sends PR 2's host to PR 2", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		routes := proxy.NewRoutes(nil, contract.DefaultHostTemplates(domain, false))
		obs := proxy.NewObserver(cli, routes, proxy.ObserverOptions{})
		done := make(chan error, 1)
		go func() { done <- obs.Run(ctx) }()
		defer func() { cancel(); <-done }()
		select {
		case <-obs.Synced():
		case err := <-done:
			t.Fatalf("observer: %v", err)
		}
		// Both environments were ready before the observer listed them.
		r := routes.Lookup(victimHost)
		if r == nil || r.Project != victimProject || r.Phase != proxy.PhaseRunning {
			t.Fatalf("route of %s = %+v, want %s running", victimHost, r, victimProject)
		}
		for _, b := range r.Backends {
			if !strings.HasPrefix(b.Name, victimProject+"-") {
				t.Errorf("backend %s of %s is not %s's", b.Name, victimHost, victimProject)
			}
		}
		h := proxy.NewHandler(routes, proxy.HandlerOptions{})
		defer h.Close()
		front := httptest.NewServer(h)
		defer front.Close()
		get := func(host string) string {
			req, _ := http.NewRequest(http.MethodGet, front.URL+"/", nil)
			req.Host = host
			resp, err := front.Client().Do(req)
			if err != nil {
				t.Fatalf("GET %s: %v", host, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return strings.TrimSpace(string(b))
		}
		for i := 0; i < 5; i++ {
			if got := get(victimHost); got != "pr-2" {
				t.Fatalf("request %d to %s answered %q, want PR 2's page", i, victimHost, got)
			}
		}
		if got := get("pr-1." + domain); got != "pr-1" {
			t.Errorf("pr-1 answered %q", got)
		}
	})
}

// A container that carries another PR's host anyway (made by an older
// Slipway, or by hand with Slipway's labels) is refused by the proxy, which
// tells why, and never served.
func TestProxyRefusesAnUndeclaredRouteOnARealContainer(t *testing.T) {
	_, cli := testEngine(t)
	domain := dockertest.UniqueName("undeclared") + ".localhost"
	repo := "test/" + dockertest.UniqueName("shop")
	project := contract.ProjectName("test", strings.TrimPrefix(repo, "test/"), 1)
	ctx := context.Background()
	resp, err := cli.ContainerCreate(ctx, &container.Config{
		Image: dockertest.BusyboxImage,
		Cmd:   []string{"sh", "-c", "exec httpd -f -p 8080 -h /"},
		Labels: map[string]string{
			contract.LabelManaged: "true", contract.LabelProject: project, contract.LabelService: "web",
			contract.LabelRepo: repo, contract.LabelPR: "1",
			contract.LabelRouteHost: "pr-2." + domain, contract.LabelRoutePort: "8080",
		},
	}, nil, nil, nil, contract.ContainerName(project, "web", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.ContainerRemove(context.Background(), resp.ID, container.RemoveOptions{Force: true}) })
	if err := cli.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	octx, cancel := context.WithCancel(ctx)
	defer cancel()
	routes := proxy.NewRoutes(nil, contract.DefaultHostTemplates(domain, false))
	obs := proxy.NewObserver(cli, routes, proxy.ObserverOptions{})
	done := make(chan error, 1)
	go func() { done <- obs.Run(octx) }()
	defer func() { cancel(); <-done }()
	<-obs.Synced()
	if r := routes.Lookup("pr-2." + domain); r != nil {
		t.Fatalf("undeclared host routed: %+v", r)
	}
	problems := routes.RouteProblems()[project]
	if len(problems) != 1 || !strings.Contains(problems[0], "not declared by Slipway") {
		t.Fatalf("problems of %s: %v", project, problems)
	}
}

// A dockerfile_inline whose last line ends in a line continuation used to
// swallow the LABEL line Slipway appended, so the image kept whatever
// project label it set itself. The labels are now applied by a build of
// their own, and checked.
func TestDockerfileInlineLineContinuationKeepsSlipwaysLabels(t *testing.T) {
	e, cli := testEngine(t)
	dir := t.TempDir()
	var other string
	removeImagesLabelled(t, cli, &other)
	src := newSource(t, e, cli, dir)
	other = contract.ProjectName(src.Owner, src.Repo, 2)
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": `services:
  web:
    build:
      context: .
      dockerfile_inline: |
        FROM ` + dockertest.BusyboxImage + `
        LABEL "` + contract.LabelManaged + `"="true" "` + contract.LabelProject + `"="` + other + `" "` + contract.LabelPR + `"="2"
        CMD ["sh", "-c", "exec httpd -f -p 8080 -h /"]
        RUN true \
    ports: ["8080"]
`,
	})
	p := mustLoad(t, src)
	if !strings.HasSuffix(p.Project.Services["web"].Build.DockerfileInline, "\\\n") {
		t.Fatalf("fixture: the inline Dockerfile does not end in a continuation: %q", p.Project.Services["web"].Build.DockerfileInline)
	}
	upPlan(t, e, p)
	img, err := cli.ImageInspect(context.Background(), p.Image("web"))
	if err != nil {
		t.Fatal(err)
	}
	l := img.Config.Labels
	if l[contract.LabelProject] != p.Name || l[contract.LabelPR] != "1" || l[contract.LabelBuildHash] == "" {
		t.Errorf("image labels %v: want project %s, PR 1 and a build hash", l, p.Name)
	}
	if l := projectContainerLabels(t, cli, p.Name)["web"]; l[contract.LabelProject] != p.Name || l[contract.LabelRouteHost] != "pr-1.localhost" {
		t.Errorf("container labels %v", l)
	}
	// The layers of the PR's own Dockerfile still say they are the other
	// PR's: tearing that PR down must neither fail on them nor take this
	// environment's image.
	if err := e.Down(context.Background(), other); err != nil {
		t.Errorf("down %s: %v", other, err)
	}
	if _, err := cli.ImageInspect(context.Background(), p.Image("web")); err != nil {
		t.Errorf("image of %s after tearing down %s: %v", p.Name, other, err)
	}
}
