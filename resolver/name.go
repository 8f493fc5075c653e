package resolver

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"
)

// kind is what a query name asks for.
type kind uint8

const (
	kindForeign kind = iota // outside our domains and not reverse: recursors
	kindInvalid             // inside our domain but names nothing: NXDOMAIN
	kindApex                // the domain itself
	kindService             // [tag.]svc.service, _svc._tag.service
	kindNode                // node.node
	kindAddr                // hex.addr
	kindPTR                 // in-addr.arpa / ip6.arpa
	kindQuery               // name.query: a prepared query (service holds its name)
)

// maxLabels is the most labels a 255-byte name can have.
const maxLabels = 128

// query is a parsed question name. Its strings are substrings of the
// lower-cased name, so parsing allocates nothing for lower-case input.
type query struct {
	kind    kind
	alt     bool   // under the alt domain
	dc      string // "" means the default datacenter
	service string
	tag     string
	node    string
	addr    netip.Addr // kindAddr, kindPTR (invalid if unparsable)
}

// names knows the served domains, lower-cased and fully qualified.
type names struct {
	domain    string
	altDomain string // "" when unset
}

func newNames(domain, alt string) names {
	n := names{domain: dns.Fqdn(strings.ToLower(domain))}
	if alt != "" {
		n.altDomain = dns.Fqdn(strings.ToLower(alt))
	}
	return n
}

// cutZone reports whether name is zone or below it, and returns the part in
// front of the zone without its trailing dot.
func cutZone(name, zone string) (string, bool) {
	if zone == "" {
		return "", false
	}
	if name == zone {
		return "", true
	}
	if len(name) > len(zone) && strings.HasSuffix(name, zone) && name[len(name)-len(zone)-1] == '.' {
		return name[:len(name)-len(zone)-1], true
	}
	return "", false
}

// parse classifies a lower-cased, fully-qualified name. qtype matters only
// for Consul's rule that an SRV query may leave out the ".service" label
// ("_web._tcp.consul.").
func (n *names) parse(name string, qtype uint16) query {
	rest, alt, ok := n.cutDomain(name)
	if !ok {
		if rest, ok := cutZone(name, "in-addr.arpa."); ok {
			return query{kind: kindPTR, addr: parseReverse4(rest)}
		}
		if rest, ok := cutZone(name, "ip6.arpa."); ok {
			return query{kind: kindPTR, addr: parseReverse6(rest)}
		}
		return query{kind: kindForeign}
	}
	q := parseInDomain(rest, qtype)
	q.alt = alt
	return q
}

// cutDomain returns the part of name in front of the served domain it is
// under, and whether that is the alt domain.
func (n *names) cutDomain(name string) (rest string, alt, ok bool) {
	// The longer domain first, so alt "dc.consul." beats "consul.".
	first, second := n.domain, n.altDomain
	if len(second) > len(first) {
		first, second = second, first
	}
	if rest, ok := cutZone(name, first); ok {
		return rest, first == n.altDomain, true
	}
	rest, ok = cutZone(name, second)
	return rest, ok && second == n.altDomain, ok
}

// parseInDomain classifies rest, a name under our domain without it.
func parseInDomain(rest string, qtype uint16) query {
	if rest == "" {
		return query{kind: kindApex}
	}
	q := query{kind: kindInvalid}
	// Escaped characters (\. \032) never match catalog names.
	if strings.IndexByte(rest, '\\') >= 0 || len(rest) > 255 {
		return q
	}
	var l labels
	if !l.split(rest) {
		return q // empty label or absurd name
	}
	parts, loc, what := l.kindLabel(qtype)
	if parts <= 0 {
		return q
	}
	dc, ok := l.locality(loc)
	if !ok {
		return q
	}
	q.dc = dc
	switch what {
	case kindService:
		if parts == 2 && l.at(0)[0] == '_' && l.at(1)[0] == '_' {
			q.service = l.at(0)[1:]
			q.tag = l.at(1)[1:]
			if q.tag == "tcp" { // "_tcp" means any tag (Consul)
				q.tag = ""
			}
			if q.service == "" {
				return q
			}
		} else {
			q.service = l.at(parts - 1)
			if parts > 1 {
				q.tag = l.upTo(parts - 1) // tags may contain dots
			}
		}
	case kindNode:
		q.node = l.upTo(parts) // node names may contain dots
	case kindQuery:
		q.service = l.upTo(parts) // the query's ID or name
	case kindAddr:
		if parts != 1 {
			return q
		}
		a, ok := parseHexAddr(l.at(0))
		if !ok {
			return q
		}
		q.addr = a
	}
	q.kind = what
	return q
}

