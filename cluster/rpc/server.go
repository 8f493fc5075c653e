package rpc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/acl"
	"github.com/cairnd/cairn/cluster/connlimit"
)

// Handler serves one method. The returned value is encoded as the response
// body; a non-nil error is sent as its text instead. ctx is cancelled when
// the session dies or the server closes.
type Handler func(ctx context.Context, dec Decoder) (any, error)

// Server accepts connections on the server RPC port and demultiplexes them.
type Server struct {
	logger  *zap.Logger
	limits  Limits
	metrics *serverMetrics
	codecs  *codecPool

	connMetrics *connlimit.Metrics
	peerLog     *connlimit.PeerLog

	handlersMu sync.RWMutex
	handlers   map[string]handlerEntry
	// streamHandlers serve long-lived streams (stream.go).
	streamHandlers map[string]StreamHandler

	raftCh    chan net.Conn
	nsessions atomic.Int64
	work      chan streamJob // idle stream workers take jobs here
	idle      idleSweeper    // closes idle sessions (conns.go)
	tls       tlsState       // see tls.go
	// noPipeline makes the server answer the pipeline method as an
	// older server does (tests of the client's fallback).
	noPipeline bool

	mu          sync.Mutex
	closed      bool
	raftEnabled bool
	listeners   map[net.Listener]struct{}
	conns       map[net.Conn]struct{}
	closeCh     chan struct{}
	wg          sync.WaitGroup
}

// raftBacklog is how many raft connections may wait for the raft
// transport's accept loop; raft accepts continuously, so a few suffice.
const raftBacklog = 16

// NewServer returns a Server with no handlers. reg may be nil.
func NewServer(logger *zap.Logger, reg prometheus.Registerer, lim Limits) *Server {
	if logger == nil {
		logger = zap.NewNop()
	}
	return &Server{
		logger:      logger,
		limits:      lim.withDefaults(),
		metrics:     newServerMetrics(reg),
		codecs:      newCodecPool(),
		connMetrics: connlimit.NewMetrics(reg, "rpc"),
		peerLog:     connlimit.NewPeerLog(connlimit.LogInterval),
		handlers:    make(map[string]handlerEntry),
		raftCh:      make(chan net.Conn, raftBacklog),
		work:        make(chan streamJob),
		listeners:   make(map[net.Listener]struct{}),
		conns:       make(map[net.Conn]struct{}),
		closeCh:     make(chan struct{}),
	}
}

// sessionCount is the number of open RPC sessions.
func (s *Server) sessionCount() int { return int(s.nsessions.Load()) }

// Handle registers h for method, replacing any previous handler.
func (s *Server) Handle(method string, h Handler) {
	s.handlersMu.Lock()
	s.handlers[method] = handlerEntry{h: h, name: method, served: s.metrics.methods.WithLabelValues(method)}
	delete(s.streamHandlers, method)
	s.handlersMu.Unlock()
}

// handlerEntry is a registered method and its request counter (the
// method label takes registered names only, so its cardinality is fixed).
type handlerEntry struct {
	h      Handler
	name   string
	served prometheus.Counter
}

// handlerFor looks a method up by its wire bytes without allocating.
func (s *Server) handlerFor(method []byte) (handlerEntry, bool) {
	s.handlersMu.RLock()
	defer s.handlersMu.RUnlock()
	e, ok := s.handlers[string(method)]
	return e, ok
}

func (s *Server) handler(method string) handlerEntry {
	s.handlersMu.RLock()
	defer s.handlersMu.RUnlock()
	return s.handlers[method]
}

// Serve accepts connections on ln until ctx is done or Close is called;
// it then returns nil (ErrServerClosed if the server was already closed
// when Serve was called). ln is closed on return.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return ErrServerClosed
	}
	ln = s.limitListener(ln)
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
		ln.Close()
	}()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || s.isClosed() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Transient (e.g. EMFILE): back off instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.logger.Warn("rpc: accept failed", zap.Error(err), zap.Duration("backoff", backoff))
			select {
			case <-time.After(backoff):
				continue
			case <-ctx.Done():
				return nil
			case <-s.closeCh:
				return nil
			}
		}
		backoff = 0
		if !s.track(conn) {
			conn.Close()
			return nil
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleConn(ctx, conn)
		}()
	}
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// track records conn so Close can close it; false if the server is closed.
func (s *Server) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[conn] = struct{}{}
	return true
}

