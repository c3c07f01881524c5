package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/container"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

func TestJudgeEngine(t *testing.T) {
	v := types.Version{Version: "20.10.24", APIVersion: "1.41", Os: "linux", Arch: "amd64"}
	tests := []struct {
		name       string
		facts      engineFacts
		want       checkStatus
		detail     string
		fixMention string
	}{
		{"healthy", engineFacts{Host: "unix:///var/run/docker.sock", Version: v}, statusOK, "Docker Engine 20.10.24 (API 1.41", ""},
		{"newer engine", engineFacts{Version: types.Version{Version: "28.1.0", APIVersion: "1.49"}}, statusOK, "API 1.49", ""},
		{"old engine", engineFacts{Version: types.Version{Version: "19.03.15", APIVersion: "1.40"}}, statusWarn, "older than API 1.41", "upgrade"},
		{"bad DOCKER_HOST", engineFacts{ClientErr: errors.New("unable to parse docker host `nope`")}, statusFail, "docker client", "DOCKER_HOST"},
		{
			"socket without permission",
			engineFacts{Host: "unix:///var/run/docker.sock", PingErr: errors.New("permission denied while trying to connect to the Docker daemon socket")},
			statusFail, "no access to the Docker socket", "group-add",
		},
		{
			"no socket",
			engineFacts{Host: "unix:///nonexistent.sock", PingErr: errors.New("Cannot connect to the Docker daemon at unix:///nonexistent.sock. Is the docker daemon running?")},
			statusFail, "cannot reach the Docker Engine", "mount the socket",
		},
		{"other error", engineFacts{Host: "tcp://h:2376", PingErr: errors.New("tls: bad certificate")}, statusFail, "tls: bad certificate", "DOCKER_HOST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertResult(t, judgeEngine(tt.facts), tt.want, tt.detail, tt.fixMention)
		})
	}
}

func TestJudgeDisk(t *testing.T) {
	tests := []struct {
		name     string
		got      checkResult
		want     checkStatus
		detail   string
		mentions string
	}{
		{"plenty", judgeStateDir("/var/lib/slipway", true, nil, 50<<30, nil), statusOK, "50GiB free", ""},
		{"will be created", judgeStateDir("/var/lib/slipway", false, nil, 50<<30, nil), statusOK, "(will be created)", ""},
		{"low", judgeStateDir("/s", true, nil, 500<<20, nil), statusWarn, "500MiB free", "free disk space"},
		{"nearly full", judgeStateDir("/s", true, nil, 10<<20, nil), statusFail, "only 10MiB free", "prune"},
		{"not writable", judgeStateDir("/s", true, fs.ErrPermission, 50<<30, nil), statusFail, "/s is not writable", "uid 10001"},
		{"parent not writable", judgeStateDir("/s/x", false, fs.ErrPermission, 50<<30, nil), statusFail, "parent directory of /s/x", "writable"},
		{"free space unknown", judgeStateDir("/s", true, nil, 0, errors.New("statfs: boom")), statusWarn, "free space unknown", "df"},
		{"docker root ok", judgeFree("docker disk", "root", 20<<30, dockerRootWarn, dockerRootFail), statusOK, "20GiB free", ""},
		{"docker root low", judgeFree("docker disk", "root", 5<<30, dockerRootWarn, dockerRootFail), statusWarn, "5GiB free", "prune"},
		{"docker root full", judgeFree("docker disk", "root", 1<<30, dockerRootWarn, dockerRootFail), statusFail, "only 1GiB free", "prune"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertResult(t, tt.got, tt.want, tt.detail, tt.mentions) })
	}
}

