package rpc

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"
)

// Long-lived streams. A method registered with HandleStream keeps its yamux
// stream open after the request: the server answers the usual response
// header (the handler's refusal, or success with an empty body), then both
// sides exchange length-prefixed msgpack frames, each direction in order,
// until either side closes. Subscriptions (cluster/stream) use one such
// stream per session to carry every subscription of a client.

// StreamHandler serves one long-lived stream. dec holds the opening
// request's body and is valid until open is called. A handler that returns
// an error before calling open refuses the stream: the client's OpenStream
// returns that error. open sends the success header and returns the
// Stream; from then on the handler owns it until it returns (the server
// closes it then). ctx ends when the session dies or the server closes.
type StreamHandler func(ctx context.Context, dec Decoder, open func() (*Stream, error)) error

// HandleStream registers h for method, replacing any previous handler of
// either kind.
func (s *Server) HandleStream(method string, h StreamHandler) {
	s.handlersMu.Lock()
	delete(s.handlers, method)
	if s.streamHandlers == nil {
		s.streamHandlers = make(map[string]StreamHandler)
	}
	s.streamHandlers[method] = h
	s.handlersMu.Unlock()
}

func (s *Server) streamHandler(method string) StreamHandler {
	s.handlersMu.RLock()
	defer s.handlersMu.RUnlock()
	return s.streamHandlers[method]
}

// Stream is one side of a long-lived stream. Send and Recv may be called
// concurrently with each other; Sends are serialised, and Recv has one
// caller at a time.
type Stream struct {
	ys           *yamux.Stream
	pool         *codecPool
	r, w         *codecState
	maxFrame     int
	writeTimeout time.Duration

	wmu       sync.Mutex
	rmu       sync.Mutex
	closeOnce sync.Once
}

func newStream(ys *yamux.Stream, pool *codecPool, r *codecState, maxFrame int, writeTimeout time.Duration) *Stream {
	return &Stream{ys: ys, pool: pool, r: r, w: pool.get(nil, ys), maxFrame: maxFrame, writeTimeout: writeTimeout}
}

// SetWriteTimeout sets how long each later Send may wait for the peer
// (0: no bound). Call it before the Stream is shared.
func (s *Stream) SetWriteTimeout(d time.Duration) {
	s.wmu.Lock()
	s.writeTimeout = d
	s.wmu.Unlock()
}

// Send encodes v as one frame and writes it. A peer that does not take it
// within the write timeout fails the Send (the stream is then unusable:
// close it).
func (s *Stream) Send(v any) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.w == nil {
		return &TransportError{Method: "stream", MaybeSent: false, Err: yamux.ErrStreamClosed}
	}
	if s.writeTimeout > 0 {
		_ = s.ys.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
	err := s.w.writeFrame(v, s.maxFrame)
	if err == nil {
		err = s.w.bw.Flush()
	}
	if err != nil {
		if errors.Is(err, ErrFrameTooLarge) {
			return err
		}
		return &TransportError{Method: "stream", MaybeSent: true, Err: err}
	}
	return nil
}

