package checks

import (
	"context"
	"fmt"
	"net"

	"github.com/cairnd/cairn/cluster/structs"
)

// TCP probes an address: a completed connect is passing, anything else
// critical. The connection is closed at once; nothing is sent.
type TCP struct {
	Addr string
}

// Probe dials once.
func (t *TCP) Probe(ctx context.Context) (string, string) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		return structs.HealthCritical, truncateHead(err.Error())
	}
	_ = conn.Close()
	return structs.HealthPassing, fmt.Sprintf("TCP connect %s: Success", t.Addr)
}
