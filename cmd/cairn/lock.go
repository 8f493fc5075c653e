package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Lock protocol constants shared with Consul's client library, so `cairn
// lock` and programs using consul/api's Lock and Semaphore contend for
// the same keys.
const (
	lockKeyName        = ".lock"
	lockFlagValue      = 0x2ddccbc058a50c18
	semaphoreFlagValue = 0xe0f69a2baa414de0
	// lockSessionTTL is the session's TTL (consul lock's); it is renewed
	// every half TTL.
	lockSessionTTL = 15 * time.Second
	// lockWait is the blocking-query wait while contending or watching.
	lockWait = 10 * time.Second
	// lockRetryPause spaces retries after an error or a refused acquire
	// with no holder (a lock-delay is running).
	lockRetryPause = time.Second
	// childGrace is how long a child has between SIGTERM and SIGKILL.
	childGrace = 5 * time.Second
)

// LockCmd is `cairn lock`, Consul's `consul lock`.
type LockCmd struct {
	Limit         int           `name:"n" short:"n" default:"1" help:"How many holders may run at once: 1 is a lock, more a semaphore."`
	Name          string        `help:"Name of the session (default: the command and prefix)."`
	Timeout       time.Duration `default:"0s" help:"Give up if the lock is not acquired within this time (0: wait forever)."`
	Shell         bool          `default:"true" negatable:"" help:"Run the command through /bin/sh -c."`
	ChildExitCode bool          `name:"child-exit-code" help:"Exit 2 if the child exits with an error."`
	MonitorRetry  int           `name:"monitor-retry" default:"3" help:"Errors tolerated in a row while watching the lock (agent restarts)."`
	Verbose       bool          `help:"Print what the lock does."`
	Prefix        string        `arg:"" help:"KV prefix of the lock."`
	Command       []string      `arg:"" passthrough:"" help:"Command to run while holding the lock."`
}

func (c *LockCmd) Run(g *Globals) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	return c.run(ctx, newAPIClient(g), g.stdout(), g.stderr())
}

// semaphoreLock is Consul's semaphore lock record (its .lock key).
type semaphoreLock struct {
	Limit   int
	Holders map[string]bool
}

// locker holds one lock or semaphore slot for one session.
type locker struct {
	api     *apiClient
	prefix  string // without trailing slash
	limit   int
	session string
	stderr  io.Writer
	verbose bool

	lost     chan struct{} // closed (markLost) when the lock is gone
	lostOnce sync.Once
}

func (l *locker) logf(format string, args ...any) {
	if l.verbose {
		fmt.Fprintf(l.stderr, format+"\n", args...)
	}
}

func (l *locker) lockKey() string { return l.prefix + "/" + lockKeyName }

