// Command executor is the Kafka sidecar of a SeldonDeployment with serverType: kafka: it reads requests
// from KAFKA_INPUT_TOPIC, calls the model container, and writes the answers to KAFKA_OUTPUT_TOPIC.
//
// SIGTERM or SIGINT starts the graceful shutdown (up to --graceful_timeout); a second one cuts it short:
// the records still in flight are left uncommitted, to be read again after the restart, and the process
// exits within about a second.
//
// Exit codes: 0 after a clean shutdown (and for --help and --version), 1 when it cannot go on (a fatal
// Kafka error), 2 for a bad or missing setting or an unknown flag, named on one line of standard error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/seldon-kafka/sidecar/executor"
)

// version is the build's version, set by the image build (Dockerfile) with
// -ldflags "-X main.version=…"; without it, versionString reads the module version and VCS revision
// that go build records.
var version string

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	// --help and --version first: they need no environment.
	flags, _, err := executor.ParseFlags(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		executor.Usage(stdout)
		return 0
	case err == nil && flags.Version:
		fmt.Fprintln(stdout, "executor", versionString())
		return 0
	}
	cfg, err := executor.LoadConfig(args)
	if err != nil {
		var ce *executor.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "executor: configuration: %s\n", ce)
		} else {
			fmt.Fprintf(stderr, "executor: configuration: %v\n", err)
		}
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	log.Info("version", "version", versionString())
	e, err := executor.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err)
		return 2
	}
	// The first signal starts the shutdown; a second cuts it short.
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sigs
		cancel()
		sig := <-sigs
		log.Warn("second signal: ending the shutdown now; records in flight are read again after the restart", "signal", sig.String())
		e.Hurry()
	}()
	if err := e.Run(ctx); err != nil {
		return 1
	}
	return 0
}

// versionString is the -X version if the build set one, else the main module's version as go build
// recorded it (a tag, or a pseudo-version from the VCS), with the VCS revision when the version does
// not already carry it, and "+dirty" for a build from modified sources.
func versionString() string {
	v := strings.TrimSpace(version)
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v == "" {
			v = "(unknown)"
		}
		return v
	}
	if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v = bi.Main.Version
	}
	var rev, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	switch {
	case v == "" && rev == "":
		return "(devel)"
	case v == "":
		v = "(devel)"
	}
	if rev != "" && !strings.Contains(v, rev) {
		v += " " + rev
		if modified == "true" {
			v += "+dirty"
		}
	}
	return v
}
