package checks

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"sync"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
)

// scriptWaitDelay bounds how long a timed-out script's grandchildren may
// hold its output pipes open after the kill before Wait gives up on them.
const scriptWaitDelay = time.Second

// Script runs a command (no shell unless Args says so): exit 0 is passing,
// 1 warning, anything else (or a failure to start, or the timeout)
// critical. Output is stdout and stderr interleaved, tail-truncated to
// CheckBufSize.
type Script struct {
	Args []string
}

// Probe runs the command once.
func (s *Script) Probe(ctx context.Context) (string, string) {
	if len(s.Args) == 0 {
		return structs.HealthCritical, "script check has no args"
	}
	out := &tailBuffer{}
	cmd := exec.CommandContext(ctx, s.Args[0], s.Args[1:]...)
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.WaitDelay = scriptWaitDelay
	killProcessGroup(cmd)
	start := time.Now()
	err := cmd.Run()
	output := out.String()
	if ctx.Err() == context.DeadlineExceeded {
		return structs.HealthCritical, fmt.Sprintf("Timed out (%s) running check", time.Since(start).Round(time.Millisecond))
	}
	if err == nil {
		return structs.HealthPassing, output
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		if exitErr.ExitCode() == 1 {
			return structs.HealthWarning, output
		}
		return structs.HealthCritical, output
	}
	return structs.HealthCritical, truncateHead(fmt.Sprintf("%v\n%s", err, output))
}

// tailBuffer keeps the last CheckBufSize bytes written to it. Stdout and
// stderr write from separate goroutines, hence the lock.
type tailBuffer struct {
	mu    sync.Mutex
	buf   []byte
	total int64
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total += int64(len(p))
	b.buf = append(b.buf, p...)
	if len(b.buf) > CheckBufSize {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-CheckBufSize:]...)
	}
	return len(p), nil
}

// String returns the kept tail, prefixed like Consul's when bytes were
// dropped.
func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.total > int64(len(b.buf)) {
		return fmt.Sprintf("Captured %d of %d bytes\n...\n%s", len(b.buf), b.total, b.buf)
	}
	return string(b.buf)
}
