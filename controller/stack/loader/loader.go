// Package loader loads an untrusted compose project in a confined child
// process and hands back the model compose-go resolved.
//
// compose-go reads files while it loads: include, extends.file, env_file,
// label_file, .env. A hostile compose file can point any of them anywhere,
// through tags, merge keys, interpolation or symlinks, and whatever
// compose-go reads ends up in the model (a service's environment, an image
// tag) or in an error message the pull request sees. Checking paths before
// loading is a second parse of the same bytes, and every disagreement between
// the two parsers is a hole. So the controller does not load PR files in its
// own process: it starts itself again as a child that
//
//   - can read only the checkout, enforced by the kernel: with Landlock
//     where the kernel has it (reading /etc/hostname or /proc/self/environ
//     fails with EACCES whatever path compose-go was tricked into
//     building), else in a mount namespace whose root holds nothing but the
//     checkout, read-only at its own path (there is no /etc/hostname to
//     read: ENOENT),
//   - can open no TCP connection and bind no port (Landlock ABI 4+, or a
//     network namespace of its own with no interface up),
//   - has an empty environment (the controller's tokens are not there to
//     interpolate),
//   - has its memory bounded (RLIMIT_AS and a heap watchdog), its run time
//     bounded (killed after Options.Timeout) and its output bounded,
//
// and writes the resolved project as JSON on stdout. A read outside the
// checkout, a crash, a timeout or an oversized answer becomes an *Error
// naming the file; the controller and the proxy in the parent keep serving.
//
// Any binary that imports this package can act as the child: an init
// function recognises the child's environment marker and runs the child
// instead of main (the re-exec pattern of moby's pkg/reexec). The slipway
// binary and every test binary therefore load through themselves.
package loader

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
)

// Confinement says how strictly the child's file reads must be confined.
type Confinement string

const (
	// ConfineAuto confines with Landlock where the kernel has it, else in
	// a mount namespace, and loads unconfined (with a warning) where the
	// kernel allows neither (no Landlock, and user namespaces disabled or
	// refused, as in a container under Docker's default seccomp profile).
	ConfineAuto Confinement = "auto"
	// ConfineRequired refuses to load when the kernel cannot confine reads.
	ConfineRequired Confinement = "required"
)

// Method says how the child's reads are confined.
type Method string

const (
	// MethodAuto uses Landlock when the kernel has it (KernelConfinement
	// > 0), else a mount namespace.
	MethodAuto Method = "auto"
	// MethodLandlock uses Landlock only; where the kernel has none, the
	// load runs unconfined (ConfineAuto) or is refused (ConfineRequired).
	MethodLandlock Method = "landlock"
	// MethodNamespace starts the child in new user, mount, network, PID and
	// IPC namespaces, in which it makes the checkout its only file system
	// (a root controller whose kernel refuses user namespaces makes the
	// others without one). Where the kernel refuses the namespaces the load
	// fails: there is no fallback from a method asked for by name.
	MethodNamespace Method = "namespace"
)

// Options bound the child. Zero fields take the defaults.
type Options struct {
	// Executable is the program started as the child; default os.Executable().
	Executable string
	// Timeout bounds one load, start to answer. Default 20s.
	Timeout time.Duration
	// Memory bounds the child's memory in bytes. Default 1 GiB.
	Memory int64
	// Output bounds the child's answer in bytes. Default 4 MiB: the
	// resolved form of a large real project is a few hundred KiB, and the
	// parent decodes the answer in its own memory.
	Output int64
	// Confinement: ConfineRequired (default: fail closed) or ConfineAuto.
	Confinement Confinement
	// Method: MethodAuto (default), MethodLandlock or MethodNamespace.
	Method Method
	// Log receives a warning when a load runs unconfined. Default: discard.
	Log *slog.Logger
}

