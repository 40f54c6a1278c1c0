package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/sesscache/sesscache/internal/crashcheck"
)

// crashChildCommand is the hidden subcommand the crash command runs as its
// child: crashcheck.RunChild with the configuration the parent chose,
// speaking crashcheck's protocol on stdin and stdout.
const crashChildCommand = "crash-child"

func parseCrashChild(args []string, stderr io.Writer) (func(context.Context, io.Writer) error, error) {
	fs := newFlagSet(crashChildCommand, "The child the crash command kills; not for use by hand.", stderr)
	config := fs.String("config", "", "the child's configuration, as crashcheck.Config.Encode writes it")
	engineLog := fs.Bool("engine-log", false, "show the engine's warnings")
	if err := fs.parse(args); err != nil {
		return nil, err
	}
	c, err := crashcheck.DecodeConfig(*config)
	if err != nil {
		return nil, badUsage(stderr, crashChildCommand, "%v", err)
	}
	logger := slog.New(slog.DiscardHandler)
	if *engineLog && !c.PowerCut { // after a power cut the engine complains, rightly, of nothing worth reading
		logger = quietLogger(stderr)
	}
	// The child returns only on failure; it is meant to be killed. The
	// context is the command's, so an interrupt stops it too.
	return func(ctx context.Context, stdout io.Writer) error {
		return crashcheck.RunChild(ctx, c, os.Stdin, stdout, logger)
	}, nil
}
