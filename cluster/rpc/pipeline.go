package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"
)

// The call pipeline (version 1). A yamux stream per request costs each
// side three or four yamux frames (SYN window update, data, FIN, and the
// peer's ACK), a stream allocation and an accept; under 128 concurrent
// writers that was most of the rpc layer's share of a leader's CPU. A
// session with concurrent calls therefore opens one pipeline stream and
// sends every call over it, each request tagged with an ID:
//
//   - opening: an ordinary request to the reserved method pipelineMethod
//     with an empty body; the server answers the usual response header
//     and empty body, then both directions switch to pipeline frames. A
//     server without the pipeline answers "unknown method", and the
//     session keeps a stream per request for its life (rolling upgrade).
//     A later incompatible layout gets a new method name.
//   - request frame: 4-byte big-endian length, then request ID (4 bytes),
//     method length (1 byte), method, msgpack body.
//   - response frame: 4-byte length, then request ID (4 bytes), status (1
//     byte: 0 ok with a msgpack body, 1 error text), payload.
//
// Responses come back in completion order; the server runs each request
// on its shared workers under the session's MaxConcurrentStreams bound.
// Length prefixes are checked against MaxFrameSize plus the fixed header
// before anything is allocated. The client opens the pipeline only when a
// Call starts while another is in flight, and closes it after
// pipelineIdle with nothing in flight, so an idle client session pins no
// server goroutine for it (a client agent's lone lookups keep using a
// stream each).
const (
	pipelineMethod     = "RPC.Pipeline/1"
	pipelineReqHeader  = 4 + 1 // request ID, method length
	pipelineRespHeader = 4 + 1 // request ID, status
	maxMethodLen       = 255
	pipelineIdle       = 5 * time.Second
	// deadlineRefresh: pipeline read and write deadlines are pushed out
	// at most this often (each set allocates in yamux).
	deadlineRefresh = time.Second

	statusOK    byte = 0
	statusError byte = 1
)

// Pipeline modes of a Session.
const (
	pipeAvailable int32 = iota
	pipeOpening
	pipeUnsupported
)

// pipeResult is one response handed from the pipeline's reader to its
// caller: the frame is in st.hdr, its payload in st.body.
type pipeResult struct {
	st     *codecState
	status byte
	err    error
}

// pipeline is the client side of an open call pipeline. Its reader
// goroutine is owned by it and ends when the stream ends (idle close,
// server close, session death).
type pipeline struct {
	sess *Session
	str  *Stream // the opened stream; its read state is the reader's

	wmu        sync.Mutex
	wdeadline  time.Time // last write deadline set, under wmu
	mu         sync.Mutex
	pending    map[uint32]chan pipeResult
	nextID     uint32
	dead       bool
	lastUse    time.Time
	idle       *time.Timer
	readerDone chan struct{}
}

// pipelineFor returns the session's open pipeline, opening one when this
// call (the calls-th in flight) overlaps another.
func (s *Session) pipelineFor(ctx context.Context, calls int32) *pipeline {
	if p := s.pipe.Load(); p != nil {
		return p
	}
	if calls < 2 || s.noPipeline || !s.pipeMode.CompareAndSwap(pipeAvailable, pipeOpening) {
		return nil
	}
	str, err := s.OpenStream(ctx, pipelineMethod, nil)
	if err != nil {
		var re RemoteError
		if errors.As(err, &re) && strings.Contains(re.Msg, "unknown method") {
			s.pipeMode.Store(pipeUnsupported)
		} else {
			s.pipeMode.Store(pipeAvailable)
		}
		return nil
	}
	p := &pipeline{sess: s, str: str, pending: make(map[uint32]chan pipeResult), readerDone: make(chan struct{}), lastUse: time.Now()}
	s.codecs.put(str.w) // the pipeline writes its own frames
	str.w = nil
	// Installed before the reader starts, so a reader failing at once
	// uninstalls it (fail's CompareAndSwap) and a later call reopens.
	s.pipe.Store(p)
	p.mu.Lock()
	p.idle = time.AfterFunc(pipelineIdle, p.idleCheck)
	p.mu.Unlock()
	go p.read()
	s.pipeMode.Store(pipeAvailable)
	return p
}

