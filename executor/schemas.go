package executor

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

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

// watchRegistry re-reads the Schema Registry's credentials and TLS material every
// KAFKA_SECURITY_RELOAD_INTERVAL until ctx ends, as offerRotations does the Kafka material, and rotates
// the codec onto new material once it passes the checks and the registry takes it (registry.Codec.Rotate:
// the requests to come use it; nothing cached is fetched again). Material that fails a check or that the
// registry refuses is logged once and left alone until the files change again; the material in use
// stays. A registry that cannot be reached is asked again at the next interval.
func (e *Executor) watchRegistry(ctx context.Context) {
	files := e.cfg.registryFiles
	inUse, refused, unproven := files.atStart, "", ""
	t := time.NewTicker(e.cfg.SecurityReload)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		creds, err := files.read(time.Now())
		if err != nil {
			if key := "read:" + err.Error(); key != refused {
				refused = key
				e.log.Warn("new schema registry material not used: it fails a check; the material in use stays", "error", err)
			}
			continue
		}
		key := "content:" + hex.EncodeToString(creds.digest[:])
		if creds.digest == inUse || key == refused {
			continue
		}
		rctx, cancel := context.WithTimeout(ctx, 2*e.cfg.SchemaRegistry.Timeout)
		err = e.p.schemas.Rotate(rctx, creds.userInfo, creds.tls)
		cancel()
		if err != nil {
			if registry.Refused(err) {
				refused = key
				e.log.Warn("new schema registry material not used: the registry refused it; the material in use stays",
					"error", err.Error())
			} else if msg := err.Error(); msg != unproven {
				unproven = msg // said once; tried again at every interval
				e.log.Warn("new schema registry material not used yet: the registry did not answer; the material in use stays",
					"error", msg)
			}
			continue
		}
		inUse, refused, unproven = creds.digest, "", ""
		e.log.Info("schema registry material rotated", "basic_auth", creds.userInfo.IsSet(), "tls_material", creds.tls != nil)
		for _, w := range creds.warnings {
			e.log.Warn("schema registry material", "warning", w)
		}
	}
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
