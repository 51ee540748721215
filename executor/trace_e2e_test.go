package executor_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/seldon-kafka/sidecar/executor"
	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/internal/testmodel"
)

// Trace context end to end: a record's traceparent continues into the sidecar's spans (one per record,
// a child per node call and one for the produce), reaches every model as its call's context, and the
// answer or error record carries it on. An in-memory span recorder stands in for the OTLP exporter.

// withSpanRecorder makes the sidecar record its spans in memory.
func (h *harness) withSpanRecorder() *tracetest.SpanRecorder {
	rec := tracetest.NewSpanRecorder()
	h.configure = func(c *executor.Config) {
		c.Tracing.Provider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	}
	return rec
}

func traceparent(traceID, spanID string) string { return "00-" + traceID + "-" + spanID + "-01" }

// recordSpans are the spans of one record: its own, by request id, and its children by name.
type recordSpans struct {
	record   sdktrace.ReadOnlySpan
	children map[string]sdktrace.ReadOnlySpan
}

// spansOf waits until the record with request id puid has ended its span, then gathers its children.
func spansOf(t *testing.T, rec *tracetest.SpanRecorder, puid string, children int) recordSpans {
	t.Helper()
	var rs recordSpans
	waitFor(t, "the spans of "+puid, 30*time.Second, func() bool {
		rs = recordSpans{children: map[string]sdktrace.ReadOnlySpan{}}
		ended := rec.Ended()
		for _, s := range ended {
			for _, a := range s.Attributes() {
				if a.Key == "seldon.puid" && a.Value.AsString() == puid {
					rs.record = s
				}
			}
		}
		if rs.record == nil {
			return false
		}
		for _, s := range ended {
			if s.Parent().SpanID() == rs.record.SpanContext().SpanID() {
				rs.children[s.Name()] = s
			}
		}
		return len(rs.children) == children
	})
	return rs
}