// call sends one request over the pipeline. ok is false when the pipeline
// was already closed before anything was sent: the caller then uses a
// stream of its own.
func (p *pipeline) call(ctx context.Context, method string, args, reply any) (err error, ok bool) {
	if len(method) > maxMethodLen {
		return nil, false
	}
	s := p.sess
	st := s.codecs.getFrame()
	st.scratch = st.scratch[:0]
	st.enc.ResetBytes(&st.scratch)
	if err := st.enc.Encode(args); err != nil {
		s.codecs.put(st)
		return &TransportError{Method: method, Err: fmt.Errorf("rpc: encode: %w", err)}, true
	}
	if len(st.scratch) > s.maxFrame {
		n := len(st.scratch)
		s.codecs.put(st)
		return fmt.Errorf("rpc: %s: request: %w", method, fmt.Errorf("%w: encoded %d bytes, limit %d", ErrFrameTooLarge, n, s.maxFrame)), true
	}
	ch := make(chan pipeResult, 1)
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		s.codecs.put(st)
		return nil, false
	}
	p.nextID++
	id := p.nextID
	p.pending[id] = ch
	p.lastUse = time.Now()
	p.mu.Unlock()

	out := st.out[:0]
	out = binary.BigEndian.AppendUint32(out, uint32(pipelineReqHeader+len(method)+len(st.scratch)))
	out = binary.BigEndian.AppendUint32(out, id)
	out = append(out, byte(len(method)))
	out = append(out, method...)
	out = append(out, st.scratch...)
	st.out = out
	p.wmu.Lock()
	if now := time.Now(); now.Sub(p.wdeadline) > deadlineRefresh {
		p.wdeadline = now
		_ = p.str.ys.SetWriteDeadline(now.Add(connectionWriteTimeout + deadlineRefresh))
	}
	werr := writeChunked(p.str.ys, out)
	p.wmu.Unlock()
	s.codecs.put(st)
	if werr != nil {
		p.fail(werr)
	}

	var r pipeResult
	select {
	case r = <-ch:
	case <-ctx.Done():
		p.mu.Lock()
		delete(p.pending, id)
		p.mu.Unlock()
		return fmt.Errorf("rpc: %s: %w", method, ctx.Err()), true
	}
	if r.err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("rpc: %s: %w", method, ctxErr), true
		}
		return &TransportError{Method: method, MaybeSent: true, Err: r.err}, true
	}
	defer s.codecs.putFrame(r.st)
	if r.status != statusOK {
		return errorFromRemote(string(r.st.body)), true
	}
	if reply == nil {
		return nil, true
	}
	zero(reply) // as Call: nothing the reply pointed at is written
	return r.st.Decode(reply), true
}

// read delivers responses to their callers until the stream ends, then
// fails whatever is still pending and releases the stream.
func (p *pipeline) read() {
	defer close(p.readerDone)
	s := p.sess
	r := p.str.r
	var err error
	for {
		st := s.codecs.getFrame()
		st.hdr, err = readFrame(r.br, &r.lenBuf, st.hdr, s.maxFrame+pipelineRespHeader)
		if err == nil && len(st.hdr) < pipelineRespHeader {
			err = fmt.Errorf("rpc: pipeline: short response frame (%d bytes)", len(st.hdr))
		}
		if err != nil {
			s.codecs.put(st)
			break
		}
		id := binary.BigEndian.Uint32(st.hdr)
		res := pipeResult{st: st, status: st.hdr[4]}
		st.body = st.hdr[pipelineRespHeader:]
		p.mu.Lock()
		ch, ok := p.pending[id]
		delete(p.pending, id)
		p.mu.Unlock()
		if !ok { // its caller gave up
			s.codecs.putFrame(st)
			continue
		}
		ch <- res
	}
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	p.fail(err)
	p.str.Close()
}

// fail marks the pipeline dead and fails every pending call with err.
func (p *pipeline) fail(err error) {
	p.mu.Lock()
	p.dead = true
	pending := p.pending
	p.pending = make(map[uint32]chan pipeResult)
	if p.idle != nil {
		p.idle.Stop()
	}
	p.mu.Unlock()
	p.sess.pipe.CompareAndSwap(p, nil)
	for _, ch := range pending {
		ch <- pipeResult{err: err}
	}
	// Writers blocked on a dead stream wake up.
	_ = p.str.ys.Close()
}

