package executor

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/seldon-kafka/sidecar/executor/graph"
	"github.com/seldon-kafka/sidecar/executor/registry"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/grpc"
)

// The Confluent Schema Registry wire format at the edges of the data path: a framed request loses its
// frame before it is checked, and its answer gains one before it is produced (package registry).

// newSchemas builds the registry codec the configuration asks for; nil, which leaves every record as
// it is, when it asks for none.
func newSchemas(cfg Config, log *slog.Logger) (*registry.Codec, error) {
	if cfg.SchemaRegistry == nil {
		return nil, nil
	}
	o := *cfg.SchemaRegistry
	if cfg.Transport == "grpc" {
		gp, ok := graph.GRPCProtocol(cfg.Protocol)
		if !ok {
			return nil, fmt.Errorf("schema registry: protocol %s has no gRPC request types", cfg.Protocol)
		}
		reg, err := grpc.NewRegistry(gp)
		if err != nil {
			return nil, fmt.Errorf("schema registry: %w", err)
		}
		o.Accept = func(name string) error { _, err := reg.Lookup(name); return err }
	}
	log.Info("schema registry wire format", "url", o.URL, "subject_strategy", o.Strategy.String(),
		"answer_subject", o.Strategy.Subject(o.OutputTopic, "<record name>"), "auto_register", o.AutoRegister,
		"use_latest_version", o.UseLatest, "basic_auth", o.UserInfo.IsSet(), "tls_material", o.TLS != nil,
		"cache_capacity", o.CacheCapacity)
	return registry.New(o)
}

// unframe takes the frame off a framed request. When it cannot, the record is finished here — an
// error record, or handed back when the shutdown grace is over — and ok is false.
func (p *pipeline) unframe(ctx context.Context, j *job, req *protocols.Request) (framed, ok bool) {
	framed, err := p.schemas.Unframe(ctx, req)
	if err == nil {
		return framed, true
	}
	if ctx.Err() != nil {
		p.abandon(j)
	} else {
		p.fail(j, err, "decode")
	}
	return framed, false
}

// frame frames the answer of a framed request with its registered schema. When it cannot, the record is
// finished here, as unframe finishes it, and frame returns false.
func (p *pipeline) frame(ctx context.Context, j *job, resp *protocols.Response) bool {
	err := p.schemas.Frame(ctx, resp)
	if err == nil {
		return true
	}
	if ctx.Err() != nil {
		p.abandon(j)
	} else {
		p.fail(j, err, "produce")
	}
	return false
}
