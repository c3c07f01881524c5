package stack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/client"

	"github.com/slipwayhq/slipway/config"
	"github.com/slipwayhq/slipway/internal/contract"
	"github.com/slipwayhq/slipway/internal/dockertest"
)

const (
	sha1 = "1111111111111111111111111111111111111111"
	sha2 = "2222222222222222222222222222222222222222"
)

// testEngine returns an engine on the real Docker Engine, with the busybox
// base image the fixtures build FROM.
func testEngine(t *testing.T) (*Engine, *client.Client) {
	t.Helper()
	cli := dockertest.Client(t)
	dockertest.Busybox(t)
	return NewEngine(cli, nil, EngineOptions{ReadyTimeout: 60 * time.Second, StopTimeout: 2 * time.Second}), cli
}

func copyFixture(t *testing.T, name string) string {
	return dockertest.CopyFixture(t, filepath.Join("testdata", name))
}

// newSource names a repo no other test uses and registers a cleanup that
// removes its projects and checks nothing of them is left.
func newSource(t *testing.T, e *Engine, cli *client.Client, dir string, prs ...int) Source {
	t.Helper()
	src := Source{Dir: dir, Owner: "test", Repo: dockertest.UniqueName("shop"), PR: 1, SHA: sha1}
	if len(prs) == 0 {
		prs = []int{1}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, pr := range prs {
			project := contract.ProjectName(src.Owner, src.Repo, pr)
			if err := e.Down(ctx, project); err != nil {
				t.Errorf("cleanup down %s: %v", project, err)
			}
			left, err := dockertest.Leftovers(ctx, cli, contract.LabelProject+"="+project)
			if err != nil {
				t.Errorf("list leftovers: %v", err)
			}
			if len(left) > 0 {
				t.Errorf("left behind by %s: %v", project, left)
			}
		}
	})
	return src
}

func mustLoad(t *testing.T, src Source) *Plan {
	t.Helper()
	p, err := Load(context.Background(), src, LoadOptions{Limits: config.Defaults().Limits})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

func up(t *testing.T, e *Engine, src Source) (*Plan, *UpResult) {
	t.Helper()
	p := mustLoad(t, src)
	var log bytes.Buffer
	res, err := e.Up(context.Background(), p, UpOptions{BuildLog: &log})
	if err != nil {
		t.Fatalf("up %s: %v\nlog:\n%s", p.Name, err, log.String())
	}
	return p, res
}

// containerIDs maps container name → ID for a project.
func containerIDs(t *testing.T, e *Engine, project string) map[string]string {
	t.Helper()
	env, err := e.Inspect(context.Background(), project)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	if env == nil {
		return out
	}
	for _, s := range env.Services {
		for _, c := range s.Containers {
			out[c.Name] = c.ID
		}
	}
	return out
}

func serviceIP(t *testing.T, e *Engine, project, service string) string {
	t.Helper()
	env, err := e.Inspect(context.Background(), project)
	if err != nil || env == nil {
		t.Fatalf("inspect %s: %v", project, err)
	}
	for _, s := range env.Services {
		if s.Service == service && len(s.Containers) > 0 && s.Containers[0].IP != "" {
			return s.Containers[0].IP
		}
	}
	t.Fatalf("service %s of %s has no IP", service, project)
	return ""
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	return string(b)
}

func TestUpServesWebThatReachesAPIByName(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, res := up(t, e, src)
	if len(res.Created) != 4 {
		t.Errorf("created %v, want 4 containers", res.Created)
	}
	web := serviceIP(t, e, p.Name, "web")
	page := get(t, "http://"+web+":8080/")
	if want := "PR=1 SHA=" + sha1; !strings.Contains(page, want) {
		t.Errorf("web page %q lacks %q", page, want)
	}
	api := get(t, "http://"+web+":8080/cgi-bin/api")
	if !strings.Contains(api, "migrated for PR 1 at "+sha1) || !strings.Contains(api, "api for PR 1 db=db") {
		t.Errorf("web → api answer %q lacks the migration and api lines", api)
	}
	if g := get(t, "http://"+web+":8080/greeting.txt"); strings.TrimSpace(g) != "hello" {
		t.Errorf("build arg: greeting %q", g)
	}
	// .dockerignore kept secret.txt out of the image.
	resp, err := http.Get("http://" + web + ":8080/secret.txt")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Errorf("secret.txt was sent in the build context despite .dockerignore")
		}
	}
	// The image-only db got no SLIPWAY_SHA; built services did.
	ins := inspectService(t, cli, p.Name, "db")
	for _, env := range ins.Config.Env {
		if strings.HasPrefix(env, contract.EnvSHA+"=") {
			t.Errorf("image-only service db got %s", env)
		}
	}
	if !hasEnv(inspectService(t, cli, p.Name, "web").Config.Env, contract.EnvSHA+"="+sha1) {
		t.Errorf("built service web lacks %s", contract.EnvSHA)
	}
}

