package stack

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// inspectJSON is an engine's image inspect (Docker 20.10's shape) of an
// image with three history entries, two of which made the two layers.
const inspectJSON = `{
 "Id": "sha256:aaaa",
 "RepoTags": [], "Parent": "sha256:bbbb",
 "Comment": "", "Created": "2026-12-03T15:17:28.53321546Z",
 "Container": "b9dd",
 "ContainerConfig": {"Hostname": "b9dd", "Cmd": ["/bin/sh", "-c", "#(nop) ", "CMD [\"httpd\"]"], "Labels": {}},
 "DockerVersion": "20.10.24", "Author": "",
 "Config": {"Hostname": "", "User": "app", "Env": ["PATH=/bin"], "Cmd": ["httpd"],
   "Healthcheck": {"Test": ["CMD", "true"], "Interval": 1000000000}, "StopTimeout": 7,
   "Labels": {"org.example.team": "shop", "dev.slipway.route.host": "pr-9.example.com", "com.docker.compose.project": "other"}},
 "Architecture": "amd64", "Os": "linux", "Size": 10,
 "RootFS": {"Type": "layers", "Layers": ["sha256:l1", "sha256:l2"]}
}`

// inspectHistory is the engine's history of that image, newest first.
var inspectHistory = []image.HistoryResponseItem{
	{Created: 1796311050, CreatedBy: `/bin/sh -c #(nop)  CMD ["httpd"]`, Size: 0},
	{Created: 1796311049, CreatedBy: "/bin/sh -c #(nop) COPY dir:abc in /www", Size: 6},
	{Created: 1796311043, Comment: "base image", Size: 1982701},
}

func decodeConfig(t *testing.T, b []byte) (imageConfig, map[string]json.RawMessage) {
	t.Helper()
	var cfg imageConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatalf("decode config: %v\n%s", err, b)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(cfg.Config, &fields); err != nil {
		t.Fatalf("decode container config: %v", err)
	}
	return cfg, fields
}

// The labelled config is the image's own with the labels merged as a LABEL
// step merges them: Slipway's keys set (reserved ones the image brought
// emptied by imageLabels), the image's other labels kept, every other
// field of the image's config untouched.
func TestRelabelledConfigMergesLabelsAndKeepsTheRest(t *testing.T) {
	labels := map[string]string{
		contract.LabelSHA:       sha2,
		contract.LabelProject:   "test-shop-pr-1",
		contract.LabelRouteHost: "", // the image's own, cleared
		"org.example.build":     "yes",
	}
	b, err := relabelledConfig([]byte(inspectJSON), inspectHistory, labels)
	if err != nil {
		t.Fatal(err)
	}
	cfg, fields := decodeConfig(t, b)
	var got map[string]string
	if err := json.Unmarshal(fields["Labels"], &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"org.example.team":      "shop",
		"org.example.build":     "yes",
		contract.LabelSHA:       sha2,
		contract.LabelProject:   "test-shop-pr-1",
		contract.LabelRouteHost: "",
	}
	if !maps.Equal(got, want) {
		t.Errorf("labels = %v, want %v", got, want)
	}
	for key, want := range map[string]string{
		"User":        `"app"`,
		"Cmd":         `["httpd"]`,
		"Env":         `["PATH=/bin"]`,
		"StopTimeout": `7`,
		"Healthcheck": `{"Test":["CMD","true"],"Interval":1000000000}`,
	} {
		if string(fields[key]) != want {
			t.Errorf("config %s = %s, want %s", key, fields[key], want)
		}
	}
	if !slices.Equal(cfg.RootFS.DiffIDs, []string{"sha256:l1", "sha256:l2"}) || cfg.RootFS.Type != "layers" {
		t.Errorf("rootfs = %+v", cfg.RootFS)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || cfg.Created != "2026-12-03T15:17:28.53321546Z" || cfg.Container != "b9dd" || cfg.DockerVersion != "20.10.24" {
		t.Errorf("image fields not kept: %+v", cfg)
	}
	if !strings.Contains(string(cfg.ContainerConfig), `"Hostname":"b9dd"`) {
		t.Errorf("container_config not kept: %s", cfg.ContainerConfig)
	}
}

// The history is the image's, oldest first, each entry's empty_layer told
// by its size, plus the labelling entry that made no layer: as many
// non-empty entries as layers, which docker history and a registry push
// rely on.
func TestRelabelledConfigKeepsTheHistory(t *testing.T) {
	b, err := relabelledConfig([]byte(inspectJSON), inspectHistory, map[string]string{contract.LabelSHA: sha2})
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := decodeConfig(t, b)
	if len(cfg.History) != 4 {
		t.Fatalf("history has %d entries, want 4: %+v", len(cfg.History), cfg.History)
	}
	wantBy := []string{"", "/bin/sh -c #(nop) COPY dir:abc in /www", `/bin/sh -c #(nop)  CMD ["httpd"]`, `/bin/sh -c #(nop)  LABEL "dev.slipway.sha"="` + sha2 + `"`}
	wantEmpty := []bool{false, false, true, true}
	for i, h := range cfg.History {
		if h.CreatedBy != wantBy[i] || h.EmptyLayer != wantEmpty[i] {
			t.Errorf("history[%d] = %+v, want created_by %q empty_layer %t", i, h, wantBy[i], wantEmpty[i])
		}
	}
	if cfg.History[0].Comment != "base image" || cfg.History[0].Created != "2026-12-03T15:17:23Z" {
		t.Errorf("history[0] = %+v", cfg.History[0])
	}
}

// A config is the same bytes for the same image and labels, so the same
// push gets the same image ID; another SHA gets another.
func TestRelabelledConfigIsDeterministic(t *testing.T) {
	labels := func(sha string) map[string]string {
		return map[string]string{contract.LabelSHA: sha, contract.LabelProject: "p", contract.LabelPR: "1", "z": "1", "a": "2"}
	}
	a, err := relabelledConfig([]byte(inspectJSON), inspectHistory, labels(sha1))
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, _ := relabelledConfig([]byte(inspectJSON), inspectHistory, labels(sha1))
		if !bytes.Equal(a, b) {
			t.Fatalf("two configs of the same inputs differ:\n%s\n%s", a, b)
		}
	}
	c, _ := relabelledConfig([]byte(inspectJSON), inspectHistory, labels(sha2))
	if configID(a) == configID(c) {
		t.Errorf("another SHA gave the same image ID %s", configID(a))
	}
}

