// Package resolver is Cairn's DNS server: it answers the Consul DNS
// interface (<svc>.service, <node>.node, <hex>.addr, PTR, SOA/NS at the apex)
// for Domain and AltDomain from a Catalog, and passes every other name to
// the recursors. It owns name parsing, answer building, truncation,
// shuffling and recursion; it does not own the catalog (the agent hands in
// the state store on servers, the cache on clients) nor configuration
// loading (agent/config fills Config). It never imports cluster/.
//
// Invariant: Start returns only after UDP and TCP are bound and serving, or
// with the bind error; Close waits for every goroutine it started.
//
// Consul behaviour, and where Cairn decided (cases in testdata/cases/):
//   - Answers are authoritative (AA); RA is set when recursors exist. Names
//     are case-insensitive; answers echo the question's spelling.
//   - Locality: "[.<dc>]" or "[.<dc>.dc]" after the kind label; an unknown
//     datacenter (ErrNoSuchDatacenter) is NXDOMAIN, other catalog errors
//     SERVFAIL. Prepared queries, connect, ingress, virtual, peers and
//     namespaces are not served: NXDOMAIN.
//   - Services: critical instances never; only_passing drops warning. No
//     instance left: NXDOMAIN + SOA. Name exists, no record of that type:
//     NOERROR + SOA in authority (RFC 2308 NODATA). "tag.tag.svc.service"
//     joins the tags with dots, as Consul. RFC 2782 "_svc._tag": only
//     "_tcp" means "any tag" (Consul); "_udp" filters on tag "udp". SRV
//     queries may leave out ".service".
//   - A/AAAA: the service address, else the node address; duplicates
//     dropped; a host name becomes a CNAME plus what the recursors (or we,
//     for names in our domain, at most 3 levels) return, used only when no
//     instance has an IP; those records take the service TTL (node
//     host names keep the recursor's TTL, as in Consul). TXT on a service is NODATA (Consul returns A
//     records there, which resolvers drop as mismatched).
//   - SRV: priority 1, weight Weights.Passing/Warning by state (default 1);
//     target <node>.node.<dc>.<domain> for a node address,
//     <hex>.addr.<dc>.<domain> for a service IP, the host name itself
//     otherwise; target records and node meta TXT
//     (enable_additional_node_meta_txt, default on) in additional.
//   - Nodes: A/AAAA/ANY/TXT; meta as TXT "key=value" (RFC 1464 escaping;
//     keys "rfc1035-*" give the bare value), in additional for A/AAAA.
//     Unknown node: NXDOMAIN. Other types and missing families: NODATA +
//     SOA (Consul omits the SOA there; RFC 2308 wants it).
//   - addr: 8 or 32 hex digits; the wrong family is NODATA with the
//     record in additional (Consul's behaviour).
//   - PTR (in-addr.arpa, ip6.arpa; PTR and ANY): node address first, then
//     service address, default datacenter, TTL 0; not found goes to the
//     recursors, or NXDOMAIN with our SOA.
//   - Apex: SOA (ns.<domain>, hostmaster.<domain>, serial = Unix time,
//     TTL = min_ttl) with NS in authority; NS lists up to 3 healthy
//     instances of service "consul" as <node>.node.<dc>.<domain> with glue.
//     Like Consul, SOA and NS queries get these answers for any name in the
//     domain. Other types at the apex: NODATA (Consul says NXDOMAIN, which
//     RFC 8020 resolvers would take as "nothing below exists"). AXFR/IXFR:
//     NOTIMP.
//   - TTLs default to 0. service_ttl: exact name, then longest "prefix*".
//   - Sizes: UDP without EDNS0 gets at most min(udp_answer_limit, 8)
//     answers (default 3) and 512 bytes; EDNS0 raises the byte limit to the
//     client's size (capped at 65467); TCP gets up to 64 KiB. Trimming
//     drops the authority section first and keeps additional records of
//     the remaining SRV targets. As in Consul, TC is set on a trimmed UDP
//     answer only when enable_truncate is true (default false).
//     a_record_limit (default 0, unlimited) caps A/AAAA answers on any
//     transport. Answers are shuffled per query.
//   - Recursion: in order, each with recursor_timeout; an answer other than
//     NOERROR/NXDOMAIN or a timeout moves to the next; all failing is
//     SERVFAIL. Without recursors Cairn answers REFUSED at once (Consul
//     would SERVFAIL), so stub resolvers move on instead of retrying.
//   - Clients: the server answers whoever reaches the address it binds.
//     It binds only --client (loopback by default), so answering a
//     non-loopback client requires --client to bind such an address
//     explicitly; there is no second ACL.
//   - Malformed packets: miekg/dns answers FORMERR to unparsable queries
//     and drops responses; more than one question is FORMERR, opcodes
//     other than QUERY NOTIMP.
//   - allow_stale/max_stale are carried in Config for the Catalog adapter;
//     the resolver itself never blocks on consistency.
//   - Not done: EDNS Client Subnet is not echoed, DNSSEC is not signed,
//     recursor_strategy is always "sequential".
//
// Metrics: cairn_dns_queries_total{result=<rcode, lower case>},
// cairn_dns_query_duration_seconds, cairn_dns_recursor_queries_total.
package resolver
