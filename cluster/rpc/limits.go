package rpc

import (
	"time"

	"github.com/cairnd/cairn/cluster/connlimit"
)

// Protocol bytes: the first byte of every connection to the server RPC port.
const (
	// ProtoRPC starts a yamux session carrying request streams.
	ProtoRPC byte = 0x01
	// ProtoRaft starts a raw raft network-transport stream.
	ProtoRaft byte = 0x02
)

const (
	// DefaultMaxFrameSize bounds one header or body frame. The largest
	// legitimate payload is a KV value (Consul caps those at 512 KiB) or a
	// catalog listing of a big datacenter; 8 MiB leaves ample headroom while
	// keeping one hostile length prefix from costing more than that.
	DefaultMaxFrameSize = 8 << 20

	// DefaultMaxConcurrentStreams bounds the handlers running for one
	// session. A client agent multiplexes
	// its DNS misses, blocking queries and anti-entropy over one session;
	// 4096 is far above that yet caps the goroutines one peer can pin.
	DefaultMaxConcurrentStreams = 4096

	// DefaultStreamReadTimeout is how long a stream may take to deliver its
	// whole request. Requests are small and sent in one write, so a stream
	// that is silent for 10 s is broken or hostile and is closed.
	DefaultStreamReadTimeout = 10 * time.Second

	// DefaultHandshakeTimeout bounds the time from accept to the protocol
	// byte and, for ProtoRPC, the first yamux frame (our client pings right
	// after dialling). Idle half-open connections must not pile up.
	DefaultHandshakeTimeout = 5 * time.Second

	// DefaultWriteTimeout bounds writing one response; a peer that stops
	// reading must not pin a handler goroutine forever.
	DefaultWriteTimeout = 10 * time.Second

	// DefaultMaxConnsPerClient is Consul's limits.rpc_max_conns_per_client:
	// concurrent server-port connections (RPC sessions and raft
	// connections) from one IP. A client agent holds one session, a
	// server a session and a few raft connections per peer; 100 leaves
	// room for many agents behind one NAT address.
	DefaultMaxConnsPerClient = 100

	// DefaultSessionIdleTimeout closes an RPC session that has had no open
	// stream for this long. Client agents keep subscription streams open
	// and send anti-entropy every minute or so, so only an abandoned or
	// hostile session is ever this idle; each costs a handful of
	// goroutines and yamux buffers until closed (2,000 idle sessions held
	// 12,070 goroutines before this limit).
	DefaultSessionIdleTimeout = 10 * time.Minute

	// DefaultRaftIdleTimeout closes an inbound raft connection on which no
	// byte arrived for this long. The leader's heartbeats arrive every few
	// hundred milliseconds on a live connection; each inbound connection
	// pins raft's 256 KiB read buffer, so 2,000 idle ones cost ~500 MB.
	// The dialling side redials an idle connection of its own before
	// using it (see redialConn), so live peers never hit a closed one.
	DefaultRaftIdleTimeout = 5 * time.Minute

	// NoLimit as MaxConnsPerClient or MaxConns disables that cap.
	NoLimit = -1

	// keepAliveInterval: yamux pings at this period; a peer that does not
	// answer within connectionWriteTimeout has its session torn down, which
	// is how a client notices a silently dead server.
	keepAliveInterval      = 10 * time.Second
	connectionWriteTimeout = 10 * time.Second

	// pooledBufferCap: buffers grown beyond this by one big frame are not
	// returned to the pool, so a rare 8 MiB request does not pin 8 MiB per
	// pooled entry for the life of the process.
	pooledBufferCap = 64 << 10

	// acceptBacklog is yamux's queue of opened streams not yet accepted;
	// yamux allocates it with every session (8 bytes a slot: the 4,096 of
	// MaxConcurrentStreams were 32 KiB per connected client). The accept
	// loop drains it continuously and blocks only at MaxConcurrentStreams,
	// so it need only absorb one burst of stream opens read together.
	// 256 is Consul's (yamux's default) and the rpc bench's concurrency.
	acceptBacklog = 256

	// bufioSize bounds what a stream's frameWriter buffers before writing:
	// a typical request or response (a few hundred bytes) goes out as one
	// yamux frame.
	bufioSize = 4 << 10

	// readBufferSize is a stream's read buffer. Reads come from yamux's
	// in-memory receive buffer, not the socket, so a small one costs no
	// syscalls; it mostly joins a frame's length prefix with its payload.
	// Every subscribed client holds one on its server for the life of its
	// session: 1 KiB, not 4.
	readBufferSize = 1 << 10
)

// Limits bound what one peer can make the server do. Zero fields take the
// Default* values.
type Limits struct {
	MaxFrameSize         int
	MaxConcurrentStreams int
	StreamReadTimeout    time.Duration
	HandshakeTimeout     time.Duration
	WriteTimeout         time.Duration

	// MaxConnsPerClient caps concurrent connections from one IP
	// (NoLimit: none). MaxConns caps all connections of one Serve
	// listener; zero derives it from the file limit (connlimit.TotalCap).
	MaxConnsPerClient int
	MaxConns          int
	// SessionIdleTimeout and RaftIdleTimeout close idle RPC sessions and
	// inbound raft connections (tests shorten them).
	SessionIdleTimeout time.Duration
	RaftIdleTimeout    time.Duration
}

// DefaultLimits returns the limits a production server uses.
func DefaultLimits() Limits {
	return Limits{
		MaxFrameSize:         DefaultMaxFrameSize,
		MaxConcurrentStreams: DefaultMaxConcurrentStreams,
		StreamReadTimeout:    DefaultStreamReadTimeout,
		HandshakeTimeout:     DefaultHandshakeTimeout,
		WriteTimeout:         DefaultWriteTimeout,
		MaxConnsPerClient:    DefaultMaxConnsPerClient,
		SessionIdleTimeout:   DefaultSessionIdleTimeout,
		RaftIdleTimeout:      DefaultRaftIdleTimeout,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxFrameSize <= 0 {
		l.MaxFrameSize = d.MaxFrameSize
	}
	if l.MaxConcurrentStreams <= 0 {
		l.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	if l.StreamReadTimeout <= 0 {
		l.StreamReadTimeout = d.StreamReadTimeout
	}
	if l.HandshakeTimeout <= 0 {
		l.HandshakeTimeout = d.HandshakeTimeout
	}
	if l.WriteTimeout <= 0 {
		l.WriteTimeout = d.WriteTimeout
	}
	if l.MaxConnsPerClient == 0 {
		l.MaxConnsPerClient = d.MaxConnsPerClient
	}
	if l.MaxConns == 0 {
		l.MaxConns = connlimit.TotalCap(connlimit.FileLimit())
	}
	if l.SessionIdleTimeout <= 0 {
		l.SessionIdleTimeout = d.SessionIdleTimeout
	}
	if l.RaftIdleTimeout <= 0 {
		l.RaftIdleTimeout = d.RaftIdleTimeout
	}
	return l
}