// What cannot be written faithfully is left to the label step: a history
// whose sized entries are not the layers (a layer of empty files has size
// 0, like a step that made none), an image without a config or OS, a root
// filesystem that is not layers.
func TestRelabelledConfigRefusesWhatItCannotWriteFaithfully(t *testing.T) {
	emptyFileLayer := slices.Clone(inspectHistory)
	emptyFileLayer[1].Size = 0
	cases := map[string]struct {
		raw     string
		history []image.HistoryResponseItem
	}{
		"a layer of size 0":  {inspectJSON, emptyFileLayer},
		"no history":         {inspectJSON, nil},
		"more sized entries": {inspectJSON, append(slices.Clone(inspectHistory), image.HistoryResponseItem{Size: 3})},
		"no config":          {strings.Replace(inspectJSON, `"Config": {"Hostname": ""`, `"NoConfig": {"Hostname": ""`, 1), inspectHistory},
		"no OS":              {strings.Replace(inspectJSON, `"Os": "linux"`, `"Os": ""`, 1), inspectHistory},
		"not layers":         {strings.Replace(inspectJSON, `"Type": "layers"`, `"Type": "other"`, 1), inspectHistory},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := relabelledConfig([]byte(tc.raw), tc.history, map[string]string{contract.LabelSHA: sha1})
			if !errors.Is(err, errNoFaithfulConfig) {
				t.Errorf("err = %v, want errNoFaithfulConfig", err)
			}
		})
	}
	if _, err := relabelledConfig([]byte("{"), inspectHistory, nil); err == nil || errors.Is(err, errNoFaithfulConfig) {
		t.Errorf("broken inspect: err = %v", err)
	}
}

// The archive holds the config and a manifest naming the tag and one
// (absent) file per layer, nothing else.
func TestConfigArchive(t *testing.T) {
	b, err := configArchive([]byte(`{"x":1}`), 2, "test-shop-pr-1-web:111111111111")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(tr)
		files[h.Name] = body
	}
	if len(files) != 2 || string(files["config.json"]) != `{"x":1}` {
		t.Fatalf("archive files = %v", slices.Sorted(maps.Keys(files)))
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	if len(manifest) != 1 || manifest[0].Config != "config.json" || !slices.Equal(manifest[0].RepoTags, []string{"test-shop-pr-1-web:111111111111"}) || len(manifest[0].Layers) != 2 {
		t.Errorf("manifest = %+v", manifest)
	}
}

