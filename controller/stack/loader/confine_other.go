//go:build !linux

package loader

import "os/exec"

// KernelConfinement is 0: only Linux has Landlock.
func KernelConfinement() int { return 0 }

func confine(string) (string, error) { return "", nil }

func limitAddressSpace(int64) {}

func killGroupOnCancel(*exec.Cmd) {}
