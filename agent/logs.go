package agent

import (
	"context"
	"os"
	"sync"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// monitorBuffer is how many log lines a slow `cairn monitor` may lag
// before lines are dropped for it (the agent never blocks on a reader).
const monitorBuffer = 512

// NewLogger builds the agent's logger: console or JSON on stderr at level,
// teed into a Monitor that `cairn monitor` subscribes to.
func NewLogger(level string, json bool) (*zap.Logger, *Monitor, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, nil, err
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if json {
		enc = zapcore.NewJSONEncoder(encCfg)
	} else {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	atom := zap.NewAtomicLevelAt(lvl)
	mon := &Monitor{enc: zapcore.NewConsoleEncoder(encCfg), mu: &sync.Mutex{}, subs: map[*monitorSub]struct{}{}, level: atom}
	core := zapcore.NewTee(
		zapcore.NewCore(enc, zapcore.Lock(os.Stderr), atom),
		mon,
	)
	return zap.New(core), mon, nil
}

// Monitor is a zapcore.Core fanning log entries out to subscribers.
type Monitor struct {
	enc    zapcore.Encoder
	fields []zapcore.Field
	mu     *sync.Mutex
	subs   map[*monitorSub]struct{}
	root   *Monitor
	// level is the stderr log's level (root only); SetLevel changes it in
	// place on reload.
	level zap.AtomicLevel
}

// SetLevel changes the level of the log on stderr (debug, info, warn,
// error); `cairn monitor` subscribers keep the level they asked for.
func (m *Monitor) SetLevel(level string) error {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return err
	}
	m.base().level.SetLevel(lvl)
	return nil
}

type monitorSub struct {
	lvl zapcore.Level
	ch  chan []byte
}

func (m *Monitor) base() *Monitor {
	if m.root != nil {
		return m.root
	}
	return m
}

func (m *Monitor) lock() *sync.Mutex {
	return m.base().mu
}

// Subscribe streams log lines at level or above until ctx ends.
func (m *Monitor) Subscribe(ctx context.Context, level string) (<-chan []byte, error) {
	var lvl zapcore.Level
	if level == "" {
		level = "info"
	}
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, err
	}
	b := m.base()
	sub := &monitorSub{lvl: lvl, ch: make(chan []byte, monitorBuffer)}
	mu := b.lock()
	mu.Lock()
	b.subs[sub] = struct{}{}
	mu.Unlock()
	go func() {
		<-ctx.Done()
		mu.Lock()
		delete(b.subs, sub)
		close(sub.ch)
		mu.Unlock()
	}()
	return sub.ch, nil
}

func (m *Monitor) Enabled(l zapcore.Level) bool {
	b := m.base()
	mu := b.lock()
	mu.Lock()
	defer mu.Unlock()
	for s := range b.subs {
		if l >= s.lvl {
			return true
		}
	}
	return false
}

func (m *Monitor) With(fields []zapcore.Field) zapcore.Core {
	return &Monitor{enc: m.enc, fields: append(append([]zapcore.Field(nil), m.fields...), fields...), root: m.base()}
}

func (m *Monitor) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if m.Enabled(e.Level) {
		return ce.AddCore(e, m)
	}
	return ce
}

func (m *Monitor) Write(e zapcore.Entry, fields []zapcore.Field) error {
	buf, err := m.enc.EncodeEntry(e, append(append([]zapcore.Field(nil), m.fields...), fields...))
	if err != nil {
		return err
	}
	line := append([]byte(nil), buf.Bytes()...)
	buf.Free()
	b := m.base()
	mu := b.lock()
	mu.Lock()
	defer mu.Unlock()
	for s := range b.subs {
		if e.Level < s.lvl {
			continue
		}
		select {
		case s.ch <- line:
		default: // slow reader: drop rather than block the agent
		}
	}
	return nil
}

func (m *Monitor) Sync() error { return nil }
