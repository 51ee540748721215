package executor

import (
	"context"
	"io"
	"log/slog"
	"testing"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/tracing"
)

// BenchmarkEdges is what the edges add to one record's path — read the record, start its span, write
// the answer's headers, end the spans — with tracing's no-op provider (no OTLP endpoint), for a plain
// record, one with a traceparent, and binary and structured CloudEvents. `go test -bench Edges
// -benchmem ./executor/` prints the figures.
func BenchmarkEdges(b *testing.B) {
	body := []byte(`{"data":{"ndarray":[[1,2]]}}`)
	tp := []byte("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	cases := []struct {
		name    string
		headers []ckafka.Header
		value   []byte
	}{
		{"plain", []ckafka.Header{{Key: "Seldon-Puid", Value: []byte("p")}}, body},
		{"plain with traceparent", []ckafka.Header{{Key: "Seldon-Puid", Value: []byte("p")}, {Key: "traceparent", Value: tp}}, body},
		{"binary CloudEvent", []ckafka.Header{{Key: "ce_specversion", Value: []byte("1.0")}, {Key: "ce_id", Value: []byte("1")},
			{Key: "ce_type", Value: []byte("t")}, {Key: "ce_source", Value: []byte("/s")}, {Key: "content-type", Value: []byte("application/json")}}, body},
		{"structured CloudEvent", []ckafka.Header{{Key: "content-type", Value: []byte("application/cloudevents+json")}},
			[]byte(`{"specversion":"1.0","id":"1","type":"t","source":"/s","data":` + string(body) + `}`)},
	}
	settings, err := tracing.FromLookup(func(string) (string, bool) { return "", false })
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Deployment: "iris", Namespace: "ns", InputTopic: "in", GroupID: "g", Tracing: settings}
	e, err := newEdges(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	topic := "in"
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				j := &job{in: &ckafka.Message{TopicPartition: ckafka.TopicPartition{Topic: &topic}, Headers: tc.headers, Value: tc.value}, puid: "p"}
				req := &protocols.Request{Body: j.in.Value}
				if _, err := e.consume(context.Background(), j, req); err != nil {
					b.Fatal(err)
				}
				hs := []ckafka.Header{{Key: HeaderPuid, Value: []byte(j.puid)}, {Key: HeaderContentType, Value: []byte("application/json")}}
				if _, _, err := e.answered(j, &protocols.Response{Body: body, ContentType: "application/json"}, body, hs, "out"); err != nil {
					b.Fatal(err)
				}
				e.delivered(j)
			}
		})
	}
}
