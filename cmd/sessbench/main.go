// Command sessbench is sesscache's benchmark and crash-recovery harness.
//
//	go run ./cmd/sessbench              # the default run: 1M sessions on disk, ~20 s
//	go run ./cmd/sessbench run -h       # every knob of the workload
//	go run ./cmd/sessbench recover      # time recovery from the log, and from a snapshot
//	go run ./cmd/sessbench crash        # kill -9 a writer again and again; nothing may be lost
//
// run preloads an engine with sessions and runs a timed mix of Gets and
// Updates, then prints throughput and latency percentiles per operation
// (from a log-linear histogram), memory per session, garbage-collector cost,
// and the write-ahead log's bytes and fsyncs. By default the engine is
// persistent, in a temporary directory removed afterwards, with the engine's
// default sync policy (everysec).
//
// Every command prints a report for people on stdout, or one JSON document
// with -json; run and recover can also draw their latency percentiles as an
// SVG file (-svg). While stdout is a terminal a progress line is rewritten
// in place; when it is not, nothing but the report is written.
//
// Exit codes: 0 success, 1 the benchmark failed (or crash found a lost
// write), 2 bad usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	// Interrupting a run stops it early and still removes its temporary
	// directory; a second interrupt kills the process as usual.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand: parse turns its arguments into a runnable
// function, or an error already reported on stderr.
type command struct {
	name, summary string
	hidden        bool
	parse         func(args []string, stderr io.Writer) (func(ctx context.Context, stdout io.Writer) error, error)
}

var commands = []command{
	{name: "run", summary: "preload sessions, run a timed Get/Update workload, report (the default)", parse: parseRunCommand},
	{name: "recover", summary: "write a data set, close it, and time a fresh Open (log only, snapshot + log tail)", parse: parseRecoverCommand},
	{name: "crash", summary: "kill -9 a writer at random points, recover, verify every acknowledged write", parse: parseCrashCommand},
	{name: crashChildCommand, hidden: true, parse: parseCrashChild},
}

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	name, rest := "run", args
	if len(args) > 0 && (len(args[0]) == 0 || args[0][0] != '-') {
		name, rest = args[0], args[1:]
	}
	// "sessbench -h" asks what sessbench can do, not what run's flags are.
	if name == "help" || (len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help")) {
		usage(stdout)
		return exitOK
	}
	for _, c := range commands {
		if c.name != name {
			continue
		}
		fn, err := c.parse(rest, stderr)
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		if err != nil {
			return exitUsage
		}
		if err := fn(ctx, stdout); err != nil {
			fmt.Fprintf(stderr, "sessbench %s: %v\n", name, err)
			return exitFailed
		}
		return exitOK
	}
	fmt.Fprintf(stderr, "sessbench: unknown command %q\n\n", name)
	usage(stderr)
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprint(w, "usage: sessbench [command] [flags]\n\ncommands:\n")
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
		}
	}
	fmt.Fprint(w, `  help     this message

With no command, sessbench runs "run" with its defaults: 1M sessions in a
temporary data directory (removed afterwards), sync everysec, a 10 s Zipf
90/10 Get/Update workload. Run "sessbench <command> -h" for its flags.
`)
}
