package main

import (
	"fmt"
	"io"

	"github.com/kinesis-ingest/kinesis-ingest/internal/service/config"
)

const configUsage = `Usage:
  kinesis-ingest config schema                print the config's JSON Schema (draft-07); the
                                              repository commits it as kinesis-ingest.schema.json
  kinesis-ingest config print --config FILE [--env ENV]
                                              print the effective config: defaults filled in,
                                              ${VAR} expanded, relative paths resolved,
                                              secrets masked
`

func cmdConfig(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	switch args[0] {
	case "schema":
		fs := flags("config schema", "kinesis-ingest config schema: print the JSON Schema of the config, for editors\n(# yaml-language-server: $schema=...) and CI checks.", stderr)
		if ok, code := parseFlags(fs, args[1:]); !ok {
			return code
		}
		if _, err := stdout.Write(config.JSONSchema()); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		return 0
	case "print":
		fs := flags("config print", "kinesis-ingest config print --config FILE: load FILE as run would and print the effective\nconfig: every key with its value (defaults, consumer.application and worker_id included),\n${VAR} expanded, relative paths resolved, secrets (DSN passwords, registry passwords and\ntokens, external_id) masked.", stderr)
		path := fs.String("config", "", "path of the YAML configuration (required)")
		env := fs.String("env", "", "print what the deployment ENV runs (as run --env ENV would select); default: the whole file")
		if ok, code := parseFlags(fs, args[1:]); !ok {
			return code
		}
		load := loadConfig
		if *env != "" {
			load = func(p string, w io.Writer) (*config.Config, bool) { return loadConfigEnv(p, *env, w) }
		}
		cfg, ok := load(*path, stderr)
		if !ok {
			return 2
		}
		out, err := config.Print(cfg)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		fmt.Fprintf(stdout, "# effective config of %s: defaults filled in, ${VAR} expanded, secrets masked\n", *path)
		for _, w := range cfg.Warnings {
			fmt.Fprintf(stdout, "# warning: %s\n", w)
		}
		stdout.Write(out)
		return 0
	case "-h", "--help", "help":
		fmt.Fprint(stdout, configUsage)
		return 0
	}
	fmt.Fprintf(stderr, "unknown config command %q\n\n%s", args[0], configUsage)
	return 2
}
