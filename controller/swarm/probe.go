package swarm

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/system"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/slipwayhq/slipway/internal/contract"
)

// CheckManager says whether the engine can run previews on a swarm: it
// must be an active manager. Pure.
func CheckManager(info system.Info) error {
	s := info.Swarm
	switch {
	case s.LocalNodeState != "active":
		return fmt.Errorf("the engine is not in a swarm (node state %q): run docker swarm init, or point DOCKER_HOST at a manager", s.LocalNodeState)
	case !s.ControlAvailable:
		return errors.New("the engine is a swarm worker: Slipway must talk to a manager (point DOCKER_HOST at one)")
	}
	return nil
}

// CheckOverlay creates an attachable overlay network and removes it: the
// overlay driver works and this node may create swarm networks.
func (e *Engine) CheckOverlay(ctx context.Context) error {
	name := "slipway-doctor-" + randomHex(4)
	created, err := e.docker.NetworkCreate(ctx, name, network.CreateOptions{Driver: "overlay", Scope: "swarm", Attachable: true,
		Labels: map[string]string{contract.LabelManaged: "true", LabelNamespace: name}})
	if err != nil {
		return fmt.Errorf("create an attachable overlay network: %w", err)
	}
	if err := e.docker.NetworkRemove(ctx, created.ID); err != nil {
		return fmt.Errorf("remove the probe network %s: %w", name, err)
	}
	return nil
}

// CheckRegistryPush builds a one-file image, pushes it to the registry
// through the daemon (as Up does), and deletes it again from the registry
// and the engine: the registry answers, the daemon trusts it, the
// credentials are accepted, and deletes are allowed.
func (e *Engine) CheckRegistryPush(ctx context.Context) error {
	r := e.opts.Registry
	if r == nil || r.Address == "" {
		return errors.New("no registry configured")
	}
	if err := r.Check(ctx); err != nil {
		return err
	}
	local := "slipway-doctor-probe:" + randomHex(6)
	var ctxTar bytes.Buffer
	tw := tar.NewWriter(&ctxTar)
	for name, body := range map[string]string{"Dockerfile": "FROM scratch\nCOPY probe /probe\n", "probe": "slipway doctor\n"} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			return err
		}
		if _, err := io.WriteString(tw, body); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	resp, err := e.docker.ImageBuild(ctx, &ctxTar, build.ImageBuildOptions{Tags: []string{local}, Remove: true, ForceRemove: true,
		Labels: map[string]string{contract.LabelManaged: "true"}})
	if err != nil {
		return fmt.Errorf("build the probe image: %w", err)
	}
	err = jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil)
	resp.Body.Close()
	if err != nil {
		return fmt.Errorf("build the probe image: %w", err)
	}
	repo := "slipway-doctor-probe"
	ref, pushErr := e.push(ctx, local, r.Address+"/"+repo, "probe", io.Discard)
	for _, tag := range []string{local, r.Address + "/" + repo + ":probe"} {
		_, _ = e.docker.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true})
	}
	if pushErr != nil {
		return pushErr
	}
	_, digest, _ := strings.Cut(ref, "@")
	return r.deleteManifest(ctx, repo, digest)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
