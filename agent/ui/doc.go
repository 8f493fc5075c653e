// Package ui is the agent's web UI under /ui/: html/template pages, one
// JS and one CSS file, all embedded (embed.FS); pages read with JS off.
//
// It owns rendering only. Every page reads through the agent's own HTTP
// API handler (Config.API), called in process with the browser's
// X-Consul-Token and ?dc=: no private back door, no new server RPC. The JS
// uses the same API: blocking queries (?index=) on main's data-watch, then
// a re-render of main in place; KV writes with ?cas=<loaded ModifyIndex>
// (cas=0 to create), so a concurrent change is reported, never overwritten.
//
// Decisions the issue left open (detail in README.md):
//   - Writes need JS. GuardWrites, in front of the whole HTTP port, refuses
//     a browser's write (Origin or Sec-Fetch-Site present) without
//     X-Cairn-UI: 1, marked cross-site/same-site, or from another Origin;
//     CLIs and client libraries send neither header and pass.
//   - A check's "last change" is its ModifyIndex (no timestamps, as Consul).
//   - Services counts every check of every instance, node checks included;
//     it costs one /v1/health/service call per service per render.
//   - A navigation cannot carry the session's token: with one set, the JS
//     re-renders main through fetch at load.
//   - Cluster and This agent show the agent's own view (members, self,
//     metrics ignore ?dc=); resolve sends a real DNS query (UDP, then TCP on
//     truncation) to the agent's DNS address.
//   - --dev turns the UI on whatever the files say; bad ?dc= or ?sort= is 400.
package ui
