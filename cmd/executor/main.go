// Command executor is the Kafka sidecar of a SeldonDeployment with serverType: kafka: it reads requests
// from KAFKA_INPUT_TOPIC, calls the model container, and writes the answers to KAFKA_OUTPUT_TOPIC.
//
// Exit codes: 0 after a clean shutdown, 1 when it cannot go on (a fatal Kafka error), 2 for a bad or
// missing setting, named on one line of standard error.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/seldon-kafka/sidecar/executor"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if slices.Contains(args, "-h") || slices.Contains(args, "--help") || slices.Contains(args, "-help") {
		executor.Usage(os.Stdout)
		return 0
	}
	cfg, err := executor.LoadConfig(args)
	if err != nil {
		var ce *executor.ConfigError
		if errors.As(err, &ce) {
			fmt.Fprintf(os.Stderr, "executor: configuration: %s\n", ce)
		} else {
			fmt.Fprintf(os.Stderr, "executor: configuration: %v\n", err)
		}
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	e, err := executor.New(cfg, log)
	if err != nil {
		log.Error("cannot start", "error", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := e.Run(ctx); err != nil {
		return 1
	}
	return 0
}