// countingDocker is the real engine, with the builds and image loads asked
// of it counted; loadErr, if set, is what ImageLoad answers instead (an
// engine that refuses a load without layers).
type countingDocker struct {
	Docker
	loadErr error

	mu            sync.Mutex
	builds, loads int
}

func (d *countingDocker) ImageBuild(ctx context.Context, r io.Reader, opts build.ImageBuildOptions) (build.ImageBuildResponse, error) {
	d.mu.Lock()
	d.builds++
	d.mu.Unlock()
	return d.Docker.ImageBuild(ctx, r, opts)
}

func (d *countingDocker) ImageLoad(ctx context.Context, r io.Reader, opts ...client.ImageLoadOption) (image.LoadResponse, error) {
	d.mu.Lock()
	d.loads++
	d.mu.Unlock()
	if d.loadErr != nil {
		return image.LoadResponse{}, d.loadErr
	}
	return d.Docker.ImageLoad(ctx, r, opts...)
}

// reset zeroes the counts and returns them.
func (d *countingDocker) reset() (builds, loads int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	builds, loads = d.builds, d.loads
	d.builds, d.loads = 0, 0
	return builds, loads
}

// pushTwice builds dir's services for sha1, then for sha2 with nothing
// changed (a warm push), on an engine over d; it returns the plans and
// the second build's log.
func pushTwice(t *testing.T, d *countingDocker, cli *client.Client, dir string) (*Plan, *Plan, string) {
	t.Helper()
	e := NewEngine(d, nil, EngineOptions{ReadyTimeout: time.Minute, StopTimeout: 2 * time.Second})
	src := newSource(t, e, cli, dir)
	first := mustLoad(t, src)
	var log bytes.Buffer
	if _, err := e.Build(context.Background(), first, &log); err != nil {
		t.Fatalf("build for %s: %v\n%s", sha1, err, log.String())
	}
	src.SHA = sha2
	second := mustLoad(t, src)
	d.reset()
	log.Reset()
	if _, err := e.Build(context.Background(), second, &log); err != nil {
		t.Fatalf("build for %s: %v\n%s", sha2, err, log.String())
	}
	t.Cleanup(func() {
		ctx := context.Background()
		for _, p := range []*Plan{first, second} {
			_, _ = cli.ImageRemove(ctx, p.Image("web"), image.RemoveOptions{Force: true})
		}
	})
	return first, second, log.String()
}

// checkPushedImage checks the image a warm push tagged: Slipway's labels
// for sha2, the marker label of the PR's Dockerfile, the layers of the
// first push's image.
func checkPushedImage(t *testing.T, cli *client.Client, first, second *Plan, marker string) image.InspectResponse {
	t.Helper()
	ctx := context.Background()
	a, err := cli.ImageInspect(ctx, first.Image("web"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := cli.ImageInspect(ctx, second.Image("web"))
	if err != nil {
		t.Fatal(err)
	}
	l := b.Config.Labels
	if l[contract.LabelSHA] != sha2 || l[contract.LabelProject] != second.Name || l[contract.LabelManaged] != "true" || l[contract.LabelBuildHash] != buildHash(sha2, second.Project.Services["web"].Build) {
		t.Errorf("labels of %s = %v", second.Image("web"), l)
	}
	if l["test.marker"] != marker {
		t.Errorf("the Dockerfile's own label test.marker = %q, want %q", l["test.marker"], marker)
	}
	if !slices.Equal(a.RootFS.Layers, b.RootFS.Layers) {
		t.Errorf("layers differ between the pushes:\n%v\n%v", a.RootFS.Layers, b.RootFS.Layers)
	}
	if a.ID == b.ID {
		t.Errorf("both pushes tagged image %s", a.ID)
	}
	return b
}

// webFixture is a one-service project whose Dockerfile copies a file with
// content (or an empty one) and labels itself with marker, a label of its
// own and a reserved one it may not set.
func webFixture(t *testing.T, marker, content string) string {
	t.Helper()
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		"compose.yaml": "services:\n  web:\n    build: .\n",
		"page.txt":     content,
		"Dockerfile": "FROM " + dockertest.BusyboxImage + "\nCOPY page.txt /www/page.txt\n" +
			"LABEL test.marker=" + marker + " dev.slipway.route.host=pr-9.example.com\nCMD [\"httpd\", \"-f\", \"-h\", \"/www\"]\n",
	})
	return dir
}