func TestJudgeStateMount(t *testing.T) {
	bind := func(src, dst string, rw bool) container.MountPoint {
		return container.MountPoint{Type: "bind", Source: src, Destination: dst, RW: rw}
	}
	tests := []struct {
		name     string
		mounts   []container.MountPoint
		want     checkStatus
		detail   string
		mentions string
	}{
		{"same path", []container.MountPoint{bind("/var/lib/slipway", "/var/lib/slipway", true)}, statusOK, "at the same path", ""},
		{"a parent at the same path", []container.MountPoint{bind("/srv", "/srv", true)}, statusOK, "at the same path", ""},
		{
			"the deepest mount decides",
			[]container.MountPoint{bind("/srv", "/srv", true), {Type: "volume", Name: "state", Destination: "/srv/slipway", RW: true}},
			statusWarn, "on volume state", "-v /srv/slipway:/srv/slipway",
		},
		{"a named volume", []container.MountPoint{{Type: "volume", Name: "slipway-state", Destination: "/srv/slipway", RW: true}}, statusWarn, "bind-mount files of their checkout fail", "same path"},
		{"another host path", []container.MountPoint{bind("/data/slipway", "/srv/slipway", true)}, statusWarn, "the host's /data/slipway", "-v /srv/slipway:/srv/slipway"},
		{"not mounted", []container.MountPoint{bind("/etc/slipway.yaml", "/etc/slipway/slipway.yaml", false)}, statusWarn, "the container's own filesystem", "same path"},
		{"a sibling with a common prefix is not a parent", []container.MountPoint{bind("/srv/slip", "/srv/slip", true)}, statusWarn, "own filesystem", ""},
		{"read-only", []container.MountPoint{bind("/srv/slipway", "/srv/slipway", false)}, statusFail, "read-only", "read-write"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := "/srv/slipway"
			if tt.name == "same path" {
				dir = "/var/lib/slipway"
			}
			assertResult(t, judgeStateMount(dir, tt.mounts), tt.want, tt.detail, tt.mentions)
		})
	}
}

func TestJudgeDNS(t *testing.T) {
	nxdomain := &net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}
	tests := []struct {
		name     string
		facts    dnsFacts
		want     checkStatus
		detail   string
		mentions string
	}{
		{"localhost", dnsFacts{Domain: "localhost", LocalhostTLD: true}, statusOK, "*.localhost is loopback", ""},
		{"wildcard and apex agree", dnsFacts{Domain: "p.example.com", Wildcard: []string{"203.0.113.7"}, Apex: []string{"203.0.113.7"}}, statusOK, "resolves to 203.0.113.7", ""},
		{"wildcard missing", dnsFacts{Domain: "p.example.com", WildcardErr: nxdomain, Apex: []string{"203.0.113.7"}}, statusFail, "slipway-doctor-check.p.example.com does not resolve", "*.p.example.com"},
		{"nothing resolves", dnsFacts{Domain: "p.example.com", WildcardErr: nxdomain, ApexErr: nxdomain}, statusFail, "does not resolve", "wildcard DNS record"},
		{"apex missing", dnsFacts{Domain: "p.example.com", Wildcard: []string{"203.0.113.7"}, ApexErr: nxdomain}, statusWarn, "p.example.com itself does not", "dashboard_url"},
		{"different hosts", dnsFacts{Domain: "p.example.com", Wildcard: []string{"203.0.113.7"}, Apex: []string{"198.51.100.1"}}, statusWarn, "but p.example.com to 198.51.100.1", "same host"},
		{"overlapping sets", dnsFacts{Domain: "p.example.com", Wildcard: []string{"2001:db8::7", "203.0.113.7"}, Apex: []string{"203.0.113.7"}}, statusOK, "2001:db8::7, 203.0.113.7", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertResult(t, judgeDNS(tt.facts), tt.want, tt.detail, tt.mentions) })
	}
}

func TestJudgePort(t *testing.T) {
	inUse := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EADDRINUSE)}
	denied := &net.OpError{Op: "listen", Net: "tcp", Err: os.NewSyscallError("bind", syscall.EACCES)}
	tests := []struct {
		name     string
		facts    portFacts
		want     checkStatus
		detail   string
		mentions string
	}{
		{"free", portFacts{Key: "listen.http", Addr: ":80"}, statusOK, "listen.http :80 is free", ""},
		{"taken by slipway", portFacts{Key: "listen.http", Addr: ":80", BindErr: inUse, Slipway: true}, statusOK, "in use by a running Slipway", ""},
		{"taken by another program", portFacts{Key: "listen.https", Addr: ":443", BindErr: inUse}, statusFail, "in use by another program", "listen.https"},
		{"privileged port", portFacts{Key: "listen.http", Addr: ":80", BindErr: denied}, statusFail, "cannot be bound", "ip_unprivileged_port_start"},
		{"bad address", portFacts{Key: "listen.http", Addr: "nope", BindErr: errors.New("missing port in address")}, statusFail, "missing port", "host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assertResult(t, judgePort(tt.facts), tt.want, tt.detail, tt.mentions) })
	}
}