func TestATracedRecordContinuesItsTraceThroughEveryNodeAndOntoItsAnswer(t *testing.T) {
	h := newHarness(t, "seldon", 1)
	// A transformer in front of the harness's model: two node calls per record.
	transformer := testmodel.New(testmodel.Options{ModelName: "transformer"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = transformer.Serve(ln) }()
	t.Cleanup(func() { _ = transformer.Close() })
	node := func(name, typ string, port int) map[string]any {
		return map[string]any{"name": name, "type": typ, "endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": port}}
	}
	root := node("transformer", "TRANSFORMER", ln.Addr().(*net.TCPAddr).Port)
	root["children"] = []any{node("classifier", "MODEL", h.modelPort)}
	b, _ := json.Marshal(map[string]any{"name": "default", "graph": root})
	h.env["ENGINE_PREDICTOR"] = base64.StdEncoding.EncodeToString(b)
	rec := h.withSpanRecorder()
	s := h.start()

	const (
		tid, sid   = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		tid2, sid2 = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
		tid3, sid3 = "11112222333344445555666677778888", "1234567890abcdef"
	)
	ceBody, _ := json.Marshal(map[string]any{"specversion": "1.0", "id": "c1", "type": "t", "source": "/c",
		"traceparent": traceparent(tid3, sid3), "data": json.RawMessage(request("seldon", 4))})
	recs := []testkit.Record{
		{Key: []byte("traced"), Value: request("seldon", 1), Headers: map[string]string{"Seldon-Puid": "traced",
			"traceparent": traceparent(tid, sid), "tracestate": "vendor=x"}},
		{Key: []byte("untraced"), Value: request("seldon", 2), Headers: map[string]string{"Seldon-Puid": "untraced"}},
		{Key: []byte("rejected"), Value: []byte(`{"data":{"ndarray":[[1]]},"meta":{"tags":{"note":"reject-me"}}}`),
			Headers: map[string]string{"Seldon-Puid": "rejected", "traceparent": traceparent(tid2, sid2)}},
		{Key: []byte("ce-traced"), Value: ceBody, Headers: map[string]string{"Seldon-Puid": "ce-traced",
			"content-type": "application/cloudevents+json"}},
	}
	testkit.Produce(t, h.bootstrap, h.in, recs)
	out := map[string]testkit.Record{}
	for _, a := range testkit.Consume(t, h.bootstrap, h.out, len(recs), 60*time.Second) {
		out[a.Headers["Seldon-Puid"]] = a
	}

	// The traced record: its span is the child of the record's context; the node calls and the produce
	// are its children; each model saw its own call's context; the answer carries the produce's.
	rs := spansOf(t, rec, "traced", 3)
	if got := rs.record.SpanContext().TraceID().String(); got != tid {
		t.Fatalf("record span in trace %s, want the record's %s", got, tid)
	}
	if got := rs.record.Parent().SpanID().String(); got != sid || !rs.record.Parent().IsRemote() {
		t.Errorf("record span's parent %s (remote %v), want the record's span %s", got, rs.record.Parent().IsRemote(), sid)
	}
	if rs.record.SpanKind() != trace.SpanKindConsumer || rs.record.Name() != "process "+h.in {
		t.Errorf("record span %q of kind %v", rs.record.Name(), rs.record.SpanKind())
	}
	if got := rs.record.Parent().TraceState().String(); got != "vendor=x" {
		t.Errorf("tracestate %q lost", got)
	}
	for name, model := range map[string]*testmodel.Server{"transform-input transformer": transformer, "predict classifier": h.model} {
		call, ok := rs.children[name]
		if !ok {
			t.Errorf("no span %q among %v", name, keys(rs.children))
			continue
		}
		if call.SpanKind() != trace.SpanKindClient {
			t.Errorf("%s: kind %v", name, call.SpanKind())
		}
		if got, want := model.Traceparent("traced"), traceparent(tid, call.SpanContext().SpanID().String()); got != want {
			t.Errorf("%s: the model saw traceparent %q, want its call's %q", name, got, want)
		}
	}
	produce, ok := rs.children["send "+h.out]
	if !ok {
		t.Fatalf("no produce span among %v", keys(rs.children))
	}
	if produce.SpanKind() != trace.SpanKindProducer {
		t.Errorf("produce span of kind %v", produce.SpanKind())
	}
	if got, want := out["traced"].Headers["traceparent"], traceparent(tid, produce.SpanContext().SpanID().String()); got != want {
		t.Errorf("answer's traceparent %q, want the produce span's %q", got, want)
	}

	// A record without a trace starts one, and its answer carries it.
	rs = spansOf(t, rec, "untraced", 3)
	if rs.record.Parent().IsValid() {
		t.Errorf("untraced record's span has a parent %v", rs.record.Parent())
	}
	newTrace := rs.record.SpanContext().TraceID().String()
	if got := out["untraced"].Headers["traceparent"]; !strings.HasPrefix(got, "00-"+newTrace+"-") {
		t.Errorf("answer's traceparent %q, want trace %s", got, newTrace)
	}
	if got := h.model.Traceparent("untraced"); !strings.HasPrefix(got, "00-"+newTrace+"-") {
		t.Errorf("the model saw %q, want trace %s", got, newTrace)
	}

	// A record the model rejects: its span failed, and the error record carries the trace on.
	rs = spansOf(t, rec, "rejected", 3)
	if rs.record.Status().Code != codes.Error || rs.record.Status().Description != "model_rejected" {
		t.Errorf("rejected record's span status %v", rs.record.Status())
	}
	e := out["rejected"]
	if e.Headers["Seldon-Error-Reason"] != "model_rejected" {
		t.Fatalf("rejected: not an error record: %v", e.Headers)
	}
	if p, ok := rs.children["send "+h.out]; !ok || e.Headers["traceparent"] != traceparent(tid2, p.SpanContext().SpanID().String()) {
		t.Errorf("error record's traceparent %q, want its produce span's in trace %s", e.Headers["traceparent"], tid2)
	}
	if strings.Count(strings.Join(headerKeys(e), ","), "traceparent") != 1 {
		t.Errorf("the error record keeps the request's traceparent beside its own: %v", headerKeys(e))
	}

	// A CloudEvent's distributed tracing extension continues the trace when no header carries one.
	rs = spansOf(t, rec, "ce-traced", 3)
	if rs.record.SpanContext().TraceID().String() != tid3 || rs.record.Parent().SpanID().String() != sid3 {
		t.Errorf("CloudEvent's trace not continued: span %v, parent %v", rs.record.SpanContext(), rs.record.Parent())
	}

	// The synchronous API continues its caller's trace to the nodes the same way.
	const tid4 = "22223333444455556666777788889999"
	hreq, err := http.NewRequest(http.MethodPost, "http://"+s.health+"/api/v1.0/predictions", bytes.NewReader(request("seldon", 5)))
	if err != nil {
		t.Fatal(err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Seldon-Puid", "sync")
	hreq.Header.Set("traceparent", traceparent(tid4, sid))
	resp, err := http.DefaultClient.Do(hreq)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("synchronous API: HTTP %d", resp.StatusCode)
	}
	if got := h.model.Traceparent("sync"); !strings.HasPrefix(got, "00-"+tid4+"-") || strings.Contains(got, sid) {
		t.Errorf("over the synchronous API the model saw %q, want a call of trace %s", got, tid4)
	}
	h.waitAllCommitted(30 * time.Second)
}

func TestTheTraceContextReachesAModelOverGRPCAsMetadata(t *testing.T) {
	for _, protocol := range []string{"seldon", "tensorflow", "v2"} {
		t.Run(protocol, func(t *testing.T) {
			h := newGRPCHarness(t, protocol, 1)
			rec := h.withSpanRecorder()
			h.start()
			m, name := grpcRequest(protocol, 1)
			const tid = "5bf92f3577b34da6a3ce929d0e0e4736"
			testkit.Produce(t, h.bootstrap, h.in, []testkit.Record{{Key: []byte("k"), Value: mustMarshal(t, m),
				Headers: map[string]string{"proto-name": name, "Seldon-Puid": "g", "traceparent": traceparent(tid, "00f067aa0ba902b7")}}})
			a := testkit.Consume(t, h.bootstrap, h.out, 1, 60*time.Second)[0]
			rs := spansOf(t, rec, "g", 2)
			call, ok := rs.children["predict classifier"]
			if !ok {
				t.Fatalf("no call span among %v", keys(rs.children))
			}
			if got, want := h.model.Traceparent("g"), traceparent(tid, call.SpanContext().SpanID().String()); got != want {
				t.Errorf("the model saw %q, want %q", got, want)
			}
			if got := a.Headers["traceparent"]; !strings.HasPrefix(got, "00-"+tid+"-") {
				t.Errorf("answer's traceparent %q, want trace %s", got, tid)
			}
		})
	}
}

func keys(m map[string]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func headerKeys(r testkit.Record) []string {
	out := make([]string, len(r.RawHeaders))
	for i, h := range r.RawHeaders {
		out[i] = h.Key
	}
	return out
}
