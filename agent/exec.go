package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cairnd/cairn/cluster/structs"
	"go.uber.org/zap"
)

// Remote exec (`cairn exec`, Consul's `consul exec`). The CLI stores a job
// at <prefix>/<session>/job in KV and fires the user event "_rexec" whose
// payload names the prefix and session. Each agent the event reaches
// writes, under <prefix>/<session>/<node>/:
//
//	ack          as soon as it has seen the event
//	out/<n>      output chunks (%05x-numbered, stdout and stderr combined)
//	exit         the exit code, in decimal
//	refused      (Cairn) the reason, when disable_remote_exec is set; the
//	             agent then also writes the reason as output and exit 126,
//	             so Consul's CLI shows the refusal too.
//
// Remote exec is disabled unless disable_remote_exec is false in the
// agent's configuration (Consul's default since 0.8).
const (
	remoteExecEvent  = "_rexec"
	remoteExecPrefix = "_rexec"
	// remoteExecChunkSize is the largest output chunk written to one KV
	// key: Consul's size, well under the KV value limit.
	remoteExecChunkSize = 4 << 10
	// remoteExecFlush bounds how long output waits before it is written,
	// so a slow command's output still streams.
	remoteExecFlush = 500 * time.Millisecond
	// remoteExecMaxRun kills a command that runs longer: a forgotten job
	// must not hold a process on every node forever.
	remoteExecMaxRun = 10 * time.Minute
	// remoteExecRefusedCode is the exit code of a refused job (POSIX
	// "command cannot execute").
	remoteExecRefusedCode = 126
	// remoteExecKVTimeout bounds one KV read or write of a job.
	remoteExecKVTimeout = 10 * time.Second
	// remoteExecJobAttempts: the job is written before the event is fired,
	// but a stale read may miss it briefly; retry this many times.
	remoteExecJobAttempts = 10
)

// RemoteExecPayload is the payload of the "_rexec" event (Consul's JSON).
type RemoteExecPayload struct {
	Prefix  string
	Session string
}

// RemoteExecJob is the job spec stored at <prefix>/<session>/job.
type RemoteExecJob struct {
	Command string
	Script  []byte `json:",omitempty"`
	Wait    time.Duration
}

// startRemoteExec handles one "_rexec" event in the background.
func (a *Agent) startRemoteExec(ev structs.UserEvent) {
	if a.ctx.Err() != nil {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := a.remoteExec(a.ctx, ev); err != nil {
			a.log.Warn("remote exec failed", zap.String("event", ev.ID), zap.Error(err))
		}
	}()
}

func (a *Agent) remoteExec(ctx context.Context, ev structs.UserEvent) error {
	var p RemoteExecPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		return fmt.Errorf("remote exec: bad payload: %w", err)
	}
	if p.Prefix == "" {
		p.Prefix = remoteExecPrefix
	}
	if p.Session == "" || strings.ContainsAny(p.Session, "/") || strings.Contains(p.Prefix, "..") {
		return fmt.Errorf("remote exec: bad payload %+v", p)
	}
	cfg := a.cfg
	base := p.Prefix + "/" + p.Session + "/" + cfg.NodeName + "/"
	if err := a.kvPut(ctx, base+"ack", nil); err != nil {
		return err
	}
	if a.live.Load().DisableRemoteExec {
		reason := "remote exec is disabled on " + cfg.NodeName + " (disable_remote_exec)"
		a.log.Warn("refused remote exec", zap.String("session", p.Session), zap.String("reason", reason))
		return errors.Join(
			a.kvPut(ctx, base+"refused", []byte(reason)),
			a.kvPut(ctx, base+"out/00000", []byte(reason+"\n")),
			a.kvPut(ctx, base+"exit", []byte(strconv.Itoa(remoteExecRefusedCode))),
		)
	}
	job, err := a.readJob(ctx, p.Prefix+"/"+p.Session+"/job")
	if err != nil {
		_ = a.kvPut(ctx, base+"out/00000", []byte(err.Error()+"\n"))
		_ = a.kvPut(ctx, base+"exit", []byte("1"))
		return err
	}
	a.log.Info("remote exec", zap.String("session", p.Session), zap.String("command", job.Command))

	runCtx, cancel := context.WithTimeout(ctx, remoteExecMaxRun)
	defer cancel()
	cmd := exec.CommandContext(runCtx, "/bin/sh", "-c", job.Command)
	if len(job.Script) > 0 {
		cmd = exec.CommandContext(runCtx, "/bin/sh")
		cmd.Stdin = bytes.NewReader(job.Script)
	}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.WaitDelay = time.Second
	w := &chunkWriter{put: func(n int, b []byte) error {
		return a.kvPut(ctx, fmt.Sprintf("%sout/%05x", base, n), b)
	}}
	copied := make(chan error, 1)
	go func() { copied <- w.copyFrom(pr) }()
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			fmt.Fprintf(pw, "%v\n", err)
			code = 1
		}
	}
	pw.Close()
	errs := []error{<-copied}
	errs = append(errs, a.kvPut(ctx, base+"exit", []byte(strconv.Itoa(code))))
	return errors.Join(errs...)
}

