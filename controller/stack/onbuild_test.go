package stack

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack/policy"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// recordingDocker is the real engine, with the builds and pulls asked of
// it counted.
type recordingDocker struct {
	Docker
	mu     sync.Mutex
	builds int
	pulls  []string
	// beforeBuild, if set, runs before the first build starts.
	beforeBuild func()
}

func (d *recordingDocker) ImageBuild(ctx context.Context, r io.Reader, opts build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	d.mu.Lock()
	d.builds++
	hook := d.beforeBuild
	d.beforeBuild = nil
	d.mu.Unlock()
	if hook != nil {
		hook()
	}
	return d.Docker.ImageBuild(ctx, r, opts)
}

func (d *recordingDocker) ImagePull(ctx context.Context, ref string, opts image.PullOptions) (io.ReadCloser, error) {
	d.mu.Lock()
	d.pulls = append(d.pulls, ref)
	d.mu.Unlock()
	return d.Docker.ImagePull(ctx, ref, opts)
}

func (d *recordingDocker) counts() (int, []string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.builds, append([]string(nil), d.pulls...)
}

// recordingEngine is testEngine's engine over a recordingDocker.
func recordingEngine(t *testing.T) (*Engine, *recordingDocker, *client.Client) {
	t.Helper()
	_, cli := testEngine(t)
	rec := &recordingDocker{Docker: cli}
	return NewEngine(rec, nil, EngineOptions{ReadyTimeout: 60 * time.Second, StopTimeout: 2 * time.Second}), rec, cli
}

// removeImagesWithTrigger removes, when the test ends, the images whose
// ONBUILD triggers mention marker: the untagged result of a refused build.
func removeImagesWithTrigger(t *testing.T, cli *client.Client, marker string) {
	t.Cleanup(func() {
		ctx := context.Background()
		imgs, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("dangling", "true"))})
		if err != nil {
			t.Errorf("list images: %v", err)
			return
		}
		for _, s := range imgs {
			img, err := cli.ImageInspect(ctx, s.ID)
			if err != nil || img.Config == nil || !strings.Contains(strings.Join(img.Config.OnBuild, "\n"), marker) {
				continue
			}
			_, _ = cli.ImageRemove(ctx, s.ID, image.RemoveOptions{Force: true})
		}
	})
}

// A base image's ONBUILD triggers run in the PR's build, and the builder
// runs ADD and COPY --from from the host's network whatever NetworkMode
// says. A service built FROM a local image that carries one is refused
// before its build starts, so the trigger never runs.
func TestBuildRefusesABaseImageWithOnbuildTriggers(t *testing.T) {
	t.Parallel()
	e, rec, cli := recordingEngine(t)
	marker := dockertest.UniqueName("trigger-fired-")
	base := "slipway-test/" + dockertest.UniqueName("onbuild-") + ":1"
	buildTestImage(t, NewEngine(cli, nil, EngineOptions{}), cli, base,
		"FROM "+dockertest.BusyboxImage+"\nONBUILD RUN echo "+marker+"\n")
	dir := t.TempDir()
	src := newSource(t, e, cli, dir)
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": "services:\n  web:\n    build: .\n",
		"Dockerfile":   "FROM " + base + "\nCMD [\"sleep\", \"3600\"]\n",
	})
	p := mustLoad(t, src)
	var log bytes.Buffer
	_, err := e.Up(context.Background(), p, UpOptions{BuildLog: &log})
	if err == nil {
		t.Fatalf("up succeeded; log:\n%s", log.String())
	}
	assertErr(t, err, []string{"build service web", "base image " + base + " carries ONBUILD triggers", "Slipway refuses them"})
	if !errors.Is(err, ErrBadInput) {
		t.Errorf("not ErrBadInput: %v", err)
	}
	if builds, _ := rec.counts(); builds != 0 {
		t.Errorf("%d builds started; want none", builds)
	}
	if strings.Contains(log.String(), marker) || strings.Contains(log.String(), "build trigger") {
		t.Errorf("the trigger ran:\n%s", log.String())
	}
	if _, err := cli.ImageInspect(context.Background(), p.Image("web")); err == nil {
		t.Errorf("image %s exists", p.Image("web"))
	}
}

