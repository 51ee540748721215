package tracing

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.40.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/seldon-kafka/sidecar/protocols"
)

// ScopeName is the instrumentation scope of the sidecar's spans.
const ScopeName = "github.com/seldon-kafka/sidecar"

// Deployment names what the spans come from: resource attributes next to service.name.
type Deployment struct {
	Name, Namespace, Predictor string
}

// Tracer starts the sidecar's spans and moves the trace context in and out of headers. A nil *Tracer
// is valid: it starts no span and changes no header.
type Tracer struct {
	tracer    trace.Tracer
	prop      propagation.TextMapPropagator
	recording bool // spans may be recorded: attributes are worth computing
	shutdown  func(context.Context) error
	// fields are the header names the propagator writes, lower case: they are replaced, not added to.
	fields map[string]bool
	// Describe says what the tracer does, for the start-up log.
	Describe string
}

// New builds the Tracer the settings describe. Without an endpoint to export to (or with the SDK
// disabled) the provider is OpenTelemetry's no-op one: no span is recorded, and the trace context a
// record carries still goes, unchanged, to the models and onto what is produced for it.
func New(ctx context.Context, s Settings, d Deployment) (*Tracer, error) {
	t := &Tracer{prop: s.Propagator, shutdown: func(context.Context) error { return nil }}
	if t.prop == nil {
		t.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	t.fields = map[string]bool{}
	for _, f := range t.prop.Fields() {
		t.fields[strings.ToLower(f)] = true
	}
	var provider trace.TracerProvider
	switch {
	case s.Provider != nil:
		provider = s.Provider
		t.recording = true
		t.Describe = "spans to the provider given"
	case !s.Export:
		provider = noop.NewTracerProvider()
		t.Describe = "no spans exported (OTEL_EXPORTER_OTLP_ENDPOINT not set, or tracing disabled); trace context passed on"
	default:
		exp, err := exporter(ctx, s.Protocol)
		if err != nil {
			return nil, fmt.Errorf("OTLP span exporter: %w", err)
		}
		attrs := append([]attribute.KeyValue{semconv.ServiceName(s.ServiceName)}, s.Attributes...)
		if d.Name != "" {
			attrs = append(attrs, attribute.String("seldon.deployment", d.Name))
		}
		if d.Predictor != "" {
			attrs = append(attrs, attribute.String("seldon.predictor", d.Predictor))
		}
		if d.Namespace != "" {
			attrs = append(attrs, semconv.K8SNamespaceName(d.Namespace))
		}
		// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES come after the defaults, so they win.
		res, err := resource.New(ctx, resource.WithAttributes(attrs...), resource.WithTelemetrySDK(), resource.WithFromEnv())
		if err != nil {
			return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		// The batch processor reads OTEL_BSP_*: spans leave in the background, never on the data path.
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res), sdktrace.WithSampler(s.Sampler))
		provider, t.recording, t.shutdown = tp, true, tp.Shutdown
		t.Describe = "spans exported by OTLP (" + s.Protocol + "), sampler " + s.SamplerName
	}
	t.tracer = provider.Tracer(ScopeName)
	return t, nil
}

// exporter is the OTLP exporter for the protocol; it reads the OTEL_EXPORTER_OTLP_* variables itself.
func exporter(ctx context.Context, protocol string) (*otlptrace.Exporter, error) {
	switch protocol {
	case "grpc":
		return otlptracegrpc.New(ctx)
	case "http/json":
		return otlptracehttp.New(ctx, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	}
	return otlptracehttp.New(ctx)
}

// Shutdown sends the spans still buffered, within ctx.
func (t *Tracer) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Record says where a record came from, for its span.
type Record struct {
	Topic     string
	Partition int32
	Offset    int64
	Key       []byte
	Group     string
	Puid      string
}

// StartRecord starts the span of one record, the parent of every other: a child of the trace context
// the carrier holds (the record's traceparent header), else the root of a new trace.
func (t *Tracer) StartRecord(ctx context.Context, carrier propagation.TextMapCarrier, r Record) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noop.Span{}
	}
	ctx = t.prop.Extract(ctx, carrier)
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
	if t.recording {
		attrs := []attribute.KeyValue{
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(r.Topic),
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(r.Partition))),
			semconv.MessagingKafkaOffset(int(r.Offset)),
			semconv.MessagingConsumerGroupName(r.Group),
			attribute.String("seldon.puid", r.Puid),
		}
		if len(r.Key) > 0 {
			attrs = append(attrs, semconv.MessagingKafkaMessageKey(string(r.Key)))
		}
		opts = append(opts, trace.WithAttributes(attrs...))
	}
	return t.tracer.Start(ctx, "process "+r.Topic, opts...)
}

