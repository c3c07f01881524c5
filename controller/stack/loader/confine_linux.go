package loader

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"
)

// KernelConfinement says what this kernel lets the loader enforce: the
// Landlock ABI version, 0 when there is none.
func KernelConfinement() int {
	v, err := llsyscall.LandlockGetABIVersion()
	if err != nil || v < 1 {
		return 0
	}
	return v
}

// confine restricts this process to reading root: no other file may be
// opened, nothing may be written, created or executed, and (ABI 4+) no TCP
// port bound or connected. It returns a description of what it enforced,
// "" when the kernel has no Landlock.
func confine(root string) (string, error) {
	abi := KernelConfinement()
	if abi == 0 {
		return "", nil
	}
	readOnly := landlock.PathAccess(llsyscall.AccessFSReadFile|llsyscall.AccessFSReadDir, root)
	if err := landlock.V7.BestEffort().Restrict(readOnly); err != nil {
		return "", fmt.Errorf("landlock: %w", err)
	}
	return "landlock ABI " + strconv.Itoa(abi), nil
}

// limitAddressSpace caps the address space at what the process has mapped
// now plus max, so that a runaway allocation fails in the kernel. Race
// builds map terabytes of shadow memory and are left to the watchdog.
func limitAddressSpace(max int64) {
	if raceBuild {
		return
	}
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return
	}
	fields := strings.Fields(string(b))
	if len(fields) == 0 {
		return
	}
	pages, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return
	}
	limit := uint64(pages*int64(os.Getpagesize()) + max)
	_ = syscall.Setrlimit(syscall.RLIMIT_AS, &syscall.Rlimit{Cur: limit, Max: limit})
}

// killGroupOnCancel starts the child in a process group of its own, killed
// whole when the load is cancelled or times out. (No Pdeathsig: it follows
// the OS thread that started the child, not the process, and Go may retire
// that thread; a child whose parent died ends on its own timer instead.)
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}
