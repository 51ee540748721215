package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"google.golang.org/grpc"

	"github.com/seldon-kafka/sidecar/executor/graph"
	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/tls"
)

// Executor is a running sidecar: New connects nothing yet but builds every client and binds the health
// port; Run does the work until its context ends.
type Executor struct {
	cfg      Config
	log      *slog.Logger
	p        *pipeline
	listener net.Listener // --http_port: health, metrics and, over REST, the synchronous API
	grpcLn   net.Listener // --grpc_port: the synchronous gRPC API; nil with --transport=rest
	security *tls.Watcher // the security material in use and its files; see rotation.go
}

// New builds the sidecar from a checked Config.
func New(cfg Config, log *slog.Logger) (*Executor, error) {
	m := newMetrics(cfg.Graph)
	g := newGate()
	ed, err := newEdges(cfg, log, m.reg)
	if err != nil {
		return nil, err
	}
	walker, err := newWalker(cfg, g, m, ed, log)
	if err != nil {
		_ = ed.close(context.Background())
		return nil, err
	}
	logSecurity(log, cfg)
	schemas, err := newSchemas(cfg, log)
	if err != nil {
		_ = walker.Close()
		return nil, err
	}
	consumer, producer, err := newClients(cfg, cfg.Security)
	if err != nil {
		_ = walker.Close()
		_ = ed.close(context.Background())
		_ = schemas.Close()
		return nil, err
	}
	closeAll := func() {
		producer.Close()
		consumer.Close()
		_ = walker.Close()
		_ = ed.close(context.Background())
		_ = schemas.Close()
	}
	ln, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.HTTPPort)))
	if err != nil {
		closeAll()
		return nil, fmt.Errorf("--http_port: %w", err)
	}
	var grpcLn net.Listener
	if cfg.Transport == "grpc" {
		if grpcLn, err = net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(cfg.GRPCPort))); err != nil {
			ln.Close()
			closeAll()
			return nil, fmt.Errorf("--grpc_port: %w", err)
		}
	}
	e := &Executor{
		cfg:      cfg,
		log:      log,
		p:        newPipeline(cfg, log, consumer, producer, walker, g, m),
		listener: ln,
		grpcLn:   grpcLn,
	}
	e.p.edges = ed
	e.p.schemas = schemas
	if cfg.Security != nil {
		e.security = tls.NewWatcher(cfg.Security)
	}
	return e, nil
}

// newWalker builds the graph's node clients with the model settings, batched when MODEL_BATCH_SIZE says.
func newWalker(cfg Config, g *gate, m *metrics, ed *edges, log *slog.Logger) (graphWalker, error) {
	w, err := graph.New(cfg.Graph, graph.Options{
		Timeout:          cfg.ModelTimeout,
		MaxAttempts:      cfg.MaxAttempts,
		Backoff:          protocols.Backoff{Min: cfg.BackoffMin, Max: cfg.BackoffMax},
		RetryStatuses:    cfg.RetryStatuses,
		RetryCodes:       cfg.RetryCodes,
		MaxConns:         cfg.Workers,
		RoutingInjection: cfg.RoutingInjection,
		Gate:             g,
		Observer:         m,
		Tracer:           ed.tr,
		Payloads:         ed.payloads,
	})
	if err != nil {
		return nil, err
	}
	return batched(cfg, w, m, log)
}

// HealthAddr is the address /live, /ready, the metrics and, over REST, the synchronous API are served on.
func (e *Executor) HealthAddr() string { return e.listener.Addr().String() }

// GRPCAddr is the address of the synchronous gRPC API, "" with --transport=rest.
func (e *Executor) GRPCAddr() string {
	if e.grpcLn == nil {
		return ""
	}
	return e.grpcLn.Addr().String()
}

