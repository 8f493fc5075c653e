// Package agenttest runs real `cairn` processes for multi-process tests:
// it builds the binary once per test binary run into a temp dir, picks
// free loopback ports from the kernel, starts agents with their own data
// dirs and stops (or SIGKILLs) them. Every process is killed in t.Cleanup.
package agenttest
