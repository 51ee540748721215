package tracing

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/seldon-kafka/sidecar/protocols"
)

func lookup(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := env[k]
		return v, ok
	}
}

func TestSettingsFollowTheOTELVariablesAndMapTheLegacyJaegerOnes(t *testing.T) {
	cases := []struct {
		name        string
		env         map[string]string
		export      bool
		protocol    string
		sampler     string
		service     string
		notes       int
		propagators string // the fields the propagator writes, sorted and joined
	}{
		{"nothing set: nothing exported, W3C propagation", nil, false, "http/protobuf", "parentbased_always_on", "executor", 0, "baggage,traceparent,tracestate"},
		{"an endpoint: exported over http/protobuf", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"},
			true, "http/protobuf", "parentbased_always_on", "executor", 0, "baggage,traceparent,tracestate"},
		{"a traces endpoint and grpc", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
			true, "grpc", "parentbased_always_on", "executor", 0, "baggage,traceparent,tracestate"},
		{"exporter none", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"},
			false, "http/protobuf", "parentbased_always_on", "executor", 0, "baggage,traceparent,tracestate"},
		{"SDK disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_SDK_DISABLED": "true"},
			false, "http/protobuf", "parentbased_always_on", "executor", 0, "baggage,traceparent,tracestate"},
		{"JAEGER_DISABLED", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "JAEGER_DISABLED": "true"},
			false, "http/protobuf", "parentbased_always_on", "executor", 0, "baggage,traceparent,tracestate"},
		{"OTEL sampler with a ratio", map[string]string{"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"},
			false, "http/protobuf", "parentbased_traceidratio(0.25)", "executor", 0, "baggage,traceparent,tracestate"},
		{"legacy probabilistic sampler and service name", map[string]string{"JAEGER_SAMPLER_TYPE": "probabilistic", "JAEGER_SAMPLER_PARAM": "0.1", "JAEGER_SERVICE_NAME": "iris"},
			false, "http/protobuf", "parentbased_traceidratio(0.1) (JAEGER_SAMPLER_TYPE=probabilistic)", "iris", 0, "baggage,traceparent,tracestate"},
		{"legacy const 0", map[string]string{"JAEGER_SAMPLER_TYPE": "const", "JAEGER_SAMPLER_PARAM": "0"},
			false, "http/protobuf", "parentbased_always_off (JAEGER_SAMPLER_TYPE=const, 0)", "executor", 0, "baggage,traceparent,tracestate"},
		{"OTEL beats legacy", map[string]string{"JAEGER_SAMPLER_TYPE": "const", "JAEGER_SAMPLER_PARAM": "0", "OTEL_TRACES_SAMPLER": "always_on",
			"JAEGER_SERVICE_NAME": "old", "OTEL_SERVICE_NAME": "new"},
			false, "http/protobuf", "always_on", "executor", 0, "baggage,traceparent,tracestate"},
		{"legacy agent and remote sampler are noted, not mapped", map[string]string{"JAEGER_AGENT_HOST": "10.0.0.1", "JAEGER_AGENT_PORT": "6831", "JAEGER_SAMPLER_TYPE": "remote"},
			false, "http/protobuf", "parentbased_always_on", "executor", 3, "baggage,traceparent,tracestate"},
		{"jaeger propagation asked for", map[string]string{"OTEL_PROPAGATORS": "tracecontext, jaeger"},
			false, "http/protobuf", "parentbased_always_on", "executor", 0, "traceparent,tracestate,uber-trace-id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := FromLookup(lookup(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			if s.Export != tc.export || s.Protocol != tc.protocol || s.SamplerName != tc.sampler || s.ServiceName != tc.service {
				t.Errorf("export %v protocol %q sampler %q service %q; want %v %q %q %q",
					s.Export, s.Protocol, s.SamplerName, s.ServiceName, tc.export, tc.protocol, tc.sampler, tc.service)
			}
			if len(s.Notes) != tc.notes {
				t.Errorf("notes %q, want %d", s.Notes, tc.notes)
			}
			fields := s.Propagator.Fields()
			slices.Sort(fields)
			if got := strings.Join(fields, ","); got != tc.propagators {
				t.Errorf("propagator fields %s, want %s", got, tc.propagators)
			}
		})
	}
}

func TestABadTracingVariableIsAnErrorNamingIt(t *testing.T) {
	cases := map[string]map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        {"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"},
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": {"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift"},
		"OTEL_TRACES_EXPORTER":               {"OTEL_TRACES_EXPORTER": "zipkin"},
		"OTEL_TRACES_SAMPLER":                {"OTEL_TRACES_SAMPLER": "jaeger_remote"},
		"OTEL_TRACES_SAMPLER_ARG":            {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"},
		"OTEL_SDK_DISABLED":                  {"OTEL_SDK_DISABLED": "maybe"},
		"OTEL_PROPAGATORS":                   {"OTEL_PROPAGATORS": "tracecontext,w3c"},
		"JAEGER_SAMPLER_PARAM":               {"JAEGER_SAMPLER_TYPE": "probabilistic", "JAEGER_SAMPLER_PARAM": "lots"},
		"JAEGER_SAMPLER_TYPE":                {"JAEGER_SAMPLER_TYPE": "sometimes"},
		"JAEGER_TAGS":                        {"JAEGER_TAGS": "a=1,b"},
	}
	for name, env := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := FromLookup(lookup(env))
			var ee *EnvError
			if !errors.As(err, &ee) || ee.Var != name {
				t.Fatalf("error %v, want one naming %s", err, name)
			}
		})
	}
}

const incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func newRecorded(t *testing.T) (*Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	s, err := FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	s.Provider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	tr, err := New(context.Background(), s, Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	return tr, rec
}

func TestARecordsTraceContinuesToTheNodesAndOntoWhatIsProduced(t *testing.T) {
	tr, rec := newRecorded(t)
	hs := []ckafka.Header{{Key: "TraceParent", Value: []byte(incoming)}, {Key: "x", Value: []byte("y")}}
	ctx, span := tr.StartRecord(context.Background(), &KafkaCarrier{Headers: hs}, Record{Topic: "in"})
	if got := span.SpanContext().TraceID().String(); got != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("record span in trace %s, not the record's", got)
	}
	cctx, call := tr.StartCall(ctx, "model", "predict")
	node := []protocols.Header{{Key: "traceparent", Value: incoming}, {Key: "Seldon-Puid", Value: "p"}}
	out := tr.NodeHeaders(cctx, node)
	if node[0].Value != incoming {
		t.Errorf("NodeHeaders changed the walk's shared headers")
	}
	want := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + call.SpanContext().SpanID().String() + "-01"
	var got []string
	for _, h := range out {
		if strings.EqualFold(h.Key, "traceparent") {
			got = append(got, h.Value)
		}
	}
	if len(got) != 1 || got[0] != want {
		t.Errorf("node traceparent %q, want only %q", got, want)
	}
	End(call, nil)
	pctx, produce := tr.StartProduce(ctx, "out", "answer")
	recHs := tr.RecordHeaders(pctx, hs)
	var tps []string
	for _, h := range recHs {
		if strings.EqualFold(h.Key, "traceparent") {
			tps = append(tps, string(h.Value))
		}
	}
	if wantP := "00-4bf92f3577b34da6a3ce929d0e0e4736-" + produce.SpanContext().SpanID().String() + "-01"; len(tps) != 1 || tps[0] != wantP {
		t.Errorf("record traceparent %q, want only %q", tps, wantP)
	}
	End(produce, errors.New("refused"))
	End(span, nil)
	ended := rec.Ended()
	if len(ended) != 3 {
		t.Fatalf("%d spans ended, want 3", len(ended))
	}
	parentOf := map[string]string{}
	for _, s := range ended {
		parentOf[s.Name()] = s.Parent().SpanID().String()
	}
	if parentOf["process in"] != "00f067aa0ba902b7" || parentOf["predict model"] != span.SpanContext().SpanID().String() ||
		parentOf["send out"] != span.SpanContext().SpanID().String() {
		t.Errorf("parents %v", parentOf)
	}
}

func TestWithoutAnEndpointTheTraceContextPassesUnchanged(t *testing.T) {
	s, err := FromLookup(lookup(nil))
	if err != nil {
		t.Fatal(err)
	}
	tr, err := New(context.Background(), s, Deployment{})
	if err != nil {
		t.Fatal(err)
	}
	hs := []ckafka.Header{{Key: "traceparent", Value: []byte(incoming)}}
	ctx, span := tr.StartRecord(context.Background(), &KafkaCarrier{Headers: hs}, Record{Topic: "in"})
	if span.IsRecording() {
		t.Error("a span is recorded with nothing to export to")
	}
	cctx, _ := tr.StartCall(ctx, "m", "predict")
	if out := tr.NodeHeaders(cctx, []protocols.Header{{Key: "traceparent", Value: incoming}}); len(out) != 1 || out[0].Value != incoming {
		t.Errorf("node headers %v, want the record's traceparent", out)
	}
	if out := tr.RecordHeaders(ctx, nil); len(out) != 1 || string(out[0].Value) != incoming {
		t.Errorf("produced headers %v, want the record's traceparent", out)
	}
	// And a record without one gets none: no trace is made up.
	ctx, _ = tr.StartRecord(context.Background(), &KafkaCarrier{}, Record{Topic: "in"})
	if out := tr.RecordHeaders(ctx, nil); len(out) != 0 {
		t.Errorf("headers %v made up for a record without a trace", out)
	}
	if trace.SpanContextFromContext(ctx).IsValid() {
		t.Error("a span context without a tracer provider")
	}
}

func TestWithAnEndpointSpansAreExportedOverOTLP(t *testing.T) {
	got := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if len(body) > 0 {
			got <- r.Method + " " + r.URL.Path + " " + r.Header.Get("Content-Type")
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer srv.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", srv.URL)
	s, err := FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if !s.Export {
		t.Fatal("an endpoint is set and nothing is to be exported")
	}
	tr, err := New(context.Background(), s, Deployment{Name: "iris", Namespace: "ns", Predictor: "default"})
	if err != nil {
		t.Fatal(err)
	}
	_, span := tr.StartRecord(context.Background(), &KafkaCarrier{}, Record{Topic: "in"})
	if !span.IsRecording() {
		t.Fatal("the span is not recorded")
	}
	span.End()
	if err := tr.Shutdown(context.Background()); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	select {
	case req := <-got:
		if req != "POST /v1/traces application/x-protobuf" {
			t.Errorf("the collector got %q", req)
		}
	default:
		t.Fatal("the collector got no spans by the end of Shutdown")
	}
}