// StartRequest starts the span of a request to the synchronous API: a child of the trace context its
// headers carry, so that the node calls continue the caller's trace.
func (t *Tracer) StartRequest(ctx context.Context, hs []protocols.Header, transport string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noop.Span{}
	}
	ctx = t.prop.Extract(ctx, &nodeCarrier{hs: hs})
	return t.tracer.Start(ctx, "api "+transport, trace.WithSpanKind(trace.SpanKindServer))
}

// StartCall starts the span of one call to a graph node (its retries included), a child of the span
// in ctx.
func (t *Tracer) StartCall(ctx context.Context, node, method string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noop.Span{}
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient)}
	if t.recording {
		opts = append(opts, trace.WithAttributes(
			attribute.String("seldon.node", node),
			attribute.String("seldon.method", method),
		))
	}
	return t.tracer.Start(ctx, method+" "+node, opts...)
}

// StartProduce starts the span of writing a record (an answer or an error record) to topic, until the
// broker acknowledges it.
func (t *Tracer) StartProduce(ctx context.Context, topic, kind string) (context.Context, trace.Span) {
	if t == nil {
		return ctx, noop.Span{}
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindProducer)}
	if t.recording {
		opts = append(opts, trace.WithAttributes(
			semconv.MessagingSystemKafka,
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(topic),
			attribute.String("seldon.record", kind),
		))
	}
	return t.tracer.Start(ctx, "send "+topic, opts...)
}

// Retried notes on the span in ctx that a call failed and is made again.
func Retried(ctx context.Context, attempt int, err error) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.AddEvent("retry", trace.WithAttributes(attribute.Int("attempt", attempt), attribute.String("error", err.Error())))
}

// End ends a span, marking it failed with err when err is not nil.
func End(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// NodeHeaders are the headers a node is called with: hs with the trace context of the span in ctx in
// place of any the record carried. hs is not changed (it is shared by the calls of a walk).
func (t *Tracer) NodeHeaders(ctx context.Context, hs []protocols.Header) []protocols.Header {
	if t == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return hs
	}
	c := &nodeCarrier{hs: make([]protocols.Header, 0, len(hs)+2)}
	for _, h := range hs {
		if !t.fields[strings.ToLower(h.Key)] {
			c.hs = append(c.hs, h)
		}
	}
	t.prop.Inject(ctx, c)
	return c.hs
}

// RecordHeaders are the headers of a record produced: hs with the trace context of the span in ctx in
// place of any it had.
func (t *Tracer) RecordHeaders(ctx context.Context, hs []ckafka.Header) []ckafka.Header {
	if t == nil || !trace.SpanContextFromContext(ctx).IsValid() {
		return hs
	}
	c := &KafkaCarrier{Headers: make([]ckafka.Header, 0, len(hs)+2)}
	for _, h := range hs {
		if !t.fields[strings.ToLower(h.Key)] {
			c.Headers = append(c.Headers, h)
		}
	}
	t.prop.Inject(ctx, c)
	return c.Headers
}

// KafkaCarrier reads and writes the trace context in a record's headers, names matched without regard
// to case (the last of a name wins, as elsewhere in the sidecar).
type KafkaCarrier struct {
	Headers []ckafka.Header
}

func (c *KafkaCarrier) Get(key string) string {
	for i := len(c.Headers) - 1; i >= 0; i-- {
		if strings.EqualFold(c.Headers[i].Key, key) {
			return string(c.Headers[i].Value)
		}
	}
	return ""
}

func (c *KafkaCarrier) Set(key, value string) {
	c.Headers = append(c.Headers, ckafka.Header{Key: key, Value: []byte(value)})
}

func (c *KafkaCarrier) Keys() []string {
	out := make([]string, len(c.Headers))
	for i, h := range c.Headers {
		out[i] = h.Key
	}
	return out
}

type nodeCarrier struct{ hs []protocols.Header }

func (c *nodeCarrier) Get(key string) string {
	for i := len(c.hs) - 1; i >= 0; i-- {
		if strings.EqualFold(c.hs[i].Key, key) {
			return c.hs[i].Value
		}
	}
	return ""
}

func (c *nodeCarrier) Set(key, value string) {
	c.hs = append(c.hs, protocols.Header{Key: key, Value: value})
}

func (c *nodeCarrier) Keys() []string {
	out := make([]string, len(c.hs))
	for i, h := range c.hs {
		out[i] = h.Key
	}
	return out
}