func TestJudgeCredentials(t *testing.T) {
	key := testRSAKey(t)
	tests := []struct {
		name string
		gh   *config.GitHub
		want []checkStatus
		// detail of the first result
		detail string
	}{
		{"local mode", nil, []checkStatus{statusOK, statusOK}, "local mode"},
		{"token and long secret", &config.GitHub{Token: "ghp_x", WebhookSecret: strings.Repeat("s", 32)}, []checkStatus{statusOK, statusOK}, "token set (5 characters)"},
		{"two secrets while rotating", &config.GitHub{Token: "t", WebhookSecret: strings.Repeat("a", 20) + "," + strings.Repeat("b", 20)}, []checkStatus{statusOK, statusOK}, "token set"},
		{"short secret", &config.GitHub{Token: "t", WebhookSecret: "short"}, []checkStatus{statusOK, statusWarn}, "token set"},
		{"no secret", &config.GitHub{Token: "t"}, []checkStatus{statusOK, statusFail}, "token set"},
		{"no credentials", &config.GitHub{WebhookSecret: strings.Repeat("s", 32)}, []checkStatus{statusFail, statusOK}, "no GitHub credentials"},
		{"app with key", &config.GitHub{AppID: 42, PrivateKey: key, WebhookSecret: strings.Repeat("s", 32)}, []checkStatus{statusOK, statusOK}, "GitHub App 42 with a readable RSA private key"},
		{"app with garbage key", &config.GitHub{AppID: 42, PrivateKey: "not a key", WebhookSecret: strings.Repeat("s", 32)}, []checkStatus{statusFail, statusOK}, "private key unusable: no PEM block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := judgeCredentials(tt.gh)
			if len(got) != len(tt.want) {
				t.Fatalf("got %d results, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range got {
				if got[i].Status != tt.want[i] {
					t.Errorf("result %d (%s) = %s, want %s: %s", i, got[i].Name, got[i].Status, tt.want[i], got[i].Detail)
				}
			}
			if !strings.Contains(got[0].Detail, tt.detail) {
				t.Errorf("detail %q lacks %q", got[0].Detail, tt.detail)
			}
		})
	}
}

func TestJudgeConfigAndPolicy(t *testing.T) {
	missing := fmt.Errorf("read webhook secret from /run/secrets/x: %w", &fs.PathError{Op: "open", Path: "/run/secrets/x", Err: fs.ErrNotExist})
	assertResult(t, judgeConfig("/etc/slipway.yaml", nil, missing), statusFail, "/run/secrets/x", "uid 10001")
	assertResult(t, judgeConfig("c.yaml", nil, errors.New("domain is empty")), statusFail, "domain is empty", "docs/configuration.md")
	cfg := config.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	assertResult(t, judgeConfig("", &cfg, nil), statusOK, "local mode", "")

	assertResult(t, judgePolicy(&cfg), statusOK, "no relaxations", "")
	cfg.Policy = config.Policy{Allow: []string{"NOT-A-RULE"}}
	assertResult(t, judgePolicy(&cfg), statusFail, `"NOT-A-RULE" is not a rule ID`, "docs/security.md")
	cfg.Policy = config.Policy{}
	cfg.Repos = []config.RepoPolicy{{Name: "acme/shop", Policy: config.Policy{CapAdd: []string{"ALL"}}}}
	assertResult(t, judgePolicy(&cfg), statusFail, "repos acme/shop", "")
	cfg.Repos[0].Policy = config.Policy{CapAdd: []string{"NET_ADMIN"}, Sysctls: []string{"net.core.somaxconn"}}
	assertResult(t, judgePolicy(&cfg), statusOK, "2 relaxation(s), all valid", "")
}

