package rpc

import (
	"bufio"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/cairnd/cairn/cluster/structs"
	"github.com/hashicorp/go-msgpack/v2/codec"
)

// Frame layout: a 4-byte big-endian payload length, then the payload.
const frameLenSize = 4

// ErrFrameTooLarge is returned when a length prefix exceeds the frame limit.
// It is detected before any buffer for the payload is allocated.
var ErrFrameTooLarge = errors.New("rpc: frame too large")

// requestHeader precedes every request body.
type requestHeader struct {
	Method string
	// Token is the caller's ACL secret (acl.TokenFromContext), empty for
	// none; the server's handler finds it in its ctx. It rides in the
	// header so every method carries it without a field in each request.
	Token string `codec:",omitempty"`
}

// responseHeader precedes every response body. Error is the handler's
// error text, empty on success.
type responseHeader struct {
	Error string
}

// Decoder decodes the request body for a Handler. It is valid only until
// the Handler returns.
type Decoder interface {
	Decode(v any) error
}

// countWriter counts the bytes handed to the underlying writer, so Call can
// tell whether any part of a request left the process.
type countWriter struct {
	w     io.Writer
	n     int
	calls int
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.calls++
	n, err := c.w.Write(p)
	c.n += n
	return n, err
}

// codecState is the per-stream scratch space: buffered reader and writer,
// reusable msgpack encoder/decoder and frame buffers. Pooled so that a
// round trip allocates little.
type codecState struct {
	br      *bufio.Reader
	bw      *frameWriter
	cw      countWriter
	enc     *codec.Encoder
	dec     *codec.Decoder
	scratch []byte
	hdr     []byte
	body    []byte
	out     []byte // a pipeline frame being written (pipeline.go)
	lenBuf  [frameLenSize]byte
}

// Decode implements Decoder over the last body read. A body that is one
// msgpack byte string decoded into an encoding.BinaryUnmarshaler (the
// raft write requests: register, deregister, KV, in their hand-written
// command encoding) skips the msgpack decoder: same result, without its
// reset and reflection on every request.
func (st *codecState) Decode(v any) error {
	if u, ok := v.(encoding.BinaryUnmarshaler); ok {
		if raw, ok := msgpackBytes(st.body); ok {
			if err := u.UnmarshalBinary(raw); err != nil {
				return fmt.Errorf("rpc: decode body: %w", err)
			}
			return nil
		}
	}
	st.dec.ResetBytes(st.body)
	if err := st.dec.Decode(v); err != nil {
		return fmt.Errorf("rpc: decode body: %w", err)
	}
	return nil
}

// msgpackBytes returns the payload of b when b is exactly one msgpack bin
// or str value (go-msgpack decodes either into a BinaryUnmarshaler).
func msgpackBytes(b []byte) ([]byte, bool) {
	if len(b) == 0 {
		return nil, false
	}
	var n, h int
	switch c := b[0]; {
	case c >= 0xa0 && c <= 0xbf: // fixstr
		n, h = int(c&0x1f), 1
	case (c == 0xc4 || c == 0xd9) && len(b) >= 2: // bin8, str8
		n, h = int(b[1]), 2
	case (c == 0xc5 || c == 0xda) && len(b) >= 3: // bin16, str16
		n, h = int(binary.BigEndian.Uint16(b[1:])), 3
	case (c == 0xc6 || c == 0xdb) && len(b) >= 5: // bin32, str32
		n, h = int(binary.BigEndian.Uint32(b[1:])), 5
	default:
		return nil, false
	}
	if len(b)-h != n {
		return nil, false
	}
	return b[h:], true
}

// codecPool hands out codecStates built around one msgpack handle.
type codecPool struct {
	h    *codec.MsgpackHandle
	pool sync.Pool
}

func newCodecPool() *codecPool {
	p := &codecPool{h: structs.MsgpackHandle()}
	p.pool.New = func() any {
		st := &codecState{scratch: make([]byte, 0, 512)}
		st.bw = &frameWriter{w: &st.cw}
		st.enc = codec.NewEncoderBytes(&st.scratch, p.h)
		st.dec = codec.NewDecoderBytes(nil, p.h)
		return st
	}
	return p
}

// frameWriter buffers the frames of one message (a request's or
// response's header and body, or one stream frame) until Flush writes them
// in one Write, so a small message is one yamux frame. It replaces a
// bufio.Writer, which kept 4 KiB per stream: a long-lived stream (a
// subscription, one per connected client) now keeps only what its last
// message needed, at most keptFrameBuffer. A frame that would overflow
// bufioSize goes out directly after what was buffered, as bufio does, in
// writes of at most bufioSize: yamux's send loop keeps a body buffer as big
// as the largest write it was handed, for the life of the session, so one
// big response must not leave every session that saw it holding it.
type frameWriter struct {
	w   io.Writer
	buf []byte
}

// keptFrameBuffer is the largest buffer a frameWriter keeps after Flush;
// larger ones (a big response) are dropped.
const keptFrameBuffer = 1 << 10

