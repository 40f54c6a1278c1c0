package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/sesscache/sesscache/engine"
)

// flagSet is a command's flags and what -h says about the command.
type flagSet struct {
	*flag.FlagSet
	about  string
	stderr io.Writer
}

// newFlagSet returns a flag set that reports errors in one line and prints
// the command's description and flags only for -h.
func newFlagSet(name, about string, stderr io.Writer) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	// The flag package would print the error and the whole flag list;
	// parse prints a one-line error instead.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &flagSet{FlagSet: fs, about: strings.TrimSpace(about), stderr: stderr}
}

// printUsage writes the command's description and flags.
func (fs *flagSet) printUsage() {
	fmt.Fprintf(fs.stderr, "usage: sessbench %s [flags]\n\n%s\n\nflags:\n", fs.Name(), fs.about)
	fs.SetOutput(fs.stderr)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// errUsage marks a command line that parsed but makes no sense; the message
// has already been written to stderr.
var errUsage = errors.New("bad usage")

// badUsage reports a flag value that the flag package accepted but the
// command cannot use, without repeating the whole flag list.
func badUsage(stderr io.Writer, cmd, format string, args ...any) error {
	fmt.Fprintf(stderr, "sessbench %s: %s\nRun \"sessbench %s -h\" for the flags.\n", cmd, fmt.Sprintf(format, args...), cmd)
	return errUsage
}

// parse parses args: -h prints the usage and returns flag.ErrHelp; an error
// is reported in one line. Positional arguments are rejected, since no
// command takes any: a stray word is more likely a mistyped flag.
func (fs *flagSet) parse(args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.printUsage()
		return err
	case err != nil:
		return badUsage(fs.stderr, fs.Name(), "%v", err)
	case fs.NArg() > 0:
		return badUsage(fs.stderr, fs.Name(), "unexpected argument %q (flags start with -)", fs.Arg(0))
	}
	return nil
}

// syncMemory is the -sync value that selects the in-memory engine.
const syncMemory = "memory"

// parseSync turns a -sync value into a policy; memory reports the in-memory
// engine.
func parseSync(s string) (policy engine.SyncPolicy, memory bool, err error) {
	switch s {
	case syncMemory:
		return 0, true, nil
	case "always":
		return engine.SyncAlways, false, nil
	case "everysec":
		return engine.SyncEverySecond, false, nil
	case "no":
		return engine.SyncNo, false, nil
	}
	return 0, false, fmt.Errorf("-sync must be memory, always, everysec or no, not %q", s)
}

// output holds the flags every reporting command shares.
type output struct {
	json bool
	svg  string
}

func (o *output) register(fs *flagSet, svg bool) {
	fs.BoolVar(&o.json, "json", false, "print one JSON document with every figure instead of the report")
	if svg {
		fs.StringVar(&o.svg, "svg", "", "also write the latency percentiles as an SVG plot to `FILE`")
	}
}

// byteSize is a flag holding a number of bytes, written plainly or with a
// unit: 32768, 32KiB, 64MiB, 1GiB (KB, MB and GB are powers of ten).
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(s string) error {
	units := []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, mult = rest, u.mult
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return errors.New("want a number of bytes such as 65536 or 64MiB")
	}
	*b = byteSize(n * mult)
	return nil
}