// idleCheck closes the pipeline once nothing was in flight for
// pipelineIdle; the server then ends its side and the reader exits.
func (p *pipeline) idleCheck() {
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return
	}
	if len(p.pending) > 0 || time.Since(p.lastUse) < pipelineIdle {
		p.idle.Reset(pipelineIdle)
		p.mu.Unlock()
		return
	}
	p.dead = true
	p.mu.Unlock()
	p.sess.pipe.CompareAndSwap(p, nil)
	p.wmu.Lock()
	_ = p.str.ys.Close() // half close: the server sees EOF
	p.wmu.Unlock()
}

// getFrame returns a state for one pipeline frame; its reader and writer
// are left alone (a state's bufio.Reader is kept for later streams).
func (p *codecPool) getFrame() *codecState {
	return p.pool.Get().(*codecState)
}

// writeChunked writes a whole frame (its writer holds the pipeline's
// write lock) in writes of at most bufioSize, as frameWriter does: yamux's
// send loop keeps a buffer as big as the largest write it was handed for
// the life of the session.
func writeChunked(ys *yamux.Stream, frame []byte) error {
	for len(frame) > 0 {
		n := min(len(frame), bufioSize)
		if _, err := ys.Write(frame[:n]); err != nil {
			return err
		}
		frame = frame[n:]
	}
	return nil
}

// putFrame returns a state whose body aliased its frame buffer.
func (p *codecPool) putFrame(st *codecState) {
	st.body = nil
	p.put(st)
}

// pipeServer is the server side of one open pipeline.
type pipeServer struct {
	ys        *yamux.Stream
	wmu       sync.Mutex
	wdeadline time.Time // under wmu
	wg        sync.WaitGroup
}

// pipeReq is one pipelined request waiting for, or run by, a worker.
type pipeReq struct {
	ps     *pipeServer
	st     *codecState // frame in st.hdr, body in st.body
	id     uint32
	entry  handlerEntry
	method string
}

// servePipeline acknowledges the pipeline request read into st, then reads
// request frames and hands each to a worker until the client closes its
// side or the session dies. It owns st.
func (s *Server) servePipeline(job streamJob, ys *yamux.Stream, st *codecState) {
	log := job.log
	ctx := contextWithPeer(job.ctx, ys.RemoteAddr()) // every call of the pipeline
	ps := &pipeServer{ys: ys}
	defer func() {
		ps.wg.Wait()
		ys.Close()
		s.codecs.put(st)
	}()
	_ = ys.SetWriteDeadline(time.Now().Add(s.limits.WriteTimeout))
	err := st.writeFrame(&responseHeader{}, s.limits.MaxFrameSize)
	if err == nil {
		err = st.writeFrame(nil, s.limits.MaxFrameSize)
	}
	if err == nil {
		err = st.bw.Flush()
	}
	if err != nil {
		log.Debug("rpc: pipeline ack failed", zap.Error(err))
		return
	}
	s.metrics.requests.WithLabelValues("ok").Inc()
	max := s.limits.MaxFrameSize + pipelineReqHeader + maxMethodLen
	var rdeadline time.Time
	for {
		if now := time.Now(); now.Sub(rdeadline) > deadlineRefresh {
			rdeadline = now
			_ = ys.SetReadDeadline(now.Add(s.limits.SessionIdleTimeout))
		}
		rst := s.codecs.getFrame()
		rst.hdr, err = readFrame(st.br, &st.lenBuf, rst.hdr, max)
		if err != nil {
			s.codecs.put(rst)
			if errors.Is(err, io.EOF) {
				return // the client closed its side
			}
			reason, detail := "bad_request", "malformed pipeline frame"
			switch {
			case errors.Is(err, yamux.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded):
				reason, detail = "stream_timeout", fmt.Sprintf("pipeline silent for %s", s.limits.SessionIdleTimeout)
			case errors.Is(err, ErrFrameTooLarge):
				reason, detail = "frame_too_large", "frame exceeds limit"
			case errors.Is(err, io.ErrUnexpectedEOF):
				reason, detail = "truncated", "truncated pipeline frame"
			case errors.Is(err, yamux.ErrConnectionReset) || errors.Is(err, yamux.ErrSessionShutdown) || errors.Is(err, yamux.ErrStreamClosed):
				return
			}
			s.reportStream(ys, reason, detail, err, log)
			return
		}
		id, mb, body, err := parsePipelineRequest(rst.hdr)
		if err != nil {
			s.codecs.put(rst)
			s.reportStream(ys, "bad_request", "malformed pipeline frame", err, log)
			return
		}
		req := &pipeReq{ps: ps, st: rst, id: id}
		rst.body = body
		if e, ok := s.handlerFor(mb); ok {
			req.entry, req.method = e, e.name
		} else {
			req.method = string(mb)
		}
		select {
		case job.sem <- struct{}{}:
		case <-job.ctx.Done():
			s.codecs.putFrame(rst)
			return
		}
		job.inflight.Add(1)
		ps.wg.Add(1)
		s.dispatch(streamJob{ctx: ctx, sem: job.sem, inflight: job.inflight, log: log, pipe: req})
	}
}

