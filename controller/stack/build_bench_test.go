package stack

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

// BenchmarkWarmPush measures, on the real engine, what labelling one
// built image costs each way, and a whole warm push of one service (every
// Dockerfile step cached, a new SHA):
//
//	go test -run '^$' -bench WarmPush -benchtime 5x ./controller/stack
func BenchmarkWarmPush(b *testing.B) {
	cli := dockertest.Client(b)
	dockertest.Busybox(b)
	e := NewEngine(cli, nil, EngineOptions{})
	load := func(src Source) *Plan {
		p, err := Load(context.Background(), src, LoadOptions{Limits: config.Defaults().Limits})
		if err != nil {
			b.Fatalf("load: %v", err)
		}
		return p
	}
	marker := dockertest.UniqueName("bench-")
	dir := b.TempDir()
	dockertest.WriteFiles(b, dir, map[string]string{
		"compose.yaml": "services:\n  web:\n    build: .\n",
		"page.txt":     "hello\n",
		"Dockerfile": "FROM " + dockertest.BusyboxImage + "\nLABEL test.marker=" + marker + "\nCOPY page.txt /www/page.txt\n" +
			"CMD [\"httpd\", \"-f\", \"-h\", \"/www\"]\n",
	})
	src := Source{Dir: dir, Owner: "bench", Repo: dockertest.UniqueName("shop"), PR: 1, SHA: sha1}
	b.Cleanup(func() {
		ctx := context.Background()
		_ = e.Down(ctx, src.Project())
		imgs, _ := cli.ImageList(ctx, image.ListOptions{All: true})
		for _, s := range imgs {
			if s.Labels["test.marker"] == marker {
				_, _ = cli.ImageRemove(ctx, s.ID, image.RemoveOptions{Force: true})
			}
		}
	})
	ctx := context.Background()
	p := load(src)
	var log bytes.Buffer
	if _, err := e.Build(ctx, p, &log); err != nil {
		b.Fatalf("build: %v\n%s", err, log.String())
	}
	// The PR's own image: the warm build's result.
	var raw bytes.Buffer
	tagged, err := cli.ImageInspect(ctx, p.Image("web"))
	if err != nil {
		b.Fatal(err)
	}
	var prImage string
	for _, line := range bytes.Split(log.Bytes(), []byte("\n")) {
		if _, id, ok := bytes.Cut(line, []byte("Successfully built ")); ok && prImage == "" {
			prImage = string(bytes.TrimSpace(id))
		}
	}
	built, err := cli.ImageInspect(ctx, prImage, client.ImageInspectWithRawResponse(&raw))
	if err != nil {
		b.Fatal(err)
	}
	hash := tagged.Config.Labels["dev.slipway.build-hash"]
	labelsFor := func(i int) map[string]string {
		q := *p
		q.Source.SHA = fmt.Sprintf("%040d", i)
		return imageLabels(&q, p.Project.Services["web"].Build, hash, imageOf(built).Labels)
	}
	untag := func(tag string) {
		b.StopTimer()
		_, _ = cli.ImageRemove(ctx, tag, image.RemoveOptions{Force: true})
		b.StartTimer()
	}

	b.Run("label/image-load", func(b *testing.B) {
		for i := range b.N {
			tag := fmt.Sprintf("%s:load%d", p.Image("web")[:len(p.Image("web"))-13], i)
			cfg, err := e.labelledConfig(ctx, built.ID, raw.Bytes(), labelsFor(i))
			if err != nil {
				b.Fatal(err)
			}
			if err := e.loadConfig(ctx, cfg, tag); err != nil {
				b.Fatal(err)
			}
			untag(tag)
		}
	})
	b.Run("label/label-step", func(b *testing.B) {
		for i := range b.N {
			tag := fmt.Sprintf("%s:step%d", p.Image("web")[:len(p.Image("web"))-13], i)
			tar, err := labelContext(built.ID, labelsFor(i))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := e.runBuild(ctx, "web", tar, build.ImageBuildOptions{Tags: []string{tag}, Dockerfile: labelDockerfile, Remove: true, ForceRemove: true, NetworkMode: "none", Version: build.BuilderV1}, &lineWriter{w: &bytes.Buffer{}}); err != nil {
				b.Fatal(err)
			}
			untag(tag)
		}
	})
	b.Run("push", func(b *testing.B) {
		for i := range b.N {
			s := src
			s.SHA = fmt.Sprintf("%040x", i+3)
			q := load(s)
			if _, err := e.Build(ctx, q, nil); err != nil {
				b.Fatal(err)
			}
			untag(q.Image("web"))
		}
	})
}
