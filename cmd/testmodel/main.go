// Command testmodel runs the deterministic test model server of package
// internal/testmodel, for local demos and tests that need a real process. It
// serves the REST routes on --http_port and the gRPC services (seldon,
// tensorflow, v2 and grpc.health.v1) on --grpc_port:
//
//	go run ./cmd/testmodel --http_port=9000 --grpc_port=9500 --model_name=model --delay=50ms
//
// It listens on every interface, or on --host only (--host=127.0.0.1: loopback).
// --delay is a latency each call waits on its own; --call_cost is a cost per
// call on the model's one compute slot, whatever the rows the call carries, so
// that calls queue and a batch of rows costs what one row does.
//
// One process can be any node of a Seldon inference graph: the seldon routes
// serve every part (model, transformer, output transformer, router,
// combiner), and --role picks what the tensorflow and v2 infer routes do.
// --model_name is the node's name, which the fail-node and slow-node tags of
// a request name.
//
// SIGUSR1 makes the model hang: every infer call waits without answering,
// while readiness and liveness go on answering (a stuck model, which only a
// client's timeout notices); SIGUSR2 releases it. SIGTERM and SIGINT shut it
// down gracefully.
//
// Once both listeners are open it prints exactly one line to standard
// output, then logs to standard error only:
//
//	listening http=<host:port> grpc=<host:port|off>
//
// so that a test can start it with --http_port=0 --grpc_port=0 and learn the
// ports it got by reading one line, without sleeping or polling.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/seldon-kafka/sidecar/internal/cli"
	"github.com/seldon-kafka/sidecar/internal/testmodel"
)

// shutdownGrace bounds how long in-flight (possibly delayed) calls may take
// to finish once a signal arrives.
const shutdownGrace = 10 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	var usage cli.UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		// --help is a successful run: it did what was asked.
	case errors.As(err, &usage):
		// run has printed the error, on one line.
		os.Exit(2)
	default:
		slog.New(slog.NewTextHandler(os.Stderr, nil)).Error("testmodel failed", "err", err)
		os.Exit(1)
	}
}

// run serves until ctx ends, then shuts down gracefully. It writes the
// listening line to stdout and logs to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("testmodel", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	host := fs.String("host", "", "address to listen on: empty for every interface, 127.0.0.1 for loopback only")
	port := fs.Int("http_port", 9000, "HTTP port to serve on (0 picks a free one)")
	grpcPort := fs.Int("grpc_port", 9500, "gRPC port to serve on (0 picks a free one, -1 serves no gRPC)")
	model := fs.String("model_name", testmodel.DefaultModelName, "model name served by the tensorflow and v2 routes; the node's name in a graph")
	image := fs.String("image", testmodel.DefaultImage, "image reported for this node in the seldon answers' meta.requestPath")
	role := testmodel.RoleModel
	fs.TextVar(&role, "role", testmodel.RoleModel, "the `role` the tensorflow and v2 infer routes play: model (x2), transformer (+1) or output_transformer (x10)")
	slowDelay := fs.Duration("slow_delay", testmodel.DefaultSlowDelay, "time a seldon call tagged slow-node=<model_name> waits before answering")
	delay := fs.Duration("delay", 0, "time every infer call waits before answering (calls wait in parallel)")
	callCost := fs.Duration("call_cost", 0, "time every infer call holds the model's one compute slot, whatever its rows (calls queue: at most 1/call_cost calls a second)")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: testmodel [flags]\n\n"+
			"Serves a deterministic test model (seldon, tensorflow and v2 protocols, REST and gRPC)\n"+
			"and prints \"listening http=<host:port> grpc=<host:port|off>\" once it listens.\n"+
			"SIGUSR1 makes every infer call hang (readiness still answers); SIGUSR2 releases them.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr) // stdout carries only the listening line
			fs.Usage()
			return err
		}
		fmt.Fprintf(stderr, "testmodel: %v (testmodel --help lists the flags)\n", err)
		return cli.UsageError{Err: err}
	}
	if fs.NArg() > 0 {
		err := fmt.Errorf("unexpected argument %q", fs.Arg(0))
		fmt.Fprintf(stderr, "testmodel: %v (testmodel --help lists the flags)\n", err)
		return cli.UsageError{Err: err}
	}
	if *slowDelay <= 0 {
		err := fmt.Errorf("--slow_delay must be positive, got %v", *slowDelay)
		fmt.Fprintf(stderr, "testmodel: %v\n", err)
		return cli.UsageError{Err: err}
	}
	for name, d := range map[string]time.Duration{"delay": *delay, "call_cost": *callCost} {
		if d < 0 {
			err := fmt.Errorf("--%s must not be negative, got %v", name, d)
			fmt.Fprintf(stderr, "testmodel: %v\n", err)
			return cli.UsageError{Err: err}
		}
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))

	ln, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return fmt.Errorf("listen on port %d: %w", *port, err)
	}
	var grpcLn net.Listener
	grpcAddr := "off"
	if *grpcPort >= 0 {
		grpcLn, err = net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*grpcPort)))
		if err != nil {
			ln.Close()
			return fmt.Errorf("listen on gRPC port %d: %w", *grpcPort, err)
		}
		grpcAddr = grpcLn.Addr().String()
	}
	srv := testmodel.New(testmodel.Options{ModelName: *model, Image: *image, Role: role, SlowDelay: *slowDelay, Delay: *delay, CallCost: *callCost})
	// Registered before the listening line, so a signal sent once it is read is never missed.
	hang := make(chan os.Signal, 4)
	signal.Notify(hang, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(hang)

	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	grpcServed := make(chan error, 1)
	if grpcLn != nil {
		go func() { grpcServed <- srv.ServeGRPC(grpcLn) }()
	}
	// Both listeners already accept connections (the kernel queues them until
	// Serve takes them), so a reader of this line may connect at once.
	if _, err := fmt.Fprintf(stdout, "listening http=%s grpc=%s\n", ln.Addr(), grpcAddr); err != nil {
		srv.Close()
		return fmt.Errorf("announce the listening addresses: %w", err)
	}
	log.Info("testmodel listening", "addr", ln.Addr().String(), "grpc_addr", grpcAddr, "model", *model,
		"image", *image, "role", role, "delay", *delay, "call_cost", *callCost, "slow_delay", *slowDelay)

serving:
	for {
		select {
		case err := <-served:
			srv.Close()
			return fmt.Errorf("serve: %w", err)
		case err := <-grpcServed:
			srv.Close()
			return fmt.Errorf("serve gRPC: %w", err)
		case sig := <-hang:
			hanging := sig == syscall.SIGUSR1
			srv.SetHanging(hanging)
			log.Info("testmodel hanging", "hanging", hanging, "signal", sig.String())
		case <-ctx.Done():
			break serving
		}
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
