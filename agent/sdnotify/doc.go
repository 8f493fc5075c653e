// Package sdnotify tells systemd about the agent's lifecycle through the
// sd_notify(3) datagram protocol, without linking libsystemd.
//
// The unit file (systemd/cairn.service) uses Type=notify: systemd considers
// the agent started only after it sends READY=1, which the agent does once
// its DNS and HTTP listeners are bound. Around a SIGHUP reload it sends
// RELOADING=1 (with MONOTONIC_USEC, as Type=notify-reload expects on newer
// systemd) and then READY=1 again; on shutdown it sends STOPPING=1.
//
// Every function is a no-op returning (false, nil) when $NOTIFY_SOCKET is
// unset, so the agent may call them unconditionally: outside systemd, under
// `cairn agent --dev`, and in tests. The socket path may be a filesystem
// path or, when it starts with '@', a Linux abstract socket name.
//
// The package holds no state; each call opens, writes and closes its own
// datagram socket. It does not unset $NOTIFY_SOCKET, so child processes
// (script checks) could in principle notify too: the unit's NotifyAccess=main
// makes systemd ignore them.
package sdnotify
