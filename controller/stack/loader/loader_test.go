package loader

import (
	"context"
	"errors"
	"fmt"
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
	got, err := newLoader(t, Options{}).Load(context.Background(), req)
	if err != nil {
		t.Fatalf("confined load: %v", err)
	}
	wantProject, err := decodeProject(mustEncode(t, want))
	if err != nil {
		t.Fatal(err)
	}
	_ = wantProject
	gotJSON, _ := got.MarshalJSON()
	wantJSON := []byte(want.Project)
	if string(gotJSON) != string(wantJSON) {
		t.Errorf("the confined loader's project differs from compose-go's:\n got  %s\n want %s", gotJSON, wantJSON)
	}
	if _, ok := got.Extensions["x-slipway"]; !ok {
		t.Errorf("x-slipway extension lost on the way: %v", got.Extensions)
	}
	if got.Services["web"].Environment["FROM_FILE"] == nil {
		t.Errorf("env_file inside the checkout was not read: %v", got.Services["web"].Environment)
	}
}

// TestConfinementRefusesHostFiles asks the loader to read /etc/hostname
// through every indirection compose-go follows, spelled the ways a hostile
// file hides a path. There is no pre-load check here: only the kernel
// stands between compose-go and the file.
func TestConfinementRefusesHostFiles(t *testing.T) {
	requireLandlock(t)
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
	l := newLoader(t, Options{})
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			root := checkout(t, files)
			p, err := l.Load(context.Background(), request(root))
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
		})
	}
}

// TestConfinementEndsRunawayLoads: a file that never ends and one that is
// too large end in an error, and a load beside them still succeeds.
func TestConfinementEndsRunawayLoads(t *testing.T) {
	requireLandlock(t)
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
	hang := newLoader(t, Options{Timeout: 3 * time.Second})
	small := newLoader(t, Options{Memory: 256 << 20})

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
	go run("fifo", hang, fifo)
	go run("zero", small, zero)
	go run("huge", small, huge)
	// While those run, the loader keeps serving other projects.
	if _, err := newLoader(t, Options{}).Load(context.Background(), request(benign)); err != nil {
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
	requireLandlock(t)
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
	cmd.Env = []string{probeEnv + "=" + root, probeAddrEnv + "=" + ln.Addr().String()}
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
		"read-inside":  "ok",
		"read-outside": "refused",
		"write-inside": "refused",
		"dial":         "refused",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("confined process could do:\n got  %v\n want %v", got, want)
	}
}

const (
	probeEnv     = "SLIPWAY_LOADER_TEST_PROBE"
	probeAddrEnv = "SLIPWAY_LOADER_TEST_PROBE_ADDR"
)

func TestMain(m *testing.M) {
	if root := os.Getenv(probeEnv); root != "" {
		probe(root, os.Getenv(probeAddrEnv))
		return
	}
	os.Exit(m.Run())
}

// probe confines this process to root and reports what it can still do.
func probe(root, addr string) {
	if _, err := confine(root); err != nil {
		fmt.Println("confine=" + err.Error())
		os.Exit(1)
	}
	result := func(err error) string {
		if err != nil {
			return "refused"
		}
		return "ok"
	}
	_, err := os.ReadFile(filepath.Join(root, "inside.txt"))
	fmt.Println("read-inside=" + result(err))
	_, err = os.ReadFile("/etc/hostname")
	fmt.Println("read-outside=" + result(err))
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
	l := newLoader(t, Options{})
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
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
			if gotJSON, _ := got.MarshalJSON(); string(gotJSON) != string(want.Project) {
				t.Errorf("differs:\n got  %s\n want %s", gotJSON, want.Project)
			}
		})
	}
}

// BenchmarkLoad measures what confinement costs a deploy: the same real
// project loaded in process and in a confined child.
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
	b.Run("confined", func(b *testing.B) {
		l, err := New(Options{})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := l.Load(context.Background(), req); err != nil {
				b.Fatal(err)
			}
		}
	})
}
