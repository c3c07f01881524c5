package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// The child is this test binary (see init in child.go).

func newLoader(t *testing.T, opts Options) *Loader {
	t.Helper()
	l, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// checkout writes files (name → content) into a new directory and returns
// its real path. A content starting with "->" makes a symlink to the rest.
func checkout(t *testing.T, files map[string]string) string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "->"); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func request(root string, files ...string) Request {
	if len(files) == 0 {
		files = []string{"compose.yaml"}
	}
	abs := make([]string, len(files))
	for i, f := range files {
		abs[i] = filepath.Join(root, f)
	}
	return Request{Root: root, Name: "acme-shop-pr-1", Files: abs, Env: map[string]string{"SLIPWAY_PR": "1"}}
}

func requireLandlock(t *testing.T) {
	t.Helper()
	if KernelConfinement() == 0 {
		// The development and CI machines have Landlock: a missing one is
		// a broken environment there, not a reason to pass silently.
		t.Fatal("this kernel has no Landlock; the confinement tests need it")
	}
}

// methods are the confinement methods every confinement test runs with.
var methods = []Method{MethodLandlock, MethodNamespace}

// requireMethod fails the test when this machine cannot confine by m. CI
// (root, or user namespaces allowed) has both; a developer's machine with
// user namespaces disabled skips the namespace cases, saying so.
func requireMethod(t *testing.T, m Method) {
	t.Helper()
	switch m {
	case MethodLandlock:
		requireLandlock(t)
	case MethodNamespace:
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "-test.run=^$")
		if err := isolate(cmd, true); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Run(); err != nil {
			if os.Getenv("CI") == "" && namespacesRefused(err) {
				t.Skipf("this kernel refuses user namespaces (%v); the namespace cases need them", err)
			}
			t.Fatalf("start a process in new namespaces: %v", err)
		}
	}
}

// forEachMethod runs f as one subtest per confinement method.
func forEachMethod(t *testing.T, f func(t *testing.T, m Method)) {
	for _, m := range methods {
		t.Run(string(m), func(t *testing.T) {
			requireMethod(t, m)
			f(t, m)
		})
	}
}

// TestChildLoadsWhatCompseGoLoads compares the project the child resolves
// with the one compose-go resolves in this process, on a file using most of
// the model: what crosses the pipe is the whole model.
func TestChildLoadsWhatComposeGoLoads(t *testing.T) {
	root := checkout(t, map[string]string{
		"compose.yaml": `
x-common: &common
  restart: unless-stopped
  labels: {team: shop}
x-slipway:
  expose: [{service: web, port: 8080}]
  env: {FEATURE: "on"}
services:
  web:
    <<: *common
    build:
      context: ./web
      args: {VERSION: "${SLIPWAY_PR}"}
      target: prod
    ports: ["8080:8080"]
    environment: [A=1, B]
    env_file: [web.env]
    depends_on:
      db: {condition: service_healthy}
    healthcheck:
      test: ["CMD", "wget", "-q", "http://localhost:8080"]
      interval: 1s
      start_period: 2s
    deploy:
      resources: {limits: {memory: 256m, cpus: "0.5"}}
    ulimits: {nofile: {soft: 1024, hard: 2048}}
    volumes:
      - ./conf:/etc/conf:ro
      - data:/data
    extra_hosts: ["api.local=10.0.0.1"]
    configs: [{source: app, target: /app.conf, mode: 0440}]
    secrets: [token]
  db:
    image: postgres:16
    volumes: [{type: volume, source: data, target: /var/lib/postgresql/data}]
    healthcheck: {test: "pg_isready", interval: 500ms}
  extra:
    extends: {file: base.yaml, service: base}
networks:
  back: {driver: bridge, internal: true}
volumes:
  data: {}
configs:
  app: {file: ./app.conf}
secrets:
  token: {file: ./token.txt}
`,
		"base.yaml":  "services:\n  base:\n    image: busybox\n    command: [sh, -c, 'echo $$HOME']\n",
		"web.env":    "FROM_FILE=yes\n",
		"app.conf":   "x\n",
		"token.txt":  "t\n",
		".env":       "DOTENV=1\n",
		"web/x":      "",
		"conf/a.cfg": "",
	})
	req := request(root)
	want, err := loadCompose(context.Background(), req)
	if err != nil {
		t.Fatalf("load in process: %v", err)
	}
	if _, err := decodeProject(mustEncode(t, want)); err != nil {
		t.Fatal(err)
	}
	forEachMethod(t, func(t *testing.T, m Method) {
		got, err := newLoader(t, Options{Method: m}).Load(context.Background(), req)
		if err != nil {
			t.Fatalf("confined load: %v", err)
		}
		sameProject(t, got, want)
		if _, ok := got.Extensions["x-slipway"]; !ok {
			t.Errorf("x-slipway extension lost on the way: %v", got.Extensions)
		}
		if got.Services["web"].Environment["FROM_FILE"] == nil {
			t.Errorf("env_file inside the checkout was not read: %v", got.Services["web"].Environment)
		}
	})
}

