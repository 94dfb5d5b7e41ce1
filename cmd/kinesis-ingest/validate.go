package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/kinesis-ingest/kinesis-ingest/internal/app"
)

func cmdValidate(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flags("validate", "kinesis-ingest validate --config FILE: check FILE whole (every problem at once, with its\nYAML path), then connect: each stream with its role, and the lease table.", stderr)
	path := fs.String("config", "", "path of the YAML configuration (required)")
	offline := fs.Bool("offline", false, "check the file only, do not connect")
	timeout := fs.Duration("timeout", 30*time.Second, "give up connecting after this long")
	if ok, code := parseFlags(fs, args); !ok {
		return code
	}
	cfg, ok := loadConfig(*path, stderr)
	if !ok {
		return 2
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "warning: %s\n", w)
	}
	if !*offline {
		vctx, cancel := context.WithTimeout(ctx, *timeout)
		defer cancel()
		if err := app.Validate(vctx, cfg); err != nil {
			fmt.Fprintf(stderr, "connectivity check failed:\n%v\n", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "config %s is valid (%d sources, %d datasets, %d sinks)\n", *path, len(cfg.Sources), len(cfg.Datasets), len(cfg.Sinks))
	return 0
}