// Run serves records until ctx ends, then shuts down within the grace period: it stops fetching, lets
// the records in flight finish, flushes the producer, commits, and leaves the group. It returns nil after
// a clean shutdown and an error when the sidecar cannot go on (a fatal Kafka error). The data path's
// lifecycle is the pipeline's (lifecycle.go); Run adds what serves beside it: the health, metrics and
// synchronous API servers, the graph's readiness watch and the security rotation.
func (e *Executor) Run(ctx context.Context) error {
	p := e.p
	log := e.log
	log.Info("starting", "brokers", e.cfg.Brokers, "input", e.cfg.InputTopic, "output", e.cfg.OutputTopic,
		"errors", e.cfg.ErrorTopic, "group", e.cfg.GroupID, "protocol", e.cfg.Protocol, "transport", e.cfg.Transport,
		"graph", graphSummary(e.cfg.Graph), "workers", e.cfg.Workers,
		"predictor_from", e.cfg.PredictorSource, "health", e.HealthAddr())
	for _, f := range e.cfg.IgnoredFlags {
		log.Warn("ignored: not used by the Kafka executor", "setting", f)
	}
	for _, w := range e.cfg.Warnings {
		log.Warn("configuration", "warning", w)
	}

	// bg ends the helpers after the data path has stopped: health and API servers, readiness watch.
	bg, stopBg := context.WithCancel(context.Background())
	defer stopBg()
	var helpers sync.WaitGroup
	api := newAPI(p)
	srv := &http.Server{Handler: e.httpHandler(api), ReadHeaderTimeout: 5 * time.Second}
	helpers.Go(func() {
		if err := srv.Serve(e.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("health server", "error", err)
		}
	})
	var grpcSrv *grpc.Server
	if e.grpcLn != nil {
		grpcSrv = api.grpcServer()
		helpers.Go(func() {
			if err := grpcSrv.Serve(e.grpcLn); err != nil {
				log.Error("gRPC API server", "error", err)
			}
		})
	}
	helpers.Go(func() { p.watchGraph(bg) })
	if p.schemas != nil && e.cfg.registryFiles.watched() && e.cfg.SecurityReload > 0 {
		helpers.Go(func() { e.watchRegistry(bg) })
	}

	// The rotation watch offers new clients while the data path runs, and stops with it.
	var swaps chan clients
	rctx, stopRotation := context.WithCancel(ctx)
	var rotation sync.WaitGroup
	if e.security != nil && e.security.Watching() && e.cfg.SecurityReload > 0 {
		swaps = make(chan clients)
		rotation.Go(func() { e.offerRotations(rctx, swaps) })
	}
	runErr := p.run(ctx, swaps)
	stopRotation()
	rotation.Wait()

	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	_ = srv.Shutdown(sctx)
	cancel()
	if grpcSrv != nil {
		stopGRPC(grpcSrv, time.Second)
	}
	stopBg()
	helpers.Wait()
	_ = p.graph.Close()
	sctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	if err := p.edges.close(sctx); err != nil {
		log.Warn("spans not exported at shutdown", "error", err)
	}
	cancel()
	_ = p.schemas.Close()
	log.Info("stopped", "clean", runErr == nil)
	return runErr
}

// Hurry cuts a shutdown short, as a second SIGTERM asks: Run stops waiting for the records in flight at
// once (or, called before Run's context ends, as soon as it does), ends their model calls, flushes what
// is produced for a second at most, commits what is delivered, leaves the group and returns. The records
// not finished are not committed: they are read again after the restart, so nothing is lost.
func (e *Executor) Hurry() { e.p.hurry() }

func forwardLogs(log *slog.Logger, client string, ch chan ckafka.LogEvent) {
	for ev := range ch {
		log.Log(context.Background(), kafka.LogLevel(ev.Level), ev.Message, "client", client, "facility", ev.Tag)
	}
}

// graphSummary names each node called and where, for the start-up log: "transformer@localhost:9000 …".
func graphSummary(g *graph.Graph) string {
	var b strings.Builder
	for _, n := range g.Nodes {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(n.Name)
		if n.Calls() {
			b.WriteString("@" + n.Address(g.Transport))
		}
	}
	return b.String()
}

// stopGRPC lets the calls in flight finish for up to d, then ends them.
func stopGRPC(s *grpc.Server, d time.Duration) {
	done := make(chan struct{})
	go func() { s.GracefulStop(); close(done) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		s.Stop()
		<-done
	}
}
