//go:build !unix

package checks

import "os/exec"

// killProcessGroup: elsewhere only the direct child is killed.
func killProcessGroup(*exec.Cmd) {}
