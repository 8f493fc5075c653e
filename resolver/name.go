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
	var q query
	// The longer domain first, so alt "dc.consul." beats "consul.".
	first, second := n.domain, n.altDomain
	if len(second) > len(first) {
		first, second = second, first
	}
	rest, ok := cutZone(name, first)
	alt := ok && first == n.altDomain
	if !ok {
		rest, ok = cutZone(name, second)
		alt = ok && second == n.altDomain
	}
	if !ok {
		if rest, ok := cutZone(name, "in-addr.arpa."); ok {
			return query{kind: kindPTR, addr: parseReverse4(rest)}
		}
		if rest, ok := cutZone(name, "ip6.arpa."); ok {
			return query{kind: kindPTR, addr: parseReverse6(rest)}
		}
		return query{kind: kindForeign}
	}
	q.alt = alt
	if rest == "" {
		q.kind = kindApex
		return q
	}
	q.kind = kindInvalid
	// Escaped characters (\. \032) never match catalog names.
	if strings.IndexByte(rest, '\\') >= 0 {
		return q
	}

	// Label offsets fit a byte (names are at most 255 bytes); small arrays
	// keep this frame from growing the per-query goroutine's stack.
	if len(rest) > 255 {
		return q
	}
	var starts, ends [maxLabels]uint8
	nl := 0
	for i := 0; i <= len(rest); {
		j := strings.IndexByte(rest[i:], '.')
		if j < 0 {
			j = len(rest) - i
		}
		if j == 0 || nl == maxLabels {
			return q // empty label or absurd name
		}
		starts[nl], ends[nl] = uint8(i), uint8(i+j)
		nl++
		i += j + 1
	}
	label := func(k int) string { return rest[starts[k]:ends[k]] }

	// The right-most kind label splits the name into the labels that name
	// the thing, [0, parts), and the locality, [loc, nl).
	parts, loc, what := -1, 0, kindInvalid
	for i := nl - 1; i >= 0 && parts < 0; i-- {
		switch label(i) {
		case "service":
			parts, loc, what = i, i+1, kindService
		case "node":
			parts, loc, what = i, i+1, kindNode
		case "addr":
			parts, loc, what = i, i+1, kindAddr
		case "query", "connect", "ingress", "virtual":
			return q // Consul features Cairn does not serve: NXDOMAIN
		default:
			if qtype == dns.TypeSRV && label(i)[0] == '_' {
				// "_svc._tcp[.dc].consul": ".service" is implied.
				parts, loc, what = i+1, i+1, kindService
			}
		}
	}
	if parts <= 0 {
		return q
	}
	// Locality: nothing, "<dc>" or "<dc>.dc".
	switch nl - loc {
	case 0:
	case 1:
		q.dc = label(loc)
	case 2:
		if label(loc+1) != "dc" {
			return q
		}
		q.dc = label(loc)
	default:
		return q
	}
	switch what {
	case kindService:
		if parts == 2 && label(0)[0] == '_' && label(1)[0] == '_' {
			q.service = label(0)[1:]
			q.tag = label(1)[1:]
			if q.tag == "tcp" { // "_tcp" means any tag (Consul)
				q.tag = ""
			}
			if q.service == "" {
				return q
			}
		} else {
			q.service = label(parts - 1)
			if parts > 1 {
				q.tag = rest[:ends[parts-2]] // tags may contain dots
			}
		}
	case kindNode:
		q.node = rest[:ends[parts-1]] // node names may contain dots
	case kindAddr:
		if parts != 1 {
			return q
		}
		a, ok := parseHexAddr(label(0))
		if !ok {
			return q
		}
		q.addr = a
	}
	q.kind = what
	return q
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
