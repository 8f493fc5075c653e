// Package logging bridges the standard-library and hclog loggers used by
// raft, serf and memberlist into zap, so every subsystem logs through the
// one *zap.Logger the agent was given (named per subsystem).
//
// Lines are parsed for their "[LEVEL]" marker; anything unmarked is logged
// at info. The bridge never blocks the caller beyond zap's own write.
package logging