// labels holds the offsets of a name's labels. Offsets fit a byte (names
// are at most 255 bytes); small arrays keep the parsing frame from growing
// the per-query goroutine's stack.
type labels struct {
	s            string
	starts, ends [maxLabels]uint8
	n            int
}

// split records the labels of s; false for an empty label or more than
// maxLabels.
func (l *labels) split(s string) bool {
	l.s = s
	for i := 0; i <= len(s); {
		j := strings.IndexByte(s[i:], '.')
		if j < 0 {
			j = len(s) - i
		}
		if j == 0 || l.n == maxLabels {
			return false
		}
		l.starts[l.n], l.ends[l.n] = uint8(i), uint8(i+j)
		l.n++
		i += j + 1
	}
	return true
}

// at returns label k.
func (l *labels) at(k int) string { return l.s[l.starts[k]:l.ends[k]] }

// upTo returns labels [0, k) with the dots between them.
func (l *labels) upTo(k int) string { return l.s[:l.ends[k-1]] }

// kindLabel finds the right-most kind label, which splits the name into
// the labels that name the thing, [0, parts), and the locality, [loc, n).
// parts is -1 when there is none, or for a Consul feature Cairn does not
// serve (NXDOMAIN).
func (l *labels) kindLabel(qtype uint16) (parts, loc int, what kind) {
	for i := l.n - 1; i >= 0; i-- {
		switch l.at(i) {
		case "service":
			return i, i + 1, kindService
		case "node":
			return i, i + 1, kindNode
		case "addr":
			return i, i + 1, kindAddr
		case "query":
			return i, i + 1, kindQuery
		case "connect", "ingress", "virtual":
			return -1, 0, kindInvalid
		default:
			if qtype == dns.TypeSRV && l.at(i)[0] == '_' {
				// "_svc._tcp[.dc].consul": ".service" is implied.
				return i + 1, i + 1, kindService
			}
		}
	}
	return -1, 0, kindInvalid
}

// locality reads the labels from loc on: nothing, "<dc>" or "<dc>.dc".
func (l *labels) locality(loc int) (dc string, ok bool) {
	switch l.n - loc {
	case 0:
		return "", true
	case 1:
		return l.at(loc), true
	case 2:
		if l.at(loc+1) != "dc" {
			return "", false
		}
		return l.at(loc), true
	}
	return "", false
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// parseHexAddr decodes the label of "<hex>.addr": 8 hex digits for IPv4,
// 32 for IPv6.
func parseHexAddr(s string) (netip.Addr, bool) {
	var b [16]byte
	if len(s) != 8 && len(s) != 32 {
		return netip.Addr{}, false
	}
	for i := 0; i < len(s); i += 2 {
		hi, ok1 := unhex(s[i])
		lo, ok2 := unhex(s[i+1])
		if !ok1 || !ok2 {
			return netip.Addr{}, false
		}
		b[i/2] = hi<<4 | lo
	}
	if len(s) == 8 {
		return netip.AddrFrom4([4]byte(b[:4])), true
	}
	return netip.AddrFrom16(b), true
}

// parseReverse4 decodes "4.3.2.1" (the part before in-addr.arpa.).
func parseReverse4(s string) netip.Addr {
	var b [4]byte
	for i := 3; i >= 0; i-- {
		j := strings.IndexByte(s, '.')
		if i == 0 {
			j = len(s)
		}
		if j <= 0 || j > 3 {
			return netip.Addr{}
		}
		v := 0
		for _, c := range []byte(s[:j]) {
			if c < '0' || c > '9' {
				return netip.Addr{}
			}
			v = v*10 + int(c-'0')
		}
		if v > 255 || (j > 1 && s[0] == '0') {
			return netip.Addr{}
		}
		b[i] = byte(v)
		if i > 0 {
			s = s[j+1:]
		} else if j != len(s) {
			return netip.Addr{}
		}
	}
	return netip.AddrFrom4(b)
}

// parseReverse6 decodes 32 nibble labels (the part before ip6.arpa.).
func parseReverse6(s string) netip.Addr {
	if len(s) != 63 {
		return netip.Addr{}
	}
	var b [16]byte
	for i := 0; i < 32; i++ {
		c := s[2*i]
		if i < 31 && s[2*i+1] != '.' {
			return netip.Addr{}
		}
		v, ok := unhex(c)
		if !ok {
			return netip.Addr{}
		}
		k := 31 - i // nibble index from the left of the address
		if k%2 == 0 {
			b[k/2] |= v << 4
		} else {
			b[k/2] |= v
		}
	}
	return netip.AddrFrom16(b).Unmap()
}
