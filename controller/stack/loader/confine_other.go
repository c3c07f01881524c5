//go:build !linux

package loader

import (
	"errors"
	"os/exec"
)

// KernelConfinement is 0: only Linux has Landlock.
func KernelConfinement() int { return 0 }

func confine(string) (string, error) { return "", nil }

func limitAddressSpace(int64) {}

func killGroupOnCancel(*exec.Cmd) {}

// isolate fails: namespaces are Linux's.
func isolate(*exec.Cmd, bool) error {
	return errors.New("mount namespaces exist only on Linux")
}

func namespacesRefused(error) bool { return false }

func enterCheckout(string) error {
	return errors.New("mount namespaces exist only on Linux")
}
