package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/seldon-kafka/sidecar/cloudevents"
	"github.com/seldon-kafka/sidecar/payloadlog"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/tracing"
)

// edges are the header codecs at the two ends of the data path: a record's CloudEvent and trace
// context are read when it is served, and written on the answer or error record produced for it.
// The data path itself (graph walk, produce, commit) sees a plain request and a plain answer. The
// payload logger, which the walk feeds, lives here too: like the spans it watches the data path and
// never holds it.
type edges struct {
	tr       *tracing.Tracer
	payloads *payloadlog.Logger // nil when no graph node has a logger
	events   cloudevents.Producer
	// always answers plain requests with CloudEvents too (KAFKA_CLOUDEVENTS), in binary mode.
	always bool
	input  string
	group  string
}

// recordEdge is what the edges keep of one record from its serving to its delivery.
type recordEdge struct {
	mode    cloudevents.Mode // how its answer or error record is written
	span    trace.Span       // the record's span; nil until served
	produce trace.Span       // the span of the record being produced for it
}

func newEdges(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*edges, error) {
	tr, err := tracing.New(context.Background(), cfg.Tracing,
		tracing.Deployment{Name: cfg.Deployment, Namespace: cfg.Namespace, Predictor: cfg.Predictor.Name})
	if err != nil {
		return nil, err
	}
	for _, note := range cfg.Tracing.Notes {
		log.Warn("tracing: legacy setting not carried over", "note", note)
	}
	log.Info("tracing", "mode", tr.Describe)
	e := &edges{tr: tr, events: cloudevents.NewProducer(cfg.Deployment, cfg.Namespace),
		always: cfg.CloudEvents, input: cfg.InputTopic, group: cfg.GroupID}
	if cfg.PayloadLog != nil {
		s := *cfg.PayloadLog
		if cfg.Security != nil {
			s.KafkaSecurity = cfg.Security.Properties()
		}
		if e.payloads, err = payloadlog.New(s, reg, log); err != nil {
			_ = tr.Shutdown(context.Background())
			return nil, err
		}
		dest := "the nodes' logger URLs"
		if s.KafkaBroker != "" {
			dest = "Kafka topic " + s.KafkaTopic + " at " + s.KafkaBroker
		}
		log.Info("payload logging", "to", dest, "workers", s.Workers, "buffer", s.Buffer, "timeout", s.Timeout)
	}
	return e, nil
}

// tracer is the tracer of the spans; nil (no spans) without edges.
func (e *edges) tracer() *tracing.Tracer {
	if e == nil {
		return nil
	}
	return e.tr
}

// close sends the payload log messages and spans still buffered, within ctx.
func (e *edges) close(ctx context.Context) error {
	if e == nil {
		return nil
	}
	e.payloads.Close(ctx)
	return e.tr.Shutdown(ctx)
}

// consume reads the record as a CloudEvent (a structured event's data and datacontenttype become the
// request's body and content type) and starts the record's span, continuing the trace its headers
// carry. The context returned carries the span. A malformed CloudEvent is an invalid_cloudevent error.
func (e *edges) consume(ctx context.Context, j *job, req *protocols.Request) (context.Context, error) {
	if e == nil {
		return ctx, nil
	}
	in, err := cloudevents.Read(j.in.Headers, j.in.Value)
	j.edge.mode = in.Mode
	if in.Mode == cloudevents.None && e.always {
		j.edge.mode = cloudevents.Binary
	}
	carrier := recordCarrier{KafkaCarrier: tracing.KafkaCarrier{Headers: j.in.Headers}, in: in}
	ctx, j.edge.span = e.tr.StartRecord(ctx, &carrier, tracing.Record{Topic: e.input, Partition: j.part,
		Offset: j.offset, Key: j.in.Key, Group: e.group, Puid: j.puid})
	if err != nil {
		return ctx, &protocols.CallError{Reason: protocols.ReasonInvalidCloudEvent,
			Msg: fmt.Sprintf("not a valid CloudEvent (%s mode)", in.Mode), Err: err}
	}
	if in.Mode == cloudevents.Structured {
		req.Body, req.ContentType = in.Data()
	}
	return ctx, nil
}

// recordCarrier reads a record's trace context from its headers, and from the CloudEvent's distributed
// tracing extension (traceparent, tracestate) when the headers have none.
type recordCarrier struct {
	tracing.KafkaCarrier
	in cloudevents.Incoming
}

func (c *recordCarrier) Get(key string) string {
	if v := c.KafkaCarrier.Get(key); v != "" {
		return v
	}
	return c.in.Extension(key)
}

