package agent

import (
	"net/http"
	"strings"

	"go.uber.org/zap"

	"github.com/cairnd/cairn/agent/ui"
)

// withUI puts the cross-site write guard in front of api and, when
// ui_config.enabled (or --ui, --dev), serves the web UI under /ui/ with
// "/" redirecting there. The UI reads through api itself.
func (a *Agent) withUI(api http.Handler) http.Handler {
	guarded := ui.GuardWrites(api)
	if !a.cfg.UIConfig.Enabled {
		return guarded
	}
	h, err := ui.New(ui.Config{API: api, DNSAddr: a.addrs.DNS, Domain: a.cfg.Domain, Logger: a.log})
	if err != nil {
		// The templates are embedded and parsed by the package's tests:
		// this cannot fail in a released binary.
		a.log.Error("web UI disabled", zap.Error(err))
		return guarded
	}
	pages := ui.GuardWrites(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead):
			http.Redirect(w, r, ui.Prefix, http.StatusFound)
		case r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, ui.Prefix):
			pages.ServeHTTP(w, r)
		default:
			guarded.ServeHTTP(w, r)
		}
	})
}