func TestPrintResults(t *testing.T) {
	var b bytes.Buffer
	n := printResults(&b, []checkResult{
		checkOK("engine", "fine"),
		checkWarn("webhook", "make it longer", "short"),
		checkFail("dns", "add a record", "missing"),
		checkSkip("ports", "config did not load"),
	})
	want := "ok    engine        fine\n" +
		"warn  webhook       short — fix: make it longer\n" +
		"FAIL  dns           missing — fix: add a record\n" +
		"skip  ports         config did not load\n" +
		"1 problem(s) to fix\n"
	if n != 1 || b.String() != want {
		t.Errorf("printResults = %d,\n%s\nwant 1,\n%s", n, b.String(), want)
	}
}

// TestDoctorGitHubAPI asks a real HTTP server standing in for GitHub, with
// a token and with a GitHub App's JWT.
func TestDoctorGitHubAPI(t *testing.T) {
	key := testRSAKey(t)
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth := r.Header.Get("Authorization")
		switch {
		case r.URL.Path == "/api/v3/user" && auth == "Bearer good-token":
			fmt.Fprint(w, `{"login":"octocat","id":1}`)
		case r.URL.Path == "/api/v3/app" && strings.HasPrefix(auth, "Bearer ") && strings.Count(auth, ".") == 2:
			fmt.Fprint(w, `{"slug":"slipway-previews","name":"Slipway previews"}`)
		case r.URL.Path == "/api/v3/user" && auth == "Bearer limited":
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `{"message":"API rate limit exceeded"}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"message":"Bad credentials"}`)
		}
	}))
	defer fake.Close()
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	d := &doctor{http: &http.Client{Timeout: 5 * time.Second}, timeout: 5 * time.Second}
	api := fake.URL + "/api/v3/"
	tests := []struct {
		name   string
		gh     *config.GitHub
		want   checkStatus
		detail string
	}{
		{"token accepted", &config.GitHub{APIURL: api, Token: "good-token"}, statusOK, "accepted the credentials: octocat"},
		{"token refused", &config.GitHub{APIURL: api, Token: "revoked"}, statusFail, "401 Unauthorized"},
		{"rate limited", &config.GitHub{APIURL: api, Token: "limited"}, statusWarn, "answered 403"},
		{"app accepted", &config.GitHub{APIURL: api, AppID: 7, PrivateKey: key}, statusOK, "accepted the credentials: slipway-previews"},
		{"wrong api_url", &config.GitHub{APIURL: fake.URL + "/nope", Token: "good-token"}, statusFail, "401"},
		{"GitHub unreachable is a warning", &config.GitHub{APIURL: deadURL + "/", Token: "good-token"}, statusWarn, "could not reach"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := d.checkGitHubAPI(context.Background(), tt.gh)
			assertResult(t, r, tt.want, tt.detail, "")
		})
	}
	assertResult(t, judgeGitHubAPI(githubAnswer{URL: "u", Status: 404}), statusWarn, "answered 404", "api/v3")
}

// TestDoctorPorts binds real sockets: a free address, one taken by a plain
// TCP listener, and one taken by a server answering /healthz as Slipway does.
func TestDoctorPorts(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	slipwayLike := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" {
			fmt.Fprintln(w, "ok")
			return
		}
		http.NotFound(w, r)
	}))
	defer slipwayLike.Close()
	d := &doctor{listen: net.Listen, timeout: 5 * time.Second}

	tests := []struct {
		name string
		cfg  config.Controller
		want []checkStatus
	}{
		{"free", config.Controller{Listen: config.Listen{HTTP: "127.0.0.1:0"}, TLS: config.TLS{Mode: config.TLSOff}}, []checkStatus{statusOK}},
		{"taken", config.Controller{Listen: config.Listen{HTTP: taken.Addr().String()}, TLS: config.TLS{Mode: config.TLSOff}}, []checkStatus{statusFail}},
		{"taken by slipway, https too", config.Controller{Listen: config.Listen{HTTP: slipwayLike.Listener.Addr().String(), HTTPS: taken.Addr().String()}, TLS: config.TLS{Mode: config.TLSOnDemand}}, []checkStatus{statusOK, statusOK}},
		{"https taken by another program", config.Controller{Listen: config.Listen{HTTP: "127.0.0.1:0", HTTPS: taken.Addr().String()}, TLS: config.TLS{Mode: config.TLSOnDemand}}, []checkStatus{statusOK, statusFail}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := d.checkPorts(context.Background(), &tt.cfg)
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %d results", got, len(tt.want))
			}
			for i := range got {
				if got[i].Status != tt.want[i] {
					t.Errorf("result %d = %s (%s), want %s", i, got[i].Status, got[i].Detail, tt.want[i])
				}
			}
		})
	}
}

