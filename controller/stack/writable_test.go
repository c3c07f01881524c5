package stack

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"github.com/slipwayhq/slipway/internal/dockertest"
)

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
func TestWritableBindsCountEveryWritableMount(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, map[string]string{
		".env":     "SLIPWAY_TEST_DIR=" + dir + "\n",
		"rw/.keep": "", "ro/.keep": "", "vol/.keep": "", "volro/.keep": "", "volmnt/.keep": "",
		"compose.yaml": `services:
  app:
    image: ` + dockertest.BusyboxImage + `
    init: true
    stop_grace_period: 1s
    command: ["sleep", "3600"]
    volumes:
      - ./rw:/rw
      - ./ro:/ro:ro
      - bound:/bound
      - boundro:/boundro
      - boundmnt:/boundmnt:ro
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
  data: {}
  scratch:
    driver_opts: {type: tmpfs, device: tmpfs}
`,
	})
	p, _ := up(t, e, newSource(t, e, cli, dir))
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
	if want := []string{filepath.Join(real, "rw"), filepath.Join(real, "vol")}; !slices.Equal(resolved, want) {
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
