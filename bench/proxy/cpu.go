package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat
// (100 on every Linux configuration the benchmark runs on).
const clockTicks = 100

// treeCPU returns the CPU time (user and system) used so far by the
// process pid and all its descendants (nginx's workers, for one), or 0
// when /proc cannot tell.
func treeCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	type proc struct{ ppid, ticks int }
	procs := map[int]proc{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, d := range dirs {
		b, err := os.ReadFile(d)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ... utime(14) stime(15): comm may hold
		// spaces and parentheses, so fields are counted after the last ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 13 {
			continue
		}
		id, _ := strconv.Atoi(strings.Fields(s[:i])[0])
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.Atoi(f[11])
		st, _ := strconv.Atoi(f[12])
		procs[id] = proc{ppid, ut + st}
	}
	var ticks int
	var add func(int)
	seen := map[int]bool{}
	add = func(p int) {
		if seen[p] {
			return
		}
		seen[p] = true
		ticks += procs[p].ticks
		for id, pr := range procs {
			if pr.ppid == p {
				add(id)
			}
		}
	}
	if _, ok := procs[pid]; !ok {
		return 0
	}
	add(pid)
	return time.Duration(ticks) * time.Second / clockTicks
}
