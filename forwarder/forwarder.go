package forwarder

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/structs"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// ErrWriteOutcomeUnknown is returned for a non-idempotent call whose
// connection failed after the request may have reached the server: it may
// or may not have been applied, and it was not resent. It is the one
// sentinel of cluster/structs, which servers also return (over RPC) when
// they lost track of a write, so callers test for one error.
var ErrWriteOutcomeUnknown = structs.ErrWriteOutcomeUnknown

// ErrClosed is returned by Call after Close.
var ErrClosed = errors.New("forwarder: closed")

// conn is one session to one server plus its in-flight count (guarded by
// Forwarder.mu) so a rebalance can drain it.
type conn struct {
	addr      string
	sess      *rpc.Session
	inflight  int
	draining  bool
	closeOnce sync.Once
}

// Forwarder sends RPCs to the servers over one connection at a time.
type Forwarder struct {
	cfg     Config
	logger  *zap.Logger
	metrics *metrics

	mu       sync.Mutex
	servers  []string // shuffled
	next     int      // index in servers of the next dial attempt
	cur      *conn
	draining map[*conn]struct{}
	changed  chan struct{} // closed and replaced whenever cur or servers change
	running  bool
	runDone  chan struct{}
	closed   bool

	wake    chan struct{} // SetServers nudges Run
	closeCh chan struct{}
}

// New returns a Forwarder; call Run to connect. reg may be nil.
func New(cfg Config, logger *zap.Logger, reg prometheus.Registerer) *Forwarder {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Forwarder{
		cfg:      cfg.withDefaults(),
		logger:   logger,
		metrics:  newMetrics(reg),
		draining: make(map[*conn]struct{}),
		changed:  make(chan struct{}),
		wake:     make(chan struct{}, 1),
		closeCh:  make(chan struct{}),
	}
}

// broadcastLocked wakes every Call waiting for a session. f.mu held.
func (f *Forwarder) broadcastLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// SetServers replaces the known servers' RPC addresses (deduplicated and
// shuffled). If the current server is no longer listed, Run moves away
// from it, draining in-flight calls. Safe to call at any time.
func (f *Forwarder) SetServers(addrs []string) {
	list := slices.Clone(addrs)
	slices.Sort(list)
	list = slices.Compact(list)
	if len(list) > 0 && list[0] == "" {
		list = list[1:]
	}
	rand.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	f.mu.Lock()
	f.servers = list
	f.next = 0
	f.broadcastLocked()
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Servers returns the known servers in their current (shuffled) order.
func (f *Forwarder) Servers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.servers)
}

// Server returns the address of the server currently connected, or "".
func (f *Forwarder) Server() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cur == nil {
		return ""
	}
	return f.cur.addr
}

