//go:build unix

package checks

import (
	"os/exec"
	"syscall"
)

// killProcessGroup makes the timeout kill the whole process group, so
// `sh -c "sleep 100"` does not leave the sleep behind.
func killProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		if cmd.Process == nil {
			return nil
		}
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
}
