// Package agent is the Cairn agent runtime: it wires configuration, the
// server tier (cluster/...), the DNS resolver, the client cache and
// forwarder, local services and checks, and the HTTP API into one process
// with a single owner for every goroutine (Agent.Run returns only after all
// of them stopped).
package agent

// Version is the build's version, set by the Makefile through -ldflags.
// It is a var only so the linker can set it; nothing assigns it at run time.
var Version = "0.1.0-dev"
