package ui

import (
	"net/http"
	"net/url"
)

// HeaderName is the header every state-changing request of the UI's
// JavaScript carries. A cross-site page cannot send it: a form cannot set
// headers, and fetch with a custom header needs a CORS preflight the
// agent never approves.
const HeaderName = "X-Cairn-UI"

// GuardWrites refuses state-changing requests that a browser sent on
// behalf of another site. A request is a browser's when it carries an
// Origin or Sec-Fetch-Site header (CLIs and API client libraries send
// neither, and pass untouched). A browser's write must carry
// X-Cairn-UI: 1, and must not be marked cross-site or same-site, and its
// Origin (when sent) must be the agent's own host. Reads pass: the
// same-origin policy keeps another site from reading the answers.
func GuardWrites(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := crossSiteWrite(r); reason != "" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("X-Content-Type-Options", "nosniff")
			w.WriteHeader(http.StatusForbidden)
			w.Write([]byte("Cross-site write refused: " + reason + "\n"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// crossSiteWrite returns why r is a refused browser write, or "".
func crossSiteWrite(r *http.Request) string {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return ""
	}
	origin, site := r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site")
	if origin == "" && site == "" {
		return "" // not a browser
	}
	if r.Header.Get(HeaderName) != "1" {
		return "a browser's write must come from the Cairn UI (" + HeaderName + " header missing)"
	}
	if site == "cross-site" || site == "same-site" {
		return "Sec-Fetch-Site is " + site
	}
	if origin != "" {
		u, err := url.Parse(origin)
		if err != nil || u.Host != r.Host {
			return "Origin " + origin + " is not this agent (" + r.Host + ")"
		}
	}
	return ""
}
