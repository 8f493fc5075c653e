// Package gossip runs one serf pool (LAN or WAN) for the agent and hands
// its events to the pool's owner on a channel.
//
// Member tags follow Consul's so operators recognise them: role ("consul"
// for servers, "node" for clients), dc, port (server RPC port), expect
// (bootstrap-expect), id, build, vsn. Servers find each other by role.
//
// Decisions: LAN pools use memberlist's LAN timings, WAN pools its WAN
// timings; a failed member is kept and retried until ReconnectTimeout
// (default 72h, as Consul) and then reaped. Gossip encryption is enabled
// when a key is configured; an agent without the key, or with another
// key, cannot join (memberlist rejects its packets and Join returns the
// error, which names encryption).
package gossip
