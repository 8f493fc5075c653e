package structs

import (
	"bytes"
	"fmt"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// MsgpackHandle is the one codec configuration used on disk and on the
// wire. Handles are safe for concurrent use once configured; callers must
// not mutate it.
func MsgpackHandle() *codec.MsgpackHandle {
	h := &codec.MsgpackHandle{}
	h.RawToString = true
	h.WriteExt = true
	h.MapType = nil
	return h
}

var msgpackHandle = MsgpackHandle() // read-only after init

// Encode returns a Raft log entry: t followed by msg's command encoding
// (see command.go) for the three command types, msgpack otherwise.
func Encode(t MessageType, msg any) ([]byte, error) {
	if out, ok := appendCommand(append(make([]byte, 0, commandSizeHint), byte(t)), msg); ok {
		return out, nil
	}
	var buf bytes.Buffer
	buf.WriteByte(byte(t))
	if err := codec.NewEncoder(&buf, msgpackHandle).Encode(msg); err != nil {
		return nil, fmt.Errorf("structs: encode %d: %w", t, err)
	}
	return buf.Bytes(), nil
}

// EncodeMsgpack encodes v as msgpack with the shared handle.
func EncodeMsgpack(v any) ([]byte, error) {
	var out []byte
	if err := codec.NewEncoderBytes(&out, msgpackHandle).Encode(v); err != nil {
		return nil, err
	}
	return out, nil
}

// DecodeMsgpack decodes msgpack b into out with the shared handle.
func DecodeMsgpack(b []byte, out any) error {
	return codec.NewDecoderBytes(b, msgpackHandle).Decode(out)
}
