package stack

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// Labelling a built image. The labels Slipway puts on a built image carry
// the commit's SHA, so the labelled image is a new image on every push,
// even when every layer of the PR's Dockerfile came from the cache. The
// classic builder makes it with a container: a LABEL step (or the Labels
// option, which it appends to the Dockerfile as a LABEL step) probes its
// cache, misses on the new SHA, creates a container from the image,
// commits its empty diff and removes it — 0.5 to 1 s per image on a
// loaded 2-core machine, on every push.
//
// An image is its config: the labelled image is the PR's image with the
// same layers and the labels changed. Slipway writes that config itself,
// from the daemon's own inspect of the PR's image, and hands it to the
// engine's image load, which registers a config whose layers it already
// has without reading any layer (moby's tarexport looks each layer up by
// its chain ID first). No container, no commit: a few tens of
// milliseconds. The label step remains the fallback wherever the config
// cannot be written faithfully (an image history that does not say which
// steps made layers) or the engine refuses the load (an engine that wants
// the layers themselves, such as one with the containerd image store).
// Either way the labels are merged exactly as the LABEL step merges them,
// and the tagged image is verified the same way afterwards.

// Ways a built image got Slipway's labels, as the build log reports them.
const (
	labelViaLoad  = "image load"
	labelViaBuild = "label step"
)

// errNoFaithfulConfig is why an image's labelled config cannot be written
// without the builder: the fallback is the label step.
var errNoFaithfulConfig = errors.New("cannot write the image's config faithfully")

// label gives the image the PR's Dockerfile built (id, inspected as raw by
// the daemon) the labels and tags it. It returns how it did it.
func (e *Engine) label(ctx context.Context, service, id string, raw []byte, tag string, labels map[string]string, log *lineWriter) (string, error) {
	config, err := e.labelledConfig(ctx, id, raw, labels)
	if err == nil {
		if err = e.loadConfig(ctx, config, tag); err == nil {
			return labelViaLoad, nil
		}
	}
	if ctx.Err() != nil {
		return "", &BuildError{Service: service, Err: ctx.Err()}
	}
	log.Printf(service, "labelling with a build step (%v)", err)
	labelTar, err := labelContext(id, labels)
	if err != nil {
		return "", &BuildError{Service: service, Err: err}
	}
	// The labelling step runs nothing: no network.
	if _, err := e.runBuild(ctx, service, labelTar, build.ImageBuildOptions{
		Tags:        []string{tag},
		Dockerfile:  labelDockerfile,
		Remove:      true,
		ForceRemove: true,
		NetworkMode: "none",
		Version:     build.BuilderV1,
	}, log); err != nil {
		return "", err
	}
	return labelViaBuild, nil
}

// labelledConfig writes the config of the labelled image: raw's, with the
// history the engine reports for id.
func (e *Engine) labelledConfig(ctx context.Context, id string, raw []byte, labels map[string]string) ([]byte, error) {
	history, err := e.docker.ImageHistory(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("history of %s: %w", id, err)
	}
	return relabelledConfig(raw, history, labels)
}

// loadConfig registers config through the engine's image load, tagged
// tag, with none of its layers in the archive: the engine has them all.
// It checks that the tag then names exactly that config.
func (e *Engine) loadConfig(ctx context.Context, config []byte, tag string) error {
	var cfg struct {
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		return fmt.Errorf("labelled config: %w", err)
	}
	archive, err := configArchive(config, len(cfg.RootFS.DiffIDs), tag)
	if err != nil {
		return err
	}
	resp, err := e.docker.ImageLoad(ctx, bytes.NewReader(archive), client.ImageLoadWithQuiet(true))
	if err != nil {
		return fmt.Errorf("image load: %w", err)
	}
	defer resp.Body.Close()
	if err := decodeBuildStream(resp.Body, func(string) {}); err != nil {
		return fmt.Errorf("image load: %w", err)
	}
	got, err := e.docker.ImageInspect(ctx, tag)
	if err != nil {
		return fmt.Errorf("inspect loaded image %s: %w", tag, err)
	}
	if want := configID(config); got.ID != want {
		return fmt.Errorf("after the image load, %s is %s, not the loaded %s", tag, got.ID, want)
	}
	return nil
}