// sameProject compares what the child resolved with what compose-go
// resolved in this process.
func sameProject(t *testing.T, got *types.Project, want *projectModel) {
	t.Helper()
	gotJSON, _ := got.MarshalJSON()
	wantJSON := []byte(want.Project)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("the confined loader's project differs from compose-go's:\n got  %s\n want %s", gotJSON, wantJSON)
	}
}

// TestConfinementRefusesHostFiles asks the loader to read /etc/hostname
// through every indirection compose-go follows, spelled the ways a hostile
// file hides a path. There is no pre-load check here: only the kernel
// stands between compose-go and the file.
func TestConfinementRefusesHostFiles(t *testing.T) {
	secret, err := os.ReadFile("/etc/hostname")
	if err != nil || len(strings.TrimSpace(string(secret))) == 0 {
		t.Fatalf("need a readable, non-empty /etc/hostname: %v", err)
	}
	const svc = "services:\n  web:\n    image: busybox\n"
	cases := map[string]map[string]string{
		"env_file":             {"compose.yaml": svc + "    env_file: /etc/hostname\n"},
		"env_file dotdot":      {"compose.yaml": svc + "    env_file: ../../../../../../etc/hostname\n"},
		"env_file binary tag":  {"compose.yaml": svc + "    env_file: !!binary L2V0Yy9ob3N0bmFtZQ==\n"},
		"env_file symlink":     {"compose.yaml": svc + "    env_file: host.env\n", "host.env": "->/etc/hostname"},
		"env_file dir symlink": {"compose.yaml": svc + "    env_file: etc/hostname\n", "etc": "->/etc"},
		"env_file interpolated": {
			"compose.yaml": svc + "    env_file: ${SLIPWAY_PR:+/etc/hostname}\n"},
		"label_file": {"compose.yaml": svc + "    label_file: /etc/hostname\n"},
		"dotenv symlink": {
			"compose.yaml": svc + "    environment: [X=$X]\n", ".env": "->/etc/hostname"},
		"include": {"compose.yaml": "include: [/etc/hostname]\n" + svc},
		"include binary key": {
			"compose.yaml": "!!binary aW5jbHVkZQ==: [/etc/hostname]\n" + svc},
		"include env_file": {
			"compose.yaml": "include:\n  - path: inc.yaml\n    env_file: /etc/hostname\n" + svc,
			"inc.yaml":     "services:\n  other:\n    image: busybox\n"},
		"extends file": {
			"compose.yaml": "services:\n  web:\n    extends: {file: /etc/hostname, service: x}\n"},
		"extends merge order": {
			"compose.yaml": "x-out: &out {file: /etc/hostname, service: x}\nx-in: &in {file: base.yaml, service: x}\nservices:\n  web:\n    extends:\n      <<: [*out, *in]\n",
			"base.yaml":    "services:\n  x:\n    image: busybox\n"},
		"extends override tag": {
			"compose.yaml": "services:\n  web:\n    extends: !override {file: /etc/hostname, service: x}\n"},
	}
	forEachMethod(t, func(t *testing.T, m Method) {
		l := newLoader(t, Options{Method: m})
		for name, files := range cases {
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				root := checkout(t, files)
				p, err := l.Load(context.Background(), request(root))
				if err == nil && m == MethodNamespace && name == "dotenv symlink" {
					// compose-go skips a .env that is not there, and in
					// the namespace the host's file is not: nothing read.
					if b, _ := p.MarshalJSON(); strings.Contains(string(b), strings.TrimSpace(string(secret))) {
						t.Fatalf("the project quotes the host file: %s", b)
					}
					return
				}
				if err == nil {
					t.Fatalf("loaded: %+v", p.Services)
				}
				if strings.Contains(err.Error(), strings.TrimSpace(string(secret))) {
					t.Fatalf("the error quotes the host file: %v", err)
				}
				var le *Error
				if !errors.As(err, &le) || !le.Denied {
					t.Fatalf("want a read refused by the kernel, got %v", err)
				}
				if !strings.Contains(le.File, "/etc/hostname") {
					t.Errorf("error names %q, want the host file", le.File)
				}
				if want := refusal(confinedBy(m)); !strings.Contains(le.Reason, want) {
					t.Errorf("reason %q: want it to say %q", le.Reason, want)
				}
			})
		}
	})
}