func (a *Agent) readJob(ctx context.Context, key string) (*RemoteExecJob, error) {
	for i := 0; i < remoteExecJobAttempts; i++ {
		var out structs.IndexedDirEntries
		rctx, cancel := context.WithTimeout(ctx, remoteExecKVTimeout)
		err := a.RPC(rctx, structs.MethodKVSGet, &structs.KeyRequest{Datacenter: a.cfg.Datacenter, Key: key}, &out)
		cancel()
		if err == nil && len(out.Entries) == 1 {
			var job RemoteExecJob
			if err := json.Unmarshal(out.Entries[0].Value, &job); err != nil {
				return nil, fmt.Errorf("remote exec: bad job at %s: %w", key, err)
			}
			if job.Command == "" && len(job.Script) == 0 {
				return nil, fmt.Errorf("remote exec: job at %s has no command", key)
			}
			return &job, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return nil, fmt.Errorf("remote exec: job %s not found", key)
}

func (a *Agent) kvPut(ctx context.Context, key string, val []byte) error {
	ctx, cancel := context.WithTimeout(ctx, remoteExecKVTimeout)
	defer cancel()
	var out structs.WriteResponse
	req := &structs.KVSRequest{Datacenter: a.cfg.Datacenter, Op: structs.KVSet, DirEnt: structs.DirEntry{Key: key, Value: val}}
	if err := a.RPC(ctx, structs.MethodKVSApply, req, &out); err != nil {
		return fmt.Errorf("remote exec: write %s: %w", key, err)
	}
	return nil
}

// chunkWriter batches a stream into numbered chunks of at most
// remoteExecChunkSize bytes, flushed at least every remoteExecFlush.
type chunkWriter struct {
	put func(n int, b []byte) error

	mu  sync.Mutex
	buf []byte
	n   int
	err error
}

func (w *chunkWriter) copyFrom(r io.Reader) error {
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(remoteExecFlush)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				w.flush()
			}
		}
	}()
	b := make([]byte, remoteExecChunkSize)
	for {
		n, err := r.Read(b)
		if n > 0 {
			w.mu.Lock()
			w.buf = append(w.buf, b[:n]...)
			full := len(w.buf) >= remoteExecChunkSize
			w.mu.Unlock()
			if full {
				w.flush()
			}
		}
		if err != nil {
			w.flush()
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.err
		}
	}
}

func (w *chunkWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.buf) > 0 {
		n := min(len(w.buf), remoteExecChunkSize)
		if err := w.put(w.n, w.buf[:n]); err != nil && w.err == nil {
			w.err = err
		}
		w.n++
		w.buf = w.buf[n:]
	}
}