func TestDoctorStateDir(t *testing.T) {
	d := &doctor{diskFree: doctorDiskFree}
	dir := t.TempDir()
	assertResult(t, d.checkStateDir(dir), statusOK, "free", "")
	assertResult(t, d.checkStateDir(filepath.Join(dir, "a", "b")), statusOK, "(will be created)", "")
	if os.Geteuid() != 0 { // root writes anywhere
		ro := filepath.Join(dir, "ro")
		if err := os.Mkdir(ro, 0o555); err != nil {
			t.Fatal(err)
		}
		assertResult(t, d.checkStateDir(ro), statusFail, "not writable", "")
	}
	// A file where a directory should be cannot hold state.
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	assertResult(t, d.checkStateDir(file), statusFail, "not writable", "")
}

// --- the whole command against the real engine ---

// runDoctor runs `slipway doctor --config cfgFile` and returns its output
// and exit code.
func runDoctor(t *testing.T, cfgFile string, extra ...string) (string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRoot(&out, &errb)
	root.SetArgs(append([]string{"doctor", "--config", cfgFile}, extra...))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := root.ExecuteContext(ctx)
	code := 0
	if err != nil {
		var ee *exitError
		if !errors.As(err, &ee) {
			t.Fatalf("doctor: %v (not an exit status)\n%s", err, out.String())
		}
		code = ee.code
	}
	return out.String(), code
}

// lineOf returns the report line of the named check.
func lineOf(t *testing.T, out, name string) string {
	t.Helper()
	for _, l := range strings.Split(out, "\n") {
		if len(l) > 6 && strings.HasPrefix(strings.TrimSpace(l[6:]), name+" ") {
			return l
		}
	}
	t.Fatalf("no %q line in:\n%s", name, out)
	return ""
}

func writeDoctorConfig(t *testing.T, yaml string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "slipway.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDoctorHealthy(t *testing.T) {
	dockertest.Client(t)
	secrets := t.TempDir()
	dockertest.WriteFiles(t, secrets, map[string]string{"token": "good-token\n", "webhook": strings.Repeat("w", 40) + "\n"})
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/user" && r.Header.Get("Authorization") == "Bearer good-token" {
			fmt.Fprint(w, `{"login":"previewbot"}`)
			return
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer fake.Close()

	t.Run("local mode", func(t *testing.T) {
		cfg := writeDoctorConfig(t, fmt.Sprintf("domain: localhost\nlisten: {http: \"127.0.0.1:0\"}\nstate_dir: %s\n", t.TempDir()))
		out, code := runDoctor(t, cfg)
		if code != 0 || strings.Contains(out, "FAIL") {
			t.Fatalf("exit %d on a healthy setup:\n%s", code, out)
		}
		for _, name := range []string{"config", "policy", "engine", "state_dir", "github", "webhook", "dns", "ports"} {
			if l := lineOf(t, out, name); !strings.HasPrefix(l, "ok ") {
				t.Errorf("%s: %s", name, l)
			}
		}
		if !strings.Contains(lineOf(t, out, "engine"), "(API 1.") {
			t.Errorf("engine line lacks the API version:\n%s", out)
		}
	})
	t.Run("with GitHub", func(t *testing.T) {
		cfg := writeDoctorConfig(t, fmt.Sprintf(`domain: previews.localhost
listen: {http: "127.0.0.1:0"}
state_dir: %s
github:
  api_url: %s/
  token_file: %s
  webhook_secret_file: %s
repos:
  - name: acme/shop
`, t.TempDir(), fake.URL, filepath.Join(secrets, "token"), filepath.Join(secrets, "webhook")))
		out, code := runDoctor(t, cfg)
		if code != 0 || strings.Contains(out, "FAIL") {
			t.Fatalf("exit %d on a healthy setup:\n%s", code, out)
		}
		if l := lineOf(t, out, "github api"); !strings.Contains(l, "previewbot") {
			t.Errorf("github api: %s", l)
		}
	})
}