// Defaults of Options.
const (
	DefaultTimeout = 20 * time.Second
	DefaultMemory  = 1 << 30
	DefaultOutput  = 4 << 20
)

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Memory <= 0 {
		o.Memory = DefaultMemory
	}
	if o.Output <= 0 {
		o.Output = DefaultOutput
	}
	if o.Confinement == "" {
		o.Confinement = ConfineRequired
	}
	if o.Method == "" {
		o.Method = MethodAuto
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return o
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	switch o.Confinement {
	case "", ConfineAuto, ConfineRequired:
	default:
		return fmt.Errorf("loader confinement %q: want %q or %q", o.Confinement, ConfineAuto, ConfineRequired)
	}
	switch o.Method {
	case "", MethodAuto, MethodLandlock, MethodNamespace:
	default:
		return fmt.Errorf("loader confinement method %q: want %q, %q or %q", o.Method, MethodAuto, MethodLandlock, MethodNamespace)
	}
	if o.Memory != 0 && o.Memory < 64<<20 {
		return fmt.Errorf("loader memory %d bytes: want at least 64 MiB", o.Memory)
	}
	return nil
}

// Request is what one load resolves.
type Request struct {
	// Root is the checkout, absolute with symlinks resolved: the only
	// directory the child may read.
	Root string `json:"root"`
	// Name is the project name (already normalized).
	Name string `json:"name"`
	// Files are the compose files, absolute, inside Root.
	Files []string `json:"files"`
	// Env is the whole interpolation environment.
	Env map[string]string `json:"env"`
	// Profiles to enable.
	Profiles []string `json:"profiles,omitempty"`
}

// Loader loads compose projects in confined children. The zero value is
// not usable; call New.
type Loader struct {
	opts Options
	// landlockABI and isolate are KernelConfinement and isolate; tests
	// replace them to act out kernels without Landlock or namespaces.
	landlockABI func() int
	isolate     func(cmd *exec.Cmd, userNS bool) error
}

// New returns a Loader with opts (defaults filled in).
func New(opts Options) (*Loader, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own executable to start the confined loader: %w", err)
		}
		opts.Executable = exe
	}
	return &Loader{opts: opts, landlockABI: KernelConfinement, isolate: isolate}, nil
}

// Error is a load that failed in the child: a compose error, a read the
// kernel refused, a crash, a timeout or an oversized answer.
type Error struct {
	// File is the file the failure concerns, when known: the file the
	// kernel refused, or the compose files of the request.
	File string
	// Denied is true when the kernel refused a read outside the checkout.
	Denied bool
	// Reason says what happened.
	Reason string
}

func (e *Error) Error() string {
	if e.File != "" {
		return fmt.Sprintf("load compose project: %s: %s", e.File, e.Reason)
	}
	return "load compose project: " + e.Reason
}

// answer is the child's reply on stdout.
type answer struct {
	Project []byte `json:"project,omitempty"` // encodeProject

	Error *childError `json:"error,omitempty"`
	// Confined names the confinement the child applied ("landlock ABI 7",
	// "mount namespace", or "" when it ran unconfined).
	Confined string `json:"confined"`
	// Setup says why the child could not confine itself in the namespaces
	// it was started in (say, an LSM that denies mounting there); the
	// parent may then fall back as it does when the namespaces cannot be
	// created at all.
	Setup string `json:"setup,omitempty"`
}

type childError struct {
	Message string `json:"message"`
	// Denied is the path whose read the kernel refused, if that is what
	// failed the load.
	Denied string `json:"denied,omitempty"`
}

// Load resolves req in a confined child and returns the project compose-go
// built from it.
func (l *Loader) Load(ctx context.Context, req Request) (*types.Project, error) {
	ctx, cancel := context.WithTimeout(ctx, l.opts.Timeout)
	defer cancel()
	a, err := l.runConfined(ctx, req)
	if err != nil {
		return nil, err
	}
	if a.Error != nil {
		if a.Error.Denied != "" {
			return nil, &Error{File: a.Error.Denied, Denied: true, Reason: "compose-go tried to read this file, which is outside the checkout; " + refusal(a.Confined)}
		}
		return nil, &Error{File: relFiles(req), Reason: a.Error.Message}
	}
	p, err := decodeProject(a.Project)
	if err != nil {
		return nil, fmt.Errorf("decode the project the confined loader resolved: %w", err)
	}
	return p, nil
}

