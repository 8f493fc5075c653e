package agent

import (
	"fmt"

	"github.com/cairnd/cairn/agent/config"
	"github.com/cairnd/cairn/cluster/rpc"
	"github.com/cairnd/cairn/cluster/tlsconf"
	"go.uber.org/zap"
)

// newTLS loads the server port's TLS material, or returns nil when no TLS
// key is configured (the port then speaks plain protocols only).
func newTLS(cfg *config.Config) (*tlsconf.Configurator, error) {
	tc := cfg.TLSConfig()
	if !tc.Enabled() {
		return nil, nil
	}
	return tlsconf.New(tc)
}

// portTLS is the TLS configurator handed to the server tier and the
// forwarder: a nil interface (not a typed nil) when TLS is off.
func (a *Agent) portTLS() rpc.TLSConfigurator {
	if a.tls == nil {
		return nil
	}
	return a.tls
}

// reloadTLS re-reads certificates and keys for new connections; existing
// connections keep theirs, so the cluster never drops. Turning TLS on or
// off entirely needs a restart (the listener's mode is fixed at start), as
// the log says; a bad file fails the reload and changes nothing.
func (a *Agent) reloadTLS(cfg *config.Config) error {
	if a.httpsTLS != nil {
		if err := a.httpsTLS.Reload(cfg.HTTPSConfig()); err != nil {
			return fmt.Errorf("https: %w", err)
		}
	}
	tc := cfg.TLSConfig()
	if a.tls == nil {
		if tc.Enabled() {
			a.log.Warn("reload: TLS settings appeared; they take effect at the next restart")
		}
		return nil
	}
	if !tc.Enabled() {
		a.log.Warn("reload: TLS settings removed; TLS stays on until the next restart")
		return nil
	}
	if err := a.tls.Reload(tc); err != nil {
		return err
	}
	a.log.Info("reload: TLS certificates reloaded", zap.String("cert_file", tc.CertFile), zap.Bool("verify_incoming", tc.VerifyIncoming))
	return nil
}
