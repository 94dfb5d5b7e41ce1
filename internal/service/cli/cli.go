// Package cli is what the project's commands (kinesis-ingest and
// kinesis-ingest-demo) share in how they take flags: a flag set that
// prints its help to the command's stderr and a parse that turns -h and a
// bad flag into the exit codes the commands document (0 and 2).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Flags is a flag set for one (sub)command whose usage is help, then the
// flags.
func Flags(name, help string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "%s\n\nFlags:\n", help)
		fs.PrintDefaults()
	}
	return fs
}

// Parse parses args into fs and reports whether to go on; if not, the exit
// code: 0 after -h, 2 after a bad flag (fs printed why).
func Parse(fs *flag.FlagSet, args []string) (ok bool, code int) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return false, 0
		}
		return false, 2
	}
	return true, 0
}
