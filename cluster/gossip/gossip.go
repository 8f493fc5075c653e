package gossip

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cairnd/cairn/cluster/logging"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/serf/serf"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Tag names and values shared with Consul.
const (
	TagRole   = "role"
	TagDC     = "dc"
	TagPort   = "port"
	TagExpect = "expect"
	TagID     = "id"
	TagBuild  = "build"
	TagVsn    = "vsn"
	// TagWANJoinPort is a server's serf WAN port, advertised on the LAN
	// so the other servers of its datacenter can flood-join it.
	TagWANJoinPort = "wan_join_port"
	RoleServer     = "consul"
	RoleClient     = "node"
)

const (
	eventBuffer   = 2048 // serf events queued for the owner before serf blocks
	defaultReconn = 72 * time.Hour
	// fastRetransmitMult and fastPushPull tune the Fast (test and dev)
	// timings: memberlist's LAN redundancy, push/pull every 5 s.
	fastRetransmitMult = 4
	fastPushPull       = 5 * time.Second
)

// Config describes one pool.
type Config struct {
	NodeName         string
	BindAddr         string
	BindPort         int
	AdvertiseAddr    string
	AdvertisePort    int
	Tags             map[string]string
	WAN              bool
	EncryptKey       []byte
	ReconnectTimeout time.Duration
	// Fast shortens probe and gossip intervals (tests and --dev).
	Fast bool
}

// Pool is one running serf instance.
type Pool struct {
	serf   *serf.Serf
	events chan serf.Event
	log    *zap.Logger
	once   sync.Once
	closed *atomic.Bool // set after Shutdown: drop memberlist's straggling logs
}

// New creates and starts the pool. Events arrive on Events() and must be
// drained by the owner.
func New(cfg Config, logger *zap.Logger) (*Pool, error) {
	closed := new(atomic.Bool)
	logger = logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return gatedCore{Core: c, closed: closed}
	}))
	sc := serf.DefaultConfig()
	sc.NodeName = cfg.NodeName
	sc.Tags = cfg.Tags
	ev := make(chan serf.Event, eventBuffer)
	sc.EventCh = ev
	sc.ReconnectTimeout = cfg.ReconnectTimeout
	if sc.ReconnectTimeout == 0 {
		sc.ReconnectTimeout = defaultReconn
	}
	sc.Logger = logging.StdLog(logger)
	sc.EnableNameConflictResolution = true
	if cfg.WAN {
		sc.MemberlistConfig = memberlist.DefaultWANConfig()
	} else {
		sc.MemberlistConfig = memberlist.DefaultLANConfig()
	}
	if cfg.Fast {
		sc.MemberlistConfig = memberlist.DefaultLocalConfig()
		// The local profile sends each broadcast only twice, so on a small
		// pool a user event can miss a member until the next push/pull;
		// keep the LAN profile's redundancy and resync sooner.
		sc.MemberlistConfig.RetransmitMult = fastRetransmitMult
		sc.MemberlistConfig.PushPullInterval = fastPushPull
		sc.ReapInterval = 2 * time.Second
		sc.ReconnectInterval = 2 * time.Second
		sc.CoalescePeriod = 100 * time.Millisecond
		sc.QuiescentPeriod = 20 * time.Millisecond
		sc.UserCoalescePeriod = 100 * time.Millisecond
		sc.UserQuiescentPeriod = 20 * time.Millisecond
	}
	mc := sc.MemberlistConfig
	mc.Name = cfg.NodeName
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	if mc.AdvertisePort == 0 {
		mc.AdvertisePort = cfg.BindPort
	}
	mc.Logger = sc.Logger
	if len(cfg.EncryptKey) > 0 {
		kr, err := memberlist.NewKeyring(nil, cfg.EncryptKey)
		if err != nil {
			return nil, fmt.Errorf("gossip: encryption key: %w", err)
		}
		mc.Keyring = kr
		mc.GossipVerifyIncoming = true
		mc.GossipVerifyOutgoing = true
	}
	s, err := serf.Create(sc)
	if err != nil {
		return nil, fmt.Errorf("gossip: start serf on %s: %w", net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)), err)
	}
	return &Pool{serf: s, events: ev, log: logger, closed: closed}, nil
}

// Events delivers serf member and user events.
func (p *Pool) Events() <-chan serf.Event { return p.events }

