package loader

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/compose-spec/compose-go/v2/cli"
)

// childEnv marks the environment of a confined loader child.
const childEnv = "SLIPWAY_CONFINED_LOADER"

// childRequest is what the parent writes on the child's stdin.
type childRequest struct {
	Request
	Memory      int64         `json:"memory"`
	Timeout     time.Duration `json:"timeout"`
	Confinement Confinement   `json:"confinement"`
	// Method is how the child confines itself: MethodLandlock,
	// MethodNamespace (it was started in new namespaces) or methodNone.
	Method Method `json:"method"`
}

func init() {
	if os.Getenv(childEnv) != "1" {
		return
	}
	os.Exit(runChild(os.Stdin, os.Stdout))
}

// replier writes the child's one answer; the memory watchdog and the load
// race to it, the first wins.
type replier struct {
	once sync.Once
	w    io.Writer
}

func (r *replier) reply(a answer) {
	r.once.Do(func() {
		b, err := json.Marshal(a)
		if err != nil {
			b, _ = json.Marshal(answer{Confined: a.Confined, Error: &childError{Message: "encode the loaded project: " + err.Error()}})
		}
		_, _ = r.w.Write(b)
	})
}

// runChild is the child's whole life: read the request, confine itself,
// load, answer. The exit code is 0 whenever an answer was written.
func runChild(stdin io.Reader, stdout io.Writer) int {
	out := &replier{w: stdout}
	var req childRequest
	if err := json.NewDecoder(io.LimitReader(stdin, 16<<20)).Decode(&req); err != nil {
		out.reply(answer{Error: &childError{Message: "read load request: " + err.Error()}})
		return 0
	}
	limitMemory(req.Memory, out)
	if req.Timeout > 0 {
		// The parent kills the child at its deadline; this ends a child
		// whose parent died first.
		time.AfterFunc(req.Timeout+time.Second, func() { os.Exit(2) })
	}

	confined, err := confineBy(req.Method, req.Root)
	if err != nil && req.Method == MethodNamespace {
		out.reply(answer{Setup: err.Error()})
		return 0
	}
	if err != nil {
		out.reply(answer{Error: &childError{Message: "confine the loader: " + err.Error()}})
		return 0
	}
	if confined == "" && req.Confinement == ConfineRequired {
		out.reply(answer{Error: &childError{Message: "this kernel has no Landlock, and the operator requires the compose loader to be confined (loader.confinement: required)"}})
		return 0
	}
	project, err := loadCompose(context.Background(), req.Request)
	if err != nil {
		out.reply(answer{Confined: confined, Error: describe(err, req.Root, confined == confinedNamespace)})
		return 0
	}
	b, err := encodeProject(project)
	if err != nil {
		out.reply(answer{Confined: confined, Error: &childError{Message: "encode the loaded project: " + err.Error()}})
		return 0
	}
	out.reply(answer{Confined: confined, Project: b})
	return 0
}

// confinedNamespace is answer.Confined for a child confined by
// enterCheckout.
const confinedNamespace = "mount namespace"

// confineBy confines this process to reading root by method and says what
// it enforced ("" for nothing).
func confineBy(method Method, root string) (string, error) {
	switch method {
	case MethodNamespace:
		if err := enterCheckout(root); err != nil {
			return "", err
		}
		return confinedNamespace, nil
	case MethodLandlock, "":
		return confine(root)
	}
	return "", nil
}

