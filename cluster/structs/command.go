package structs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Raft log commands (register, deregister, KV) use a compact hand-written
// binary encoding rather than msgpack: every server decodes every command
// in its FSM, and reflection-driven msgpack decoding was ~70% of the apply
// cost. Layout after the MessageType byte: a format version byte, then the
// fields in declaration order — strings and byte slices as uvarint length
// + bytes, integers as uvarints (ports and weights as zigzag varints),
// bools as one byte, slices and maps as count+1 (0 = nil) then their
// elements, optional structs as a presence byte. Decoding is bounds-checked: a truncated or corrupt
// entry yields ErrBadCommand, never a panic.

// commandVersion is the first byte after the MessageType.
const commandVersion = 1

// commandSizeHint is the starting buffer for an encoded command: a typical
// registration fits, so encoding does not regrow its buffer field by
// field (that regrowth was 8% of a busy leader's CPU).
const commandSizeHint = 512

// maxCommandElems bounds any decoded count (map entries, tags, checks) so a
// corrupt length cannot make the decoder allocate without limit.
const maxCommandElems = 1 << 16

// ErrBadCommand reports an undecodable Raft command.
var ErrBadCommand = errors.New("structs: malformed command")

// ErrNewerCommandVersion reports a command whose format version byte is
// higher than this build's commandVersion: a newer server wrote it. It
// wraps ErrBadCommand; the FSM stops on it rather than skip an entry that
// newer replicas apply.
var ErrNewerCommandVersion = fmt.Errorf("%w: written in a newer format version", ErrBadCommand)

type cmdWriter struct{ b []byte }

func (w *cmdWriter) uvarint(v uint64) { w.b = binary.AppendUvarint(w.b, v) }
func (w *cmdWriter) varint(v int64)   { w.b = binary.AppendVarint(w.b, v) }
func (w *cmdWriter) str(s string)     { w.uvarint(uint64(len(s))); w.b = append(w.b, s...) }
func (w *cmdWriter) bytes(p []byte) {
	if p == nil {
		w.uvarint(0)
		w.b = append(w.b, 0)
		return
	}
	w.uvarint(uint64(len(p)))
	w.b = append(w.b, 1)
	w.b = append(w.b, p...)
}
func (w *cmdWriter) boolean(v bool) {
	if v {
		w.b = append(w.b, 1)
	} else {
		w.b = append(w.b, 0)
	}
}
func (w *cmdWriter) strs(ss []string) {
	if ss == nil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(len(ss)) + 1)
	for _, s := range ss {
		w.str(s)
	}
}
func (w *cmdWriter) strMap(m map[string]string) {
	if m == nil {
		w.uvarint(0)
		return
	}
	w.uvarint(uint64(len(m)) + 1)
	for k, v := range m {
		w.str(k)
		w.str(v)
	}
}

type cmdReader struct {
	b   []byte
	err error
}

func (r *cmdReader) fail() {
	if r.err == nil {
		r.err = ErrBadCommand
	}
	r.b = nil
}

func (r *cmdReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *cmdReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *cmdReader) take(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail()
		return nil
	}
	p := r.b[:n]
	r.b = r.b[n:]
	return p
}

func (r *cmdReader) str() string { return string(r.take(r.uvarint())) }

func (r *cmdReader) bytes() []byte {
	n := r.uvarint()
	present := r.take(1)
	if r.err != nil || present[0] == 0 {
		return nil
	}
	return append([]byte{}, r.take(n)...)
}

func (r *cmdReader) boolean() bool {
	p := r.take(1)
	return r.err == nil && p[0] == 1
}

func (r *cmdReader) count() (int, bool) {
	n := r.uvarint()
	if n == 0 || r.err != nil {
		return 0, false
	}
	if n-1 > maxCommandElems || n-1 > uint64(len(r.b)) {
		r.fail()
		return 0, false
	}
	return int(n - 1), true
}

func (r *cmdReader) strs() []string {
	n, ok := r.count()
	if !ok {
		return nil
	}
	out := make([]string, n)
	for i := range out {
		out[i] = r.str()
	}
	return out
}

func (r *cmdReader) strMap() map[string]string {
	n, ok := r.count()
	if !ok {
		return nil
	}
	out := make(map[string]string, n)
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		out[k] = r.str()
	}
	return out
}

func (r *cmdReader) int() int {
	v := r.varint()
	if v > math.MaxInt32 || v < math.MinInt32 {
		r.fail()
		return 0
	}
	return int(v)
}

func (w *cmdWriter) service(s *NodeService) {
	if s == nil {
		w.boolean(false)
		return
	}
	w.boolean(true)
	w.str(s.ID)
	w.str(s.Service)
	w.strs(s.Tags)
	w.str(s.Address)
	w.varint(int64(s.Port))
	w.strMap(s.Meta)
	if s.Weights == nil {
		w.boolean(false)
	} else {
		w.boolean(true)
		w.varint(int64(s.Weights.Passing))
		w.varint(int64(s.Weights.Warning))
	}
	w.boolean(s.EnableTagOverride)
	w.uvarint(s.CreateIndex)
	w.uvarint(s.ModifyIndex)
}

func (r *cmdReader) service() *NodeService {
	if !r.boolean() {
		return nil
	}
	s := &NodeService{}
	s.ID = r.str()
	s.Service = r.str()
	s.Tags = r.strs()
	s.Address = r.str()
	s.Port = r.int()
	s.Meta = r.strMap()
	if r.boolean() {
		s.Weights = &Weights{Passing: r.int(), Warning: r.int()}
	}
	s.EnableTagOverride = r.boolean()
	s.CreateIndex = r.uvarint()
	s.ModifyIndex = r.uvarint()
	return s
}