// runConfined runs the child confined by the method Options ask for or the
// kernel allows; where the kernel allows neither Landlock nor namespaces it
// runs it unconfined with a warning (ConfineAuto, MethodAuto) or refuses.
func (l *Loader) runConfined(ctx context.Context, req Request) (answer, error) {
	method := l.method()
	if method != MethodNamespace {
		a, err := l.run(ctx, req, method, false)
		if err == nil && a.Confined == "" {
			l.opts.Log.Warn("compose project loaded without kernel confinement: this kernel has no Landlock, so compose-go could read files outside the checkout; only the pre-load path checks stand in the way", "project", req.Name)
		}
		return a, err
	}
	a, err := l.runNamespaced(ctx, req)
	var refused *namespaceError
	switch {
	case !errors.As(err, &refused):
		return a, err
	case l.opts.Method != MethodAuto:
		return answer{}, &Error{File: relFiles(req), Reason: "confine the loader in a mount namespace: " + refused.Error()}
	case l.opts.Confinement == ConfineRequired:
		return answer{}, &Error{File: relFiles(req), Reason: "this kernel has no Landlock and refused the loader a mount namespace (" + refused.Error() + "), and the operator requires the compose loader to be confined (loader.confinement: required)"}
	}
	l.opts.Log.Warn("compose project loaded without kernel confinement: this kernel has no Landlock and refused the loader a mount namespace, so compose-go could read files outside the checkout; only the pre-load path checks stand in the way", "project", req.Name, "namespaces", refused.Error())
	return l.run(ctx, req, methodNone, false)
}

// runNamespaced runs the child in namespaces: with a user namespace of its
// own, or, for a root controller where the kernel refuses that, without
// one (root needs none to make the others).
func (l *Loader) runNamespaced(ctx context.Context, req Request) (answer, error) {
	a, err := l.run(ctx, req, MethodNamespace, true)
	var inUserNS, asRoot *namespaceError
	if !errors.As(err, &inUserNS) || os.Geteuid() != 0 {
		return a, err
	}
	a, err = l.run(ctx, req, MethodNamespace, false)
	if errors.As(err, &asRoot) {
		return a, &namespaceError{fmt.Errorf("in a user namespace: %w; as root without one: %w", inUserNS.err, asRoot.err)}
	}
	return a, err
}

// NamespaceConfinement loads a one-service project in a child confined by
// MethodNamespace, end to end: nil means that this kernel and this
// process's seccomp profile and LSMs let the loader confine itself in a
// mount namespace, so that a kernel without Landlock still confines it.
// The error says what refused. executable is the program started as the
// child ("": this one).
func NamespaceConfinement(ctx context.Context, executable string) error {
	l, err := New(Options{Method: MethodNamespace, Executable: executable})
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "slipway-loader-probe-")
	if err != nil {
		return fmt.Errorf("make a checkout to probe the mount namespace with: %w", err)
	}
	defer os.RemoveAll(dir)
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return err
	}
	compose := filepath.Join(dir, "compose.yaml")
	if err := os.WriteFile(compose, []byte("services:\n  probe:\n    image: scratch\n"), 0o644); err != nil {
		return fmt.Errorf("make a checkout to probe the mount namespace with: %w", err)
	}
	_, err = l.Load(ctx, Request{Root: dir, Name: "probe", Files: []string{compose}})
	return err
}

// methodNone runs the child unconfined: the fallback of MethodAuto where
// the kernel allows neither Landlock nor namespaces.
const methodNone Method = "none"

// method is the confinement the child is started with.
func (l *Loader) method() Method {
	if l.opts.Method != MethodAuto {
		return l.opts.Method
	}
	if l.landlockABI() > 0 {
		return MethodLandlock
	}
	return MethodNamespace
}

// refusal says what kept a file from compose-go under confined.
func refusal(confined string) string {
	if confined == confinedNamespace {
		return "the loader's mount namespace holds nothing but the checkout, so the file was not there to read"
	}
	return "the kernel refused (Landlock)"
}

// namespaceError is a child the kernel would not start in new namespaces,
// or that could not confine itself in them: the kernel has user namespaces
// disabled, or a seccomp profile or LSM refuses them.
type namespaceError struct{ err error }

func (e *namespaceError) Error() string { return e.err.Error() }
func (e *namespaceError) Unwrap() error { return e.err }

