package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is Linux's USER_HZ, the unit of /proc/<pid>/stat times.
const clockTick = 10 * time.Millisecond

// procCPU is the user+system CPU time of pid so far (0 if unreadable).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the parenthesised comm: state is field 3, utime 14, stime 15.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+st) * clockTick
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuMeter reports the CPU each agent and the bench itself used between
// its creation and report, so a reader can tell a saturated host (the
// whole cluster and the load generator share its cores) from a slow leader.
type cpuMeter struct {
	c     *cluster
	start time.Time
	self  time.Duration
	procs []time.Duration
}

func newCPUMeter(c *cluster) *cpuMeter {
	m := &cpuMeter{c: c, start: time.Now(), self: selfCPU()}
	for _, a := range c.agents {
		m.procs = append(m.procs, procCPU(a.cmd.Process.Pid))
	}
	return m
}

func (m *cpuMeter) report(what string) {
	wall := time.Since(m.start)
	var b strings.Builder
	fmt.Fprintf(&b, "%s cpu over %.1fs wall (cores busy):", what, wall.Seconds())
	for i, a := range m.c.agents {
		d := procCPU(a.cmd.Process.Pid) - m.procs[i]
		fmt.Fprintf(&b, " %s=%.2f", a.name, d.Seconds()/wall.Seconds())
	}
	fmt.Fprintf(&b, " cairnbench=%.2f host_cores=%d", (selfCPU()-m.self).Seconds()/wall.Seconds(), numCPU())
	logf("%s", b.String())
}

func numCPU() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 0
	}
	return strings.Count(string(b), "\nprocessor") + 1
}