func TestDoctorBroken(t *testing.T) {
	dockertest.Client(t)
	healthy := func(extra string) string {
		return writeDoctorConfig(t, fmt.Sprintf("domain: localhost\nlisten: {http: \"127.0.0.1:0\"}\nstate_dir: %s\n%s", t.TempDir(), extra))
	}

	t.Run("missing secret file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "webhook_secret")
		cfg := healthy(fmt.Sprintf("github:\n  token: t\n  webhook_secret_file: %s\n", missing))
		out, code := runDoctor(t, cfg)
		if code != 1 {
			t.Errorf("exit %d, want 1:\n%s", code, out)
		}
		if l := lineOf(t, out, "config"); !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, missing) || !strings.Contains(l, "fix:") {
			t.Errorf("config line does not name the missing file with a fix: %s", l)
		}
		if l := lineOf(t, out, "engine"); !strings.HasPrefix(l, "ok ") {
			t.Errorf("engine still checked: %s", l)
		}
	})

	t.Run("port already bound", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		cfg := writeDoctorConfig(t, fmt.Sprintf("domain: localhost\nlisten: {http: %q}\nstate_dir: %s\n", ln.Addr().String(), t.TempDir()))
		out, code := runDoctor(t, cfg)
		if code != 1 {
			t.Errorf("exit %d, want 1:\n%s", code, out)
		}
		if l := lineOf(t, out, "ports"); !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "in use by another program") {
			t.Errorf("ports: %s", l)
		}
	})

	t.Run("invalid policy relaxation", func(t *testing.T) {
		out, code := runDoctor(t, healthy("policy: {allow: [SW-NOT-A-RULE]}\n"))
		if code != 1 || !strings.HasPrefix(lineOf(t, out, "policy"), "FAIL") {
			t.Errorf("exit %d:\n%s", code, out)
		}
	})

	// Last: t.Setenv forbids parallel subtests and changes the process
	// environment for the rest of this test only.
	t.Run("unreachable engine", func(t *testing.T) {
		t.Setenv("DOCKER_HOST", "unix:///nonexistent.sock")
		out, code := runDoctor(t, healthy(""))
		if code != 1 {
			t.Errorf("exit %d, want 1:\n%s", code, out)
		}
		l := lineOf(t, out, "engine")
		if !strings.HasPrefix(l, "FAIL") || !strings.Contains(l, "unix:///nonexistent.sock") || !strings.Contains(l, "fix:") {
			t.Errorf("engine: %s", l)
		}
		if l := lineOf(t, out, "docker disk"); !strings.HasPrefix(l, "skip") {
			t.Errorf("docker disk: %s", l)
		}
	})
}

// assertResult checks a result's status, and that its detail and fix
// mention what they should.
func assertResult(t *testing.T, r checkResult, want checkStatus, detail, fixMention string) {
	t.Helper()
	if r.Status != want {
		t.Errorf("%s: status %s, want %s (%s — fix: %s)", r.Name, r.Status, want, r.Detail, r.Fix)
	}
	if !strings.Contains(r.Detail, detail) {
		t.Errorf("%s: detail %q lacks %q", r.Name, r.Detail, detail)
	}
	if fixMention != "" && !strings.Contains(r.Fix, fixMention) {
		t.Errorf("%s: fix %q lacks %q", r.Name, r.Fix, fixMention)
	}
}

func testRSAKey(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

func TestJudgeLoader(t *testing.T) {
	noNS := errors.New("start the loader in new namespaces: operation not permitted")
	assertResult(t, judgeLoader(7, nil, config.LoaderAuto), statusOK, "Landlock ABI 7", "")
	assertResult(t, judgeLoader(3, nil, config.LoaderAuto), statusWarn, "cannot stop it opening TCP", "ABI 4")
	assertResult(t, judgeLoader(0, nil, config.LoaderAuto), statusOK, "mount namespace", "")
	assertResult(t, judgeLoader(0, noNS, config.LoaderAuto), statusWarn, "operation not permitted", "loader.confinement: required")
	assertResult(t, judgeLoader(0, noNS, config.LoaderRequired), statusFail, "every deploy will be refused", "loader.confinement: auto")
}
