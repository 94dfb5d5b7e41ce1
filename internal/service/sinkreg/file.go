package sinkreg

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/errview"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/health"
	"github.com/kinesis-ingest/kinesis-ingest/internal/service/redrive"
	"github.com/kinesis-ingest/kinesis-ingest/sinks"
	"github.com/kinesis-ingest/kinesis-ingest/sinks/file"
)

// DeadLetterPrefix starts the names of the file dead-letter sink's files.
const DeadLetterPrefix = "dead-letters"

func init() {
	Register(&Kind{
		Name: "file",
		// One row sink per dataset: a file row carries no dataset column, so
		// two datasets sharing a file sink still write files of their own
		// (the dataset's name starts the file name).
		Rows: func(_ context.Context, s config.Sink, ds config.Dataset, env Env) (Opened[sinks.RowSink], error) {
			f := s.File
			rs, err := file.NewRowSink(file.Config{Dir: f.Path, WorkerID: env.WorkerID, Prefix: ds.Name, MaxBytes: f.MaxBytes, Mode: f.Mode, Changelog: ds.Keyed()}, env.Log.With("sink", s.Name))
			if err != nil {
				return Opened[sinks.RowSink]{}, fmt.Errorf("sink %q: %w", s.Name, err)
			}
			return Opened[sinks.RowSink]{Sink: rs, Ready: health.DirWritable(f.Path)}, nil
		},
		DeadLetters: func(_ context.Context, dl config.DeadLetter, env Env) (Opened[sinks.DeadLetterSink], error) {
			f := dl.File
			d, err := file.NewDeadLetterSink(file.Config{Dir: f.Path, WorkerID: env.WorkerID, Prefix: DeadLetterPrefix, MaxBytes: f.MaxBytes, Mode: f.Mode}, env.Log.With("sink", "dead_letter"))
			if err != nil {
				return Opened[sinks.DeadLetterSink]{}, fmt.Errorf("dead_letter: %w", err)
			}
			return Opened[sinks.DeadLetterSink]{Sink: d, Ready: health.DirWritable(f.Path)}, nil
		},
		Probes: func(s config.Sink, _ []config.Dataset) []Probe {
			return []Probe{dirProbe("sink "+s.Name+": writable", s.File.Path, s.File.Mode)}
		},
		DeadLetterProbes: func(dl config.DeadLetter) []Probe {
			return []Probe{dirProbe("dead_letter: writable", dl.File.Path, dl.File.Mode)}
		},
		// The files of every worker sharing the directory.
		Errors: func(dl config.DeadLetter) errview.Source {
			return errview.FileSource{Dir: dl.File.Path, Prefix: DeadLetterPrefix}
		},
		Letters: func(dl config.DeadLetter) redrive.Source {
			return redrive.FileSource{Dir: dl.File.Path, Prefix: DeadLetterPrefix}
		},
		// Lines are appended whatever they hold: a row redriven twice is
		// in the files twice, as a record read again after a crash is.
		OlderRows: true,
	})
}

// dirProbe checks that files can be written durably in dir: it creates dir
// if missing, then creates, writes, fsyncs and removes a probe file.
func dirProbe(name, dir string, mode fs.FileMode) Probe {
	return Probe{
		Name: name,
		Run: func(context.Context) (string, error) {
			// Created as the sink would create it: a directory of raw payloads
			// is not for everyone.
			if err := os.MkdirAll(dir, file.DirMode(mode)); err != nil {
				return "", err
			}
			if err := health.ProbeDir(dir); err != nil {
				return "", err
			}
			return dir, nil
		},
		Explain: func(err error) (string, string) {
			switch {
			case errors.Is(err, fs.ErrPermission):
				return ClassAccessDenied, fmt.Sprintf("give the worker's user write permission on %s, or change the path", dir)
			case errors.Is(err, syscall.EROFS):
				return ClassAccessDenied, fmt.Sprintf("%s is on a read-only file system; use a writable path", dir)
			case errors.Is(err, syscall.ENOTDIR), errors.Is(err, fs.ErrExist):
				return ClassNotWritable, fmt.Sprintf("%s or one of its parents is a file, not a directory; change the path or move the file", dir)
			case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
				return ClassNotWritable, fmt.Sprintf("the file system of %s is full; free space or use another path", dir)
			}
			return ClassNotWritable, fmt.Sprintf("make %s a writable directory", dir)
		},
	}
}
