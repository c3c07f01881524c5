package policy

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

func TestSubpathProblem(t *testing.T) {
	for sub, bad := range map[string]bool{
		"":                 false,
		"data":             false,
		"site/uploads":     false,
		"a..b/c":           false,
		"..":               true,
		"../../..":         true,
		"data/../../other": true,
		`data\..\..`:       true,
		"/etc":             true,
	} {
		if got := subpathProblem(sub) != ""; got != bad {
			t.Errorf("subpathProblem(%q) = %q, want a problem: %v", sub, subpathProblem(sub), bad)
		}
	}
}

// TestBindSourceCheckedAsMounted pins what the engine receives for a
// relative bind source through a symlink and "..": compose-go joins it to
// the working directory (filepath.Join cleans), so ./ssl/.. reaches the
// engine as the checkout itself — lexically and to the kernel — and that
// string is what the policy checks and spec.go mounts. (Written as an
// absolute path it stays uncleaned and is refused: the hostile case
// mnt-symlink-dotdot-absolute.)
func TestBindSourceCheckedAsMounted(t *testing.T) {
	root := filepath.Join(t.TempDir(), "checkout")
	writeFile(t, filepath.Join(root, "compose.yaml"), `services:
  short:
    image: busybox
    volumes: ["./ssl/..:/short"]
  long:
    image: busybox
    volumes:
      - {type: bind, source: ./ssl/.., target: /long}
`)
	if err := os.Symlink("/etc/ssl", filepath.Join(root, "ssl")); err != nil {
		t.Fatal(err)
	}
	project, err := loadProject(t, root, []string{filepath.Join(root, "compose.yaml")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"short", "long"} {
		if got := project.Services[name].Volumes[0].Source; got != root {
			t.Errorf("%s: compose-go hands the engine %q, want the checkout %q", name, got, root)
		}
	}
	for _, v := range Check(project, root, Options{}) {
		t.Errorf("the checkout itself is refused: %s", v)
	}
}

// The engine reads a bind volume's o with moby/sys/mount: split on ",",
// each token matched exactly, the last of ro and rw winning, anything else
// handed to the kernel as data (which a bind ignores). The policy accepts
// only the spellings whose reading is beyond dispute.
func TestBindVolumeOpts(t *testing.T) {
	tests := []struct {
		o            string
		readOnly, ok bool
	}{
		{"bind", false, true},
		{"rbind", false, true},
		{"bind,rw", false, true},
		{"rbind,rw", false, true},
		{"bind,ro", true, true},
		{"rbind,ro", true, true},
		{"bind,ro,rw", false, false}, // rw last: read-write to the engine
		{"bind,rw,ro", false, false}, // read-only to the engine, but not canonical
		{"bind, ro", false, false},   // " ro" is kernel data: read-write
		{"bind ,ro", false, false},   // "bind " is no flag: no bind at all
		{" bind", false, false},
		{"bind,ro ", false, false},
		{"ro,bind", false, false},
		{"BIND,RO", false, false},
		{"bind,RO", false, false},
		{"Bind", false, false},
		{"bind,,ro", false, false},
		{"bind,ro,", false, false},
		{"bind,ro,ro", false, false},
		{"bind,bind,ro", false, false},
		{"bind,ro,remount", false, false},
		{"bind,ro,shared", false, false},
		{"bind,ro,noexec", false, false},
		{"bind\t,ro", false, false},
		{"", false, false},
		{"ro", false, false},
	}
	for _, tt := range tests {
		ro, ok := bindVolumeOpts(tt.o)
		if ro != tt.readOnly || ok != tt.ok {
			t.Errorf("bindVolumeOpts(%q) = %v, %v; want %v, %v", tt.o, ro, ok, tt.readOnly, tt.ok)
		}
	}
}

// A bind volume of the checkout, and a service mounting a directory inside
// it read-only: only the canonical read-only spellings pass; anything else
// is refused as SW-VOL-001 and, read as the read-write bind it may be,
// reported as SW-MNT-006 too. Other volumes are held to the same o.
func TestBindVolumeOptsChecked(t *testing.T) {
	root := filepath.Join(t.TempDir(), "checkout")
	if err := os.MkdirAll(filepath.Join(root, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", filepath.Join(root, "sub ")); err != nil {
		t.Fatal(err)
	}
	check := func(opts map[string]string) []string {
		p := &types.Project{
			Name:       testProject,
			WorkingDir: root,
			Services: types.Services{
				"cache": {Name: "cache", ContainerSpec: types.ContainerSpec{Image: "busybox",
					Volumes: []types.ServiceVolumeConfig{{Type: types.VolumeTypeVolume, Source: "data", Target: "/data"}}}},
				"app": {Name: "app", ContainerSpec: types.ContainerSpec{Image: "busybox",
					Volumes: []types.ServiceVolumeConfig{{Type: types.VolumeTypeBind, Source: filepath.Join(root, "sub"), Target: "/srv", ReadOnly: true}}}},
			},
			Volumes: types.Volumes{"data": {Name: testProject + "_data", Driver: "local", DriverOpts: opts}},
		}
		return rulesOf(Check(p, root, Options{}))
	}
	refused := []string{VolumeHostMount, BindUnderWritable}
	tests := []struct {
		opts map[string]string
		want []string
	}{
		{map[string]string{"type": "none", "o": "bind,ro", "device": root}, nil},
		{map[string]string{"type": "none", "o": "rbind,ro", "device": root}, nil},
		{map[string]string{"type": "none", "o": "bind", "device": root}, []string{BindUnderWritable}},
		{map[string]string{"type": "none", "o": "bind,rw", "device": root}, []string{BindUnderWritable}},
		{map[string]string{"type": "none", "o": "bind,ro,rw", "device": root}, refused},
		{map[string]string{"type": "none", "o": "bind, ro", "device": root}, refused},
		{map[string]string{"type": "none", "o": "bind,ro ", "device": root}, refused},
		{map[string]string{"type": "none", "o": "ro,bind", "device": root}, refused},
		{map[string]string{"type": "none", "o": "bind,rw,ro", "device": root}, refused},
		{map[string]string{"type": "none", "o": "BIND,RO", "device": root}, refused},
		{map[string]string{"type": "none", "o": "RO", "device": root}, []string{VolumeHostMount}},
		{map[string]string{"type": "none", "device": root}, []string{VolumeHostMount}},
		{map[string]string{"type": "tmpfs", "o": "size=1m,ro,rw", "device": "tmpfs"}, nil},
		{map[string]string{"type": "tmpfs", "o": "size=1m, bind", "device": "tmpfs"}, []string{VolumeHostMount, VolumeHostMount}},
		// The device as written, untrimmed: "sub " is a symlink to /etc.
		{map[string]string{"type": "none", "o": "bind,ro", "device": root + "/sub "}, []string{VolumeHostMount}},
	}
	for _, tt := range tests {
		got := check(tt.opts)
		slices.Sort(got)
		want := slices.Sorted(slices.Values(tt.want))
		if !slices.Equal(got, want) {
			t.Errorf("driver_opts %q: rules %v, want %v", tt.opts, got, want)
		}
	}
}
