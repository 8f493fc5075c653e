//go:build !linux

package testutil

import "syscall"

// ChildProcAttr is the SysProcAttr for a process a test or benchmark
// starts. Only Linux can tie a child's life to its parent's; elsewhere the
// caller's cleanup must stop it.
func ChildProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{} }
