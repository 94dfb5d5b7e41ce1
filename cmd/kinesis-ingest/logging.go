package main

import (
	"errors"
	"fmt"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

// overrideLog applies --log-format and --log-level ("" leaves the config's).
func overrideLog(cfg *config.Config, format, level string) error {
	var errs []error
	switch format {
	case "":
	case "text", "json":
		cfg.Log.Format = format
	default:
		errs = append(errs, fmt.Errorf("--log-format %q: use text or json", format))
	}
	switch level {
	case "":
	case "debug", "info", "warn", "error":
		cfg.Log.Level = level
	default:
		errs = append(errs, fmt.Errorf("--log-level %q: use debug, info, warn or error", level))
	}
	return errors.Join(errs...)
}
