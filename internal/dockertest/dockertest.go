// Package dockertest gives tests a client for the real Docker Engine and the
// base images their fixtures build on, without any registry.
//
// The engine on our machines starts with no images and cannot pull, so the
// helpers here make what fixtures need locally: a busybox base image imported
// from Debian's busybox-static (/bin/busybox), and FROM-scratch images of
// static Go binaries.
//
// Under CI=true a missing engine or a missing busybox binary fails the test;
// elsewhere it skips, so `go test ./...` still runs the pure tests on a laptop
// without Docker.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
)

// BusyboxImage is the tag of the base image fixtures build FROM.
const BusyboxImage = "slipway-test/busybox:1"

// BusyboxPath is where Debian's busybox-static installs the binary.
const BusyboxPath = "/bin/busybox"

// busyboxApplets are the commands fixtures use; each becomes a link to busybox.
var busyboxApplets = []string{
	"sh", "ash", "httpd", "wget", "nc", "sleep", "echo", "cat", "ls", "mkdir", "rm", "cp", "mv",
	"env", "printf", "test", "[", "true", "false", "id", "hostname", "ip", "ping", "nslookup",
	"grep", "sed", "awk", "head", "tail", "wc", "date", "touch", "kill", "ps", "timeout", "tr",
	"cut", "sort", "uniq", "tee", "xargs", "find", "stat", "chmod", "dd", "seq", "yes", "ln",
}

// inCI reports whether the tests run under CI, where a missing dependency is a failure.
func inCI() bool { return os.Getenv("CI") == "true" }

// Unavailable stops the test: a failure under CI=true, a skip elsewhere.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf("CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

var (
	clientOnce sync.Once
	sharedCli  *client.Client
	clientErr  error
)

// Client returns a client for the engine named by DOCKER_HOST (or the local
// socket), after checking that the engine answers.
func Client(t testing.TB) *client.Client {
	t.Helper()
	clientOnce.Do(func() {
		sharedCli, clientErr = client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
		if clientErr != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := sharedCli.Ping(ctx); err != nil {
			clientErr = fmt.Errorf("ping docker engine: %w", err)
		}
	})
	if clientErr != nil {
		Unavailable(t, "docker engine unavailable: %v", clientErr)
	}
	return sharedCli
}

var (
	busyboxMu    sync.Mutex
	busyboxReady bool
)

// Busybox makes sure BusyboxImage exists on the engine and returns its tag.
// It imports a root filesystem holding /bin/busybox and its applet links.
func Busybox(t testing.TB) string {
	t.Helper()
	cli := Client(t)
	busyboxMu.Lock()
	defer busyboxMu.Unlock()
	if busyboxReady {
		return BusyboxImage
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := EnsureBusybox(ctx, cli); err != nil {
		if os.IsNotExist(err) {
			Unavailable(t, "%v (install Debian's busybox-static)", err)
		}
		t.Fatalf("busybox base image: %v", err)
	}
	busyboxReady = true
	return BusyboxImage
}

// EnsureBusybox imports BusyboxImage from BusyboxPath unless the engine has it.
func EnsureBusybox(ctx context.Context, cli client.ImageAPIClient) error {
	if _, err := cli.ImageInspect(ctx, BusyboxImage); err == nil {
		return nil
	}
	rootfs, err := BusyboxRootfs(BusyboxPath)
	if err != nil {
		return err
	}
	rc, err := cli.ImageImport(ctx, image.ImportSource{Source: bytes.NewReader(rootfs), SourceName: "-"}, BusyboxImage, image.ImportOptions{
		Message: "slipway test base image from busybox-static",
		Changes: []string{`CMD ["sh"]`, `ENV PATH=/bin:/usr/bin:/sbin:/usr/sbin`},
	})
	if err != nil {
		return fmt.Errorf("import %s: %w", BusyboxImage, err)
	}
	defer rc.Close()
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("import %s: %w", BusyboxImage, err)
	}
	return nil
}

// BusyboxRootfs returns a tar of a minimal root filesystem: /bin/busybox, a
// link per applet, /tmp, /etc/passwd and /etc/group with root and nobody.
func BusyboxRootfs(busyboxPath string) ([]byte, error) {
	bin, err := os.ReadFile(busyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read busybox binary: %w", err)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Unix(0, 0)
	dirs := []string{"bin/", "etc/", "tmp/", "var/", "www/", "root/", "run/", "usr/", "usr/bin/", "sbin/", "usr/sbin/"}
	for _, d := range dirs {
		mode := int64(0o755)
		if d == "tmp/" {
			mode = 0o1777
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: mode, ModTime: now}); err != nil {
			return nil, err
		}
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "bin/busybox", Mode: 0o755, Size: int64(len(bin)), ModTime: now}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(bin); err != nil {
		return nil, err
	}
	for _, a := range busyboxApplets {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeSymlink, Name: "bin/" + a, Linkname: "busybox", Mode: 0o777, ModTime: now}); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"etc/group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(content)), ModTime: now}); err != nil {
			return nil, err
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// UniqueName returns prefix plus a random suffix, lowercased, for project,
// repo and image names that must not collide between parallel tests.
func UniqueName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return strings.ToLower(prefix) + hex.EncodeToString(b)
}

// BuildStaticGo compiles the main package in pkgDir with CGO_ENABLED=0 and
// writes the binary to out. Fixtures copy it into FROM-scratch images.
func BuildStaticGo(t testing.TB, pkgDir, out string) {
	t.Helper()
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, ".")
	cmd.Dir = pkgDir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkgDir, err, b)
	}
}

// Leftovers lists every container, network, volume and image on the engine
// that carries label (key=value), as "kind name" strings. Tests assert it is
// empty after a teardown.
func Leftovers(ctx context.Context, cli client.APIClient, label string) ([]string, error) {
	f := filters.NewArgs(filters.Arg("label", label))
	var out []string
	cs, err := cli.ContainerList(ctx, containerListOptions(f))
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	for _, c := range cs {
		out = append(out, "container "+strings.Join(c.Names, ","))
	}
	ns, err := cli.NetworkList(ctx, networkListOptions(f))
	if err != nil {
		return nil, fmt.Errorf("list networks: %w", err)
	}
	for _, n := range ns {
		out = append(out, "network "+n.Name)
	}
	vs, err := cli.VolumeList(ctx, volumeListOptions(f))
	if err != nil {
		return nil, fmt.Errorf("list volumes: %w", err)
	}
	for _, v := range vs.Volumes {
		out = append(out, "volume "+v.Name)
	}
	is, err := cli.ImageList(ctx, image.ListOptions{All: true, Filters: f})
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	for _, i := range is {
		out = append(out, "image "+strings.Join(append([]string{i.ID}, i.RepoTags...), ","))
	}
	return out, nil
}

// WriteFiles writes files (relative path → content) under dir, creating
// directories; a path ending in ".sh" or starting with "cgi-bin/" is made
// executable.
func WriteFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") || strings.Contains(name, "cgi-bin/") {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// GetHost fetches url with the Host header set to host, and returns the
// status and body (0 and the error's text when the request fails): how
// tests open a preview through a proxy.
func GetHost(url, host string) (int, string) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, err.Error()
	}
	req.Host = host
	return Do(req)
}

// Do sends req and returns the status and body (0 and the error's text
// when the request fails).
func Do(req *http.Request) (int, string) {
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