func hasEnv(env []string, kv string) bool {
	for _, e := range env {
		if e == kv {
			return true
		}
	}
	return false
}

func inspectService(t *testing.T, cli *client.Client, project, service string) container.InspectResponse {
	t.Helper()
	ins, err := cli.ContainerInspect(context.Background(), contract.ContainerName(project, service, 1))
	if err != nil {
		t.Fatal(err)
	}
	return ins
}

func TestTwoPRsRunSideBySide(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	dir := copyFixture(t, "shop")
	src1 := newSource(t, e, cli, dir, 1, 2)
	src2 := src1
	src2.PR, src2.SHA = 2, sha2
	p1, _ := up(t, e, src1)
	p2, _ := up(t, e, src2)
	if p1.Name == p2.Name {
		t.Fatalf("same project name %s", p1.Name)
	}
	for _, c := range []struct {
		p    *Plan
		want string
	}{{p1, "PR=1 SHA=" + sha1}, {p2, "PR=2 SHA=" + sha2}} {
		ip := serviceIP(t, e, c.p.Name, "web")
		if page := get(t, "http://"+ip+":8080/"); !strings.Contains(page, c.want) {
			t.Errorf("%s: page %q lacks %q", c.p.Name, page, c.want)
		}
		// Each web reaches its own api, by the same service name.
		if api := get(t, "http://"+ip+":8080/cgi-bin/api"); !strings.Contains(api, fmt.Sprintf("api for PR %d", c.p.Source.PR)) {
			t.Errorf("%s: api answer %q is not its own", c.p.Name, api)
		}
	}
	// No host port was bound though both publish 8080.
	for _, p := range []*Plan{p1, p2} {
		if b := inspectService(t, cli, p.Name, "web").HostConfig.PortBindings; len(b) != 0 {
			t.Errorf("%s: host port bindings %v", p.Name, b)
		}
	}
}

