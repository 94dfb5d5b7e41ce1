package kcl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
	kcllog "github.com/vmware/vmware-go-kcl-v2/logger"
)

// slogAdapter gives the KCL our slog logger. The KCL formats its own messages
// printf-style, so they are not constant; its source is marked by an attribute.
type slogAdapter struct{ l *slog.Logger }

var _ kcllog.Logger = slogAdapter{}

// The library logs its routine (every shard consumer start, each local rate-limit
// sleep) at Info, and the normal "not every shard is leased yet" state of a
// rebalance at Warn; our own code logs the events an operator needs (lease
// taken, released, lost) at Info, so the library's are one level lower.
func (a slogAdapter) Debugf(f string, args ...any) {
	// Its event loop's tick, every loopTick under the coordinator: at debug
	// level it was nine log lines in ten and a test worker's busiest work.
	if strings.HasPrefix(f, "Waited %d ms to sync shards") {
		return
	}
	a.log(slog.LevelDebug, f, args)
}
func (a slogAdapter) Infof(f string, args ...any) { a.log(slog.LevelDebug, f, args) }
func (a slogAdapter) Warnf(f string, args ...any) {
	if strings.HasPrefix(f, "Error in rebalance") {
		a.log(slog.LevelDebug, f, args)
		return
	}
	a.log(slog.LevelWarn, f, args)
}
func (a slogAdapter) Errorf(f string, args ...any) { a.log(slog.LevelError, f, args) }

// Fatalf and Panicf are reached only when the KCL builds its own AWS clients,
// which we never let it do; they still stop the process as the library expects.
func (a slogAdapter) Fatalf(f string, args ...any) {
	a.log(slog.LevelError, f, args)
	panic(fmt.Sprintf(f, args...))
}

func (a slogAdapter) Panicf(f string, args ...any) {
	a.log(slog.LevelError, f, args)
	panic(fmt.Sprintf(f, args...))
}

func (a slogAdapter) WithFields(fields kcllog.Fields) kcllog.Logger {
	attrs := make([]any, 0, 2*len(fields))
	for k, v := range fields {
		attrs = append(attrs, k, v)
	}
	return slogAdapter{a.l.With(attrs...)}
}

func (a slogAdapter) log(level slog.Level, f string, args []any) {
	if !a.l.Enabled(context.Background(), level) {
		return
	}
	a.l.Log(context.Background(), level, fmt.Sprintf(f, args...))
}

// The KCL's lease renewal logs through logrus's global logger directly
// (polling-shard-consumer.go renewLease), bypassing the configured Logger. Route
// that global logger into slog once per process.
var logrusOnce sync.Once

func redirectLogrus(l *slog.Logger) {
	logrusOnce.Do(func() {
		logrus.SetOutput(io.Discard)
		// Debug only when slog would write it: at debug level the renewal
		// loop formats a message per renewal (S / lease_refresh a second)
		// that slog then drops, 0.8% of an idle 64-shard worker's CPU.
		level := logrus.InfoLevel
		if l.Enabled(context.Background(), slog.LevelDebug) {
			level = logrus.DebugLevel
		}
		logrus.SetLevel(level)
		logrus.AddHook(logrusHook{l: l.With("component", "kcl")})
	})
}

type logrusHook struct{ l *slog.Logger }

func (logrusHook) Levels() []logrus.Level { return logrus.AllLevels }

func (h logrusHook) Fire(e *logrus.Entry) error {
	level := slog.LevelDebug
	switch {
	case e.Level <= logrus.ErrorLevel:
		// "Error in refreshing lease" is how a lease loss or a steal shows up:
		// a normal event in a scaled deployment, not an error of ours.
		level = slog.LevelWarn
	case e.Level == logrus.WarnLevel:
		level = slog.LevelWarn
	case e.Level == logrus.InfoLevel:
		level = slog.LevelInfo
	}
	attrs := make([]any, 0, 2*len(e.Data))
	for k, v := range e.Data {
		attrs = append(attrs, k, v)
	}
	h.l.Log(context.Background(), level, e.Message, attrs...)
	return nil
}