func (c *LockCmd) run(ctx context.Context, api *apiClient, stdout, stderr io.Writer) error {
	prefix := strings.Trim(c.Prefix, "/")
	switch {
	case prefix == "":
		return fail(1, "Error! Missing PREFIX argument")
	case len(c.Command) == 0:
		return fail(1, "Error! Missing command to run")
	case c.Limit < 1:
		return fail(1, "Error! -n must be at least 1")
	case c.Timeout < 0:
		return fail(1, "Error! -timeout must not be negative")
	}
	name := c.Name
	if name == "" {
		name = fmt.Sprintf("Cairn lock for '%s' at '%s'", strings.Join(c.Command, " "), prefix)
	}
	l := &locker{api: api, prefix: prefix, limit: c.Limit, stderr: stderr, verbose: c.Verbose, lost: make(chan struct{})}
	// A semaphore's contender keys go with their session (consul/api's
	// semaphore sessions delete); a lock's key stays, released.
	behavior := "release"
	if c.Limit > 1 {
		behavior = "delete"
	}
	if err := l.createSession(ctx, name, behavior); err != nil {
		return fail(1, "Error! Creating the lock session failed: %v", err)
	}
	// The session goes on every exit: its keys are released with it.
	defer l.destroySession()
	// The renew and monitor goroutines end with their contexts, cancelled
	// by the defers below, which run before this wait.
	var wg sync.WaitGroup
	defer wg.Wait()

	lost := l.lost
	renewCtx, stopRenew := context.WithCancel(ctx)
	defer stopRenew()
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.renew(renewCtx, lost)
	}()

	acqCtx := ctx
	if c.Timeout > 0 {
		var cancel context.CancelFunc
		acqCtx, cancel = context.WithTimeout(ctx, c.Timeout)
		defer cancel()
	}
	if err := l.acquire(acqCtx, lost); err != nil {
		if ctx.Err() == nil && acqCtx.Err() != nil {
			return fail(1, "Lock acquisition failed: timed out after %v", c.Timeout)
		}
		return fail(1, "Lock acquisition failed: %v", err)
	}
	l.logf("Lock acquired on %s (session %s)", prefix, l.session)

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.monitor(watchCtx, c.MonitorRetry)
	}()

	lostLock, childErr := runLockChild(ctx, c.Command, c.Shell, stdout, stderr, lost)
	stopWatch()
	if lostLock {
		fmt.Fprintln(stderr, "Lock lost, killed child")
	}
	if err := l.release(); err != nil {
		fmt.Fprintf(stderr, "Lock release failed: %v\n", err)
	}
	switch {
	case lostLock:
		return exitCode(1)
	case ctx.Err() != nil:
		return fail(1, "Interrupted: child killed, lock released")
	case childErr != nil && c.ChildExitCode:
		return fail(2, "Child exited with an error: %v", childErr)
	case childErr != nil:
		l.logf("Child exited with an error: %v", childErr)
	}
	return nil
}

func (l *locker) createSession(ctx context.Context, name, behavior string) error {
	body, _ := json.Marshal(map[string]any{"Name": name, "TTL": lockSessionTTL.String(), "Behavior": behavior})
	b, _, err := l.api.do(ctx, http.MethodPut, "/v1/session/create", nil, bytes.NewReader(body))
	if err != nil {
		return err
	}
	var out struct{ ID string }
	if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
		return fmt.Errorf("bad create answer %q", b)
	}
	l.session = out.ID
	return nil
}

func (l *locker) destroySession() {
	ctx, cancel := cmdContext()
	defer cancel()
	_, _, _ = l.api.do(ctx, http.MethodPut, "/v1/session/destroy/"+url.PathEscape(l.session), nil, nil)
}

// renew keeps the session alive every half TTL until ctx ends; it closes
// lost when the session is gone, or could not be renewed for a whole TTL.
func (l *locker) renew(ctx context.Context, lost <-chan struct{}) {
	last := time.Now()
	for {
		pause := lockSessionTTL / 2
		_, code, err := l.api.do(ctx, http.MethodPut, "/v1/session/renew/"+url.PathEscape(l.session), nil, nil)
		switch {
		case code == http.StatusNotFound:
			l.logf("Session %s is gone", l.session)
			l.markLost()
			return
		case err == nil:
			last = time.Now()
		case time.Since(last) > lockSessionTTL:
			l.markLost()
			return
		default:
			pause = lockRetryPause
		}
		select {
		case <-ctx.Done():
			return
		case <-lost:
			return
		case <-time.After(pause):
		}
	}
}

// markLost closes lost once; renew and monitor may both find the lock gone.
func (l *locker) markLost() {
	l.lostOnce.Do(func() { close(l.lost) })
}

// kvEntries reads prefix (recurse) or one key, blocking past index.
func (l *locker) kvEntries(ctx context.Context, key string, recurse bool, index uint64) ([]kvEntry, uint64, error) {
	q := url.Values{}
	if recurse {
		q.Set("recurse", "")
	}
	body, idx, err := l.api.blockingGet(ctx, kvPath(key), q, index, lockWait)
	if err != nil {
		return nil, 0, err
	}
	var out []kvEntry
	if len(body) > 0 {
		if err := json.Unmarshal(body, &out); err != nil {
			return nil, 0, fmt.Errorf("decode %s: %w", key, err)
		}
	}
	return out, idx, nil
}