// Run owns the server connection until ctx ends or Close is called. It
// returns nil then; it returns an error only if already running or closed.
func (f *Forwarder) Run(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return ErrClosed
	}
	if f.running {
		f.mu.Unlock()
		return errors.New("forwarder: Run called twice")
	}
	f.running = true
	f.runDone = make(chan struct{})
	done := f.runDone
	f.mu.Unlock()
	defer close(done)
	defer f.closeAll()

	ctx, cancel := context.WithCancel(ctx)
	var watcher sync.WaitGroup
	defer watcher.Wait()
	defer cancel()
	watcher.Add(1)
	go func() {
		defer watcher.Done()
		// Close must interrupt a dial in progress.
		select {
		case <-f.closeCh:
			cancel()
		case <-ctx.Done():
		}
	}()

	rebalance := time.NewTimer(f.rebalanceInterval())
	defer rebalance.Stop()
	var failedInRound int
	backoff := time.Duration(0)
	for {
		if ctx.Err() != nil {
			return nil
		}
		f.mu.Lock()
		c := f.cur
		f.mu.Unlock()

		if c == nil {
			addr, n := f.nextServer()
			if addr == "" {
				select {
				case <-f.wake:
				case <-ctx.Done():
				}
				continue
			}
			sess, err := rpc.Dial(ctx, addr, f.dialOptions())
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				f.logger.Warn("forwarder: cannot reach server", zap.String("server", addr), zap.Error(err))
				failedInRound++
				if failedInRound >= n {
					// Every server failed once: pause (bounded) before the
					// next round; new addresses end the pause early.
					failedInRound = 0
					backoff = min(max(2*backoff, minDialBackoff), maxDialBackoff, f.cfg.FailoverWithin/2)
					t := time.NewTimer(backoff)
					select {
					case <-t.C:
					case <-f.wake:
					case <-ctx.Done():
					}
					t.Stop()
				}
				continue
			}
			failedInRound, backoff = 0, 0
			f.install(addr, sess)
			f.logger.Info("forwarder: connected", zap.String("server", addr), zap.String("datacenter", f.cfg.Datacenter))
			continue
		}

		select {
		case <-c.sess.CloseChan():
			f.logger.Warn("forwarder: server connection lost", zap.String("server", c.addr))
			f.metrics.failovers.Inc()
			f.drop(c)
		case <-rebalance.C:
			f.rebalance(ctx, c, "periodic")
			rebalance.Reset(f.rebalanceInterval())
		case <-f.wake:
			f.mu.Lock()
			listed := slices.Contains(f.servers, c.addr)
			f.mu.Unlock()
			if !listed {
				f.rebalance(ctx, c, "server left")
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// rebalanceInterval is the base interval plus up to 50% jitter, stretched
// for large clusters so rebalancing clients do not stampede a server.
func (f *Forwarder) rebalanceInterval() time.Duration {
	base := f.cfg.RebalanceInterval
	if f.cfg.ClusterSize != nil {
		f.mu.Lock()
		servers := max(len(f.servers), 1)
		f.mu.Unlock()
		nodes := f.cfg.ClusterSize()
		scaled := time.Duration(nodes/(servers*newConnsPerSecPerServer)) * time.Second
		base = max(base, scaled)
	}
	return base + rand.N(base/2+1)
}

// nextServer returns the next address to dial and how many are known.
func (f *Forwarder) nextServer() (string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.servers)
	if n == 0 {
		return "", 0
	}
	addr := f.servers[f.next%n]
	f.next = (f.next + 1) % n
	return addr, n
}

// install makes sess the current session.
func (f *Forwarder) install(addr string, sess *rpc.Session) *conn {
	c := &conn{addr: addr, sess: sess}
	f.metrics.connections.Inc()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		f.closeConn(c)
		return nil
	}
	f.cur = c
	// Continue the rotation after this server.
	if i := slices.Index(f.servers, addr); i >= 0 {
		f.next = (i + 1) % len(f.servers)
	}
	f.broadcastLocked()
	return c
}

// drop forgets a dead current session.
func (f *Forwarder) drop(c *conn) {
	f.mu.Lock()
	if f.cur == c {
		f.cur = nil
		f.broadcastLocked()
	}
	f.mu.Unlock()
	f.closeConn(c)
}

// rebalance moves to a random other server; the old session drains.
func (f *Forwarder) rebalance(ctx context.Context, old *conn, why string) {
	f.mu.Lock()
	others := make([]string, 0, len(f.servers))
	for _, s := range f.servers {
		if s != old.addr {
			others = append(others, s)
		}
	}
	f.mu.Unlock()
	if len(others) == 0 {
		return
	}
	addr := others[rand.N(len(others))]
	sess, err := rpc.Dial(ctx, addr, f.dialOptions())
	if err != nil {
		// Keep the working session; try again next period.
		f.logger.Info("forwarder: rebalance dial failed", zap.String("server", addr), zap.Error(err))
		return
	}
	f.metrics.rebalances.Inc()
	f.logger.Info("forwarder: rebalancing", zap.String("from", old.addr), zap.String("to", addr), zap.String("why", why))
	if f.install(addr, sess) == nil {
		return
	}
	f.mu.Lock()
	old.draining = true
	idle := old.inflight == 0
	if !idle {
		f.draining[old] = struct{}{}
	}
	f.mu.Unlock()
	if idle {
		f.closeConn(old)
	}
}

// closeConn closes c's session once and accounts for it.
func (f *Forwarder) closeConn(c *conn) {
	c.closeOnce.Do(func() {
		c.sess.Close()
		f.metrics.connections.Dec()
	})
}

// closeAll closes the current and draining sessions (Run is exiting).
func (f *Forwarder) closeAll() {
	f.mu.Lock()
	conns := make([]*conn, 0, len(f.draining)+1)
	if f.cur != nil {
		conns = append(conns, f.cur)
		f.cur = nil
	}
	for c := range f.draining {
		conns = append(conns, c)
		delete(f.draining, c)
	}
	f.running = false
	f.broadcastLocked()
	f.mu.Unlock()
	for _, c := range conns {
		f.closeConn(c)
	}
}

