package executor

import (
	"context"
	"log/slog"

	"github.com/seldon-kafka/sidecar/executor/batch"
	"github.com/seldon-kafka/sidecar/executor/graph"
	"github.com/seldon-kafka/sidecar/protocols"
)

// graphWalker is what the data path and the synchronous API call for each request: the graph walk, or
// the batcher in front of it when MODEL_BATCH_SIZE is above 1.
type graphWalker interface {
	Check(req *protocols.Request) error
	Predict(ctx context.Context, req *protocols.Request) (*protocols.Response, error)
	Ready(ctx context.Context) []graph.NodeStatus
	Close() error
}

var (
	_ graphWalker = (*graph.Walker)(nil)
	_ graphWalker = (*batch.Batcher)(nil)
)

// batched puts the batcher in front of the walk when batching is on (LoadConfig has checked that the
// graph is one model).
func batched(cfg Config, w *graph.Walker, m *metrics, log *slog.Logger) (graphWalker, error) {
	if cfg.BatchSize <= 1 {
		return w, nil
	}
	b, err := batch.New(w, batch.Options{Size: cfg.BatchSize, Wait: cfg.BatchWait, Observer: m, Log: log})
	if err != nil {
		_ = w.Close()
		return nil, err
	}
	return b, nil
}
