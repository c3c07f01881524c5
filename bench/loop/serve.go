package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"gopkg.in/yaml.v3"
)

// serveProc is a running `slipway serve`.
type serveProc struct {
	cmd     *exec.Cmd
	addr    string // host:port of its HTTP listener
	version string
	logPath string
	dbPath  string

	done     chan struct{} // closed when the process has exited
	followed chan struct{} // closed when its whole log has been read
	waitErr  error

	mu       sync.Mutex
	problems []string // warnings and errors it logged
	stopped  bool
}

// serveConfig is the slipway.yaml the benchmark writes: serve's defaults
// except what a test installation must set.
type serveConfig struct {
	Domain string `yaml:"domain"`
	Listen struct {
		HTTP string `yaml:"http"`
	} `yaml:"listen"`
	GitHub struct {
		APIURL        string `yaml:"api_url"`
		Token         string `yaml:"token"`
		WebhookSecret string `yaml:"webhook_secret"`
	} `yaml:"github"`
	Repos []struct {
		Name string `yaml:"name"`
	} `yaml:"repos"`
	StateDir  string `yaml:"state_dir"`
	Dashboard struct {
		Token string `yaml:"token,omitempty"`
	} `yaml:"dashboard"`
}

// buildSlipway builds ./cmd/slipway into dir and returns the binary's path.
func buildSlipway(ctx context.Context, root, dir string) (string, error) {
	bin := filepath.Join(dir, "slipway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/slipway")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build ./cmd/slipway: %w\n%s", err, out)
	}
	return bin, nil
}

// startServe writes the configuration into dir and starts serve, returning
// once it listens.
func startServe(ctx context.Context, bin, dir, stateDir string, sc serveConfig, extraEnv []string, verbose bool) (*serveProc, error) {
	sc.StateDir = stateDir
	sc.Listen.HTTP = "127.0.0.1:0"
	b, err := yaml.Marshal(sc)
	if err != nil {
		return nil, fmt.Errorf("encode slipway.yaml: %w", err)
	}
	cfgPath := filepath.Join(dir, "slipway.yaml")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		return nil, fmt.Errorf("write slipway.yaml: %w", err)
	}
	version, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s version: %w", bin, err)
	}

	p := &serveProc{
		version:  strings.TrimSpace(strings.SplitN(string(version), "\n", 2)[0]),
		logPath:  filepath.Join(dir, "serve.log"),
		dbPath:   filepath.Join(sc.StateDir, "slipway.db"),
		done:     make(chan struct{}),
		followed: make(chan struct{}),
	}
	logFile, err := os.Create(p.logPath)
	if err != nil {
		return nil, fmt.Errorf("create serve log: %w", err)
	}
	// Not CommandContext: serve is stopped deliberately (SIGINT, then
	// SIGKILL), never killed by a cancelled context mid-teardown.
	p.cmd = exec.Command(bin, "serve", "--config", cfgPath, "--log-format", "json", "--log-level", "info")
	p.cmd.Env = serveEnv(os.Environ(), extraEnv)
	// Its own process group: a Ctrl-C reaches the benchmark, which stops
	// serve in order.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Straight into a file, not a pipe: a benchmark slow to read a pipe
	// would block serve's logging, and with it the handlers that log.
	p.cmd.Stdout, p.cmd.Stderr = logFile, logFile
	if err := p.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start slipway serve: %w", err)
	}
	logFile.Close() // the child has its own descriptor
	listening := make(chan string, 1)
	go p.follow(listening, verbose)
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.done)
	}()

	t := time.NewTimer(time.Minute)
	defer t.Stop()
	select {
	case p.addr = <-listening:
		return p, nil
	case <-p.done:
		return nil, fmt.Errorf("slipway serve exited at start (%v); its log:\n%s", p.waitErr, tailFile(p.logPath, 30))
	case <-t.C:
	case <-ctx.Done():
	}
	p.stop()
	return nil, fmt.Errorf("slipway serve did not start listening; its log:\n%s", tailFile(p.logPath, 30))
}

// follow reads serve's log file as it grows, until serve has exited.
func (p *serveProc) follow(listening chan<- string, verbose bool) {
	defer close(p.followed)
	f, err := os.Open(p.logPath)
	if err != nil {
		return
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var partial []byte
	exited := false
	for {
		chunk, err := r.ReadBytes('\n')
		partial = append(partial, chunk...)
		if err == nil {
			line := partial[:len(partial)-1]
			if verbose {
				fmt.Fprintf(os.Stderr, "serve: %s\n", line)
			}
			p.scan(line, listening)
			partial = partial[:0]
			continue
		}
		if exited {
			return
		}
		select {
		case <-p.done:
			exited = true // one more pass reads what it wrote last
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// serveEnv is the environment for serve: the benchmark's without any
// SLIPWAY_* variable (they would override slipway.yaml), plus extra.
func serveEnv(env, extra []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "SLIPWAY_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// logLine is the part of serve's JSON log lines the benchmark reads.
type logLine struct {
	Level string `json:"level"`
	Msg   string `json:"msg"`
	HTTP  string `json:"http"`
}

// scan reads one log line: the listening address, and warnings and errors.
func (p *serveProc) scan(line []byte, listening chan<- string) {
	var l logLine
	if json.Unmarshal(line, &l) != nil {
		return
	}
	if l.Msg == "slipway serving" && l.HTTP != "" {
		select {
		case listening <- l.HTTP:
		default:
		}
	}
	if l.Level == "WARN" || l.Level == "ERROR" {
		p.mu.Lock()
		p.problems = append(p.problems, string(line))
		p.mu.Unlock()
	}
}

// logProblems returns the warnings and errors serve has logged (all of
// them once it has stopped).
func (p *serveProc) logProblems() []string {
	select {
	case <-p.done:
		<-p.followed
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.problems...)
}

// stop ends serve: SIGINT (it shuts down gracefully), SIGKILL 30 s later.
func (p *serveProc) stop() error {
	p.mu.Lock()
	if p.stopped {
		p.mu.Unlock()
		return nil
	}
	p.stopped = true
	p.mu.Unlock()
	select {
	case <-p.done:
		return fmt.Errorf("slipway serve had exited on its own: %v", p.waitErr)
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
		var ee *exec.ExitError
		if p.waitErr != nil && !errors.As(p.waitErr, &ee) {
			return fmt.Errorf("slipway serve: %w", p.waitErr)
		}
		if p.waitErr != nil {
			return fmt.Errorf("slipway serve exited with %v at shutdown", p.waitErr)
		}
		return nil
	case <-t.C:
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
		return errors.New("slipway serve did not stop within 30s of SIGINT: killed")
	}
}

// tailFile returns the last n lines of a file.
func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