// Serf exposes the underlying instance (keyring, stats).
func (p *Pool) Serf() *serf.Serf { return p.serf }

// Join contacts addrs and returns how many were reached.
func (p *Pool) Join(addrs []string) (int, error) {
	n, err := p.serf.Join(addrs, true)
	if err != nil && n == 0 {
		mismatch := strings.Contains(strings.ToLower(err.Error()), "crypt")
		err = fmt.Errorf("gossip: join %v: %w (%s)", addrs, err, p.encryptionHint())
		if mismatch {
			p.log.Error("join refused: gossip encryption mismatch between this agent and the cluster",
				zap.Strings("addrs", addrs), zap.Bool("encryption_enabled", p.serf.EncryptionEnabled()), zap.Error(err))
		} else {
			p.log.Warn("join failed: no member reached (down, unreachable, or a gossip encryption key mismatch)",
				zap.Strings("addrs", addrs), zap.Bool("encryption_enabled", p.serf.EncryptionEnabled()), zap.Error(err))
		}
	}
	return n, err
}

// Members lists every known member with its status.
func (p *Pool) Members() []serf.Member { return p.serf.Members() }

// LocalMember is this agent's own member entry.
func (p *Pool) LocalMember() serf.Member { return p.serf.LocalMember() }

// Leave leaves the pool gracefully (others see "left").
func (p *Pool) Leave() error { return p.serf.Leave() }

// Shutdown stops the pool without leaving (others will see "failed").
func (p *Pool) Shutdown() error {
	var err error
	p.once.Do(func() {
		err = p.serf.Shutdown()
		p.closed.Store(true)
	})
	return err
}

// gatedCore drops log entries once its pool is shut down: memberlist's
// probe and gossip goroutines are not waited for by Shutdown and may log
// once more, after the owner (or a test's logger) is gone.
type gatedCore struct {
	zapcore.Core
	closed *atomic.Bool
}

func (c gatedCore) With(fields []zapcore.Field) zapcore.Core {
	return gatedCore{Core: c.Core.With(fields), closed: c.closed}
}

func (c gatedCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.closed.Load() || !c.Enabled(e.Level) {
		return ce
	}
	return ce.AddCore(e, c)
}

func (c gatedCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	if c.closed.Load() {
		return nil
	}
	return c.Core.Write(e, fields)
}

// ServerAddr returns the RPC address of a server member, or false when the
// member is not a server or carries no usable port.
func ServerAddr(m serf.Member) (dc, addr string, ok bool) {
	if m.Tags[TagRole] != RoleServer {
		return "", "", false
	}
	port, err := strconv.Atoi(m.Tags[TagPort])
	if err != nil || port <= 0 {
		return "", "", false
	}
	return m.Tags[TagDC], net.JoinHostPort(m.Addr.String(), strconv.Itoa(port)), true
}

// RetryJoin joins addrs, retrying every interval until one succeeds, stop
// closes, or attempts run out (0 = forever). It logs each failure.
func (p *Pool) RetryJoin(stop <-chan struct{}, addrs []string, interval time.Duration, attempts int) error {
	if len(addrs) == 0 {
		return nil
	}
	for i := 0; attempts == 0 || i < attempts; i++ {
		n, err := p.Join(addrs)
		if n > 0 {
			p.log.Info("joined", zap.Int("contacted", n), zap.Strings("addrs", addrs))
			return nil
		}
		p.log.Warn("join failed, will retry", zap.Strings("addrs", addrs), zap.Error(err), zap.Duration("retry_in", interval))
		select {
		case <-stop:
			return errors.New("gossip: retry join stopped")
		case <-time.After(interval):
		}
	}
	return fmt.Errorf("gossip: could not join %v after %d attempts", addrs, attempts)
}

// encryptionHint explains the most common reason a join reaches nobody:
// memberlist drops packets it cannot decrypt (or that are not encrypted
// when it expects them to be) without answering, so the joiner only sees
// a timeout or a reset.
func (p *Pool) encryptionHint() string {
	if p.serf.EncryptionEnabled() {
		return "gossip encryption is enabled here: if the cluster uses a different key, or no encryption, --encrypt must match the cluster's"
	}
	return "gossip encryption is disabled here: if the cluster uses gossip encryption, this agent needs its key (--encrypt)"
}
