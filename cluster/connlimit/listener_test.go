package connlimit

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	cairntest "github.com/cairnd/cairn/cluster/testutil"
)

// serve accepts on l and keeps every connection open until the test ends,
// echoing one byte per connection so a client can tell "accepted" from
// "closed at once".
func serve(t *testing.T, l *Listener) {
	t.Helper()
	done := make(chan struct{})
	t.Cleanup(func() { l.Close(); <-done })
	go func() {
		defer close(done)
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			c.Write([]byte{1})
		}
	}()
}

// dial connects from src (an IP on loopback) and reports whether the
// server kept the connection (true) or closed it at once.
func dial(t *testing.T, addr, src string) (net.Conn, bool) {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial from %s: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	_, err = io.ReadFull(c, b[:])
	return c, err == nil
}

func counter(t *testing.T, c interface{ Write(*dto.Metric) error }) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

func newListener(t *testing.T, cfg Config) (*Listener, *Metrics) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(nil, cfg.Name)
	l := Wrap(ln, cfg, nil, m)
	serve(t, l)
	return l, m
}

func TestPerClientCap(t *testing.T) {
	l, m := newListener(t, Config{Name: "test", MaxPerClient: 5})
	addr := l.Addr().String()
	var held []net.Conn
	for i := range 5 {
		c, ok := dial(t, addr, "127.0.0.1")
		if !ok {
			t.Fatalf("connection %d from 127.0.0.1 refused under the cap", i+1)
		}
		held = append(held, c)
	}
	if _, ok := dial(t, addr, "127.0.0.1"); ok {
		t.Fatal("6th connection from 127.0.0.1 was kept, want refused")
	}
	if got := counter(t, m.Refused(ReasonPerClient)); got != 1 {
		t.Fatalf("refused{per_client} = %v, want 1", got)
	}
	if _, ok := dial(t, addr, "127.0.0.2"); !ok {
		t.Fatal("connection from 127.0.0.2 refused while only 127.0.0.1 is at its cap")
	}
	_ = held
}

func TestSlotReleasedOnClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := Wrap(ln, Config{Name: "test", MaxPerClient: 1}, nil, nil)
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	ip := PeerIP(ln.Addr())
	for i := range 3 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc := <-accepted
		if total, n := l.Open(ip); total != 1 || n != 1 {
			t.Fatalf("round %d: open = %d/%d, want 1/1", i, total, n)
		}
		sc.Close()
		sc.Close() // a second Close must not release twice
		c.Close()
		if total, n := l.Open(ip); total != 0 || n != 0 {
			t.Fatalf("round %d after close: open = %d/%d, want 0/0", i, total, n)
		}
	}
}

func TestTotalCap(t *testing.T) {
	l, m := newListener(t, Config{Name: "test", MaxPerClient: 10, MaxTotal: 3})
	addr := l.Addr().String()
	for i, src := range []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"} {
		if _, ok := dial(t, addr, src); !ok {
			t.Fatalf("connection %d refused under the total cap", i+1)
		}
	}
	if _, ok := dial(t, addr, "127.0.0.4"); ok {
		t.Fatal("4th connection kept over a total cap of 3")
	}
	if got := counter(t, m.Refused(ReasonTotal)); got != 1 {
		t.Fatalf("refused{total} = %v, want 1", got)
	}
	err := cairntest.Wait(t.Context(), time.Second, func() error {
		if total, _ := l.Open(PeerIP(&net.TCPAddr{IP: net.ParseIP("127.0.0.4")})); total != 3 {
			return errors.New("open != 3")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// One client gets at most half the total, so it cannot starve others.
func TestPerClientClampedToHalfTotal(t *testing.T) {
	l, _ := newListener(t, Config{Name: "test", MaxPerClient: 200, MaxTotal: 8})
	addr := l.Addr().String()
	for i := range 4 {
		if _, ok := dial(t, addr, "127.0.0.1"); !ok {
			t.Fatalf("connection %d refused under half the total", i+1)
		}
	}
	if _, ok := dial(t, addr, "127.0.0.1"); ok {
		t.Fatal("one client got more than half the total cap")
	}
	for i := range 4 {
		if _, ok := dial(t, addr, "127.0.0.2"); !ok {
			t.Fatalf("second client's connection %d refused", i+1)
		}
	}
}

func TestTotalCapFromFileLimit(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{0, 0},
		{64, minTotalCap},
		{256, 32},
		{1024, 192},
		{65536, 12288},
	} {
		if got := TotalCap(tc.nofile); got != tc.want {
			t.Errorf("TotalCap(%d) = %d, want %d", tc.nofile, got, tc.want)
		}
	}
}

func TestPeerLog(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPeerLog(time.Minute)
	p.now = func() time.Time { return now }
	steps := []struct {
		advance time.Duration
		peer    string
		want    bool
	}{
		{0, "10.0.0.1", true},
		{0, "10.0.0.1", false},
		{0, "10.0.0.2", true},
		{59 * time.Second, "10.0.0.1", false},
		{time.Second, "10.0.0.1", true},
		{0, "10.0.0.2", true},
		{0, "10.0.0.2", false},
	}
	for i, s := range steps {
		now = now.Add(s.advance)
		if got := p.Allow(s.peer); got != s.want {
			t.Fatalf("step %d: Allow(%s) = %v, want %v", i, s.peer, got, s.want)
		}
	}
}

func TestPeerLogBounded(t *testing.T) {
	now := time.Unix(1000, 0)
	p := NewPeerLog(time.Minute)
	p.now = func() time.Time { return now }
	for i := range maxPeers {
		p.Allow(net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).String())
	}
	if p.Allow("192.0.2.1") {
		t.Fatal("a new peer was logged with the table full of fresh entries")
	}
	now = now.Add(time.Minute)
	if !p.Allow("192.0.2.1") {
		t.Fatal("a new peer was not logged after the old entries expired")
	}
	if len(p.last) != 1 {
		t.Fatalf("table holds %d entries after expiry, want 1", len(p.last))
	}
}
