package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// wrkResult is what one wrk run measured.
type wrkResult struct {
	RPS    float64
	P50    time.Duration
	P99    time.Duration
	Errors int // socket errors plus non-2xx/3xx responses
	// Requests is how many requests wrk completed; BytesPerRequest what it
	// read (headers and body) divided by them.
	Requests        int
	BytesPerRequest float64
	// CPUPerRequest is the CPU time (user and system) the target's
	// processes used during the run, divided by the requests.
	CPUPerRequest time.Duration
}

var (
	reRPS    = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)
	reP50    = regexp.MustCompile(`(?m)^\s+50%\s+([0-9.]+)(us|ms|s)\s*$`)
	reP99    = regexp.MustCompile(`(?m)^\s+99%\s+([0-9.]+)(us|ms|s)\s*$`)
	reNon2xx = regexp.MustCompile(`Non-2xx or 3xx responses:\s+(\d+)`)
	reSocket = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
	reRead   = regexp.MustCompile(`(\d+) requests in [0-9.]+\w+, ([0-9.]+)([KMGT]?B) read`)
)

// runWrk runs wrk against url with host as the Host header (and any
// other headers given as "Name: value"), each
// connection sending its next request as soon as it has the answer.
func runWrk(ctx context.Context, url, host string, conns, threads int, d time.Duration, headers ...string) (wrkResult, error) {
	return runWrkScript(ctx, url, host, conns, threads, d, "", headers...)
}

// pacedScript writes a wrk Lua script that makes every connection wait
// pause after each answer before it sends the next request, and returns
// its path.
func pacedScript(dir string, pause time.Duration) (string, error) {
	path := filepath.Join(dir, fmt.Sprintf("paced-%dus.lua", pause.Microseconds()))
	script := fmt.Sprintf("-- wait after each answer (milliseconds)\nfunction delay()\n  return %d\nend\n", pause.Milliseconds())
	return path, os.WriteFile(path, []byte(script), 0o644)
}

// runWrkScript is runWrk with a wrk Lua script (none if "").
func runWrkScript(ctx context.Context, url, host string, conns, threads int, d time.Duration, script string, headers ...string) (wrkResult, error) {
	args := []string{
		"-t" + strconv.Itoa(threads),
		"-c" + strconv.Itoa(conns),
		"-d" + strconv.Itoa(int(d.Seconds())) + "s",
		"--timeout", "5s",
		"--latency",
	}
	if host != "" {
		args = append(args, "-H", "Host: "+host)
	}
	if script != "" {
		args = append(args, "-s", script)
	}
	for _, h := range headers {
		args = append(args, "-H", h)
	}
	args = append(args, url)
	out, err := exec.CommandContext(ctx, "wrk", args...).CombinedOutput()
	if err != nil {
		return wrkResult{}, fmt.Errorf("wrk %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return parseWrk(string(out))
}

func parseWrk(out string) (wrkResult, error) {
	var r wrkResult
	m := reRPS.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no Requests/sec in wrk output:\n%s", out)
	}
	r.RPS, _ = strconv.ParseFloat(m[1], 64)
	var err error
	if r.P50, err = parseLatency(reP50, out); err != nil {
		return r, err
	}
	if r.P99, err = parseLatency(reP99, out); err != nil {
		return r, err
	}
	m = reRead.FindStringSubmatch(out)
	if m == nil {
		return r, fmt.Errorf("no \"requests in ..., ... read\" in wrk output:\n%s", out)
	}
	n, _ := strconv.ParseFloat(m[1], 64)
	read, _ := strconv.ParseFloat(m[2], 64)
	// wrk counts in powers of 1024.
	read *= map[string]float64{"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30, "TB": 1 << 40}[m[3]]
	r.Requests = int(n)
	if n > 0 {
		r.BytesPerRequest = read / n
	}
	if m := reNon2xx.FindStringSubmatch(out); m != nil {
		n, _ := strconv.Atoi(m[1])
		r.Errors += n
	}
	if m := reSocket.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.Atoi(s)
			r.Errors += n
		}
	}
	return r, nil
}

func parseLatency(re *regexp.Regexp, out string) (time.Duration, error) {
	m := re.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no latency percentile %s in wrk output:\n%s", re, out)
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	unit := map[string]float64{"us": 1e3, "ms": 1e6, "s": 1e9}[m[2]]
	return time.Duration(v * unit), nil
}
