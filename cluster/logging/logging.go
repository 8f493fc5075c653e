package logging

import (
	"bytes"
	"io"
	"log"

	"github.com/hashicorp/go-hclog"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// Writer returns an io.Writer that logs each line written to it through
// logger at the level its "[LEVEL]" marker names.
func Writer(logger *zap.Logger) io.Writer { return &lineWriter{l: logger} }

// StdLog returns a *log.Logger (serf, memberlist) that writes to logger.
func StdLog(logger *zap.Logger) *log.Logger { return log.New(Writer(logger), "", 0) }

// HCLog returns an hclog.Logger (raft) that writes to logger.
func HCLog(logger *zap.Logger, name string) hclog.Logger {
	lvl := hclog.Info
	if logger.Core().Enabled(zapcore.DebugLevel) {
		lvl = hclog.Debug
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:            name,
		Level:           lvl,
		Output:          Writer(logger),
		DisableTime:     true,
		IncludeLocation: false,
	})
}

type lineWriter struct{ l *zap.Logger }

var markers = []struct {
	tag []byte
	lvl zapcore.Level
}{
	{[]byte("[TRACE]"), zapcore.DebugLevel},
	{[]byte("[DEBUG]"), zapcore.DebugLevel},
	{[]byte("[INFO]"), zapcore.InfoLevel},
	{[]byte("[WARN]"), zapcore.WarnLevel},
	{[]byte("[ERR]"), zapcore.ErrorLevel},
	{[]byte("[ERROR]"), zapcore.ErrorLevel},
}

func (w *lineWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		lvl := zapcore.InfoLevel
		msg := line
		for _, m := range markers {
			if i := bytes.Index(line, m.tag); i >= 0 {
				lvl = m.lvl
				msg = bytes.TrimSpace(line[i+len(m.tag):])
				break
			}
		}
		if ce := w.l.Check(lvl, string(msg)); ce != nil {
			ce.Write()
		}
	}
	return len(p), nil
}
