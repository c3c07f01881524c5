package loader

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/landlock-lsm/go-landlock/landlock"
	llsyscall "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"
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

// killGroupOnCancel starts the child in a process group of its own (away
// from the controller's terminal signals), killed when the load is
// cancelled or times out. (No Pdeathsig: it follows
// the OS thread that started the child, not the process, and Go may retire
// that thread; a child whose parent died ends on its own timer instead.)
func killGroupOnCancel(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Process.Kill, not a signal to the group's number: exec may cancel
	// after the child was reaped, and its number reused. The child starts
	// no process of its own.
	cmd.Cancel = func() error { return cmd.Process.Kill() }
}

// isolate has cmd start in new mount, network, PID and IPC namespaces and,
// with userNS, a new user namespace in which it is root (the only uid and
// gid mapped are this process's own): root there so that it keeps, across
// exec, the capabilities it needs to build its own root (enterCheckout),
// and those capabilities reach nothing outside its namespaces. Without
// userNS (a root controller where user namespaces are disabled) the child
// is the host's root, confined by the same mount namespace. The network
// namespace has a loopback interface that is down and nothing else; the
// PID namespace keeps it from signalling the host's processes.
func isolate(cmd *exec.Cmd, userNS bool) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	a := cmd.SysProcAttr
	a.Cloneflags = unix.CLONE_NEWNS | unix.CLONE_NEWNET | unix.CLONE_NEWPID | unix.CLONE_NEWIPC
	if !userNS {
		return nil
	}
	a.Cloneflags |= unix.CLONE_NEWUSER
	a.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
	a.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	a.GidMappingsEnableSetgroups = false
	return nil
}

// namespacesRefused reports whether err, from starting a child in new
// namespaces, says the kernel does not allow them here: user namespaces
// compiled out (EINVAL), disabled or over their limit (ENOSPC, EUSERS),
// refused by a sysctl, seccomp profile or LSM (EPERM, EACCES).
func namespacesRefused(err error) bool {
	for _, errno := range []error{unix.EPERM, unix.EACCES, unix.EINVAL, unix.ENOSPC, unix.EUSERS} {
		if errors.Is(err, errno) {
			return true
		}
	}
	return false
}

// enterCheckout makes the checkout root this process's whole file system,
// read-only at its own absolute path (compose-go's resolved paths stay
// valid), in the mount namespace isolate started it in: nothing else is
// there to open, however a path was built. It must run before this
// process opens anything it needs later.
func enterCheckout(root string) error {
	if !filepath.IsAbs(root) || filepath.Clean(root) == "/" {
		return fmt.Errorf("checkout %q: want an absolute directory other than /", root)
	}
	// Nothing below may propagate to the host's mounts.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make the mounts private: %w", err)
	}
	stage, err := stagingDir(root)
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", stage, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=64k,mode=0755"); err != nil {
		return fmt.Errorf("mount the new root on %s: %w", stage, err)
	}
	inner := filepath.Join(stage, root)
	if err := os.MkdirAll(inner, 0o755); err != nil {
		return fmt.Errorf("make the checkout's path in the new root: %w", err)
	}
	if err := unix.Mount(root, inner, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind the checkout into the new root: %w", err)
	}
	if err := remountReadOnly(inner); err != nil {
		return fmt.Errorf("make the checkout read-only: %w", err)
	}
	if err := unix.Chdir(stage); err != nil {
		return fmt.Errorf("enter the new root: %w", err)
	}
	if err := swapRoot(); err != nil {
		return err
	}
	if err := remountReadOnly("/"); err != nil {
		return fmt.Errorf("make the new root read-only: %w", err)
	}
	return nil
}

// stagingDir picks the directory the new root is built on: one that
// neither holds the checkout nor lies in it (a tmpfs there would hide the
// checkout from the bind), and that exists on every system (any directory
// of /; /mnt when there is one). It is covered only in this process's
// mount namespace, and only until the new root replaces the old.
func stagingDir(root string) (string, error) {
	first, _, _ := strings.Cut(strings.TrimPrefix(filepath.Clean(root), "/"), "/")
	names := []string{"mnt"}
	entries, err := os.ReadDir("/")
	if err != nil {
		return "", fmt.Errorf("find a directory to build the new root on: %w", err)
	}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	for _, name := range names {
		if name == first {
			continue
		}
		if fi, err := os.Lstat("/" + name); err == nil && fi.IsDir() {
			return "/" + name, nil
		}
	}
	return "", errors.New("find a directory to build the new root on: / has no directory besides the checkout's")
}

// swapRoot makes the working directory the root and drops the old root
// (pivot_root(".", ".") as pivot_root(2) describes it). Where pivot_root
// cannot work (the old root is the initramfs, which is no mount point), it
// moves the working directory's mount onto / and chroots into it, as
// switch_root does: the old root stays mounted below, but no path reaches
// it.
func swapRoot() error {
	if err := unix.PivotRoot(".", "."); err != nil {
		if !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("pivot into the new root: %w", err)
		}
		if merr := unix.Mount(".", "/", "", unix.MS_MOVE, ""); merr != nil {
			return fmt.Errorf("move the new root onto / (pivot_root: %v): %w", err, merr)
		}
		if cerr := unix.Chroot("."); cerr != nil {
			return fmt.Errorf("chroot into the new root (pivot_root: %v): %w", err, cerr)
		}
	} else if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("drop the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("enter the new root: %w", err)
	}
	return nil
}

// remountReadOnly makes the mount at dir read-only, nosuid, nodev and
// noexec. It keeps the mount's atime flags: a user namespace may not change
// those of a mount it inherited.
func remountReadOnly(dir string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return err
	}
	flags := uintptr(unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)
	for stFlag, msFlag := range map[int64]uintptr{unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME} {
		if int64(st.Flags)&stFlag != 0 {
			flags |= msFlag
		}
	}
	return unix.Mount("", dir, "", flags, "")
}