func TestReupKeepsContainersAndNewSHARecreatesOnlyBuilt(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	before := containerIDs(t, e, p.Name)

	// Same SHA: nothing changes.
	_, res := up(t, e, src)
	if res.Changed() || len(res.Built) != 0 {
		t.Errorf("re-up with the same SHA changed things: created %v removed %v built %v", res.Created, res.Removed, res.Built)
	}
	if after := containerIDs(t, e, p.Name); !equalMaps(before, after) {
		t.Errorf("container IDs changed on a no-change re-up:\nbefore %v\nafter  %v", before, after)
	}

	// New SHA: built services are rebuilt and recreated, the db keeps running.
	src.SHA = sha2
	p2, res := up(t, e, src)
	after := containerIDs(t, e, p2.Name)
	db := contract.ContainerName(p.Name, "db", 1)
	if after[db] != before[db] {
		t.Errorf("image-only db was recreated by a push")
	}
	for _, s := range []string{"web", "api", "migrate"} {
		name := contract.ContainerName(p.Name, s, 1)
		if after[name] == before[name] {
			t.Errorf("built service %s was not recreated for the new SHA", s)
		}
	}
	if ins := inspectService(t, cli, p.Name, "db"); !ins.State.Running || ins.Config.Labels[contract.LabelSHA] != sha1 {
		t.Errorf("db: running=%v sha label %q, want running with the old SHA", ins.State.Running, ins.Config.Labels[contract.LabelSHA])
	}
	ip := serviceIP(t, e, p.Name, "web")
	if page := get(t, "http://"+ip+":8080/"); !strings.Contains(page, "SHA="+sha2) {
		t.Errorf("page after push %q lacks the new SHA", page)
	}
	env, _ := e.Inspect(context.Background(), p.Name)
	if env.SHA != sha2 {
		t.Errorf("environment SHA %s, want %s", env.SHA, sha2)
	}
	// The old SHA's images are gone; only the current ones remain.
	imgs, err := dockertest.Leftovers(context.Background(), cli, contract.LabelProject+"="+p.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range imgs {
		if strings.HasPrefix(i, "image ") && strings.Contains(i, contract.ShortSHA(sha1)) {
			t.Errorf("image of the old SHA left: %s", i)
		}
	}
	_ = res
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestNamedVolumeSurvivesRedeployAndGoesWithDown(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	src.SHA = sha2
	up(t, e, src)
	// The db wrote one line per boot into its volume; it was not restarted,
	// so recreate the db through a config change and check the file grew.
	dir := src.Dir
	compose, _ := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	changed := strings.Replace(string(compose), "exec sleep 86400", "exec sleep 86401", 1)
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	up(t, e, src)
	out := execIn(t, cli, contract.ContainerName(p.Name, "db", 1), "cat", "/var/lib/db/boots")
	if n := strings.Count(out, "boot"); n != 2 {
		t.Errorf("boots file %q: want 2 boots recorded in the surviving volume", out)
	}
	if err := e.Down(context.Background(), p.Name); err != nil {
		t.Fatal(err)
	}
	left, _ := dockertest.Leftovers(context.Background(), cli, contract.LabelProject+"="+p.Name)
	if len(left) != 0 {
		t.Errorf("after down: %v", left)
	}
	if _, err := cli.VolumeInspect(context.Background(), contract.ResourceName(p.Name, "dbdata")); err == nil {
		t.Errorf("volume %s survived down", contract.ResourceName(p.Name, "dbdata"))
	}
}

func execIn(t *testing.T, cli *client.Client, name string, cmd ...string) string {
	t.Helper()
	ctx := context.Background()
	ex, err := cli.ContainerExecCreate(ctx, name, container.ExecOptions{Cmd: cmd, AttachStdout: true, AttachStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	att, err := cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close()
	b, _ := io.ReadAll(att.Reader)
	return string(b)
}

func TestDownLeavesNothingAndIsIdempotent(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	left, _ := dockertest.Leftovers(context.Background(), cli, contract.LabelProject+"="+p.Name)
	kinds := map[string]int{}
	for _, l := range left {
		kinds[strings.Fields(l)[0]]++
	}
	if kinds["container"] != 4 || kinds["network"] != 1 || kinds["volume"] != 2 || kinds["image"] != 2 {
		t.Errorf("before down: %v (want 4 containers, 1 network, 2 volumes, 2 images: api and migrate share one)", kinds)
	}
	for i := 0; i < 2; i++ {
		if err := e.Down(context.Background(), p.Name); err != nil {
			t.Fatalf("down #%d: %v", i+1, err)
		}
	}
	if left, _ := dockertest.Leftovers(context.Background(), cli, contract.LabelProject+"="+p.Name); len(left) != 0 {
		t.Errorf("after down: %v", left)
	}
}

func TestDockerComposeSeesOurEnvironment(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("docker-compose"); err != nil {
		dockertest.Unavailable(t, "docker-compose not installed: %v", err)
	}
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	ids := containerIDs(t, e, p.Name)
	compose := func(args ...string) string {
		cmd := exec.Command("docker-compose", append([]string{"-p", p.Name, "-f", filepath.Join(src.Dir, "compose.yaml")}, args...)...)
		cmd.Dir = src.Dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("docker-compose %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	out := compose("ps", "-q")
	for name, id := range ids {
		if !strings.Contains(out, id) {
			t.Errorf("docker-compose ps does not list %s (%s):\n%s", name, id[:12], out)
		}
	}
	if logs := compose("logs", "--no-color", "migrate"); !strings.Contains(logs, "migrate") {
		t.Errorf("docker-compose logs migrate: %q", logs)
	}
	compose("down", "-v")
	if left := containerIDs(t, e, p.Name); len(left) != 0 {
		t.Errorf("docker-compose down left containers %v", left)
	}
}

// writeFixture makes a checkout from files.
func writeFixture(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	dockertest.WriteFiles(t, dir, files)
	return dir
}

func TestBadInputFailsClearlyAndLeavesNothing(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	tests := []struct {
		name    string
		files   map[string]string
		wantErr []string // substrings of the error
		atLoad  bool
	}{
		{
			name:    "compose file does not load",
			files:   map[string]string{"compose.yaml": "services:\n  web:\n    image: [unclosed\n"},
			wantErr: []string{"compose.yaml"},
			atLoad:  true,
		},
		{
			name:    "unknown compose key",
			files:   map[string]string{"compose.yaml": "services:\n  web:\n    image: x\n    frobnicate: true\n"},
			wantErr: []string{"frobnicate"},
			atLoad:  true,
		},
		{
			name:    "dependency cycle",
			files:   map[string]string{"compose.yaml": "services:\n  a:\n    image: slipway-test/busybox:1\n    depends_on: [b]\n  b:\n    image: slipway-test/busybox:1\n    depends_on: [a]\n"},
			wantErr: []string{"cycle"},
			atLoad:  true,
		},
		{
			name:    "missing Dockerfile",
			files:   map[string]string{"compose.yaml": "services:\n  web:\n    build: ./web\n", "web/index.html": "hi"},
			wantErr: []string{"web", "Dockerfile"},
		},
		{
			name: "build error",
			files: map[string]string{
				"compose.yaml":   "services:\n  web:\n    build: ./web\n",
				"web/Dockerfile": "FROM slipway-test/busybox:1\nRUN echo about to fail && exit 3\n",
			},
			wantErr: []string{"build service web", "about to fail"},
		},
		{
			name:    "image neither local nor pullable",
			files:   map[string]string{"compose.yaml": "services:\n  db:\n    image: registry.invalid/nope/postgres:16\n"},
			wantErr: []string{"service db", "registry.invalid/nope/postgres:16", "not present locally and could not be pulled"},
		},
		{
			name: "service never healthy",
			files: map[string]string{"compose.yaml": `services:
  web:
    build: ./web
    init: true
    healthcheck:
      test: ["CMD", "sh", "-c", "echo probe says no; exit 1"]
      interval: 200ms
      retries: 2
`, "web/Dockerfile": "FROM slipway-test/busybox:1\nCMD [\"sh\", \"-c\", \"echo web is up; exec sleep 3600\"]\n"},
			wantErr: []string{"service web", "unhealthy", "probe says no", "web is up"},
		},
		{
			name: "service exits",
			files: map[string]string{"compose.yaml": `services:
  db:
    image: slipway-test/busybox:1
    command: ["sh", "-c", "echo cannot open data dir; exit 2"]
    restart: always
`},
			wantErr: []string{"service db", "cannot open data dir"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := newSource(t, e, cli, writeFixture(t, tt.files))
			p, err := Load(context.Background(), src, LoadOptions{})
			if tt.atLoad {
				if err == nil {
					t.Fatal("load succeeded")
				}
				assertErr(t, err, tt.wantErr)
				if !errors.Is(err, ErrBadInput) {
					t.Errorf("load error is not ErrBadInput: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			_, err = e.Up(context.Background(), p, UpOptions{})
			if err == nil {
				t.Fatal("up succeeded")
			}
			assertErr(t, err, tt.wantErr)
			if !errors.Is(err, ErrBadInput) {
				t.Errorf("up error is not ErrBadInput: %v", err)
			}
			if left, _ := dockertest.Leftovers(context.Background(), cli, contract.LabelProject+"="+p.Name); len(left) != 0 {
				t.Errorf("failed up left %v", left)
			}
		})
	}
}

func assertErr(t *testing.T, err error, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

func TestFailedPushLeavesRunningEnvironmentAsItWas(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	before := containerIDs(t, e, p.Name)

	// The push breaks the api's healthcheck: web and api would be recreated,
	// the api never becomes healthy.
	compose := filepath.Join(src.Dir, "compose.yaml")
	b, _ := os.ReadFile(compose)
	broken := strings.Replace(string(b), `"http://127.0.0.1:8081/"]`, `"http://127.0.0.1:9/"]`, 1)
	broken = strings.Replace(broken, "      retries: 30\n  migrate:", "      retries: 2\n  migrate:", 1)
	if broken == string(b) {
		t.Fatal("fixture changed: could not break the api healthcheck")
	}
	if err := os.WriteFile(compose, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	src.SHA = sha2
	p2 := mustLoad(t, src)
	e2 := NewEngine(cli, nil, EngineOptions{ReadyTimeout: 20 * time.Second, StopTimeout: 2 * time.Second})
	_, err := e2.Up(context.Background(), p2, UpOptions{})
	if err == nil {
		t.Fatal("broken push came up")
	}
	var se *ServiceError
	if !errors.As(err, &se) || se.Service != "api" {
		t.Errorf("error %v: want a ServiceError naming api", err)
	}
	after := containerIDs(t, e, p.Name)
	if !equalMaps(before, after) {
		t.Errorf("rollback changed the environment:\nbefore %v\nafter  %v", before, after)
	}
	ip := serviceIP(t, e, p.Name, "web")
	if page := get(t, "http://"+ip+":8080/"); !strings.Contains(page, "SHA="+sha1) {
		t.Errorf("after rollback the page is %q, want the old SHA", page)
	}
	if api := get(t, "http://"+ip+":8080/cgi-bin/api"); !strings.Contains(api, "api for PR 1") {
		t.Errorf("after rollback web cannot reach api: %q", api)
	}
}

func TestSleepAndWake(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	before := containerIDs(t, e, p.Name)
	if err := e.Stop(context.Background(), p.Name); err != nil {
		t.Fatal(err)
	}
	env, _ := e.Inspect(context.Background(), p.Name)
	if ph := env.Phase(); ph != "stopped" {
		t.Errorf("phase after Stop %q, want stopped", ph)
	}
	if err := e.Start(context.Background(), p.Name); err != nil {
		t.Fatal(err)
	}
	if after := containerIDs(t, e, p.Name); !equalMaps(before, after) {
		t.Errorf("wake changed containers")
	}
	ip := serviceIP(t, e, p.Name, "web")
	if api := get(t, "http://"+ip+":8080/cgi-bin/api"); !strings.Contains(api, "api for PR 1") {
		t.Errorf("after wake: %q", api)
	}
}

func TestBeforeDeployAbortsWithoutTouchingTheEnvironment(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	before := containerIDs(t, e, p.Name)
	src.SHA = sha2
	p2 := mustLoad(t, src)
	superseded := errors.New("head moved on")
	_, err := e.Up(context.Background(), p2, UpOptions{BeforeDeploy: func(context.Context) error { return superseded }})
	if !errors.Is(err, superseded) {
		t.Fatalf("err = %v", err)
	}
	if after := containerIDs(t, e, p.Name); !equalMaps(before, after) {
		t.Errorf("aborted deploy changed containers")
	}
	left, _ := dockertest.Leftovers(context.Background(), cli, contract.LabelProject+"="+p.Name)
	for _, l := range left {
		if strings.Contains(l, contract.ShortSHA(sha2)) {
			t.Errorf("the superseded build left %s", l)
		}
	}
}

func TestForceRecreateKeepsVolumes(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	before := containerIDs(t, e, p.Name)
	res, err := e.Up(context.Background(), mustLoad(t, src), UpOptions{ForceRecreate: true})
	if err != nil {
		t.Fatal(err)
	}
	after := containerIDs(t, e, p.Name)
	for name, id := range before {
		if after[name] == id {
			t.Errorf("%s was not recreated", name)
		}
	}
	if len(res.Built) != 0 {
		t.Errorf("redeploy rebuilt %v", res.Built)
	}
	out := execIn(t, cli, contract.ContainerName(p.Name, "db", 1), "cat", "/var/lib/db/boots")
	if n := strings.Count(out, "boot"); n != 2 {
		t.Errorf("boots %q: the db volume did not survive the redeploy", out)
	}
}

func TestUpRemovesContainersOfAnInterruptedRun(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	// A run killed after retiring the web container leaves it stopped under
	// a temporary name.
	web := contract.ContainerName(p.Name, "web", 1)
	ins := inspectService(t, cli, p.Name, "web")
	if err := cli.ContainerStop(context.Background(), ins.ID, container.StopOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cli.ContainerRename(context.Background(), ins.ID, ins.ID[:12]+"_"+web); err != nil {
		t.Fatal(err)
	}
	_, res := up(t, e, src)
	if len(res.Created) != 1 || res.Created[0] != web {
		t.Errorf("created %v, want only %s", res.Created, web)
	}
	if _, err := cli.ContainerInspect(context.Background(), ins.ID); err == nil {
		t.Errorf("the interrupted run's container %s is still there", ins.ID[:12])
	}
}

// The compose features a real file uses, on the real engine: several
// networks with aliases (API 1.41 connects the second one after create),
// container_name kept as an alias, replicas, env_file, user, working_dir,
// read_only with tmpfs, and a command overriding the image's.
func TestComposeFeatures(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	dir := writeFixture(t, map[string]string{
		"compose.yaml": `services:
  front:
    image: slipway-test/busybox:1
    init: true
    command: ["sleep", "3600"]
    networks: [edge, back]
  api:
    image: slipway-test/busybox:1
    init: true
    command: ["sh", "-c", "echo \"$$GREETING from $$(id -u) in $$(pwd)\" > /tmp/hello && exec httpd -f -p 8081 -h /tmp"]
    user: "65534"
    working_dir: /tmp
    read_only: true
    tmpfs: [/tmp]
    env_file: [api.env]
    networks:
      back:
        aliases: [backend]
    deploy:
      replicas: 2
  old:
    image: slipway-test/busybox:1
    init: true
    container_name: legacy-db
    command: ["sh", "-c", "mkdir -p /w && echo old-name-works > /w/hello && exec httpd -f -p 8081 -h /w"]
    networks: [back]
networks:
  edge: {}
  back: {}
`,
		"api.env": "GREETING=hello-from-env-file\n",
	})
	src := newSource(t, e, cli, dir)
	p, res := up(t, e, src)
	if len(res.Created) != 4 {
		t.Fatalf("created %v, want front, two api replicas and old", res.Created)
	}
	front := contract.ContainerName(p.Name, "front", 1)
	ins, err := cli.ContainerInspect(context.Background(), front)
	if err != nil {
		t.Fatal(err)
	}
	if len(ins.NetworkSettings.Networks) != 2 {
		t.Errorf("front is on %d networks, want 2", len(ins.NetworkSettings.Networks))
	}
	for _, name := range []string{"api", "backend", contract.ContainerName(p.Name, "api", 2)} {
		rc, out := execRC(t, cli, front, "timeout", "3", "wget", "-q", "-O", "-", "http://"+name+":8081/hello")
		if rc != 0 || !strings.Contains(out, "hello-from-env-file from 65534 in /tmp") {
			t.Errorf("front → %s: %d %q", name, rc, out)
		}
	}
	if rc, out := execRC(t, cli, front, "timeout", "3", "wget", "-q", "-O", "-", "http://legacy-db:8081/hello"); rc != 0 || !strings.Contains(out, "old-name-works") {
		t.Errorf("container_name is not kept as an alias: %d %q", rc, out)
	}
	api := inspectService(t, cli, p.Name, "api")
	if !api.HostConfig.ReadonlyRootfs || api.Config.User != "65534" || api.Config.WorkingDir != "/tmp" {
		t.Errorf("api: read-only %v user %q workdir %q", api.HostConfig.ReadonlyRootfs, api.Config.User, api.Config.WorkingDir)
	}
	if rc, _ := execRC(t, cli, contract.ContainerName(p.Name, "api", 1), "touch", "/etc/x"); rc == 0 {
		t.Error("the read-only root filesystem is writable")
	}
	// Scale down: a replica goes, the other stays.
	compose, _ := os.ReadFile(filepath.Join(dir, "compose.yaml"))
	if err := os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte(strings.Replace(string(compose), "replicas: 2", "replicas: 1", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	before := containerIDs(t, e, p.Name)
	_, res = up(t, e, src)
	after := containerIDs(t, e, p.Name)
	if _, ok := after[contract.ContainerName(p.Name, "api", 2)]; ok || len(res.Removed) != 1 {
		t.Errorf("scale down: removed %v, containers %v", res.Removed, after)
	}
	if after[contract.ContainerName(p.Name, "api", 1)] != before[contract.ContainerName(p.Name, "api", 1)] {
		t.Error("scale down recreated the remaining replica")
	}
}

// Containers removed by hand, the volumes left: a failed heal must not take
// the data with it.
func TestFailedUpKeepsVolumesOfAnEnvironmentWithoutContainers(t *testing.T) {
	t.Parallel()
	e, cli := testEngine(t)
	src := newSource(t, e, cli, copyFixture(t, "shop"))
	p, _ := up(t, e, src)
	for name, id := range containerIDs(t, e, p.Name) {
		if err := cli.ContainerRemove(context.Background(), id, container.RemoveOptions{Force: true}); err != nil {
			t.Fatalf("remove %s: %v", name, err)
		}
	}
	// The heal fails: the api never becomes healthy.
	compose := filepath.Join(src.Dir, "compose.yaml")
	b, _ := os.ReadFile(compose)
	broken := strings.Replace(strings.Replace(string(b), `"http://127.0.0.1:8081/"]`, `"http://127.0.0.1:9/"]`, 1), "      retries: 30\n  migrate:", "      retries: 2\n  migrate:", 1)
	if err := os.WriteFile(compose, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Up(context.Background(), mustLoad(t, src), UpOptions{}); err == nil {
		t.Fatal("the broken heal came up")
	}
	for _, v := range []string{"data", "dbdata"} {
		if _, err := cli.VolumeInspect(context.Background(), contract.ResourceName(p.Name, v)); err != nil {
			t.Errorf("volume %s lost in the rollback: %v", v, err)
		}
	}
}