// answered writes the answer's CloudEvent attributes (in the request's mode) and trace context, and
// starts the span of its produce.
func (e *edges) answered(j *job, resp *protocols.Response, value []byte, hs []ckafka.Header, topic string) ([]byte, []ckafka.Header, error) {
	if e == nil {
		return value, hs, nil
	}
	if j.edge.mode != cloudevents.None {
		var err error
		value, hs, err = e.events.Answer(j.edge.mode, j.puid, time.Now(), resp.ContentType, value, hs)
		if err != nil {
			return nil, nil, &protocols.CallError{Reason: protocols.ReasonInvalidAnswer, Msg: "the answer cannot be a CloudEvent", Err: err}
		}
	}
	return value, e.startProduce(j, hs, topic, "answer"), nil
}

// failed writes an error record's CloudEvent attributes (in the request's mode) and trace context,
// marks the record's span failed, and starts the span of its produce. about are the headers among hs
// that say what went wrong (Seldon-Error-*, Seldon-Source-*): an error event carries them as
// extension attributes too, which an event router can filter on where it sees no Kafka header.
func (e *edges) failed(j *job, cause error, value []byte, hs, about []ckafka.Header, topic string) ([]byte, []ckafka.Header) {
	if e == nil {
		return value, hs
	}
	if j.edge.span != nil && j.edge.span.IsRecording() {
		j.edge.span.RecordError(cause)
		j.edge.span.SetStatus(codes.Error, protocols.AsCallError(cause).Reason)
	}
	if j.edge.mode != cloudevents.None {
		// An error event always encodes (its attributes are the sidecar's own); should it not, the
		// error record goes out plain rather than not at all.
		if v, h, err := e.events.Error(j.edge.mode, j.puid, time.Now(), value, hs, errorExtensions(about)...); err == nil {
			value, hs = v, h
		}
	}
	return value, e.startProduce(j, hs, topic, "error")
}

// errorExtensions are the CloudEvents extension attributes of an error event's headers: each header's
// name in lower case without its dashes (Seldon-Error-Reason: seldonerrorreason), but for
// Seldon-Source-Partition, seldonsourcepart, which keeps within the 20 characters the specification
// asks of a name.
func errorExtensions(about []ckafka.Header) []cloudevents.Extension {
	out := make([]cloudevents.Extension, len(about))
	for i, h := range about {
		name := strings.ToLower(strings.ReplaceAll(h.Key, "-", ""))
		if h.Key == HeaderSourcePart {
			name = "seldonsourcepart"
		}
		out[i] = cloudevents.Extension{Name: name, Value: string(h.Value)}
	}
	return out
}

func (e *edges) startProduce(j *job, hs []ckafka.Header, topic, kind string) []ckafka.Header {
	ctx := trace.ContextWithSpan(context.Background(), j.edge.recordSpan())
	ctx, j.edge.produce = e.tr.StartProduce(ctx, topic, kind)
	return e.tr.RecordHeaders(ctx, hs)
}

func (r *recordEdge) recordSpan() trace.Span {
	if r.span == nil {
		return noop.Span{}
	}
	return r.span
}

// delivered ends a record's spans: what was produced for it is acknowledged.
func (e *edges) delivered(j *job) {
	if j.edge.produce != nil {
		j.edge.produce.End()
	}
	j.edge.recordSpan().End()
}

// undelivered ends the span of an answer the broker refused (an error record takes its place, with a
// span of its own), or notes the refusal of an error record, which is sent again.
func (e *edges) undelivered(j *job, err error) {
	if j.edge.produce == nil {
		return
	}
	if j.kind == kindAnswer {
		tracing.End(j.edge.produce, err)
		j.edge.produce = nil
		return
	}
	if j.edge.produce.IsRecording() {
		j.edge.produce.RecordError(err)
	}
}

// withoutValue is the value of an error record resent without the request it carried, because the
// topic refused it for its size: nothing, or in structured mode the error event without its data, so
// that the record is still a CloudEvent.
func (e *edges) withoutValue(j *job) []byte {
	if e == nil || j.edge.mode != cloudevents.Structured {
		return nil
	}
	v, err := cloudevents.WithoutData(j.out.Value)
	if err != nil {
		return nil // the sidecar wrote the event: cannot fail, and nothing is better than a broken one
	}
	return v
}

// abandoned ends the spans of a record left unanswered at shutdown: it is read again after a restart.
func (e *edges) abandoned(j *job) {
	errAbandoned := errors.New("abandoned at shutdown: read again after a restart")
	if j.edge.produce != nil {
		tracing.End(j.edge.produce, errAbandoned)
	}
	tracing.End(j.edge.recordSpan(), errAbandoned)
}
