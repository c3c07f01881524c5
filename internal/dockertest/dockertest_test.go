package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
)

func TestBusyboxRootfsHoldsAppletLinks(t *testing.T) {
	fake := t.TempDir() + "/busybox"
	if err := os.WriteFile(fake, []byte("#!fake"), 0o755); err != nil {
		t.Fatal(err)
	}
	rootfs, err := BusyboxRootfs(fake)
	if err != nil {
		t.Fatal(err)
	}
	links := map[string]string{}
	tr := tar.NewReader(bytes.NewReader(rootfs))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeSymlink {
			links[h.Name] = h.Linkname
		}
	}
	for _, a := range []string{"bin/sh", "bin/httpd", "bin/wget"} {
		if links[a] != "busybox" {
			t.Errorf("%s links to %q, want busybox", a, links[a])
		}
	}
}

func TestBusyboxImageRunsShell(t *testing.T) {
	cli := Client(t)
	img := Busybox(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: img, Cmd: []string{"sh", "-c", "echo hello-$((40+2))"}}, nil, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer cli.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true})
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		t.Fatal(err)
	}
	waitC, errC := cli.ContainerWait(ctx, c.ID, container.WaitConditionNotRunning)
	select {
	case <-waitC:
	case err := <-errC:
		t.Fatal(err)
	}
	rc, err := cli.ContainerLogs(ctx, c.ID, container.LogsOptions{ShowStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if !strings.Contains(string(b), "hello-42") {
		t.Fatalf("logs %q lack hello-42", b)
	}
}