func (f *frameWriter) Write(p []byte) (int, error) {
	if len(f.buf)+len(p) <= bufioSize {
		f.buf = append(f.buf, p...)
		return len(p), nil
	}
	if err := f.Flush(); err != nil {
		return 0, err
	}
	if len(p) <= bufioSize {
		f.buf = append(f.buf, p...)
		return len(p), nil
	}
	n := 0
	for n < len(p) {
		m, err := f.w.Write(p[n:min(len(p), n+bufioSize)])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// Flush writes what is buffered.
func (f *frameWriter) Flush() error {
	if len(f.buf) == 0 {
		return nil
	}
	_, err := f.w.Write(f.buf)
	f.buf = f.buf[:0]
	if cap(f.buf) > keptFrameBuffer {
		f.buf = nil
	}
	return err
}

// Reset discards what is buffered and writes to w from now on.
func (f *frameWriter) Reset(w io.Writer) {
	f.w = w
	f.buf = f.buf[:0]
}

// get returns a state reading from r and writing to w. With r nil (the
// sending half of a long-lived stream, which lives as long as its client's
// session) the state holds no read buffer: 4 KiB less per connected client.
func (p *codecPool) get(r io.Reader, w io.Writer) *codecState {
	st := p.pool.Get().(*codecState)
	switch {
	case r == nil:
		st.br = nil
	case st.br == nil:
		st.br = bufio.NewReaderSize(r, readBufferSize)
	default:
		st.br.Reset(r)
	}
	st.cw = countWriter{w: w}
	st.bw.Reset(&st.cw)
	return st
}

func (p *codecPool) put(st *codecState) {
	if cap(st.hdr) > pooledBufferCap || cap(st.body) > pooledBufferCap || cap(st.scratch) > pooledBufferCap || cap(st.out) > pooledBufferCap {
		return
	}
	if st.br != nil {
		st.br.Reset(nil)
	}
	st.bw.Reset(nil)
	st.cw = countWriter{}
	st.hdr, st.body, st.out = st.hdr[:0], st.body[:0], st.out[:0]
	p.pool.Put(st)
}

// readFrame reads one length-prefixed frame into buf (reusing its
// capacity) and returns the payload. The length is checked against max
// before the payload buffer is grown.
func readFrame(r io.Reader, lenBuf *[frameLenSize]byte, buf []byte, max int) ([]byte, error) {
	if _, err := io.ReadFull(r, lenBuf[:]); err != nil {
		return buf[:0], err
	}
	n := binary.BigEndian.Uint32(lenBuf[:])
	if uint64(n) > uint64(max) {
		return buf[:0], fmt.Errorf("%w: length prefix %d exceeds limit %d", ErrFrameTooLarge, n, max)
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return buf[:0], fmt.Errorf("rpc: truncated frame (%d bytes announced): %w", n, err)
	}
	return buf, nil
}

// writeFrame encodes v and writes it, length-prefixed, to st.bw.
func (st *codecState) writeFrame(v any, max int) error {
	st.scratch = st.scratch[:0]
	st.enc.ResetBytes(&st.scratch)
	if err := st.enc.Encode(v); err != nil {
		return fmt.Errorf("rpc: encode: %w", err)
	}
	if len(st.scratch) > max {
		return fmt.Errorf("%w: encoded %d bytes, limit %d", ErrFrameTooLarge, len(st.scratch), max)
	}
	binary.BigEndian.PutUint32(st.lenBuf[:], uint32(len(st.scratch)))
	if _, err := st.bw.Write(st.lenBuf[:]); err != nil {
		return err
	}
	_, err := st.bw.Write(st.scratch)
	return err
}

// readRequest reads a request header and body from st.br. On success the
// body stays in st.body for Decode.
func (st *codecState) readRequest(max int) (requestHeader, error) {
	var hdr requestHeader
	var err error
	if st.hdr, err = readFrame(st.br, &st.lenBuf, st.hdr, max); err != nil {
		return hdr, err
	}
	st.dec.ResetBytes(st.hdr)
	if err := st.dec.Decode(&hdr); err != nil {
		return hdr, fmt.Errorf("rpc: bad request header: %w", err)
	}
	if hdr.Method == "" {
		return hdr, errors.New("rpc: request header without method")
	}
	if st.body, err = readFrame(st.br, &st.lenBuf, st.body, max); err != nil {
		return hdr, err
	}
	return hdr, nil
}

// readResponse reads a response header and body; the body stays in st.body.
func (st *codecState) readResponse(max int) (responseHeader, error) {
	var hdr responseHeader
	var err error
	if st.hdr, err = readFrame(st.br, &st.lenBuf, st.hdr, max); err != nil {
		return hdr, err
	}
	st.dec.ResetBytes(st.hdr)
	if err := st.dec.Decode(&hdr); err != nil {
		return hdr, fmt.Errorf("rpc: bad response header: %w", err)
	}
	if st.body, err = readFrame(st.br, &st.lenBuf, st.body, max); err != nil {
		return hdr, err
	}
	return hdr, nil
}
