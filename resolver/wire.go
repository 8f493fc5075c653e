package resolver

import (
	"bytes"
	"encoding/binary"
)

// Wire offsets and flags of the DNS header (RFC 1035 4.1.1).
const (
	headerLen = 12
	flagQR    = 0x80 // byte 2
	flagRD    = 0x01 // byte 2
	flagTC    = 0x02 // byte 2
	flagCD    = 0x10 // byte 3
	typeOPT   = 41
	// maxNameLen is the longest wire name (RFC 1035 2.3.4).
	maxNameLen = 255
	// maxKeyLen: a name plus type, class, an EDNS marker, size and flags.
	maxKeyLen = maxNameLen + 2 + 2 + 1 + 2 + 4
)

// question is what the fast path needs from a query: where its name is,
// and the cache key (lower-cased name, type, class, EDNS size and flags).
type question struct {
	nameEnd int // offset just past the name
	key     []byte
}

// parseQuery reads the header, question and (optional) OPT record of a
// plain query into q, with key built in keyBuf. It returns false for
// anything it cannot prove the resolver answers the same way from cached
// bytes: those go the full path.
func parseQuery(p []byte, q *question, keyBuf *[maxKeyLen]byte) bool {
	if len(p) < headerLen+5 {
		return false
	}
	if p[2]&flagQR != 0 || p[2]&0x78 != 0 { // a response, or opcode != QUERY
		return false
	}
	qd := binary.BigEndian.Uint16(p[4:])
	an := binary.BigEndian.Uint16(p[6:])
	ns := binary.BigEndian.Uint16(p[8:])
	ar := binary.BigEndian.Uint16(p[10:])
	if qd != 1 || an != 0 || ns != 0 || ar > 1 {
		return false
	}
	k, off, ok := appendName(keyBuf[:0], p)
	if !ok || off+4 > len(p) {
		return false
	}
	q.nameEnd = off
	k = append(k, p[off:off+4]...) // type, class
	off += 4
	if ar == 0 {
		if off != len(p) {
			return false
		}
		q.key = append(k, 0)
		return true
	}
	if k, ok = appendOPT(k, p, off); !ok {
		return false
	}
	q.key = k
	return true
}

// appendName appends the question name of p, lower-cased, to k and
// returns the offset just past it. It refuses compression, names over
// maxNameLen and bytes miekg/dns would escape in presentation form.
func appendName(k, p []byte) ([]byte, int, bool) {
	off := headerLen
	for {
		if off >= len(p) {
			return k, 0, false
		}
		l := int(p[off])
		if l&0xC0 != 0 { // compression pointers and extended labels
			return k, 0, false
		}
		if off+1+l > len(p) || off+1+l-headerLen > maxNameLen {
			return k, 0, false
		}
		k = append(k, byte(l))
		for _, c := range p[off+1 : off+1+l] {
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				// Possibly escaped in presentation form: leave to miekg/dns.
				return k, 0, false
			}
			k = append(k, c)
		}
		off += 1 + l
		if l == 0 {
			return k, off, true
		}
	}
}

// appendOPT appends the EDNS marker and the OPT record's size, extended
// rcode, version and flags to k, for the one OPT record at p[off:] that
// must end the message.
func appendOPT(k, p []byte, off int) ([]byte, bool) {
	// Root owner, then type, class (UDP size), TTL (extended rcode,
	// version, flags), rdlength and options.
	if off+11 > len(p) || p[off] != 0 || binary.BigEndian.Uint16(p[off+1:]) != typeOPT {
		return k, false
	}
	if p[off+6] != 0 { // EDNS version 0 only
		return k, false
	}
	k = append(k, 1)
	k = append(k, p[off+3:off+9]...) // size, ext rcode, version, flags
	rdlen := int(binary.BigEndian.Uint16(p[off+9:]))
	off += 11
	if off+rdlen != len(p) {
		return k, false
	}
	return k, ignoredOptions(p[off:])
}

// ignoredOptions reports whether opts holds only options the resolver
// ignores and miekg/dns unpacks without checks.
func ignoredOptions(opts []byte) bool {
	for o := 0; o < len(opts); {
		if o+4 > len(opts) {
			return false
		}
		code := binary.BigEndian.Uint16(opts[o:])
		l := int(binary.BigEndian.Uint16(opts[o+2:]))
		if o+4+l > len(opts) {
			return false
		}
		switch code {
		case 10, 12: // COOKIE, PADDING
		default:
			return false
		}
		o += 4 + l
	}
	return true
}

// caseFree reports whether resp carries the question name literally only in
// the question: then any letter case of the name can be patched in there.
// Compressed answers point at the question and pass; answers with the name
// spelled out again (compression off) do not.
func caseFree(resp []byte, nameEnd int) bool {
	name := resp[headerLen:nameEnd]
	rest := resp[nameEnd+4:]
	for i := 0; i+len(name) <= len(rest); i++ {
		if bytes.EqualFold(rest[i:i+len(name)], name) {
			return false
		}
	}
	return true
}
