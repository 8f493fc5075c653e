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
	k := keyBuf[:0]
	off := headerLen
	for {
		if off >= len(p) {
			return false
		}
		l := int(p[off])
		if l&0xC0 != 0 { // compression pointers and extended labels
			return false
		}
		if off+1+l > len(p) || off+1+l-headerLen > maxNameLen {
			return false
		}
		k = append(k, byte(l))
		for _, c := range p[off+1 : off+1+l] {
			switch {
			case c >= 'A' && c <= 'Z':
				c += 'a' - 'A'
			case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '-', c == '_':
			default:
				// Possibly escaped in presentation form: leave to miekg/dns.
				return false
			}
			k = append(k, c)
		}
		off += 1 + l
		if l == 0 {
			break
		}
	}
	if off+4 > len(p) {
		return false
	}
	q.nameEnd = off
	k = append(k, p[off:off+4]...) // type, class
	off += 4
	if ar == 0 {
		if off != len(p) {
			return false
		}
		k = append(k, 0)
		q.key = k
		return true
	}
	// One OPT: root owner, then type, class (UDP size), TTL (extended
	// rcode, version, flags), rdlength and options.
	if off+11 > len(p) || p[off] != 0 || binary.BigEndian.Uint16(p[off+1:]) != typeOPT {
		return false
	}
	if p[off+6] != 0 { // EDNS version 0 only
		return false
	}
	k = append(k, 1)
	k = append(k, p[off+3:off+9]...) // size, ext rcode, version, flags
	rdlen := int(binary.BigEndian.Uint16(p[off+9:]))
	off += 11
	if off+rdlen != len(p) {
		return false
	}
	// Options the resolver ignores and miekg/dns unpacks without checks.
	for o := off; o < len(p); {
		if o+4 > len(p) {
			return false
		}
		code := binary.BigEndian.Uint16(p[o:])
		l := int(binary.BigEndian.Uint16(p[o+2:]))
		if o+4+l > len(p) {
			return false
		}
		switch code {
		case 10, 12: // COOKIE, PADDING
		default:
			return false
		}
		o += 4 + l
	}
	q.key = k
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
