// Package ui is the agent's web UI under /ui/: server-rendered
// html/template pages and one small JS and CSS file, all embedded
// (embed.FS), so it works on an offline host and with JavaScript off for
// reading.
//
// It owns rendering only. Every page reads through the agent's own HTTP
// API handler (Config.API), called in process with the browser's
// X-Consul-Token and ?dc=, so the UI sees exactly what a remote API client
// with that token sees: no private back door, no new server RPC. The JS
// talks to the same API directly: blocking queries (?index=) on the path
// in main's data-watch, then a re-render of main in place; KV writes go to
// /v1/kv with ?cas= set to the ModifyIndex the page loaded (cas=0 to
// create), so a concurrent change is reported and never overwritten.
//
// Decisions the issue left open:
//   - Writes need JavaScript. A browser's write (Origin or Sec-Fetch-Site
//     present) must carry X-Cairn-UI: 1, must not be cross-site or
//     same-site, and its Origin must be the agent's host (GuardWrites, in
//     front of the whole HTTP port); CLIs and client libraries send neither
//     header and are unaffected. Forms post nowhere without JS.
//   - "Last change" of a check is its ModifyIndex (the catalog keeps no
//     timestamps, as Consul's).
//   - Check counts on the Services page count every check of every
//     instance, node checks included, as /v1/health/service returns them.
//   - The token (session storage) cannot ride on a navigation; with one
//     set, the JS re-renders main through fetch with the header at load.
//   - Cluster and This agent show the agent's own view (members, self,
//     metrics ignore ?dc=). The resolve box sends a real DNS query (UDP,
//     TCP on truncation) to the agent's DNS address.
//   - --dev turns the UI on regardless of config files.
//   - The Services page costs one /v1/health/service call per service per
//     render (Consul has a private endpoint for this; we have none by
//     design): fine for hundreds of services, not for tens of thousands.
package ui
