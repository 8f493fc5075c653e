// Package config owns the agent's configuration: the Config struct with
// Consul's key names and defaults, loading JSON and HCL files from config dirs,
// merging CLI flags, and validation. It also exports DecodeStrict, the
// strict JSON decoder the HTTP API reuses for request bodies.
//
// Decisions:
//   - Keys match case-insensitively and ignoring underscores, so Consul's
//     snake_case files, its CamelCase API bodies and python-consul's
//     lower-case bodies all decode. Unknown keys are errors, with the
//     closest key of the same block as "did you mean" (edit distance).
//   - HCL (v1, Consul's parser) and JSON mix in one dir; HCL is shaped
//     into the JSON document (directed by the Go types) and shares the one
//     strict decoder. Errors name file:line. Other files: one warning each.
//   - Consul keys Cairn does not implement are accepted with one warning
//     each, from the explicit list in ignored.go (a real field wins).
//     README.md has the rules and the list.
//   - Precedence is defaults < files (lexical order) < flags. Lists that
//     accumulate in Consul (retry_join, retry_join_wan, recursors, services,
//     checks) append across files; everything else is last-writer-wins.
//   - Load is all-or-nothing: on any error it returns nil, so a reload with a
//     bad file keeps the running configuration.
//   - Ports: dns, http and serf_wan may be -1 (Consul's "disabled"). 0 means
//     "the kernel picks" for every listener; the agent then reports the bound
//     addresses (log line, /v1/agent/self, --ready-file), which is how tests
//     start agents. No two enabled listeners may share a fixed port.
//   - Durations are Go duration strings; bare numbers are refused because
//     Consul users mean seconds and Go means nanoseconds. The SOA timers are
//     plain integer seconds, as in Consul.
//   - Recursors must be IPs (a recursor named by host name would need a
//     recursor); they are stored as IP:port, port 53 by default.
//   - Script checks: the legacy "script" string is always refused (use args);
//     args checks need enable_local_script_checks / --enable-local-script-checks.
//   - --dev forces server mode with bootstrap_expect 1 and no data dir, and
//     binds to 127.0.0.1 unless bind/advertise were set explicitly. It also
//     turns the web UI on (ui_config.enabled), whatever the files say.
//   - TLS: Consul's tls { defaults, internal_rpc } block and the legacy
//     top-level ca_file/ca_path/cert_file/key_file/verify_* keys are both
//     accepted; key by key, internal_rpc beats defaults beats legacy
//     (TLSConfig). tls.https overlays defaults the same way for the API's
//     TLS port (HTTPSConfig; ports.https, off by default as in Consul; its
//     verify_incoming requires API clients' certificates, so a server with
//     tls.defaults.verify_incoming usually sets tls.https.verify_incoming =
//     false, as with Consul). tls.grpc is ignored with a warning: Cairn has
//     no gRPC port.
//   - kv.tombstone_ttl (default 15m, must be positive) is Cairn's name
//     for Consul's internal TombstoneTTL, which has no file key in Consul;
//     the reap granularity follows from it (cluster/server).
package config