// limitMemory bounds the child's memory: a soft limit that makes the
// garbage collector work harder, an address-space limit where the build
// allows one (the race detector maps terabytes of shadow memory), and a
// watchdog that answers and exits once the runtime holds more than max.
func limitMemory(max int64, out *replier) {
	if max <= 0 {
		max = DefaultMemory
	}
	debug.SetMemoryLimit(max / 2)
	limitAddressSpace(max)
	go func() {
		sample := []metrics.Sample{{Name: "/memory/classes/total:bytes"}}
		for {
			metrics.Read(sample)
			if v := sample[0].Value; v.Kind() == metrics.KindUint64 && int64(v.Uint64()) > max {
				out.reply(answer{Error: &childError{Message: fmt.Sprintf("loading used more than %d MiB of memory (a file that never ends, such as /dev/zero, or a YAML bomb?); stopped", max>>20)}})
				os.Exit(0)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
}

// loadCompose loads the compose files with compose-go: the environment given
// and nothing of the process's, never a parent directory's files, no remote
// resources.
func loadCompose(ctx context.Context, req Request) (*projectModel, error) {
	vars := make([]string, 0, len(req.Env))
	for _, k := range slices.Sorted(maps.Keys(req.Env)) {
		vars = append(vars, k+"="+req.Env[k])
	}
	opts, err := cli.NewProjectOptions(req.Files,
		cli.WithWorkingDirectory(req.Root),
		cli.WithName(req.Name),
		cli.WithEnv(vars),
		cli.WithEnvFiles(),
		cli.WithDotEnv,
		cli.WithProfiles(req.Profiles),
		cli.WithResolvedPaths(true),
	)
	if err != nil {
		return nil, fmt.Errorf("compose options: %w", err)
	}
	p, err := opts.LoadProject(ctx)
	if err != nil {
		return nil, err
	}
	return fromProject(p)
}

// deniedPath matches the path of a refused open in an error compose-go
// flattened to text; missingPath that of a file that is not there, as the
// fs package or compose-go's dotenv package says it.
var (
	deniedPath  = regexp.MustCompile(`(?:open|read|lstat|stat) (\S+?):? permission denied`)
	missingPath = regexp.MustCompile(`(?:open|read|lstat|stat) (\S+?):? no such file or directory|couldn't (?:find|read) env file: (\S+)`)
)

// describe turns a load error into the child's answer. A read the kernel
// refused is named by its path when that path lies outside the checkout,
// and the message is not passed on: it could quote the file. In a mount
// namespace (inNamespace) a file outside the checkout is not refused but
// missing, so a missing file outside the checkout counts as refused too:
// that is what the host's file would have been.
func describe(err error, root string, inNamespace bool) *childError {
	path := failedPath(err, fs.ErrPermission, deniedPath)
	if path == "" && inNamespace {
		path = failedPath(err, fs.ErrNotExist, missingPath)
	}
	if path == "" {
		return &childError{Message: err.Error()}
	}
	if real := resolve(path); real != path && !inside(root, real) {
		// Where a link of the checkout (the PR's own) leads is the PR's
		// to know; where host links lead (/proc/<pid>/cwd) is not.
		if lexicallyInside(root, path) {
			return &childError{Message: "read refused", Denied: path + " (resolves to " + real + ")"}
		}
		return &childError{Message: "read refused", Denied: path}
	}
	if !inside(root, path) {
		return &childError{Message: "read refused", Denied: path}
	}
	return &childError{Message: err.Error()}
}

// failedPath is the path of the *fs.PathError in err that failed with
// kind, or else the one named by the first match of the text pattern.
func failedPath(err, kind error, text *regexp.Regexp) string {
	var pe *fs.PathError
	if errors.As(err, &pe) && errors.Is(pe.Err, kind) {
		return pe.Path
	}
	m := text.FindStringSubmatch(err.Error())
	for i := 1; i < len(m); i++ {
		if m[i] != "" {
			return m[i]
		}
	}
	return ""
}

// inside reports whether p, with the symlinks that can be read followed, is
// root or below it. Landlock leaves lstat and readlink alone, and in the
// mount namespace the checkout's symlinks are there to read, so the
// resolution works inside the sandbox.
func inside(root, p string) bool {
	rel, err := filepath.Rel(root, resolve(p))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../") && !filepath.IsAbs(rel)
}

// resolve follows the symlinks of the absolute path p as far as they can
// be read and appends the rest as written: a symlink to a file that is not
// there (the host's, seen from the mount namespace) resolves to the path it
// names.
func resolve(p string) string {
	if !filepath.IsAbs(p) {
		return p
	}
	todo := strings.Split(p[1:], "/")
	done := "/"
	for hops := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		next := filepath.Join(done, name)
		target, err := os.Readlink(next)
		if err != nil {
			// Not a symlink, or not there: keep the name as it is.
			done = next
			continue
		}
		if hops++; hops > 40 {
			return filepath.Join(append([]string{next}, todo...)...)
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(done, target)
		}
		todo = append(strings.Split(strings.TrimPrefix(filepath.Clean(target), "/"), "/"), todo...)
		done = "/"
	}
	return done
}

// lexicallyInside reports whether p, cleaned but with no link followed, is
// below root.
func lexicallyInside(root, p string) bool {
	return strings.HasPrefix(filepath.Clean(p), strings.TrimSuffix(root, "/")+"/")
}