// confinedBy is what a child confined by m reports (without the ABI).
func confinedBy(m Method) string {
	if m == MethodNamespace {
		return confinedNamespace
	}
	return "landlock"
}

// TestNamespaceTellsMissingFromRefused: in the mount namespace a file the
// checkout lacks is reported as missing, with compose-go's message, and
// only a file outside the checkout as refused.
func TestNamespaceTellsMissingFromRefused(t *testing.T) {
	requireMethod(t, MethodNamespace)
	root := checkout(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n    env_file: missing.env\n"})
	_, err := newLoader(t, Options{Method: MethodNamespace}).Load(context.Background(), request(root))
	var le *Error
	if !errors.As(err, &le) || le.Denied || !strings.Contains(err.Error(), "missing.env") {
		t.Errorf("want compose-go's error about the missing env file, got %v", err)
	}
}

// TestConfinementEndsRunawayLoads: a file that never ends and one that is
// too large end in an error, and a load beside them still succeeds.
func TestConfinementEndsRunawayLoads(t *testing.T) {
	forEachMethod(t, func(t *testing.T, m Method) {
		t.Parallel()
		testRunawayLoads(t, Options{Method: m})
	})
}

func testRunawayLoads(t *testing.T, opts Options) {
	benign := checkout(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n"})

	fifo := checkout(t, map[string]string{"compose.yaml": "include: [pipe.yaml]\nservices:\n  web:\n    image: busybox\n"})
	if err := syscall.Mkfifo(filepath.Join(fifo, "pipe.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	zero := checkout(t, map[string]string{
		"compose.yaml": "services:\n  web:\n    image: busybox\n    env_file: zero.env\n",
		"zero.env":     "->/dev/zero",
	})
	huge := checkout(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n    env_file: big.env\n"})
	f, err := os.Create(filepath.Join(huge, "big.env"))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(2 << 30); err != nil { // sparse: no disk used
		t.Fatal(err)
	}
	f.Close()

	// The FIFO's writer never comes: only the timeout ends that load. It is
	// short so the test is quick; nothing else here depends on it.
	hang, small := opts, opts
	hang.Timeout = 3 * time.Second
	small.Memory = 256 << 20
	// Only the memory limit may end the 2 GiB load: on a loaded machine,
	// under the race detector, filling 256 MiB took longer than the
	// default 20 s, and the timeout ended it first.
	small.Timeout = 10 * time.Minute

	var wg sync.WaitGroup
	results := map[string]error{}
	var mu sync.Mutex
	run := func(name string, l *Loader, root string) {
		defer wg.Done()
		_, err := l.Load(context.Background(), request(root))
		mu.Lock()
		results[name] = err
		mu.Unlock()
	}
	wg.Add(3)
	go run("fifo", newLoader(t, hang), fifo)
	go run("zero", newLoader(t, small), zero)
	go run("huge", newLoader(t, small), huge)
	// While those run, the loader keeps serving other projects.
	if _, err := newLoader(t, opts).Load(context.Background(), request(benign)); err != nil {
		t.Errorf("benign load beside hostile ones: %v", err)
	}
	wg.Wait()

	var le *Error
	if err := results["fifo"]; !errors.As(err, &le) || !strings.Contains(err.Error(), "took longer") {
		t.Errorf("fifo: want a timeout error, got %v", err)
	}
	if err := results["zero"]; !errors.As(err, &le) || !le.Denied || !strings.Contains(err.Error(), "/dev/zero") {
		t.Errorf("/dev/zero: want a refused read of /dev/zero, got %v", err)
	}
	if err := results["huge"]; !errors.As(err, &le) || !strings.Contains(err.Error(), "memory") {
		t.Errorf("2 GiB env file: want a memory error, got %v", err)
	}
}

// TestConfineAllowsOnlyReadingTheCheckout runs confine in a child of this
// test binary (see TestMain) and has it try what a hijacked loader would:
// read inside and outside the checkout, write, and connect over TCP.
func TestConfineAllowsOnlyReadingTheCheckout(t *testing.T) {
	forEachMethod(t, testConfineAllowsOnlyReadingTheCheckout)
}

func testConfineAllowsOnlyReadingTheCheckout(t *testing.T, m Method) {
	root := checkout(t, map[string]string{"inside.txt": "ok"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(childEnviron()[1:], probeEnv+"="+root, probeAddrEnv+"="+ln.Addr().String(), probeMethodEnv+"="+string(m))
	if m == MethodNamespace {
		if err := isolate(cmd, true); err != nil {
			t.Fatal(err)
		}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			got[k] = v
		}
	}
	want := map[string]string{
		"confined":     confinedBy(m),
		"read-inside":  "ok",
		"read-outside": "refused",
		"read-environ": "refused",
		"list-root":    "refused",
		"write-inside": "refused",
		"dial":         "refused",
	}
	if m == MethodNamespace {
		// The new root holds the checkout's path and nothing else.
		want["list-root"] = strings.Split(root, "/")[1]
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("confined process could do:\n got  %v\n want %v", got, want)
	}
}

const (
	probeEnv       = "SLIPWAY_LOADER_TEST_PROBE"
	probeAddrEnv   = "SLIPWAY_LOADER_TEST_PROBE_ADDR"
	probeMethodEnv = "SLIPWAY_LOADER_TEST_PROBE_METHOD"
)

func TestMain(m *testing.M) {
	if root := os.Getenv(probeEnv); root != "" {
		probe(root, os.Getenv(probeAddrEnv), Method(os.Getenv(probeMethodEnv)))
		return
	}
	os.Exit(m.Run())
}

// probe confines this process to root by m and reports what it can still
// do.
func probe(root, addr string, m Method) {
	confined, err := confineBy(m, root)
	if err != nil {
		fmt.Println("confine=" + err.Error())
		os.Exit(1)
	}
	confined, _, _ = strings.Cut(confined, " ABI")
	fmt.Println("confined=" + confined)
	result := func(err error) string {
		if err != nil {
			return "refused"
		}
		return "ok"
	}
	_, err = os.ReadFile(filepath.Join(root, "inside.txt"))
	fmt.Println("read-inside=" + result(err))
	_, err = os.ReadFile("/etc/hostname")
	fmt.Println("read-outside=" + result(err))
	_, err = os.ReadFile("/proc/self/environ")
	fmt.Println("read-environ=" + result(err))
	if entries, err := os.ReadDir("/"); err != nil {
		fmt.Println("list-root=refused")
	} else {
		names := make([]string, len(entries))
		for i, e := range entries {
			names[i] = e.Name()
		}
		fmt.Println("list-root=" + strings.Join(names, ","))
	}
	err = os.WriteFile(filepath.Join(root, "written.txt"), []byte("x"), 0o644)
	fmt.Println("write-inside=" + result(err))
	c, err := net.Dial("tcp", addr)
	if err == nil {
		c.Close()
	}
	fmt.Println("dial=" + result(err))
}

func mustEncode(t *testing.T, m *projectModel) []byte {
	t.Helper()
	b, err := encodeProject(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChildLoadsTheBenignCorpus: real-world projects come back from the
// child exactly as compose-go loads them in process.
func TestChildLoadsTheBenignCorpus(t *testing.T) {
	dirs, err := filepath.Glob("../policy/testdata/benign/*")
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no benign corpus: %v", err)
	}
	forEachMethod(t, func(t *testing.T, m Method) {
		testBenignCorpus(t, newLoader(t, Options{Method: m}), dirs)
	})
}

func testBenignCorpus(t *testing.T, l *Loader, dirs []string) {
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			t.Parallel()
			root, err := filepath.Abs(dir)
			if err == nil {
				root, err = filepath.EvalSymlinks(root)
			}
			if err != nil {
				t.Fatal(err)
			}
			var files []string
			for _, name := range []string{"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml"} {
				if _, err := os.Stat(filepath.Join(root, name)); err == nil {
					files = append(files, name)
					break
				}
			}
			req := request(root, files...)
			want, err := loadCompose(context.Background(), req)
			if err != nil {
				t.Fatalf("load in process: %v", err)
			}
			got, err := l.Load(context.Background(), req)
			if err != nil {
				t.Fatalf("confined load: %v", err)
			}
			sameProject(t, got, want)
		})
	}
}

// TestAutoFallsBackWhereTheKernelRefuses acts out a kernel without
// Landlock: MethodAuto confines in a mount namespace, made without a user
// namespace by a root controller where user namespaces are refused; where
// the kernel refuses the namespaces altogether, it loads unconfined with a
// warning, and ConfineRequired refuses to load.
func TestAutoFallsBackWhereTheKernelRefuses(t *testing.T) {
	requireMethod(t, MethodNamespace)
	secret, err := os.ReadFile("/etc/hostname")
	if err != nil {
		t.Fatal(err)
	}
	root := checkout(t, map[string]string{"compose.yaml": "services:\n  web:\n    image: busybox\n    env_file: /etc/hostname\n"})
	noLandlock := func() int { return 0 }
	// A uid map of no uid: the kernel refuses it (EINVAL), as it refuses
	// a user namespace where they are disabled.
	refuseUserNS := func(cmd *exec.Cmd, userNS bool) error {
		if err := isolate(cmd, userNS); err != nil || !userNS {
			return err
		}
		cmd.SysProcAttr.UidMappings[0].Size = 0
		return nil
	}
	refuseAll := func(cmd *exec.Cmd, userNS bool) error {
		if !userNS {
			return fmt.Errorf("acting out a kernel that refuses namespaces: %w", syscall.EPERM)
		}
		return refuseUserNS(cmd, userNS)
	}
	load := func(opts Options, isolate func(*exec.Cmd, bool) error) (string, error) {
		var log strings.Builder
		opts.Log = slog.New(slog.NewTextHandler(&log, nil))
		l := newLoader(t, opts)
		l.landlockABI, l.isolate = noLandlock, isolate
		_, err := l.Load(context.Background(), request(root))
		if err != nil && strings.Contains(err.Error(), strings.TrimSpace(string(secret))) {
			t.Errorf("the error quotes the host file: %v", err)
		}
		return log.String(), err
	}
	confined := func(what string, log string, err error) {
		t.Helper()
		var le *Error
		if !errors.As(err, &le) || !le.Denied || !strings.Contains(le.Reason, confinedNamespace) || log != "" {
			t.Errorf("%s: want a read refused in the mount namespace and no warning, got %v; log %q", what, err, log)
		}
	}
	unconfined := func(what string, log string, err error) {
		t.Helper()
		if err != nil || !strings.Contains(log, "without kernel confinement") || !strings.Contains(log, "invalid argument") {
			t.Errorf("%s: want an unconfined load and a warning saying why, got %v; log %q", what, err, log)
		}
	}

	auto := Options{Confinement: ConfineAuto}
	log, err := load(auto, isolate)
	confined("auto without Landlock", log, err)
	log, err = load(auto, refuseUserNS)
	if os.Geteuid() == 0 {
		confined("auto, root, without Landlock or user namespaces", log, err)
	} else {
		unconfined("auto, not root, without Landlock or user namespaces", log, err)
	}
	log, err = load(auto, refuseAll)
	unconfined("auto without Landlock or namespaces", log, err)
	_, err = load(Options{}, refuseAll)
	if !errors.As(err, new(*Error)) || !strings.Contains(err.Error(), "loader.confinement: required") {
		t.Errorf("the default without Landlock or namespaces: want a refusal (fail closed), got %v", err)
	}
	var le *Error
	_, err = load(Options{Confinement: ConfineRequired}, refuseAll)
	if !errors.As(err, &le) || le.Denied || !strings.Contains(err.Error(), "loader.confinement: required") {
		t.Errorf("required without Landlock or namespaces: want a refusal, got %v", err)
	}
	_, err = load(Options{Method: MethodNamespace}, refuseAll)
	if !errors.As(err, &le) || le.Denied || !strings.Contains(err.Error(), "confine the loader in a mount namespace") {
		t.Errorf("namespace method the kernel refuses: want an error and no fallback, got %v", err)
	}
}

// TestNamespaceConfinementProbe: the doctor's probe passes where the
// namespace method works, and names what failed where it cannot.
func TestNamespaceConfinementProbe(t *testing.T) {
	requireMethod(t, MethodNamespace)
	if err := NamespaceConfinement(context.Background(), ""); err != nil {
		t.Errorf("probe: %v", err)
	}
	if err := NamespaceConfinement(context.Background(), "/nonexistent/slipway"); err == nil || !strings.Contains(err.Error(), "/nonexistent/slipway") {
		t.Errorf("probe with no child to start: want an error naming it, got %v", err)
	}
}

// BenchmarkLoad measures what confinement costs a deploy: the same real
// project loaded in process, and in a child unconfined and confined by
// each method.
//
//	go test ./controller/stack/loader -run '^$' -bench Load -benchtime 20x
func BenchmarkLoad(b *testing.B) {
	root, err := filepath.Abs("../policy/testdata/benign/webshop")
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		b.Fatal(err)
	}
	req := request(root)
	b.Run("in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := loadCompose(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, m := range append([]Method{methodNone}, methods...) {
		b.Run("child-"+string(m), func(b *testing.B) {
			l, err := New(Options{})
			if err != nil {
				b.Fatal(err)
			}
			l.opts.Method = m // methodNone: a child confined by nothing
			for b.Loop() {
				if _, err := l.Load(context.Background(), req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
