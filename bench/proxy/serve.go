package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// buildSlipway builds ./cmd/slipway into dir and returns the binary's path.
func buildSlipway(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "slipway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/slipway")
	cmd.Dir = moduleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/slipway: %w\n%s", err, out)
	}
	return bin, nil
}

// serveConfigYAML is the slipway.yaml of the benchmark's `slipway serve`:
// local mode (no github section), the run's own domain, a loopback port, no
// firewall (the benchmark leaves the host's iptables alone; the rules
// filter traffic from preview networks to the host, not the proxy's own
// connections).
func serveConfigYAML(domain, stateDir string) string {
	return fmt.Sprintf("domain: %s\nlisten:\n  http: 127.0.0.1:0\nfirewall: \"off\"\nstate_dir: %s\n", domain, stateDir)
}

// startServe runs `slipway serve` from bin in local mode, waits until it
// routes host to the backend, and returns its HTTP address. Its log goes
// to <dir>/serve.log.
func startServe(ctx context.Context, bin, dir, domain, host, path string, want []byte) (addr string, pid int, stop func(), err error) {
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return "", 0, nil, err
	}
	cfgPath := filepath.Join(dir, "slipway.yaml")
	if err := os.WriteFile(cfgPath, []byte(serveConfigYAML(domain, filepath.Join(dir, "state"))), 0o600); err != nil {
		return "", 0, nil, err
	}
	logPath := filepath.Join(dir, "serve.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return "", 0, nil, err
	}
	cmd := exec.Command(bin, "serve", "--config", cfgPath, "--log-format", "json")
	// Inherited SLIPWAY_* variables would override slipway.yaml.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SLIPWAY_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", 0, nil, fmt.Errorf("start slipway serve: %w", err)
	}
	logf.Close()
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	stop = func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	fail := func(err error) (string, int, func(), error) {
		stop()
		return "", 0, nil, fmt.Errorf("%w; serve's log:\n%s", err, tail(logPath, 20))
	}
	deadline := time.Now().Add(time.Minute)
	for addr == "" {
		select {
		case <-done:
			return fail(fmt.Errorf("slipway serve exited at start"))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("slipway serve did not say where it listens"))
		}
		addr = listeningAddr(logPath)
	}
	// The observer fills the table from Docker shortly after the listener
	// opens.
	var last error
	for time.Now().Before(deadline) {
		if last = checkBody(ctx, addr, host, path, want); last == nil {
			return addr, cmd.Process.Pid, stop, nil
		}
		select {
		case <-done:
			return fail(fmt.Errorf("slipway serve exited"))
		case <-ctx.Done():
			return fail(ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fail(fmt.Errorf("slipway serve never routed %s to the backend: %w", host, last))
}

// listeningAddr finds the "slipway serving" line of serve's JSON log.
func listeningAddr(logPath string) string {
	f, err := os.Open(logPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			Msg  string `json:"msg"`
			HTTP string `json:"http"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "slipway serving" && l.HTTP != "" {
			return l.HTTP
		}
	}
	return ""
}

func tail(path string, n int) string {
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

// checkBody fetches path from addr with host as the Host header and checks
// that the answer is a 200 carrying exactly the backend's body.
func checkBody(ctx context.Context, addr, host, path string, want []byte, headers ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return err
	}
	req.Host = host
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	resp, err := tr.RoundTrip(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("read body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s (Host %s): status %d, want 200", path, host, resp.StatusCode)
	}
	if string(got) != string(want) {
		return fmt.Errorf("GET %s (Host %s): a %d-byte body that is not the backend's (%d bytes)", path, host, len(got), len(want))
	}
	return nil
}