// A concurrent pull may retag a base image's name between the engine's
// inspection and the build; the build starts from the image inspected.
func TestBuildStartsFromTheBaseImageItInspected(t *testing.T) {
	t.Parallel()
	e, rec, cli := recordingEngine(t)
	fixtures := NewEngine(cli, nil, EngineOptions{})
	marker := dockertest.UniqueName("trigger-fired-")
	base := "slipway-test/" + dockertest.UniqueName("base-") + ":1"
	swapped := "slipway-test/" + dockertest.UniqueName("swapped-") + ":1"
	buildTestImage(t, fixtures, cli, base, "FROM "+dockertest.BusyboxImage+"\nLABEL fixture="+base+"\n")
	buildTestImage(t, fixtures, cli, swapped, "FROM "+dockertest.BusyboxImage+"\nONBUILD RUN echo "+marker+"\n")
	rec.beforeBuild = func() {
		if err := cli.ImageTag(context.Background(), swapped, base); err != nil {
			t.Errorf("retag: %v", err)
		}
	}
	dir := t.TempDir()
	src := newSource(t, e, cli, dir)
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": "services:\n  web:\n    build: .\n",
		"Dockerfile":   "FROM " + base + "\nCMD [\"sleep\", \"3600\"]\n",
	})
	p := mustLoad(t, src)
	var log bytes.Buffer
	if _, err := e.Up(context.Background(), p, UpOptions{BuildLog: &log}); err != nil {
		t.Fatalf("up: %v\nlog:\n%s", err, log.String())
	}
	if strings.Contains(log.String(), marker) || strings.Contains(log.String(), "build trigger") {
		t.Errorf("the swapped-in image's trigger ran:\n%s", log.String())
	}
	img, err := cli.ImageInspect(context.Background(), p.Image("web"))
	if err != nil {
		t.Fatal(err)
	}
	if img.Config.Labels["fixture"] != base {
		t.Errorf("image labels %v: not built on the inspected %s", img.Config.Labels, base)
	}
}

// A base image that is not in the engine's store is pulled through the
// engine (as the builder would) before it is inspected; one that cannot be
// pulled fails the build before it starts.
func TestBuildPullsAnAbsentBaseImageToInspectIt(t *testing.T) {
	t.Parallel()
	e, rec, cli := recordingEngine(t)
	dir := t.TempDir()
	src := newSource(t, e, cli, dir)
	const base = "registry.invalid/nope/base:1"
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": "services:\n  web:\n    build: .\n",
		"Dockerfile":   "FROM " + base + "\n",
	})
	_, err := e.Up(context.Background(), mustLoad(t, src), UpOptions{})
	if err == nil {
		t.Fatal("up succeeded")
	}
	assertErr(t, err, []string{"build service web", "base image " + base, "could not be pulled"})
	builds, pulls := rec.counts()
	if builds != 0 || len(pulls) != 1 || pulls[0] != base {
		t.Errorf("builds %d, pulls %q; want no build and one pull of %s", builds, pulls, base)
	}
}

// An operator who relaxes SW-BLD-010 lets ONBUILD through the policy, but
// the image the PR's Dockerfile built is refused before Slipway's
// labelling step builds FROM it (which would fire the triggers with the
// image's final environment).
func TestBuildRefusesAnImageThatCarriesOnbuildTriggers(t *testing.T) {
	t.Parallel()
	e, rec, cli := recordingEngine(t)
	marker := dockertest.UniqueName("trigger-fired-")
	removeImagesWithTrigger(t, cli, marker)
	dir := t.TempDir()
	src := newSource(t, e, cli, dir)
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": "services:\n  web:\n    build: .\n",
		"Dockerfile":   "FROM " + dockertest.BusyboxImage + "\nONBUILD RUN echo " + marker + "\nCMD [\"sleep\", \"3600\"]\n",
	})
	p, err := Load(context.Background(), src, LoadOptions{Limits: config.Defaults().Limits, Policy: config.Policy{Allow: []string{policy.DockerfileUnchecked}}})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var log bytes.Buffer
	_, err = e.Up(context.Background(), p, UpOptions{BuildLog: &log})
	if err == nil {
		t.Fatalf("up succeeded; log:\n%s", log.String())
	}
	assertErr(t, err, []string{"build service web", "carries ONBUILD triggers", "Slipway refuses them"})
	if !errors.Is(err, ErrBadInput) {
		t.Errorf("not ErrBadInput: %v", err)
	}
	if builds, _ := rec.counts(); builds != 1 {
		t.Errorf("%d builds; want 1 (the PR's Dockerfile, and no labelling step)", builds)
	}
	// The step's own log shows the ONBUILD line; the builder announces
	// running triggers with "# Executing 1 build trigger".
	if strings.Contains(log.String(), "build trigger") {
		t.Errorf("the trigger ran:\n%s", log.String())
	}
	if _, err := cli.ImageInspect(context.Background(), p.Image("web")); err == nil {
		t.Errorf("image %s exists", p.Image("web"))
	}
}

// Without an operator's allowance, ONBUILD in the PR's Dockerfile stops
// the PR at the policy, before anything reaches the engine.
func TestBuildPolicyRefusesOnbuildInThePRsDockerfile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": "services:\n  web:\n    build: .\n",
		"Dockerfile":   "FROM " + dockertest.BusyboxImage + "\nENV U=./local.txt\nONBUILD ADD $U /x\nENV U=http://169.254.169.254/latest/meta-data/\n",
	})
	src := Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("shop"), PR: 1, SHA: sha1}
	_, err := Load(context.Background(), src, LoadOptions{Limits: config.Defaults().Limits})
	var pe *PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("load: %v; want a policy error", err)
	}
	found := false
	for _, v := range pe.Violations {
		if v.Rule == policy.DockerfileUnchecked && strings.Contains(v.Field, "line 3) ONBUILD") {
			found = true
		}
	}
	if !found {
		t.Errorf("no SW-BLD-010 violation on the ONBUILD line: %v", err)
	}
}
