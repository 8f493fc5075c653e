// Package checks runs the agent's health checks: HTTP, TCP, TTL and script
// (Args) checks, each reporting its result to a Notifier (the agent's local
// state) as Consul's agent does.
//
// It owns the probing and its schedule only; it does not store results, sync
// them to the servers or parse configuration files.
//
// Invariants a caller relies on:
//
//   - Every runner has Start and Stop; Stop stops the schedule, cancels a
//     probe in flight and returns only after the runner's goroutine exited.
//     No Notifier call happens after Stop returns.
//   - A periodic check's first run comes after a random stagger in
//     [0, Interval), then every Interval plus a small jitter (up to
//     Interval/JitterFraction), counted from the END of the previous run: a
//     run never overlaps the previous one, so a slow check delays the next
//     run instead of piling up concurrent ones.
//   - Each run is bounded by Timeout (default DefaultTimeout, 10 s as
//     Consul's HTTP/TCP checks; scripts DefaultScriptTimeout, 30 s). Timeout is not capped below Interval: since
//     runs never overlap, a Timeout longer than Interval only stretches the
//     period, it cannot cause pile-up.
//   - Output is bounded by CheckBufSize (Consul's 4 KiB default): HTTP keeps
//     the head of the body, scripts keep the tail of combined stdout+stderr
//     (where errors usually are), TTL updates keep the head.
//   - Script checks are built only when Options.AllowScripts is set; the
//     runtime sets it from --enable-local-script-checks.
//   - Interval is raised to MinInterval (1 s, Consul's) by New; the
//     lower-level constructors (NewPeriodic) take it as given, for tests.
package checks
