// Command testmodel runs the deterministic test model server of package
// internal/testmodel, for local demos and tests that need a real process. It
// serves the REST routes on --http_port and the gRPC services (seldon,
// tensorflow, v2 and grpc.health.v1) on --grpc_port:
//
//	go run ./cmd/testmodel --http_port=9000 --grpc_port=9500 --model_name=model --delay=50ms
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testmodel"
)

// shutdownGrace bounds how long in-flight (possibly delayed) calls may take
// to finish once a signal arrives.
const shutdownGrace = 10 * time.Second

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(log); err != nil {
		log.Error("testmodel failed", "err", err)
		os.Exit(1)
	}
}

func run(log *slog.Logger) error {
	port := flag.Int("http_port", 9000, "HTTP port to serve on (0 picks a free one)")
	grpcPort := flag.Int("grpc_port", 9500, "gRPC port to serve on (0 picks a free one, -1 serves no gRPC)")
	model := flag.String("model_name", testmodel.DefaultModelName, "model name served by the tensorflow and v2 routes")
	delay := flag.Duration("delay", 0, "time every infer call waits before answering")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	// Listening before logging lets the log line carry the real port when
	// --http_port=0.
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", *port))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", *port, err)
	}
	var grpcLn net.Listener
	grpcAddr := "off"
	if *grpcPort >= 0 {
		grpcLn, err = net.Listen("tcp", fmt.Sprintf(":%d", *grpcPort))
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on gRPC port %d: %w", *grpcPort, err)
		}
		grpcAddr = grpcLn.Addr().String()
	}
	srv := testmodel.New(testmodel.Options{ModelName: *model, Delay: *delay})
	log.Info("testmodel listening", "addr", ln.Addr().String(), "grpc_addr", grpcAddr, "model", *model, "delay", *delay)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	grpcServed := make(chan error, 1)
	if grpcLn != nil {
		go func() { grpcServed <- srv.ServeGRPC(grpcLn) }()
	}
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case err := <-grpcServed:
		return fmt.Errorf("serve gRPC: %w", err)
	case <-ctx.Done():
	}

	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shut down: %w", err)
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("testmodel stopped")
	return nil
}
