// Command sessbench is sesscache's benchmark harness.
//
//	go run ./cmd/sessbench              # the default: a ~10 s mixed workload
//	go run ./cmd/sessbench run -h       # every knob of the workload
//
// It preloads an engine with sessions, runs a timed mix of Gets and Updates
// from every core, and prints throughput and latency percentiles per
// operation, memory per session and garbage-collector cost.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// Exit codes: 0 success, 1 the benchmark failed, 2 bad usage.
func run(args []string, stdout, stderr io.Writer) int {
	cmd, rest := "run", args
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, rest = args[0], args[1:]
	}
	switch cmd {
	case "run":
		cfg, err := parseRun(rest, stderr)
		if err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if err := runWorkload(cfg, stdout); err != nil {
			fmt.Fprintln(stderr, "sessbench:", err)
			return 1
		}
		return 0
	case "help", "-h", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "sessbench: unknown command %q\n", cmd)
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: sessbench [command] [flags]

commands:
  run      preload sessions, run a timed mixed workload, report (the default)
  help     this message

Run "sessbench <command> -h" for the flags of a command.
`)
}
