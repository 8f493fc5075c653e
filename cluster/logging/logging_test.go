package logging

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

func TestLevels(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	l := zap.New(core)
	StdLog(l).Printf("[WARN] memberlist: something odd")
	StdLog(l).Printf("[ERR] serf: broken")
	StdLog(l).Printf("plain line")
	HCLog(l, "raft").Debug("entering follower state", "id", "a")
	got := logs.All()
	if len(got) != 4 {
		t.Fatalf("got %d entries: %v", len(got), got)
	}
	want := []zapcore.Level{zapcore.WarnLevel, zapcore.ErrorLevel, zapcore.InfoLevel, zapcore.DebugLevel}
	for i, e := range got {
		if e.Level != want[i] {
			t.Errorf("entry %d %q: level %v, want %v", i, e.Message, e.Level, want[i])
		}
	}
	if got[0].Message != "memberlist: something odd" {
		t.Errorf("message %q", got[0].Message)
	}
}