// SendRaw writes payload, already msgpack-encoded, as one frame: a
// sender fanning one encoded result out to many streams encodes it once.
func (s *Stream) SendRaw(payload []byte) error {
	if len(payload) > s.maxFrame {
		return fmt.Errorf("%w: encoded %d bytes, limit %d", ErrFrameTooLarge, len(payload), s.maxFrame)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.w == nil {
		return &TransportError{Method: "stream", MaybeSent: false, Err: yamux.ErrStreamClosed}
	}
	if s.writeTimeout > 0 {
		_ = s.ys.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
	binary.BigEndian.PutUint32(s.w.lenBuf[:], uint32(len(payload)))
	_, err := s.w.bw.Write(s.w.lenBuf[:])
	if err == nil {
		_, err = s.w.bw.Write(payload)
	}
	if err == nil {
		err = s.w.bw.Flush()
	}
	if err != nil {
		return &TransportError{Method: "stream", MaybeSent: true, Err: err}
	}
	return nil
}

// Recv blocks for the next frame and decodes it into v (zeroed first, as
// Call does). It fails once the stream or its session closes.
func (s *Stream) Recv(v any) error {
	s.rmu.Lock()
	defer s.rmu.Unlock()
	if s.r == nil {
		return &TransportError{Method: "stream", Err: yamux.ErrStreamClosed}
	}
	var err error
	s.r.body, err = readFrame(s.r.br, &s.r.lenBuf, s.r.body, s.maxFrame)
	if err != nil {
		return &TransportError{Method: "stream", MaybeSent: true, Err: err}
	}
	zero(v)
	return s.r.Decode(v)
}

// Close closes the stream; a blocked Recv or Send returns. Safe to call
// more than once and concurrently with Send and Recv.
func (s *Stream) Close() error {
	first := false
	s.closeOnce.Do(func() {
		first = true
		s.ys.Close()
		// Unblock a reader waiting for data or a writer waiting for window.
		_ = s.ys.SetDeadline(time.Unix(1, 0))
	})
	if first {
		s.release()
	}
	return nil
}

// release returns the codec states to the pool once nobody uses them.
func (s *Stream) release() {
	s.wmu.Lock()
	if s.w != nil {
		s.pool.put(s.w)
		s.w = nil
	}
	s.wmu.Unlock()
	s.rmu.Lock()
	if s.r != nil {
		s.pool.put(s.r)
		s.r = nil
	}
	s.rmu.Unlock()
}

// serveLongStream runs h on a stream whose request was just read into st.
// It owns st from here on.
func (s *Server) serveLongStream(ctx context.Context, ys *yamux.Stream, st *codecState, method string, h StreamHandler, log *zap.Logger) {
	var str *Stream
	opened := false
	open := func() (*Stream, error) {
		if opened {
			return nil, errors.New("rpc: stream opened twice")
		}
		opened = true
		_ = ys.SetWriteDeadline(time.Now().Add(s.limits.WriteTimeout))
		err := st.writeFrame(&responseHeader{}, s.limits.MaxFrameSize)
		if err == nil {
			err = st.writeFrame(nil, s.limits.MaxFrameSize)
		}
		if err == nil {
			err = st.bw.Flush()
		}
		if err != nil {
			return nil, &TransportError{Method: method, MaybeSent: true, Err: err}
		}
		str = newStream(ys, s.codecs, st, s.limits.MaxFrameSize, s.limits.WriteTimeout)
		return str, nil
	}
	err := s.callStream(ctx, method, h, st, open, log)
	if str != nil {
		str.Close()
		if err != nil {
			log.Debug("rpc: stream ended", zap.String("method", method), zap.Error(err))
		}
		s.metrics.requests.WithLabelValues("ok").Inc()
		return
	}
	defer s.codecs.put(st)
	if err == nil {
		err = fmt.Errorf("rpc: %s: handler neither opened nor refused the stream", method)
	}
	s.metrics.requests.WithLabelValues("error").Inc()
	_ = ys.SetWriteDeadline(time.Now().Add(s.limits.WriteTimeout))
	if werr := st.writeFrame(&responseHeader{Error: err.Error()}, s.limits.MaxFrameSize); werr == nil {
		if werr = st.writeFrame(nil, s.limits.MaxFrameSize); werr == nil {
			_ = st.bw.Flush()
		}
	}
}

func (s *Server) callStream(ctx context.Context, method string, h StreamHandler, dec Decoder, open func() (*Stream, error), log *zap.Logger) (err error) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("rpc: stream handler panic", zap.String("method", method), zap.Any("panic", r))
			err = fmt.Errorf("rpc: internal error in %s", method)
		}
	}()
	return h(ctx, dec, open)
}

// OpenStream opens a long-lived stream to method with args as the opening
// body. ctx bounds the opening only; Close ends the stream. A refusal by
// the server's handler comes back as its error (RemoteError or a structs
// sentinel), wire failures as *TransportError.
func (s *Session) OpenStream(ctx context.Context, method string, args any) (*Stream, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ys, err := s.mux.OpenStream()
	if err != nil {
		return nil, &TransportError{Method: method, Err: err}
	}
	ok := false
	defer func() {
		if !ok {
			ys.Close()
		}
	}()
	if dl, has := ctx.Deadline(); has {
		_ = ys.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = ys.SetDeadline(time.Unix(1, 0)) })
	st := s.codecs.get(ys, ys)
	fail := func(err error) (*Stream, error) {
		stop()
		s.codecs.put(st)
		return nil, s.failed(ctx, method, st, err)
	}
	hdr := requestHeader{Method: method}
	if err := st.writeFrame(&hdr, s.maxFrame); err != nil {
		return fail(err)
	}
	if err := st.writeFrame(args, s.maxFrame); err != nil {
		return fail(err)
	}
	if err := st.bw.Flush(); err != nil {
		return fail(err)
	}
	resp, err := st.readResponse(s.maxFrame)
	if err != nil {
		return fail(err)
	}
	if !stop() {
		return fail(ctx.Err())
	}
	if resp.Error != "" {
		s.codecs.put(st)
		return nil, errorFromRemote(resp.Error)
	}
	_ = ys.SetDeadline(time.Time{})
	ok = true
	return newStream(ys, s.codecs, st, s.maxFrame, connectionWriteTimeout), nil
}

// zero sets *v to its zero value when v is a non-nil pointer.
func zero(v any) {
	if rv := reflect.ValueOf(v); rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv.Elem().SetZero()
	}
}