func (w *cmdWriter) check(c *HealthCheck) {
	if c == nil {
		w.boolean(false)
		return
	}
	w.boolean(true)
	for _, s := range [...]string{c.Node, c.CheckID, c.Name, c.Status, c.Notes, c.Output, c.ServiceID, c.ServiceName} {
		w.str(s)
	}
	w.strs(c.ServiceTags)
	w.str(c.Type)
	w.uvarint(c.CreateIndex)
	w.uvarint(c.ModifyIndex)
}

func (r *cmdReader) check() *HealthCheck {
	if !r.boolean() {
		return nil
	}
	c := &HealthCheck{}
	for _, p := range [...]*string{&c.Node, &c.CheckID, &c.Name, &c.Status, &c.Notes, &c.Output, &c.ServiceID, &c.ServiceName} {
		*p = r.str()
	}
	c.ServiceTags = r.strs()
	c.Type = r.str()
	c.CreateIndex = r.uvarint()
	c.ModifyIndex = r.uvarint()
	return c
}

// appendCommand encodes msg (one of the three command types) after dst.
func appendCommand(dst []byte, msg any) ([]byte, bool) {
	w := cmdWriter{b: append(dst, commandVersion)}
	switch m := msg.(type) {
	case *RegisterRequest:
		w.str(m.Datacenter)
		w.str(m.ID)
		w.str(m.Node)
		w.str(m.Address)
		w.strMap(m.TaggedAddresses)
		w.strMap(m.NodeMeta)
		w.service(m.Service)
		w.check(m.Check)
		if m.Checks == nil {
			w.uvarint(0)
		} else {
			w.uvarint(uint64(len(m.Checks)) + 1)
			for _, c := range m.Checks {
				w.check(c)
			}
		}
		w.boolean(m.SkipNodeUpdate)
	case *DeregisterRequest:
		w.str(m.Datacenter)
		w.str(m.Node)
		w.str(m.ServiceID)
		w.str(m.CheckID)
	case *KVSRequest:
		w.str(m.Datacenter)
		w.str(string(m.Op))
		e := &m.DirEnt
		w.str(e.Key)
		w.bytes(e.Value)
		w.uvarint(e.Flags)
		w.uvarint(e.LockIndex)
		w.str(e.Session)
		w.uvarint(e.CreateIndex)
		w.uvarint(e.ModifyIndex)
	default:
		return dst, false
	}
	return w.b, true
}

// DecodeCommand decodes the body of a Raft command (the bytes after the
// MessageType) into out: *RegisterRequest, *DeregisterRequest or
// *KVSRequest.
func DecodeCommand(b []byte, out any) error {
	r := cmdReader{b: b}
	v := r.take(1)
	switch {
	case r.err != nil:
		return r.err
	case v[0] > commandVersion:
		return fmt.Errorf("%w (%d, this server knows up to %d)", ErrNewerCommandVersion, v[0], commandVersion)
	case v[0] != commandVersion:
		return fmt.Errorf("%w: unknown version %d", ErrBadCommand, v[0])
	}
	switch m := out.(type) {
	case *RegisterRequest:
		m.Datacenter = r.str()
		m.ID = r.str()
		m.Node = r.str()
		m.Address = r.str()
		m.TaggedAddresses = r.strMap()
		m.NodeMeta = r.strMap()
		m.Service = r.service()
		m.Check = r.check()
		if n, ok := r.count(); ok {
			m.Checks = make([]*HealthCheck, n)
			for i := range m.Checks {
				m.Checks[i] = r.check()
			}
		}
		m.SkipNodeUpdate = r.boolean()
	case *DeregisterRequest:
		m.Datacenter = r.str()
		m.Node = r.str()
		m.ServiceID = r.str()
		m.CheckID = r.str()
	case *KVSRequest:
		m.Datacenter = r.str()
		m.Op = KVOp(r.str())
		e := &m.DirEnt
		e.Key = r.str()
		e.Value = r.bytes()
		e.Flags = r.uvarint()
		e.LockIndex = r.uvarint()
		e.Session = r.str()
		e.CreateIndex = r.uvarint()
		e.ModifyIndex = r.uvarint()
	default:
		return fmt.Errorf("structs: DecodeCommand: unsupported %T", out)
	}
	if r.err != nil {
		return r.err
	}
	if len(r.b) != 0 {
		return fmt.Errorf("%w: %d trailing bytes", ErrBadCommand, len(r.b))
	}
	return nil
}

// MarshalBinary makes msgpack (RPC) carry the request in the compact
// command encoding too: the leader decodes every write request once more
// on the RPC path, and reflection there cost as much as in the FSM.
func (r *RegisterRequest) MarshalBinary() ([]byte, error) {
	b, _ := appendCommand(make([]byte, 0, commandSizeHint), r)
	return b, nil
}

// UnmarshalBinary is MarshalBinary's inverse.
func (r *RegisterRequest) UnmarshalBinary(b []byte) error { return DecodeCommand(b, r) }

// MarshalBinary: see RegisterRequest.MarshalBinary.
func (r *DeregisterRequest) MarshalBinary() ([]byte, error) {
	b, _ := appendCommand(make([]byte, 0, 128), r)
	return b, nil
}

// UnmarshalBinary is MarshalBinary's inverse.
func (r *DeregisterRequest) UnmarshalBinary(b []byte) error { return DecodeCommand(b, r) }

// MarshalBinary: see RegisterRequest.MarshalBinary.
func (r *KVSRequest) MarshalBinary() ([]byte, error) {
	b, _ := appendCommand(make([]byte, 0, 64+len(r.DirEnt.Key)+len(r.DirEnt.Value)), r)
	return b, nil
}

// UnmarshalBinary is MarshalBinary's inverse.
func (r *KVSRequest) UnmarshalBinary(b []byte) error { return DecodeCommand(b, r) }