// put writes key with the given query (acquire, release, cas, flags) and
// reports the answer.
func (l *locker) put(ctx context.Context, key string, q url.Values, value []byte) (bool, error) {
	b, _, err := l.api.do(ctx, http.MethodPut, kvPath(key), q, bytes.NewReader(value))
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(b)) == "true", nil
}

// acquire waits until the lock (or a semaphore slot) is held.
func (l *locker) acquire(ctx context.Context, lost <-chan struct{}) error {
	if l.limit == 1 {
		return l.acquireLock(ctx, lost)
	}
	return l.acquireSemaphore(ctx, lost)
}

func (l *locker) acquireLock(ctx context.Context, lost <-chan struct{}) error {
	q := url.Values{"acquire": {l.session}, "flags": {strconv.FormatUint(lockFlagValue, 10)}}
	var index uint64
	refused := false
	for {
		if err := waitOK(ctx, lost); err != nil {
			return err
		}
		es, idx, err := l.kvEntries(ctx, l.lockKey(), false, index)
		if err != nil {
			if pauseErr := pause(ctx, lockRetryPause); pauseErr != nil {
				return err
			}
			index = 0
			continue
		}
		if len(es) > 0 && es[0].Flags != lockFlagValue {
			return fmt.Errorf("%s exists and is not a lock", l.lockKey())
		}
		if len(es) > 0 && es[0].Session != "" && es[0].Session != l.session {
			index, refused = idx, false // held: wait for a change
			continue
		}
		if refused {
			// Free but refused last time: a lock-delay runs.
			if err := pause(ctx, lockRetryPause); err != nil {
				return err
			}
		}
		ok, err := l.put(ctx, l.lockKey(), q, nil)
		if err == nil && ok {
			return nil
		}
		// Taken meanwhile (the next read blocks) or lock-delayed.
		index, refused = 0, true
		if err != nil {
			if err := pause(ctx, lockRetryPause); err != nil {
				return err
			}
		}
	}
}

func (l *locker) acquireSemaphore(ctx context.Context, lost <-chan struct{}) error {
	flags := strconv.FormatUint(semaphoreFlagValue, 10)
	contender := l.prefix + "/" + l.session
	if ok, err := l.put(ctx, contender, url.Values{"acquire": {l.session}, "flags": {flags}}, nil); err != nil || !ok {
		return fmt.Errorf("registering as a contender failed (%v)", err)
	}
	var index uint64
	for {
		if err := waitOK(ctx, lost); err != nil {
			return err
		}
		es, idx, err := l.kvEntries(ctx, l.prefix+"/", true, index)
		if err != nil {
			if pauseErr := pause(ctx, lockRetryPause); pauseErr != nil {
				return err
			}
			index = 0
			continue
		}
		lock, lockIndex, live, err := l.readSemaphore(es)
		if err != nil {
			return err
		}
		for h := range lock.Holders {
			if !live[h] {
				delete(lock.Holders, h)
			}
		}
		if lock.Holders[l.session] {
			return nil
		}
		if len(lock.Holders) >= lock.Limit {
			index = idx
			continue
		}
		lock.Holders[l.session] = true
		body, _ := json.Marshal(lock)
		ok, err := l.put(ctx, l.lockKey(), url.Values{"cas": {strconv.FormatUint(lockIndex, 10)}, "flags": {flags}}, body)
		if err == nil && ok {
			return nil
		}
		index = 0 // lost the race: read again at once
	}
}