// A warm push (every step of the PR's Dockerfile cached) gets Slipway's
// labels, the new SHA included, through one image load: no label step,
// no container. The image keeps its layers, its own labels and a history
// docker history can show, and the reserved label the Dockerfile set is
// cleared.
func TestWarmPushLabelsThroughAnImageLoad(t *testing.T) {
	t.Parallel()
	_, cli := testEngine(t)
	d := &countingDocker{Docker: cli}
	marker := dockertest.UniqueName("relabel-")
	removeImagesLabelledMarker(t, cli, marker)
	first, second, log := pushTwice(t, d, cli, webFixture(t, marker, "hello\n"))
	if builds, loads := d.reset(); builds != 1 || loads != 1 {
		t.Errorf("warm push: %d builds, %d image loads; want 1 build (the PR's Dockerfile) and 1 load\n%s", builds, loads, log)
	}
	if !strings.Contains(log, "Using cache") || !strings.Contains(log, "build timings: ") || !strings.Contains(log, "(labels set by "+labelViaLoad+")") {
		t.Errorf("log has no cache hit or no timing line by image load:\n%s", log)
	}
	img := checkPushedImage(t, cli, first, second, marker)
	if v, ok := img.Config.Labels[contract.LabelRouteHost]; !ok || v != "" {
		t.Errorf("the Dockerfile's %s = %q (set %t), want it cleared", contract.LabelRouteHost, v, ok)
	}
	if img.Config.Cmd[0] != "httpd" {
		t.Errorf("cmd = %v", img.Config.Cmd)
	}
	hist, err := cli.ImageHistory(context.Background(), second.Image("web"))
	if err != nil {
		t.Fatal(err)
	}
	var by []string
	for _, h := range hist {
		by = append(by, h.CreatedBy)
	}
	if len(hist) < 4 || !strings.Contains(by[0], `LABEL`) || !strings.Contains(by[0], sha2) || !strings.Contains(strings.Join(by, "\n"), "COPY") {
		t.Errorf("history of %s:\n%s", second.Image("web"), strings.Join(by, "\n"))
	}
}

// A layer of empty files has size 0 in the engine's history, like a step
// that made no layer: the config cannot be written faithfully, and the
// label step labels the image as before.
func TestPushWithAnEmptyFileLayerLabelsThroughTheLabelStep(t *testing.T) {
	t.Parallel()
	_, cli := testEngine(t)
	d := &countingDocker{Docker: cli}
	marker := dockertest.UniqueName("relabel-")
	removeImagesLabelledMarker(t, cli, marker)
	first, second, log := pushTwice(t, d, cli, webFixture(t, marker, ""))
	if builds, loads := d.reset(); builds != 2 || loads != 0 {
		t.Errorf("warm push: %d builds, %d image loads; want 2 builds (the PR's Dockerfile, the label step) and no load\n%s", builds, loads, log)
	}
	if !strings.Contains(log, "labelling with a build step") || !strings.Contains(log, "(labels set by "+labelViaBuild+")") {
		t.Errorf("log does not say the label step labelled:\n%s", log)
	}
	checkPushedImage(t, cli, first, second, marker)
}

// An engine that refuses the load (one that wants the layers in the
// archive, as the containerd image store does) gets the label step.
func TestPushLabelsThroughTheLabelStepWhenTheEngineRefusesTheLoad(t *testing.T) {
	t.Parallel()
	_, cli := testEngine(t)
	d := &countingDocker{Docker: cli, loadErr: errors.New("content digest sha256:l1: not found")}
	marker := dockertest.UniqueName("relabel-")
	removeImagesLabelledMarker(t, cli, marker)
	first, second, log := pushTwice(t, d, cli, webFixture(t, marker, "hello\n"))
	if builds, loads := d.reset(); builds != 2 || loads != 1 {
		t.Errorf("warm push: %d builds, %d image loads; want 2 builds and the refused load\n%s", builds, loads, log)
	}
	if !strings.Contains(log, "content digest sha256:l1: not found") || !strings.Contains(log, "(labels set by "+labelViaBuild+")") {
		t.Errorf("log does not say why the label step labelled:\n%s", log)
	}
	checkPushedImage(t, cli, first, second, marker)
}

// removeImagesLabelledMarker removes, when the test ends, the untagged
// images the PR's Dockerfile built (they carry test.marker=marker).
func removeImagesLabelledMarker(t *testing.T, cli *client.Client, marker string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		imgs, err := cli.ImageList(ctx, image.ListOptions{All: true})
		if err != nil {
			t.Errorf("list images: %v", err)
			return
		}
		for _, s := range imgs {
			if s.Labels["test.marker"] == marker {
				_, _ = cli.ImageRemove(ctx, s.ID, image.RemoveOptions{Force: true})
			}
		}
	})
}