// run starts one child confined by method (by MethodNamespace: with a user
// namespace of its own when userNS) and returns its answer. A timeout, a
// crash or an oversized answer is an *Error; namespaces the kernel refuses
// are a *namespaceError.
func (l *Loader) run(ctx context.Context, req Request, method Method, userNS bool) (answer, error) {
	in, err := json.Marshal(childRequest{Request: req, Memory: l.opts.Memory, Timeout: l.opts.Timeout, Confinement: l.opts.Confinement, Method: method})
	if err != nil {
		return answer{}, fmt.Errorf("encode load request: %w", err)
	}
	cmd := exec.CommandContext(ctx, l.opts.Executable)
	cmd.Env = childEnviron()
	cmd.Dir = "/"
	cmd.Stdin = bytes.NewReader(in)
	out := &limitedBuffer{max: l.opts.Output}
	errOut := &limitedBuffer{max: 64 << 10}
	cmd.Stdout = out
	cmd.Stderr = errOut
	killGroupOnCancel(cmd)
	cmd.WaitDelay = 2 * time.Second
	if method == MethodNamespace {
		if err := l.isolate(cmd, userNS); err != nil {
			return answer{}, &namespaceError{err}
		}
	}
	files := relFiles(req)
	if err := cmd.Start(); err != nil {
		if err := l.stopped(ctx, files); err != nil {
			return answer{}, err
		}
		if method == MethodNamespace && namespacesRefused(err) {
			return answer{}, &namespaceError{err}
		}
		return answer{}, fmt.Errorf("start the confined loader: %w", err)
	}
	runErr := cmd.Wait()
	if err := l.stopped(ctx, files); err != nil {
		return answer{}, err
	}
	if out.overflow {
		return answer{}, &Error{File: files, Reason: fmt.Sprintf("the resolved project is larger than %d bytes", l.opts.Output)}
	}
	var a answer
	if err := json.Unmarshal(out.Bytes(), &a); err != nil {
		reason := "the confined loader ended without an answer"
		if runErr != nil {
			reason += " (" + runErr.Error() + ")"
		}
		if tail := crashLine(errOut.Bytes()); tail != "" {
			reason += ": " + tail
		}
		return answer{}, &Error{File: files, Reason: reason}
	}
	if a.Setup != "" {
		return answer{}, &namespaceError{errors.New(a.Setup)}
	}
	return a, nil
}

// childEnviron is the child's whole environment: the marker, and in race
// builds (tests) a race runtime that does not sleep a second at exit.
func childEnviron() []string {
	env := []string{childEnv + "=1"}
	if raceBuild {
		env = append(env, "GORACE=atexit_sleep_ms=0")
	}
	return env
}

// stopped is the error of a load whose context ended: an *Error for the
// timeout, the context's error for a cancellation, nil while it runs.
func (l *Loader) stopped(ctx context.Context, files string) error {
	switch err := ctx.Err(); {
	case errors.Is(err, context.DeadlineExceeded):
		return &Error{File: files, Reason: fmt.Sprintf("took longer than %s (a file that never ends, such as a FIFO or a device?); stopped", l.opts.Timeout)}
	case err != nil:
		return err
	}
	return nil
}

func relFiles(req Request) string {
	var b bytes.Buffer
	for i, f := range req.Files {
		if i > 0 {
			b.WriteString(", ")
		}
		if rel, ok := cutPrefixDir(f, req.Root); ok {
			f = rel
		}
		b.WriteString(f)
	}
	return b.String()
}

func cutPrefixDir(p, dir string) (string, bool) {
	if len(p) > len(dir)+1 && p[:len(dir)] == dir && p[len(dir)] == '/' {
		return p[len(dir)+1:], true
	}
	return p, false
}

// crashLine picks what the child said last before it died: the Go
// runtime's "fatal error:" or "panic:" line when there is one (the goroutine
// dump after it says nothing to a user), else the first line.
func crashLine(b []byte) string {
	var first string
	for _, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if first == "" {
			first = string(line)
		}
		if bytes.HasPrefix(line, []byte("fatal error:")) || bytes.HasPrefix(line, []byte("panic:")) || bytes.HasPrefix(line, []byte("runtime:")) {
			first = string(line)
			break
		}
	}
	if len(first) > 300 {
		first = first[:300]
	}
	return first
}

// limitedBuffer keeps at most max bytes and remembers that more came. It
// keeps accepting writes so that the child is never blocked on a full pipe.
type limitedBuffer struct {
	bytes.Buffer
	max      int64
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := b.max - int64(b.Len())
	if int64(len(p)) > room {
		b.overflow = true
		if room > 0 {
			b.Buffer.Write(p[:room])
		}
		return len(p), nil
	}
	return b.Buffer.Write(p)
}

var _ io.Writer = (*limitedBuffer)(nil)

var errNoProject = errors.New("no project in the answer")
