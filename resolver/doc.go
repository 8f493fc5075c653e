// Package resolver is Cairn's DNS server. It owns every socket of the DNS
// port, on server and client agents, and answers the Consul DNS interface
// for Domain and AltDomain from a Catalog, passing other names to the
// recursors. It owns name parsing, answer building, truncation, shuffling,
// recursion and the packed-answer fast path; not the catalog (the agent
// hands in a Catalog) nor configuration loading (agent/config fills
// Config). It imports nothing of Cairn's.
//
// Invariants: Start returns only after UDP and TCP are bound and serving,
// or with the bind error; Close waits for every goroutine it started,
// queries in flight included. A packed answer is served only while every
// Dep it was built from is still at the version it had then.
//
// Decisions (one case each in testdata/cases/; the rules in README.md):
//   - Consul's answers; where Cairn differs it says why in README.md: NODATA
//     rather than NXDOMAIN at the apex, SOA in node NODATA answers, REFUSED
//     at once without recursors, TC only with enable_truncate.
//   - One UDP path on every agent: on Linux up to maxUDPReaders
//     SO_REUSEPORT sockets, each read by a goroutine blocked in recvmmsg
//     (cheaper than the netpoller at moderate load, udp_linux.go), which
//     takes up to udpBatchSize queued datagrams at once and sends their
//     packed answers with one sendmmsg; elsewhere, and for server agents'
//     polled sockets, one datagram per call. TCP is miekg/dns's server.
//   - Packed answers only for a PackedCatalog (the client cache): a plain
//     UDP question asked before is answered by copying packed bytes and
//     patching ID, RD/CD and letter case, allocating nothing. The Catalog
//     ties each answer to its Deps with NoteDep, through the query's ctx.
//     TCP, negative and truncated answers are never packed.
//   - <query>.query[.<dc>] names run a prepared query through the optional
//     QueryCatalog (NXDOMAIN without one, or for an unknown query): answers
//     like a service's, the query's DNS.TTL over service_ttl, SRV targets
//     in the datacenter that answered, RTT order kept when the query sorted
//     by Near. translate_wan_addrs answers other datacenters' WAN addresses.
//   - Not done: EDNS Client Subnet, DNSSEC, recursor_strategy (sequential).
//
// Metrics: README.md.
package resolver
