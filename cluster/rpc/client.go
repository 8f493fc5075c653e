package rpc

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"reflect"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"
	"go.uber.org/zap"

	"github.com/cairnd/cairn/cluster/acl"
)

// DefaultDialTimeout bounds connecting plus the yamux handshake ping.
const DefaultDialTimeout = 5 * time.Second

// DialOptions tune Dial. Zero values take defaults.
type DialOptions struct {
	// Timeout bounds TCP connect and the handshake (DefaultDialTimeout).
	Timeout time.Duration
	// MaxFrameSize bounds a response frame (DefaultMaxFrameSize).
	MaxFrameSize int
	// Logger receives yamux's own complaints; nil discards them.
	Logger *zap.Logger
	// TLS, when set, wraps the connection in TLS behind the ProtoTLS
	// marker (see tls.go); nil dials plain.
	TLS *tls.Config
	// LocalAddr, if set, is the local address to dial from.
	LocalAddr net.Addr
	// NoPipeline keeps a yamux stream per Call even when calls overlap
	// (pipeline.go); for comparisons and tests.
	NoPipeline bool
}

// Session is a client's multiplexed connection to one server. Calls on it
// are safe for concurrent use; each uses its own yamux stream.
type Session struct {
	addr     string
	conn     net.Conn
	mux      *yamux.Session
	codecs   *codecPool
	maxFrame int

	// The call pipeline (pipeline.go): calls in flight, whether one may
	// be opened, and the open one.
	calls      atomic.Int32
	noPipeline bool
	pipeMode   atomic.Int32
	pipe       atomic.Pointer[pipeline]
}

// Dial connects to a server's RPC port, selects ProtoRPC and starts a yamux
// client session with keepalives. A ping confirms the server speaks yamux
// before Dial returns.
func Dial(ctx context.Context, addr string, opts DialOptions) (*Session, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultDialTimeout
	}
	if opts.MaxFrameSize <= 0 {
		opts.MaxFrameSize = DefaultMaxFrameSize
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	d := net.Dialer{LocalAddr: opts.LocalAddr}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
	}
	if conn, err = clientHandshake(ctx, conn, opts.TLS, ProtoRPC); err != nil {
		return nil, fmt.Errorf("rpc: dial %s: %w", addr, err)
	}

	cfg := yamuxConfig(opts.Logger.With(zap.String("server", addr)), acceptBacklog)
	// No per-stream open timer: yamux would start a goroutine and timer
	// for every Call (it halved our round-trip rate). A server that never
	// ACKs is caught by Call's ctx and by the session keepalive instead.
	cfg.StreamOpenTimeout = 0
	mux, err := yamux.Client(newBatchConn(conn), cfg)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("rpc: dial %s: yamux: %w", addr, err)
	}
	// Ping so a dead or foreign listener fails Dial, not the first Call;
	// closing the session aborts the ping if ctx expires first.
	stop := context.AfterFunc(ctx, func() { mux.Close() })
	_, err = mux.Ping()
	if !stop() || err != nil {
		mux.Close()
		if err == nil || ctx.Err() != nil {
			err = ctx.Err()
		}
		return nil, fmt.Errorf("rpc: dial %s: handshake: %w", addr, err)
	}
	return &Session{
		addr:       addr,
		conn:       conn,
		mux:        mux,
		codecs:     newCodecPool(),
		maxFrame:   opts.MaxFrameSize,
		noPipeline: opts.NoPipeline,
	}, nil
}

// Addr is the address the session was dialled with.
func (s *Session) Addr() string { return s.addr }

// LocalAddr is the local end of the session's TCP connection.
func (s *Session) LocalAddr() net.Addr { return s.conn.LocalAddr() }

// Close closes the session; in-flight calls fail with a TransportError.
func (s *Session) Close() error { return s.mux.Close() }

// IsClosed reports whether the session is closed.
func (s *Session) IsClosed() bool { return s.mux.IsClosed() }

// CloseChan is closed when the session closes, for whatever reason.
func (s *Session) CloseChan() <-chan struct{} { return s.mux.CloseChan() }

// NumStreams is the number of streams (calls) currently open.
func (s *Session) NumStreams() int { return s.mux.NumStreams() }

// Call sends args to method and decodes the response into reply (which may
// be nil to discard it). On success reply holds the response and nothing
// else: it is zeroed first, and nothing it pointed at before is written.
// Handler errors come back as structs sentinels or RemoteError; wire
// failures as *TransportError; if ctx ends first the stream is abandoned
// and ctx's error returned.
func (s *Session) Call(ctx context.Context, method string, args, reply any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	n := s.calls.Add(1)
	defer s.calls.Add(-1)
	// A call carrying an ACL token takes a stream of its own: pipeline
	// frames have no per-call header, and one caller's token must never
	// stand for another's (the server runs pipelined calls tokenless).
	if acl.TokenFromContext(ctx) == "" {
		if p := s.pipelineFor(ctx, n); p != nil {
			if err, ok := p.call(ctx, method, args, reply); ok {
				return err
			}
		}
	}
	stream, err := s.mux.OpenStream()
	if err != nil {
		return &TransportError{Method: method, Err: err}
	}
	defer stream.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = stream.SetDeadline(dl)
	}
	if ctx.Done() != nil {
		// A deadline in the past wakes any blocked Read or Write.
		stop := context.AfterFunc(ctx, func() { _ = stream.SetDeadline(time.Unix(1, 0)) })
		defer stop()
	}

	st := s.codecs.get(stream, stream)
	defer s.codecs.put(st)

	hdr := requestHeader{Method: method, Token: acl.TokenFromContext(ctx)}
	if err := st.writeFrame(&hdr, s.maxFrame); err != nil {
		return s.failed(ctx, method, st, err)
	}
	if err := st.writeFrame(args, s.maxFrame); err != nil {
		if errors.Is(err, ErrFrameTooLarge) && st.cw.calls == 0 {
			return fmt.Errorf("rpc: %s: request: %w", method, err)
		}
		return s.failed(ctx, method, st, err)
	}
	if err := st.bw.Flush(); err != nil {
		return s.failed(ctx, method, st, err)
	}
	resp, err := st.readResponse(s.maxFrame)
	if err != nil {
		return s.failed(ctx, method, st, err)
	}
	if resp.Error != "" {
		return errorFromRemote(resp.Error)
	}
	if reply == nil {
		return nil
	}
	// Decode into a zeroed reply. msgpack decodes a slice element into the
	// struct its pointer already points at and merges into a non-nil map,
	// so a reused reply would leave old map entries behind and, worse,
	// write the response into whatever the reply pointed at: a server
	// forwarding a read after its own local attempt hands us rows owned by
	// its state store, which would then serve another server's rows
	// (replicas diverged under the chaos pause-leader nemesis).
	if v := reflect.ValueOf(reply); v.Kind() == reflect.Pointer && !v.IsNil() {
		v.Elem().SetZero()
	}
	return st.Decode(reply)
}

// failed classifies a wire error. The request is provably unsent only if
// nothing was ever handed to the stream: a yamux write that reports an
// error may still have queued its frame, so any attempt counts as sent.
func (s *Session) failed(ctx context.Context, method string, st *codecState, err error) error {
	if errors.Is(err, yamux.ErrTimeout) || errors.Is(err, os.ErrDeadlineExceeded) {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("rpc: %s: %w", method, ctxErr)
		}
		if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
			return fmt.Errorf("rpc: %s: %w", method, context.DeadlineExceeded)
		}
	}
	return &TransportError{Method: method, MaybeSent: st.cw.calls > 0, Err: err}
}