// parsePipelineRequest splits a request frame's payload into its ID,
// method and body (both aliasing f).
func parsePipelineRequest(f []byte) (id uint32, method, body []byte, err error) {
	if len(f) < pipelineReqHeader {
		return 0, nil, nil, fmt.Errorf("rpc: pipeline: request frame of %d bytes", len(f))
	}
	n := int(f[4])
	if n == 0 || len(f) < pipelineReqHeader+n {
		return 0, nil, nil, fmt.Errorf("rpc: pipeline: method length %d in a frame of %d bytes", n, len(f))
	}
	return binary.BigEndian.Uint32(f), f[pipelineReqHeader : pipelineReqHeader+n], f[pipelineReqHeader+n:], nil
}

// reportStream counts a refused stream and logs it at most once a minute
// per peer.
func (s *Server) reportStream(ys *yamux.Stream, reason, detail string, err error, log *zap.Logger) {
	s.metrics.rejected.WithLabelValues(reason).Inc()
	if s.logPeer(ys.RemoteAddr()) {
		log.Warn("rpc: closing stream (logged once a minute per peer)", zap.String("reason", detail), zap.Uint32("stream", ys.StreamID()), zap.Error(err))
	}
}

// servePipelined runs one pipelined request and writes its response frame.
func (s *Server) servePipelined(ctx context.Context, r *pipeReq, log *zap.Logger) {
	st := r.st
	defer func() {
		s.codecs.putFrame(st)
		r.ps.wg.Done()
	}()
	var reply any
	var herr error
	switch {
	case r.entry.h != nil:
		reply, herr = s.callEntry(ctx, r.entry, st, log)
	case s.streamHandler(r.method) != nil:
		herr = fmt.Errorf("rpc: %s is a stream method", r.method)
	default:
		herr = fmt.Errorf("rpc: unknown method %q", r.method)
	}
	status := statusOK
	if herr == nil {
		st.scratch = st.scratch[:0]
		st.enc.ResetBytes(&st.scratch)
		if err := st.enc.Encode(reply); err != nil {
			herr = fmt.Errorf("rpc: encode: %w", err)
		} else if len(st.scratch) > s.limits.MaxFrameSize {
			herr = fmt.Errorf("%w: encoded %d bytes, limit %d", ErrFrameTooLarge, len(st.scratch), s.limits.MaxFrameSize)
		}
		if herr != nil {
			log.Warn("rpc: cannot encode response", zap.String("method", r.method), zap.Error(herr))
		}
	}
	payload := st.scratch
	if herr != nil {
		status = statusError
		payload = append(st.scratch[:0], herr.Error()...)
		st.scratch = payload
		s.metrics.requests.WithLabelValues("error").Inc()
	} else {
		s.metrics.requests.WithLabelValues("ok").Inc()
	}
	out := st.out[:0]
	out = binary.BigEndian.AppendUint32(out, uint32(pipelineRespHeader+len(payload)))
	out = binary.BigEndian.AppendUint32(out, r.id)
	out = append(out, status)
	out = append(out, payload...)
	st.out = out
	ps := r.ps
	ps.wmu.Lock()
	if now := time.Now(); now.Sub(ps.wdeadline) > deadlineRefresh {
		ps.wdeadline = now
		_ = ps.ys.SetWriteDeadline(now.Add(s.limits.WriteTimeout + deadlineRefresh))
	}
	err := writeChunked(ps.ys, out)
	ps.wmu.Unlock()
	if err != nil {
		log.Debug("rpc: write pipelined response failed", zap.String("method", r.method), zap.Error(err))
	}
}
