package testutil

import "syscall"

// ChildProcAttr is the SysProcAttr for a process a test or benchmark
// starts: on Linux the kernel kills it when its parent dies (a test timeout
// or a kill -9 skips every cleanup), so no agent outlives its test.
func ChildProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
