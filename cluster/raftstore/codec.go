package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"
)

// Log value layout, version 1. The index lives in the key, not the value.
//
//	byte    codecVersion
//	byte    raft.LogType
//	byte    flags (flagAppendedAt)
//	uvarint Term
//	uvarint len(Data),       Data
//	uvarint len(Extensions), Extensions
//	varint  AppendedAt.UnixNano()   (only when flagAppendedAt is set)
//
// A hand-written layout beats msgpack here: no reflection, one allocation per
// decoded entry, and the header is a handful of bytes.
const (
	codecVersion   = 1
	flagAppendedAt = 1 << 0
	// logHeaderMax is the worst-case size of everything except Data and
	// Extensions: three bytes, four varints.
	logHeaderMax = 3 + 4*binary.MaxVarintLen64
)

var errShortLog = errors.New("truncated log entry")

// logKey returns the Pebble key of the log entry at index.
func logKey(index uint64) []byte {
	var k [9]byte
	k[0] = prefixLog
	binary.BigEndian.PutUint64(k[1:], index)
	return k[:]
}

// appendLog appends the encoding of l to dst.
func appendLog(dst []byte, l *raft.Log) []byte {
	var flags byte
	if !l.AppendedAt.IsZero() {
		flags |= flagAppendedAt
	}
	dst = append(dst, codecVersion, byte(l.Type), flags)
	dst = binary.AppendUvarint(dst, l.Term)
	dst = binary.AppendUvarint(dst, uint64(len(l.Data)))
	dst = append(dst, l.Data...)
	dst = binary.AppendUvarint(dst, uint64(len(l.Extensions)))
	dst = append(dst, l.Extensions...)
	if flags&flagAppendedAt != 0 {
		dst = binary.AppendVarint(dst, l.AppendedAt.UnixNano())
	}
	return dst
}

// decodeLog fills out from src. src may be reused by the caller afterwards:
// Data and Extensions are copied into one fresh allocation.
func decodeLog(index uint64, src []byte, out *raft.Log) error {
	if len(src) < 3 {
		return errShortLog
	}
	if src[0] != codecVersion {
		return fmt.Errorf("unknown log encoding version %d", src[0])
	}
	typ, flags := raft.LogType(src[1]), src[2]
	p := src[3:]
	term, n := binary.Uvarint(p)
	if n <= 0 {
		return errShortLog
	}
	p = p[n:]
	data, p, err := cutBytes(p)
	if err != nil {
		return err
	}
	ext, p, err := cutBytes(p)
	if err != nil {
		return err
	}
	var appended time.Time
	if flags&flagAppendedAt != 0 {
		ns, n := binary.Varint(p)
		if n <= 0 {
			return errShortLog
		}
		appended = time.Unix(0, ns)
	}

	var buf []byte
	if len(data)+len(ext) > 0 {
		buf = make([]byte, len(data)+len(ext))
		copy(buf, data)
		copy(buf[len(data):], ext)
	}
	*out = raft.Log{Index: index, Term: term, Type: typ, AppendedAt: appended}
	if len(data) > 0 {
		out.Data = buf[:len(data):len(data)]
	}
	if len(ext) > 0 {
		out.Extensions = buf[len(data):]
	}
	return nil
}

// cutBytes splits a uvarint length-prefixed byte string off the front of p.
func cutBytes(p []byte) (b, rest []byte, err error) {
	l, n := binary.Uvarint(p)
	if n <= 0 || l > uint64(len(p)-n) {
		return nil, nil, errShortLog
	}
	p = p[n:]
	return p[:l], p[l:], nil
}