// Close stops Run, closes the connections and fails pending calls.
func (f *Forwarder) Close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	close(f.closeCh)
	done := f.runDone
	running := f.running
	f.broadcastLocked()
	f.mu.Unlock()
	if running {
		<-done
	}
	f.closeAll()
	return nil
}

// acquire returns the current session with its in-flight count raised,
// waiting for one if needed. avoid is a session known to be dead.
func (f *Forwarder) acquire(ctx context.Context, avoid *conn) (*conn, error) {
	var noServers, unreachable <-chan time.Time
	for {
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return nil, ErrClosed
		}
		if c := f.cur; c != nil && c != avoid && !c.sess.IsClosed() {
			c.inflight++
			f.mu.Unlock()
			return c, nil
		}
		known := len(f.servers) > 0
		changed := f.changed
		f.mu.Unlock()

		if !known && noServers == nil {
			t := time.NewTimer(noServersWait)
			defer t.Stop()
			noServers = t.C
		}
		if known && unreachable == nil {
			if _, ok := ctx.Deadline(); !ok {
				t := time.NewTimer(unreachableWait)
				defer t.Stop()
				unreachable = t.C
			}
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-noServers:
			f.mu.Lock()
			known = len(f.servers) > 0
			f.mu.Unlock()
			if !known {
				return nil, structs.ErrNoServers
			}
		case <-unreachable:
			return nil, fmt.Errorf("%w: none reachable within %s", structs.ErrNoServers, unreachableWait)
		}
	}
}

// release lowers c's in-flight count and closes it if it is draining.
func (f *Forwarder) release(c *conn) {
	f.mu.Lock()
	c.inflight--
	last := c.draining && c.inflight == 0
	if last {
		delete(f.draining, c)
	}
	f.mu.Unlock()
	if last {
		f.closeConn(c)
	}
}

// Call sends args to method on the current server and decodes the response
// into reply. idempotent marks reads: they are retried on the next server
// after a connection failure until ctx ends. Writes are retried only if the
// request provably never left; otherwise ErrWriteOutcomeUnknown.
func (f *Forwarder) Call(ctx context.Context, method string, args, reply any, idempotent bool) error {
	err := f.call(ctx, method, args, reply, idempotent)
	if err != nil {
		f.metrics.requests.WithLabelValues(method, "error").Inc()
	} else {
		f.metrics.requests.WithLabelValues(method, "ok").Inc()
	}
	return err
}

func (f *Forwarder) call(ctx context.Context, method string, args, reply any, idempotent bool) error {
	var avoid *conn
	var lastErr error
	var backoff time.Duration
	for {
		c, err := f.acquire(ctx, avoid)
		if err != nil {
			if lastErr != nil {
				return fmt.Errorf("forwarder: %s: %w (after: %v)", method, err, lastErr)
			}
			return err
		}
		err = c.sess.Call(ctx, method, args, reply)
		f.release(c)
		var te *rpc.TransportError
		if !errors.As(err, &te) {
			if !idempotent && ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
				// The caller gave up while the write was on its way or
				// in the server's hands: it may still be applied.
				return fmt.Errorf("%w: %s to %s: %w", ErrWriteOutcomeUnknown, method, c.addr, err)
			}
			return err // success, handler error or ctx error
		}
		if te.MaybeSent && !idempotent {
			return fmt.Errorf("%w: connection to server %s lost after %s was sent: %w", ErrWriteOutcomeUnknown, c.addr, method, err)
		}
		lastErr = err
		f.metrics.retries.Inc()
		if c.sess.IsClosed() {
			avoid = c // wait for Run to connect elsewhere
			continue
		}
		// A stream failed on a live session: pause briefly, then retry.
		backoff = min(max(2*backoff, 5*time.Millisecond), maxCallBackoff)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("forwarder: %s: %w (after: %v)", method, ctx.Err(), lastErr)
		}
	}
}

// dialOptions are the options of one dial: TLS is read now, so a reload
// of certificates reaches the next connection.
func (f *Forwarder) dialOptions() rpc.DialOptions {
	o := rpc.DialOptions{Timeout: f.cfg.DialTimeout, Logger: f.logger, LocalAddr: f.cfg.LocalAddr}
	if f.cfg.TLS != nil {
		o.TLS = f.cfg.TLS.OutgoingTLS(f.cfg.Datacenter)
	}
	return o
}