func (s *Server) untrack(conn net.Conn) {
	s.mu.Lock()
	delete(s.conns, conn)
	s.mu.Unlock()
}

// reject closes a connection with a logged reason.
func (s *Server) reject(conn net.Conn, reason, detail string, err error) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	if s.logPeer(conn.RemoteAddr()) {
		fields := []zap.Field{zap.String("remote", conn.RemoteAddr().String()), zap.String("reason", detail)}
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		s.logger.Warn("rpc: closing connection (logged once a minute per peer)", fields...)
	}
	conn.Close()
}

// handleConn reads the protocol byte and dispatches.
func (s *Server) handleConn(ctx context.Context, conn net.Conn) {
	handedOff := false
	defer func() {
		s.untrack(conn)
		if !handedOff {
			conn.Close()
		}
	}()
	_ = conn.SetReadDeadline(time.Now().Add(s.limits.HandshakeTimeout))
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		s.reject(conn, "handshake", "no protocol byte", err)
		return
	}
	switch b[0] {
	case ProtoRPC:
		if s.refusePlain(conn, "rpc") {
			return
		}
		s.serveSession(ctx, conn)
	case ProtoRaft:
		if s.refusePlain(conn, "raft") {
			return
		}
		_ = conn.SetReadDeadline(time.Time{})
		handedOff = s.handOffRaft(ctx, s.newIdleRaftConn(conn))
	case ProtoTLS:
		handedOff = s.serveTLS(ctx, conn)
	default:
		s.reject(conn, "protocol", fmt.Sprintf("unknown protocol byte 0x%02x", b[0]), nil)
	}
}

// handOffRaft passes conn to the raft layer; the raft transport owns it
// from then on (and Close closes it through the transport).
func (s *Server) handOffRaft(ctx context.Context, conn net.Conn) bool {
	s.mu.Lock()
	enabled := s.raftEnabled
	s.mu.Unlock()
	if !enabled {
		s.reject(conn, "protocol", "raft connection but no raft layer on this server", nil)
		return false
	}
	t := time.NewTimer(s.limits.HandshakeTimeout)
	defer t.Stop()
	select {
	case s.raftCh <- conn:
		return true
	case <-t.C:
		s.reject(conn, "raft_backlog", "raft layer not accepting connections", nil)
	case <-ctx.Done():
	case <-s.closeCh:
	}
	return false
}

// yamux frame header: version(1) type(1) flags(2) stream id(4) length(4).
const (
	yamuxHeaderSize   = 12
	yamuxProtoVersion = 0
	yamuxMaxMsgType   = 3 // data, window update, ping, go away
)

// prefixConn replays the bytes already read for validation, then reads
// from the connection.
type prefixConn struct {
	net.Conn
	prefix []byte
}

