package stack

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/controller/stack/policy"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

func TestBindDeviceReadsOptsAsTheEngine(t *testing.T) {
	tests := []struct {
		o                     string
		bind, readOnly, plain bool
	}{
		{"bind", true, false, true},
		{"rbind,ro", true, true, true},
		{"bind,ro,rw", true, false, true}, // the last of ro and rw wins
		{"bind,rw,ro", true, true, true},
		{"ro,bind", true, true, true},
		{"bind,ro,ro,rw,ro", true, true, true},
		{"bind, ro", true, false, false}, // " ro" is no flag
		{" bind,ro", false, true, false},
		{"BIND,RO", false, false, false}, // no case folding
		{"bind,,ro", true, true, false},
		{"bind,ro,noexec", true, true, false},
		{"size=1m", false, false, false},
		{"", false, false, false},
	}
	for _, tt := range tests {
		bind, ro, plain := readBindOpts(tt.o)
		if bind != tt.bind || ro != tt.readOnly || plain != tt.plain {
			t.Errorf("readBindOpts(%q) = %v, %v, %v; want %v, %v, %v", tt.o, bind, ro, plain, tt.bind, tt.readOnly, tt.plain)
		}
	}
}

func TestBindDevice(t *testing.T) {
	tests := []struct {
		opts map[string]string
		want string
	}{
		{map[string]string{"type": "none", "o": "bind", "device": "/src/p/abc.d1"}, "/src/p/abc.d1"},
		{map[string]string{"type": "none", "o": "rbind", "device": "/src/p/abc.d1/data/"}, "/src/p/abc.d1/data"},
		{map[string]string{"type": "none", "o": "bind,rw", "device": "/src/p/abc.d1"}, "/src/p/abc.d1"},
		{map[string]string{"type": "none", "o": " bind , noexec", "device": "src/p"}, "/src/p"}, // the engine resolves from /
		{map[string]string{"type": "none", "o": "bind,ro", "device": "/src/p/abc.d1"}, ""},
		{map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=10m"}, ""},
		{map[string]string{"type": "none", "o": "bind"}, ""},
		{nil, ""},
		// The engine's parser (moby/sys/mount): tokens matched exactly, the
		// last of ro and rw winning; what it reads as anything but a
		// read-only bind or a tmpfs counts as writing the device.
		{map[string]string{"type": "none", "o": "bind,ro,rw", "device": "/src/p"}, "/src/p"},
		{map[string]string{"type": "none", "o": "rbind,ro,rw", "device": "/src/p"}, "/src/p"},
		{map[string]string{"type": "none", "o": "bind,rw,ro", "device": "/src/p"}, ""},
		{map[string]string{"type": "none", "o": "ro,bind", "device": "/src/p"}, ""},
		{map[string]string{"type": "none", "o": "bind,ro,noexec", "device": "/src/p"}, "/src/p"}, // a flag this reading does not follow
		{map[string]string{"type": "none", "o": "bind, ro", "device": "/src/p"}, "/src/p"},
		{map[string]string{"type": "none", "o": "bind,ro ", "device": "/src/p"}, "/src/p"},
		{map[string]string{"type": "none", "o": "bind,RO", "device": "/src/p"}, "/src/p"},
		{map[string]string{"type": "none", "o": "BIND,RO", "device": "/src/p"}, "/src/p"},
		{map[string]string{"type": "none", "o": "bind,,ro", "device": "/src/p"}, "/src/p"},
		{map[string]string{"type": "none", "o": "bind,ro,x-unknown", "device": "/src/p"}, "/src/p"},
		{map[string]string{"type": "none", "o": "ro", "device": "/src/p"}, "/src/p"},
		{map[string]string{"type": "none", "device": "/src/p"}, "/src/p"},
		{map[string]string{"type": "none", "o": "bind", "device": "/src/p "}, "/src/p "}, // bound as written
		{map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,ro,rw"}, ""},
		{map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m,bind"}, "/tmpfs"},
	}
	for _, tt := range tests {
		if got := bindDevice(tt.opts); got != tt.want {
			t.Errorf("bindDevice(%v) = %q, want %q", tt.opts, got, tt.want)
		}
	}
}

// Whatever the mount type, what a container can write of the host is
// counted: read-write binds and read-write mounts of volumes that bind a
// directory; read-only ones, plain named volumes and tmpfs volumes are not.
// A volume's o is read as the engine reads it: "bind,ro,rw" is read-write
// (the container writes through it), "bind,rw,ro" read-only (it cannot).
// The policy refuses both spellings (SW-VOL-001); an operator who allows
// that rule, or a volume made before the rule, still has them counted.
func TestWritableBindsCountEveryWritableMount(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		".env":     "SLIPWAY_TEST_DIR=" + dir + "\n",
		"rw/.keep": "", "ro/.keep": "", "vol/.keep": "", "volro/.keep": "", "volmnt/.keep": "",
		"volrorw/.keep": "", "volrwro/.keep": "",
		"compose.yaml": `services:
  app:
    image: ` + dockertest.BusyboxImage + `
    init: true
    stop_grace_period: 1s
    command: ["sh", "-c", "touch /boundrorw/written && ! touch /boundrwro/written 2>/dev/null && exec sleep 3600"]
    healthcheck:
      test: ["CMD", "test", "-e", "/boundrorw/written"]
      interval: 200ms
    volumes:
      - ./rw:/rw
      - ./ro:/ro:ro
      - bound:/bound
      - boundro:/boundro
      - boundmnt:/boundmnt:ro
      - boundrorw:/boundrorw
      - boundrwro:/boundrwro
      - data:/data
      - scratch:/scratch
volumes:
  bound:
    driver: local
    driver_opts: {type: none, o: bind, device: ./vol}
  boundro:
    driver: local
    driver_opts: {type: none, o: "bind,ro", device: "${SLIPWAY_TEST_DIR}/volro"}
  boundmnt:
    driver: local
    driver_opts: {type: none, o: bind, device: ./volmnt}
  boundrorw:
    driver: local
    driver_opts: {type: none, o: "bind,ro,rw", device: "${SLIPWAY_TEST_DIR}/volrorw"}
  boundrwro:
    driver: local
    driver_opts: {type: none, o: "bind,rw,ro", device: "${SLIPWAY_TEST_DIR}/volrwro"}
  data: {}
  scratch:
    driver_opts: {type: tmpfs, device: tmpfs}
`,
	})
	src := newSource(t, e, cli, dir)
	p, err := Load(context.Background(), src, LoadOptions{
		Limits: config.Defaults().Limits,
		Policy: config.Policy{Allow: []string{policy.VolumeHostMount}},
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	var log bytes.Buffer
	if _, err := e.Up(context.Background(), p, UpOptions{BuildLog: &log}); err != nil {
		t.Fatalf("up %s: %v\nlog:\n%s", p.Name, err, log.String())
	}
	if _, err := os.Stat(filepath.Join(dir, "volrorw", "written")); err != nil {
		t.Errorf("the container did not write through o=bind,ro,rw: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "volrwro", "written")); err == nil {
		t.Errorf("the container wrote through o=bind,rw,ro")
	}
	got, err := e.WritableBinds(context.Background(), p.Name)
	if err != nil {
		t.Fatal(err)
	}
	// Compare with symlinks followed: the loader may resolve the checkout's path.
	var resolved []string
	for _, g := range got {
		r, err := filepath.EvalSymlinks(g)
		if err != nil {
			t.Fatal(err)
		}
		resolved = append(resolved, r)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(real, "rw"), filepath.Join(real, "vol"), filepath.Join(real, "volrorw")}; !slices.Equal(resolved, want) {
		t.Errorf("WritableBinds = %q, want %q", got, want)
	}
}

func TestStaleBind(t *testing.T) {
	bindTo := func(dir string) map[string]string {
		return map[string]string{"type": "none", "o": "bind", "device": dir}
	}
	tests := []struct {
		name             string
		current, planned map[string]string
		want             bool
	}{
		{"same copy", bindTo("/src/p/a.d1"), bindTo("/src/p/a.d1"), false},
		{"a new copy", bindTo("/src/p/a.d1"), bindTo("/src/p/a.d2"), true},
		{"a new SHA", bindTo("/src/p/a.d1/data"), bindTo("/src/p/b.d1/data"), true},
		{"now read-only", bindTo("/src/p/a.d1"), map[string]string{"type": "none", "o": "bind,ro", "device": "/src/p/a.d1"}, true},
		{"a data volume", nil, nil, false},
		{"a tmpfs whose size changed keeps its data", map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}, map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=2m"}, false},
		{"a bind no longer", bindTo("/src/p/a.d1"), nil, true},
	}
	for _, tt := range tests {
		if got := staleBind(tt.current, tt.planned); got != tt.want {
			t.Errorf("%s: staleBind = %v, want %v", tt.name, got, tt.want)
		}
	}
}
