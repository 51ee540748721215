package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// The model-direct baseline: what the model serves with no Kafka and no sidecar, called by a plain
// client with as many calls at once as the sidecar has records in flight (KAFKA_WORKERS).

// directResult is what a model-direct run measured.
type directResult struct {
	Calls         int     `json:"calls"`
	Failed        int     `json:"failed"`
	RecordsPerSec float64 `json:"records_per_sec"`
	P50Ms         float64 `json:"p50_ms"`
	P99Ms         float64 `json:"p99_ms"`
	// ModelCPUMicros is the model process's CPU per call.
	ModelCPUMicros float64 `json:"model_cpu_us_per_call"`
}

// caller makes one model call.
type caller func(ctx context.Context, i int) error

// restCaller posts the payload's values to the protocol's predict path, over connections kept for
// reuse, one per concurrent call.
func restCaller(protocol, port, modelName string, pl payload, concurrency int) (caller, func(), error) {
	paths := map[string]string{
		"seldon":     "/predict",
		"tensorflow": "/v1/models/" + modelName + ":predict",
		"v2":         "/v2/models/" + modelName + "/infer",
	}
	url := "http://127.0.0.1:" + port + paths[protocol]
	tr := &http.Transport{MaxIdleConns: concurrency, MaxIdleConnsPerHost: concurrency}
	client := &http.Client{Transport: tr}
	call := func(ctx context.Context, i int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(pl.value(i)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("model answered %s", resp.Status)
		}
		return err
	}
	return call, tr.CloseIdleConnections, nil
}

// grpcCaller calls the protocol's predict RPC with the payload's messages over one connection, as the
// sidecar does.
func grpcCaller(protocol, port, modelName string, pl payload) (caller, func(), error) {
	methods := map[string]struct {
		name  string
		reply func() proto.Message
	}{
		"seldon":     {seldonpb.Model_Predict_FullMethodName, func() proto.Message { return &seldonpb.SeldonMessage{} }},
		"tensorflow": {tfpb.PredictionService_Predict_FullMethodName, func() proto.Message { return &tfpb.PredictResponse{} }},
		"v2":         {v2pb.GRPCInferenceService_ModelInfer_FullMethodName, func() proto.Message { return &v2pb.ModelInferResponse{} }},
	}
	m := methods[protocol]
	// The sidecar fills in the model's name where the request leaves it empty; so does this client.
	msgs := make([]proto.Message, len(pl.messages))
	for i, msg := range pl.messages {
		msg = proto.Clone(msg)
		switch r := msg.(type) {
		case *tfpb.PredictRequest:
			r.ModelSpec = &tfpb.ModelSpec{Name: modelName}
		case *v2pb.ModelInferRequest:
			r.ModelName = modelName
		}
		msgs[i] = msg
	}
	conn, err := grpc.NewClient("127.0.0.1:"+port, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, err
	}
	call := func(ctx context.Context, i int) error {
		return conn.Invoke(ctx, m.name, msgs[i%len(msgs)], m.reply())
	}
	return call, func() { _ = conn.Close() }, nil
}

// modelDirect makes n calls, concurrency at a time, and measures the rate and each call's latency.
func modelDirect(mdl *model, protocol, transport, modelName string, pl payload, n, concurrency int) (*directResult, error) {
	var (
		call    caller
		release func()
		err     error
	)
	if transport == "grpc" {
		call, release, err = grpcCaller(protocol, mdl.grpcPort, modelName, pl)
	} else {
		call, release, err = restCaller(protocol, mdl.httpPort, modelName, pl, concurrency)
	}
	if err != nil {
		return nil, err
	}
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	var (
		next    atomic.Int64
		failed  atomic.Int64
		firstMu sync.Mutex
		first   error
		wg      sync.WaitGroup
	)
	lat := make([][]time.Duration, concurrency)
	cpu0 := mdl.cpu()
	start := time.Now()
	for w := range concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				if err := call(ctx, i); err != nil {
					failed.Add(1)
					firstMu.Lock()
					if first == nil {
						first = err
					}
					firstMu.Unlock()
					continue
				}
				lat[w] = append(lat[w], time.Since(t))
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := mdl.cpu() - cpu0
	all := slices.Concat(lat...)
	if len(all) == 0 {
		return nil, fmt.Errorf("model-direct: every call failed, the first: %w", first)
	}
	slices.Sort(all)
	return &directResult{
		Calls: n, Failed: int(failed.Load()),
		RecordsPerSec:  float64(len(all)) / elapsed.Seconds(),
		P50Ms:          ms(percentile(all, 0.50)),
		P99Ms:          ms(percentile(all, 0.99)),
		ModelCPUMicros: micros(cpu) / float64(n),
	}, nil
}

// percentile of sorted durations, nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1)+0.5)]
}

func ms(d time.Duration) float64     { return float64(d) / float64(time.Millisecond) }
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