// configID is the ID the engine gives an image config: its digest.
func configID(config []byte) string {
	sum := sha256.Sum256(config)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// configArchive is an image archive (the format of docker save and load)
// holding one image, config, tagged tag, whose layers entries name files
// the archive does not hold: an engine that has every layer never opens
// them, and one that lacks one fails the load.
func configArchive(config []byte, layers int, tag string) ([]byte, error) {
	const configName = "config.json"
	paths := make([]string, layers)
	for i := range paths {
		paths[i] = fmt.Sprintf("layer%d/layer.tar", i)
	}
	manifest, err := json.Marshal([]struct {
		Config   string
		RepoTags []string
		Layers   []string
	}{{configName, []string{tag}, paths}})
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		body []byte
	}{{configName, config}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.body); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// imageConfig is an image config as the engine stores it (moby's
// image.Image), its fields in the engine's order. Config and
// ContainerConfig stay the engine's own JSON but for the labels.
type imageConfig struct {
	Comment         string          `json:"comment,omitempty"`
	Created         string          `json:"created,omitempty"`
	Container       string          `json:"container,omitempty"`
	ContainerConfig json.RawMessage `json:"container_config,omitempty"`
	DockerVersion   string          `json:"docker_version,omitempty"`
	Author          string          `json:"author,omitempty"`
	Config          json.RawMessage `json:"config,omitempty"`
	Architecture    string          `json:"architecture,omitempty"`
	Variant         string          `json:"variant,omitempty"`
	OS              string          `json:"os,omitempty"`
	RootFS          imageRootFS     `json:"rootfs"`
	History         []imageHistory  `json:"history,omitempty"`
	OSVersion       string          `json:"os.version,omitempty"`
}

type imageRootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type imageHistory struct {
	Created    string `json:"created,omitempty"`
	CreatedBy  string `json:"created_by,omitempty"`
	Comment    string `json:"comment,omitempty"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

// imageInspect is the part of the engine's image inspect a config is
// written from.
type imageInspect struct {
	ID              string          `json:"Id"`
	Comment         string          `json:"Comment"`
	Created         string          `json:"Created"`
	Container       string          `json:"Container"`
	ContainerConfig json.RawMessage `json:"ContainerConfig"`
	DockerVersion   string          `json:"DockerVersion"`
	Author          string          `json:"Author"`
	Config          json.RawMessage `json:"Config"`
	Architecture    string          `json:"Architecture"`
	Variant         string          `json:"Variant"`
	OS              string          `json:"Os"`
	OSVersion       string          `json:"OsVersion"`
	RootFS          struct {
		Type   string   `json:"Type"`
		Layers []string `json:"Layers"`
	} `json:"RootFS"`
}

// relabelledConfig writes the config of the image raw (the engine's
// inspect of it) would become through a LABEL step setting labels: the
// same layers, config and history, labels merged over the image's own
// (the step overrides a key, keeps the others), and one more history entry
// that made no layer. history is the engine's history of the image, newest
// first. It fails with errNoFaithfulConfig when it cannot tell the history
// entries that made a layer from those that did not. Pure.
func relabelledConfig(raw []byte, history []image.HistoryResponseItem, labels map[string]string) ([]byte, error) {
	var in imageInspect
	if err := json.Unmarshal(raw, &in); err != nil {
		return nil, fmt.Errorf("image inspect: %w", err)
	}
	if in.RootFS.Type != "layers" || len(in.Config) == 0 || in.OS == "" {
		return nil, fmt.Errorf("%w: inspect has no layers, config or OS", errNoFaithfulConfig)
	}
	cfg, err := withLabels(in.Config, labels)
	if err != nil {
		return nil, err
	}
	hist, err := layerHistory(history, len(in.RootFS.Layers))
	if err != nil {
		return nil, err
	}
	hist = append(hist, imageHistory{
		Created:    in.Created,
		CreatedBy:  "/bin/sh -c #(nop)  " + strings.TrimSuffix(labelInstruction(labels), "\n"),
		Comment:    "labels set by Slipway",
		EmptyLayer: true,
	})
	out := imageConfig{
		Comment:         in.Comment,
		Created:         in.Created,
		Container:       in.Container,
		ContainerConfig: in.ContainerConfig,
		DockerVersion:   in.DockerVersion,
		Author:          in.Author,
		Config:          cfg,
		Architecture:    in.Architecture,
		Variant:         in.Variant,
		OS:              in.OS,
		RootFS:          imageRootFS{Type: "layers", DiffIDs: slices.Clone(in.RootFS.Layers)},
		History:         hist,
		OSVersion:       in.OSVersion,
	}
	if out.RootFS.DiffIDs == nil {
		out.RootFS.DiffIDs = []string{}
	}
	return json.Marshal(out)
}

// withLabels returns the engine's container config JSON with labels
// merged over its Labels, every other field as the engine wrote it.
func withLabels(config json.RawMessage, labels map[string]string) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(config, &fields); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	merged := map[string]string{}
	if l, ok := fields["Labels"]; ok && string(l) != "null" {
		if err := json.Unmarshal(l, &merged); err != nil {
			return nil, fmt.Errorf("image labels: %w", err)
		}
	}
	maps.Copy(merged, labels)
	l, err := json.Marshal(merged)
	if err != nil {
		return nil, err
	}
	fields["Labels"] = l
	return json.Marshal(fields)
}

// layerHistory turns the engine's history of an image (newest first) into
// config history entries, oldest first. The engine does not say which
// entries made a layer; it reports each one's size, and an entry that made
// none has size 0. When exactly layers entries have a size, they are the
// layers; otherwise (a layer of empty files, which has size 0 too) it
// cannot tell, and fails with errNoFaithfulConfig.
func layerHistory(history []image.HistoryResponseItem, layers int) ([]imageHistory, error) {
	sized := 0
	for _, h := range history {
		if h.Size > 0 {
			sized++
		}
	}
	if sized != layers {
		return nil, fmt.Errorf("%w: %d of its %d history entries have a size, for %d layers", errNoFaithfulConfig, sized, len(history), layers)
	}
	out := make([]imageHistory, 0, len(history)+1)
	for _, h := range slices.Backward(history) {
		out = append(out, imageHistory{
			Created:    time.Unix(h.Created, 0).UTC().Format(time.RFC3339Nano),
			CreatedBy:  h.CreatedBy,
			Comment:    h.Comment,
			EmptyLayer: h.Size == 0,
		})
	}
	return out, nil
}
