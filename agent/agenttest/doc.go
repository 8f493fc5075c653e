// Package agenttest runs real `cairn` processes for multi-process tests:
// it builds the binary into a temp dir (the go build cache makes repeats
// cheap), starts agents with their own data dirs and stops (or SIGKILLs)
// them. Every process is killed in t.Cleanup.
//
// Ports are never drawn by the test: a first start passes port 0 for
// every listener and Start returns once the agent wrote its --ready-file,
// which holds the bound addresses (Proc.Ports). A Restart reuses those
// ports, because peers (Raft, serf) know the agent by them.
//
// Under -short, Binary skips the test: every test that runs agent
// processes is a long one.
package agenttest