func (c *prefixConn) Read(p []byte) (int, error) {
	if len(c.prefix) > 0 {
		n := copy(p, c.prefix)
		c.prefix = c.prefix[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// zapYamuxLogger bridges yamux's log lines into zap at Warn, tagged with
// the peer address.
type zapYamuxLogger struct{ l *zap.SugaredLogger }

func (z zapYamuxLogger) Print(v ...any)                 { z.l.Warn(v...) }
func (z zapYamuxLogger) Printf(format string, v ...any) { z.l.Warnf(format, v...) }
func (z zapYamuxLogger) Println(v ...any)               { z.l.Warnln(v...) }

func yamuxConfig(logger *zap.Logger, backlog int) *yamux.Config {
	cfg := yamux.DefaultConfig()
	cfg.AcceptBacklog = backlog
	cfg.EnableKeepAlive = true
	cfg.KeepAliveInterval = keepAliveInterval
	cfg.ConnectionWriteTimeout = connectionWriteTimeout
	cfg.LogOutput = nil
	cfg.Logger = zapYamuxLogger{l: logger.Sugar()}
	return cfg
}

// serverYamuxConfig is yamuxConfig without the keepalive goroutine and
// timer: the dialling side pings (and yamux answers pings from its receive
// loop), so a live client proves itself; a client that vanished without a
// FIN or RST is found by the kernel's TCP keepalive on the accepted
// connection (Go enables it: 15 s idle, then 9 probes 15 s apart), which
// costs no goroutine. See README.md, "Memory per connected client".
func serverYamuxConfig(logger *zap.Logger, backlog int) *yamux.Config {
	cfg := yamuxConfig(logger, backlog)
	cfg.EnableKeepAlive = false
	return cfg
}

// serveSession validates the first yamux frame, then runs the session's
// accept loop until it dies. The accept loop is the only goroutine of its
// own a session has (yamux adds its receive and send loops); its streams
// are served by the server's shared workers.
func (s *Server) serveSession(ctx context.Context, conn net.Conn) {
	remote := conn.RemoteAddr().String()
	hdr := make([]byte, yamuxHeaderSize)
	if _, err := io.ReadFull(conn, hdr); err != nil {
		s.reject(conn, "handshake", "no yamux frame after protocol byte", err)
		return
	}
	if hdr[0] != yamuxProtoVersion || hdr[1] > yamuxMaxMsgType {
		s.reject(conn, "handshake", fmt.Sprintf("garbage yamux handshake (version %d, type %d)", hdr[0], hdr[1]), nil)
		return
	}
	_ = conn.SetReadDeadline(time.Time{})

	log := s.logger.With(zap.String("remote", remote))
	sess, err := yamux.Server(newBatchConn(&prefixConn{Conn: conn, prefix: hdr}), serverYamuxConfig(log, acceptBacklog))
	if err != nil {
		s.reject(conn, "handshake", "yamux setup failed", err)
		return
	}
	s.metrics.sessions.Inc()
	s.nsessions.Add(1)
	defer func() { s.metrics.sessions.Dec(); s.nsessions.Add(-1) }()

	sessCtx, cancel := context.WithCancel(ctx)
	var inflight sync.WaitGroup
	defer inflight.Wait()
	defer cancel()
	defer sess.Close()
	// ctx ending closes the session, which ends AcceptStream below; Close
	// of the server closes the connection, which does the same.
	stopClose := context.AfterFunc(sessCtx, func() { sess.Close() })
	defer stopClose()

	entry := &idleEntry{sess: sess, log: log}
	entry.lastStream.Store(time.Now().UnixNano())
	s.idle.add(s, entry)
	defer s.idle.remove(entry)

	sem := make(chan struct{}, s.limits.MaxConcurrentStreams)
	for {
		stream, err := sess.AcceptStream()
		if err != nil {
			log.Debug("rpc: session ended", zap.Error(err))
			return
		}
		entry.lastStream.Store(time.Now().UnixNano())
		select {
		case sem <- struct{}{}:
		case <-sessCtx.Done():
			stream.Close()
			return
		}
		inflight.Add(1)
		s.dispatch(streamJob{ctx: sessCtx, stream: stream, sem: sem, inflight: &inflight, log: log})
	}
}

// streamJob is one accepted stream (or one pipelined request, pipe)
// waiting for a worker: the session's context, its stream slot (sem) and
// in-flight count.
type streamJob struct {
	ctx      context.Context
	stream   *yamux.Stream
	pipe     *pipeReq
	sem      chan struct{}
	inflight *sync.WaitGroup
	log      *zap.Logger
}

// workerIdle is how long a stream worker waits for more work before it
// exits; a burst leaves its workers behind for this long.
const workerIdle = 10 * time.Second

// dispatch hands job to an idle worker of the server, or starts one.
// Workers are shared by all sessions and outlive their stream so their
// grown stacks are reused (a goroutine per stream spent ~9% of a busy
// leader's CPU growing fresh stacks), yet an idle session pins none.
func (s *Server) dispatch(job streamJob) {
	select {
	case s.work <- job:
	default:
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.streamWorker(job)
		}()
	}
}

func (s *Server) streamWorker(job streamJob) {
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		if job.pipe != nil {
			s.servePipelined(job.ctx, job.pipe, job.log)
		} else {
			s.serveStream(job)
		}
		<-job.sem
		job.inflight.Done()
		job = streamJob{}
		idle.Reset(workerIdle)
		select {
		case job = <-s.work:
		case <-idle.C:
			return
		case <-s.closeCh:
			return
		}
	}
}

// serveStream serves the one request of a stream, or the pipeline it
// opens (pipeline.go).
func (s *Server) serveStream(job streamJob) {
	ctx, stream, log := job.ctx, job.stream, job.log
	defer stream.Close()
	st := s.codecs.get(stream, stream)
	pooled := true
	defer func() {
		if pooled {
			s.codecs.put(st)
		}
	}()

	_ = stream.SetReadDeadline(time.Now().Add(s.limits.StreamReadTimeout))
	hdr, err := st.readRequest(s.limits.MaxFrameSize)
	if err != nil {
		reason, detail := "bad_request", "malformed request"
		switch {
		case errors.Is(err, yamux.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded):
			reason, detail = "stream_timeout", fmt.Sprintf("no complete request within %s", s.limits.StreamReadTimeout)
		case errors.Is(err, ErrFrameTooLarge):
			reason, detail = "frame_too_large", "frame exceeds limit"
		case errors.Is(err, io.ErrUnexpectedEOF):
			reason, detail = "truncated", "truncated request frame"
		case errors.Is(err, io.EOF):
			// Nothing sent at all: a client that gave up (ctx cancelled)
			// between opening the stream and writing. Not worth a warning.
			log.Debug("rpc: stream closed before request", zap.Uint32("stream", stream.StreamID()))
			return
		}
		s.metrics.rejected.WithLabelValues(reason).Inc()
		if !s.logPeer(stream.RemoteAddr()) {
			return
		}
		log.Warn("rpc: closing stream (logged once a minute per peer)", zap.String("reason", detail), zap.Uint32("stream", stream.StreamID()), zap.Error(err))
		return
	}
	_ = stream.SetReadDeadline(time.Time{})

	// The pipeline is dispatched before the token is read: its calls run
	// without one (tokened calls never use it, see Session.Call), so the
	// opening request's token cannot stand for the calls that follow.
	if hdr.Method == pipelineMethod && !s.noPipeline {
		pooled = false // servePipeline owns st
		s.servePipeline(job, stream, st)
		return
	}
	if hdr.Token != "" {
		ctx = acl.ContextWithToken(ctx, hdr.Token)
	}
	ctx = contextWithPeer(ctx, stream.RemoteAddr())
	if sh := s.streamHandler(hdr.Method); sh != nil {
		pooled = false // serveLongStream owns st
		s.serveLongStream(ctx, stream, st, hdr.Method, sh, log)
		return
	}
	reply, herr := s.call(ctx, hdr.Method, st, log)
	var resp responseHeader
	if herr != nil {
		resp.Error = herr.Error()
		reply = nil
		s.metrics.requests.WithLabelValues("error").Inc()
	} else {
		s.metrics.requests.WithLabelValues("ok").Inc()
	}

	_ = stream.SetWriteDeadline(time.Now().Add(s.limits.WriteTimeout))
	err = st.writeFrame(&resp, s.limits.MaxFrameSize)
	if err == nil {
		if err = st.writeFrame(reply, s.limits.MaxFrameSize); err != nil && resp.Error == "" {
			// Nothing of the body left the buffer yet (frames are encoded
			// before being written, and the header is far below the
			// buffer size): answer with the encoding error instead.
			log.Warn("rpc: cannot encode response", zap.String("method", hdr.Method), zap.Error(err))
			st.bw.Reset(&st.cw)
			resp.Error = err.Error()
			if err = st.writeFrame(&resp, s.limits.MaxFrameSize); err == nil {
				err = st.writeFrame(nil, s.limits.MaxFrameSize)
			}
		}
	}
	if err == nil {
		err = st.bw.Flush()
	}
	if err != nil {
		log.Debug("rpc: write response failed", zap.String("method", hdr.Method), zap.Error(err))
	}
}

// call runs the handler, turning a panic into an error so one bad request
// cannot take the server down.
func (s *Server) call(ctx context.Context, method string, dec Decoder, log *zap.Logger) (reply any, err error) {
	e := s.handler(method)
	if e.h == nil {
		return nil, fmt.Errorf("rpc: unknown method %q", method)
	}
	return s.callEntry(ctx, e, dec, log)
}

// callEntry runs a registered handler (see call).
func (s *Server) callEntry(ctx context.Context, e handlerEntry, dec Decoder, log *zap.Logger) (reply any, err error) {
	method := e.name
	e.served.Inc()
	defer func() {
		if r := recover(); r != nil {
			log.Error("rpc: handler panic", zap.String("method", method), zap.Any("panic", r), zap.ByteString("stack", debug.Stack()))
			err = fmt.Errorf("rpc: internal error in %s", method)
		}
	}()
	return e.h(ctx, dec)
}

// Close stops every Serve loop, closes all sessions and pending raft
// connections, and waits for the server's goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return nil
	}
	s.closed = true
	close(s.closeCh)
	for ln := range s.listeners {
		ln.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	// Raft connections nobody accepted.
	for {
		select {
		case c := <-s.raftCh:
			c.Close()
		default:
			return nil
		}
	}
}