// readSemaphore decodes the .lock record among es (a fresh one if absent)
// with its ModifyIndex, and the sessions of live contenders.
func (l *locker) readSemaphore(es []kvEntry) (semaphoreLock, uint64, map[string]bool, error) {
	lock := semaphoreLock{Limit: l.limit, Holders: map[string]bool{}}
	var lockIndex uint64
	live := map[string]bool{}
	for _, e := range es {
		if e.Key == l.lockKey() {
			if e.Flags != semaphoreFlagValue {
				return lock, 0, nil, fmt.Errorf("%s exists and is not a semaphore", e.Key)
			}
			if err := json.Unmarshal(e.Value, &lock); err != nil {
				return lock, 0, nil, fmt.Errorf("decode %s: %w", e.Key, err)
			}
			if lock.Holders == nil {
				lock.Holders = map[string]bool{}
			}
			lockIndex = e.ModifyIndex
			continue
		}
		if e.Session != "" {
			live[e.Session] = true
		}
	}
	if lock.Limit != l.limit {
		return lock, 0, nil, fmt.Errorf("semaphore limit conflict: %s holds %d, -n is %d", l.prefix, lock.Limit, l.limit)
	}
	return lock, lockIndex, live, nil
}

// monitor closes lost when the lock (slot) is no longer this session's;
// retries errors in a row before giving up.
func (l *locker) monitor(ctx context.Context, retries int) {
	var index uint64
	errs := 0
	for ctx.Err() == nil {
		es, idx, err := l.kvEntries(ctx, l.lockKey(), false, index)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if errs++; errs > retries {
				l.markLost()
				return
			}
			if pause(ctx, lockRetryPause) != nil {
				return
			}
			index = 0
			continue
		}
		errs = 0
		held := len(es) > 0
		if held && l.limit == 1 {
			held = es[0].Session == l.session
		} else if held {
			var lock semaphoreLock
			held = json.Unmarshal(es[0].Value, &lock) == nil && lock.Holders[l.session]
		}
		if !held {
			l.markLost()
			return
		}
		index = idx
	}
}

// release gives the lock (slot) back; the session is destroyed after.
func (l *locker) release() error {
	ctx, cancel := cmdContext()
	defer cancel()
	if l.limit == 1 {
		_, err := l.put(ctx, l.lockKey(), url.Values{"release": {l.session}, "flags": {strconv.FormatUint(lockFlagValue, 10)}}, nil)
		return err
	}
	flags := strconv.FormatUint(semaphoreFlagValue, 10)
	for ctx.Err() == nil {
		es, _, err := l.kvEntries(ctx, l.prefix+"/", true, 0)
		if err != nil {
			return err
		}
		lock, lockIndex, _, err := l.readSemaphore(es)
		if err != nil || !lock.Holders[l.session] {
			break
		}
		delete(lock.Holders, l.session)
		body, _ := json.Marshal(lock)
		if ok, err := l.put(ctx, l.lockKey(), url.Values{"cas": {strconv.FormatUint(lockIndex, 10)}, "flags": {flags}}, body); err != nil || ok {
			break
		}
	}
	_, _, err := l.api.do(ctx, http.MethodDelete, kvPath(l.prefix+"/"+l.session), nil, nil)
	return err
}

func waitOK(ctx context.Context, lost <-chan struct{}) error {
	select {
	case <-lost:
		return errors.New("session lost before the lock was acquired")
	default:
		return ctx.Err()
	}
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// runLockChild runs the command in its own process group until it exits,
// the lock is lost or ctx ends; then the group gets SIGTERM and, after
// childGrace, SIGKILL. It returns the child's error and whether the lock
// was lost.
func runLockChild(ctx context.Context, command []string, shell bool, stdout, stderr io.Writer, lost <-chan struct{}) (bool, error) {
	var cmd *exec.Cmd
	if shell {
		cmd = exec.Command("/bin/sh", "-c", strings.Join(command, " "))
	} else {
		cmd = exec.Command(command[0], command[1:]...)
	}
	cmd.Stdin = nil // consul lock passes no stdin unless -pass-stdin
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	lostLock := false
	select {
	case err := <-done:
		return false, err
	case <-lost:
		lostLock = true
	case <-ctx.Done():
	}
	pgid := -cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case err := <-done:
		return lostLock, err
	case <-time.After(childGrace):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		return lostLock, <-done
	}
}
