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
// error, which names encryption; the pool logs it too).
//
// Keyring rotation (Keyring: list, install, use, remove) runs across the
// whole pool through serf's internal queries; members that did not answer
// in time are asked again, since every operation is idempotent. A pool
// started without a key has no keyring (ErrEncryptionDisabled).
//
// Servers advertise their WAN port in the LAN tag wan_join_port so the
// servers of one datacenter flood-join each other's WAN pool (Consul's
// behaviour, done by cluster/server).
//
// Config.Fast (CAIRN_FAST_GOSSIP=1, --dev) uses memberlist's local
// timings but keeps the LAN broadcast redundancy and a 5 s push/pull,
// so user events reach every member of a small pool promptly.
package gossip
