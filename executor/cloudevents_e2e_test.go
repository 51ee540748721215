package executor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/binding/spec"
	"github.com/cloudevents/sdk-go/v2/event"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// CloudEvents through Kafka: requests in binary and structured mode, specversion 0.3 and 1.0, answered
// as the deployment's events in the same mode; every answer and error record is read back with the
// CloudEvents SDK as well as checked header by header and field by field.

const (
	ceSource       = "seldon.iris.test" // the harness runs --sdep=iris --namespace=test
	ceResponseType = ceSource + ".response"
	ceErrorType    = ceSource + ".error"
)

// binaryCE is a binary-mode CloudEvent record of specversion sv carrying value.
func binaryCE(sv, id, puid, contentType string, value []byte) testkit.Record {
	return testkit.Record{Key: []byte(puid), Value: value, Headers: map[string]string{
		"ce_specversion": sv, "ce_id": id, "ce_type": "seldon.iris.test.request", "ce_source": "/clients/test",
		"content-type": contentType, "Seldon-Puid": puid,
	}}
}

// structuredCE is a structured-mode CloudEvent record: fields are the event's JSON attributes.
func structuredCE(t *testing.T, puid string, fields map[string]any) testkit.Record {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return testkit.Record{Key: []byte(puid), Value: b, Headers: map[string]string{
		"content-type": "application/cloudevents+json; charset=UTF-8", "Seldon-Puid": puid,
	}}
}

// sdkEvent reads a record with the CloudEvents SDK: the JSON event format for structured mode, the
// SDK's binding builder fed the ce_* headers for binary mode. It fails the test on an invalid event.
func sdkEvent(t *testing.T, r testkit.Record) event.Event {
	t.Helper()
	if strings.HasPrefix(r.Headers["content-type"], "application/cloudevents") {
		ev := event.New()
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatalf("key %s: the SDK does not read the structured event: %v\n%s", r.Key, err, r.Value)
		}
		if err := ev.Validate(); err != nil {
			t.Fatalf("key %s: invalid event: %v", r.Key, err)
		}
		return ev
	}
	ev, err := binding.ToEvent(context.Background(), &binaryRecord{r: r})
	if err != nil {
		t.Fatalf("key %s: the SDK does not read the binary event: %v (headers %v)", r.Key, err, r.Headers)
	}
	if err := ev.Validate(); err != nil {
		t.Fatalf("key %s: invalid event: %v", r.Key, err)
	}
	return *ev
}

// binaryRecord is a record as a binding.MessageReader of the binary mode, as the Kafka binding maps it.
type binaryRecord struct{ r testkit.Record }

var ceHeaders = spec.WithPrefix("ce_")

func (m *binaryRecord) ReadEncoding() binding.Encoding { return binding.EncodingBinary }

func (m *binaryRecord) ReadStructured(context.Context, binding.StructuredWriter) error {
	return binding.ErrNotStructured
}

func (m *binaryRecord) ReadBinary(_ context.Context, w binding.BinaryWriter) error {
	version := ceHeaders.Version(m.r.Headers["ce_specversion"])
	if version == nil {
		return fmt.Errorf("ce_specversion %q", m.r.Headers["ce_specversion"])
	}
	for _, h := range m.r.RawHeaders {
		var err error
		switch {
		case h.Key == "content-type":
			err = w.SetAttribute(version.AttributeFromKind(spec.DataContentType), string(h.Value))
		case strings.HasPrefix(h.Key, "ce_"):
			if attr := version.Attribute(h.Key); attr != nil {
				err = w.SetAttribute(attr, string(h.Value))
			} else {
				err = w.SetExtension(strings.TrimPrefix(h.Key, "ce_"), string(h.Value))
			}
		}
		if err != nil {
			return err
		}
	}
	return w.SetData(bytes.NewReader(m.r.Value))
}

func (m *binaryRecord) Finish(error) error { return nil }

func (m *binaryRecord) GetAttribute(k spec.Kind) (spec.Attribute, interface{}) {
	attr := ceHeaders.Version(m.r.Headers["ce_specversion"]).AttributeFromKind(k)
	if attr == nil {
		return nil, nil
	}
	key := attr.PrefixedName()
	if k == spec.DataContentType {
		key = "content-type"
	}
	if v, ok := m.r.Headers[key]; ok {
		return attr, v
	}
	return attr, nil
}

func (m *binaryRecord) GetExtension(name string) interface{} {
	if v, ok := m.r.Headers["ce_"+name]; ok {
		return v
	}
	return nil
}

// checkEventTime checks an event's time: RFC 3339, and made while the test ran.
func checkEventTime(t *testing.T, key []byte, s string, since time.Time) {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Errorf("key %s: time %q: %v", key, s, err)
		return
	}
	if tm.Before(since.Add(-time.Second)) || tm.After(time.Now().Add(time.Second)) {
		t.Errorf("key %s: time %v, not while the test ran (from %v)", key, tm, since)
	}
}

// checkBinaryAttrs checks a binary-mode record's CloudEvent headers, one by one.
func checkBinaryAttrs(t *testing.T, r testkit.Record, typ, contentType string, since time.Time) {
	t.Helper()
	want := map[string]string{"ce_specversion": "1.0", "ce_id": r.Headers["Seldon-Puid"], "ce_type": typ,
		"ce_source": ceSource, "content-type": contentType}
	for k, v := range want {
		if got := r.Headers[k]; got != v {
			t.Errorf("key %s: header %s = %q, want %q", r.Key, k, got, v)
		}
	}
	if r.Headers["Seldon-Puid"] == "" {
		t.Errorf("key %s: no Seldon-Puid", r.Key)
	}
	if _, ok := r.Headers["Content-Type"]; ok {
		t.Errorf("key %s: Content-Type beside the binding's content-type", r.Key)
	}
	checkEventTime(t, r.Key, r.Headers["ce_time"], since)
}

// checkStructuredAttrs checks a structured-mode record's event, field by field, and returns its fields.
func checkStructuredAttrs(t *testing.T, r testkit.Record, typ, dataContentType string, since time.Time) map[string]json.RawMessage {
	t.Helper()
	if got := r.Headers["content-type"]; got != "application/cloudevents+json; charset=UTF-8" {
		t.Errorf("key %s: content-type %q", r.Key, got)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(r.Value, &fields); err != nil {
		t.Fatalf("key %s: the value is not JSON: %v\n%s", r.Key, err, r.Value)
	}
	str := func(k string) string {
		var s string
		if err := json.Unmarshal(fields[k], &s); err != nil {
			t.Errorf("key %s: %s = %s, not a string", r.Key, k, fields[k])
		}
		return s
	}
	want := map[string]string{"specversion": "1.0", "id": r.Headers["Seldon-Puid"], "type": typ, "source": ceSource,
		"datacontenttype": dataContentType}
	for k, v := range want {
		if got := str(k); got != v {
			t.Errorf("key %s: %s = %q, want %q", r.Key, k, got, v)
		}
	}
	checkEventTime(t, r.Key, str("time"), since)
	return fields
}

func TestCloudEventRequestsAreAnsweredAsCloudEventsInTheirModeOverREST(t *testing.T) {
	// Requests the test model rejects (400) after the protocol's check passes them.
	rejected := map[string]string{
		"seldon":     `{"data":{"names":["a"],"ndarray":[[1]]},"meta":{"tags":{"note":"reject-me"}}}`,
		"tensorflow": `{"instances":[[1]],"signature_name":"reject-me"}`,
		"v2":         `{"id":"reject-me","inputs":[{"name":"x","shape":[1,1],"datatype":"FP32","data":[1]}]}`,
	}
	for _, protocol := range []string{"seldon", "tensorflow", "v2"} {
		t.Run(protocol, func(t *testing.T) {
			h := newHarness(t, protocol, 2)
			h.withErrorTopic()
			h.env["KAFKA_CLOUDEVENTS"] = "true"
			since := time.Now()
			h.start()
			puid := func(name string) string { return protocol + "-" + name }
			req := func(i int) map[string]any {
				var v any
				if err := json.Unmarshal(request(protocol, i), &v); err != nil {
					t.Fatal(err)
				}
				return v.(map[string]any)
			}
			// Answers, by request id: the request and the mode it is answered in.
			type want struct {
				body []byte
				mode string
			}
			answers := map[string]want{}
			var recs []testkit.Record
			add := func(r testkit.Record, body []byte, mode string) {
				recs = append(recs, r)
				if mode != "" {
					answers[r.Headers["Seldon-Puid"]] = want{body, mode}
				}
			}
			add(binaryCE("1.0", "b10", puid("binary-1.0"), "application/json", request(protocol, 1)), request(protocol, 1), "binary")
			add(binaryCE("0.3", "b03", puid("binary-0.3"), "application/json", request(protocol, 2)), request(protocol, 2), "binary")
			add(structuredCE(t, puid("structured-1.0"), map[string]any{"specversion": "1.0", "id": "s10", "type": "t", "source": "/c",
				"datacontenttype": "application/json", "data": req(3)}), request(protocol, 3), "structured")
			add(structuredCE(t, puid("structured-0.3"), map[string]any{"specversion": "0.3", "id": "s03", "type": "t", "source": "/c",
				"datacontenttype": "application/json", "data": req(4)}), request(protocol, 4), "structured")
			add(structuredCE(t, puid("structured-base64"), map[string]any{"specversion": "1.0", "id": "s64", "type": "t", "source": "/c",
				"datacontenttype": "application/json", "data_base64": base64.StdEncoding.EncodeToString(request(protocol, 5))}), request(protocol, 5), "structured")
			add(testkit.Record{Key: []byte("plain"), Value: request(protocol, 6), Headers: map[string]string{"Seldon-Puid": puid("plain")}},
				request(protocol, 6), "binary")
			noID := structuredCE(t, puid("no-id"), map[string]any{"specversion": "1.0", "type": "t", "source": "/c", "data": req(7)})
			badVersion := binaryCE("0.2", "b02", puid("version-0.2"), "application/json", request(protocol, 8))
			refused := binaryCE("1.0", "rej", puid("rejected"), "application/json", []byte(rejected[protocol]))
			add(noID, nil, "")
			add(badVersion, nil, "")
			add(refused, nil, "")
			testkit.Produce(t, h.bootstrap, h.in, recs)

			got := testkit.Consume(t, h.bootstrap, h.out, len(answers), 60*time.Second)
			errs := testkit.Consume(t, h.bootstrap, h.errs, 3, 60*time.Second)
			for _, a := range got {
				id := a.Headers["Seldon-Puid"]
				w, ok := answers[id]
				if !ok {
					t.Fatalf("an answer for %q (%v)", id, a.Headers)
				}
				delete(answers, id)
				wantData := expected(t, protocol, w.body)
				switch w.mode {
				case "binary":
					checkBinaryAttrs(t, a, ceResponseType, "application/json", since)
					if string(bytes.TrimSpace(a.Value)) != wantData {
						t.Errorf("%s: value %s, want %s", id, a.Value, wantData)
					}
				case "structured":
					fields := checkStructuredAttrs(t, a, ceResponseType, "application/json", since)
					if string(fields["data"]) != wantData {
						t.Errorf("%s: data %s, want %s", id, fields["data"], wantData)
					}
				}
				ev := sdkEvent(t, a)
				if ev.ID() != id || ev.Type() != ceResponseType || ev.Source() != ceSource || ev.SpecVersion() != "1.0" ||
					string(bytes.TrimSpace(ev.Data())) != wantData {
					t.Errorf("%s: the SDK reads %s", id, ev)
				}
			}
			if len(answers) != 0 {
				t.Errorf("not answered: %v", answers)
			}

			byID := map[string]testkit.Record{}
			for _, e := range errs {
				byID[e.Headers["Seldon-Puid"]] = e
				ev := sdkEvent(t, e)
				if ev.Type() != ceErrorType || ev.ID() != e.Headers["Seldon-Puid"] {
					t.Errorf("error record read by the SDK as %s", ev)
				}
			}
			for id, reason := range map[string]string{puid("no-id"): "invalid_cloudevent", puid("version-0.2"): "invalid_cloudevent", puid("rejected"): "model_rejected"} {
				e, ok := byID[id]
				if !ok {
					t.Errorf("no error record for %s", id)
					continue
				}
				if got := e.Headers["Seldon-Error-Reason"]; got != reason {
					t.Errorf("%s: reason %q, want %q (%s)", id, got, reason, e.Headers["Seldon-Error-Message"])
				}
				// What went wrong is in the event's attributes too, where an event router can filter on it.
				ext := sdkEvent(t, e).Extensions()
				wantExt := map[string]string{"seldonerrorreason": reason, "seldonerrorstage": e.Headers["Seldon-Error-Stage"],
					"seldonerrormessage": e.Headers["Seldon-Error-Message"], "seldonsourcetopic": h.in,
					"seldonsourcepart": e.Headers["Seldon-Source-Partition"], "seldonsourceoffset": e.Headers["Seldon-Source-Offset"]}
				if reason == "model_rejected" {
					wantExt["seldonerrorstatus"] = "400"
					wantExt["seldonerrornode"] = e.Headers["Seldon-Error-Node"]
				}
				for k, v := range wantExt {
					if got, _ := ext[k].(string); got != v || v == "" {
						t.Errorf("%s: extension %s = %v, want %q (the record's headers: %v)", id, k, ext[k], v, e.Headers)
					}
				}
			}
			// A malformed structured event: a structured error event holding the request as it came.
			if e, ok := byID[puid("no-id")]; ok {
				fields := checkStructuredAttrs(t, e, ceErrorType, "application/cloudevents+json; charset=UTF-8", since)
				if !bytes.Equal(fields["data"], noID.Value) {
					t.Errorf("no-id: data %s, want the request %s", fields["data"], noID.Value)
				}
				if msg := e.Headers["Seldon-Error-Message"]; !strings.Contains(msg, "id: MUST be a non-empty string") || e.Headers["Seldon-Error-Stage"] != "decode" {
					t.Errorf("no-id: stage %q, message %q", e.Headers["Seldon-Error-Stage"], msg)
				}
			}
			// Binary ones: the request's value and its own attributes under other names.
			for id, orig := range map[string]testkit.Record{puid("version-0.2"): badVersion, puid("rejected"): refused} {
				e, ok := byID[id]
				if !ok {
					continue
				}
				checkBinaryAttrs(t, e, ceErrorType, "application/json", since)
				if !bytes.Equal(e.Value, orig.Value) {
					t.Errorf("%s: value %s, want the request's %s", id, e.Value, orig.Value)
				}
				for _, k := range []string{"ce_specversion", "ce_id", "ce_type", "ce_source"} {
					if got := e.Headers["Seldon-Request-"+k]; got != orig.Headers[k] {
						t.Errorf("%s: Seldon-Request-%s = %q, want the request's %q", id, k, got, orig.Headers[k])
					}
				}
			}
			h.waitAllCommitted(30 * time.Second)
		})
	}
}

func TestCloudEventsCarryProtobufOverGRPCAndPlainRecordsStayPlain(t *testing.T) {
	responses := map[string]string{
		"seldon":     "seldon.protos.SeldonMessage",
		"tensorflow": "tensorflow.serving.PredictResponse",
		"v2":         "inference.ModelInferResponse",
	}
	for _, protocol := range []string{"seldon", "tensorflow", "v2"} {
		t.Run(protocol, func(t *testing.T) {
			h := newGRPCHarness(t, protocol, 1)
			since := time.Now()
			h.start()
			var recs []testkit.Record
			reqs := map[string]proto.Message{}
			for i, kind := range []string{"binary", "structured-1.0", "structured-0.3", "plain"} {
				m, name := grpcRequest(protocol, i)
				b := mustMarshal(t, m)
				puid := protocol + "-" + kind
				reqs[puid] = m
				var r testkit.Record
				switch kind {
				case "binary":
					r = binaryCE("1.0", "g1", puid, "application/x-protobuf", b)
				case "structured-1.0":
					r = structuredCE(t, puid, map[string]any{"specversion": "1.0", "id": "g2", "type": "t", "source": "/c",
						"datacontenttype": "application/x-protobuf", "data_base64": base64.StdEncoding.EncodeToString(b)})
				case "structured-0.3":
					r = structuredCE(t, puid, map[string]any{"specversion": "0.3", "id": "g3", "type": "t", "source": "/c",
						"datacontenttype": "application/x-protobuf", "datacontentencoding": "base64", "data": base64.StdEncoding.EncodeToString(b)})
				case "plain":
					r = testkit.Record{Key: []byte(puid), Value: b, Headers: map[string]string{"Seldon-Puid": puid}}
				}
				r.Headers["proto-name"] = name
				recs = append(recs, r)
			}
			testkit.Produce(t, h.bootstrap, h.in, recs)
			for _, a := range testkit.Consume(t, h.bootstrap, h.out, len(recs), 60*time.Second) {
				id := a.Headers["Seldon-Puid"]
				if r := a.Headers["Seldon-Error-Reason"]; r != "" {
					t.Fatalf("%s: error record %s: %s", id, r, a.Headers["Seldon-Error-Message"])
				}
				if got := a.Headers["proto-name"]; got != responses[protocol] {
					t.Errorf("%s: proto-name %q", id, got)
				}
				body := a.Value
				switch {
				case strings.HasSuffix(id, "-plain"):
					for k := range a.Headers {
						if strings.HasPrefix(k, "ce_") {
							t.Errorf("%s: a plain request answered with %s (KAFKA_CLOUDEVENTS is off)", id, k)
						}
					}
					if ct := a.Headers["Content-Type"]; ct != "application/x-protobuf" {
						t.Errorf("%s: Content-Type %q", id, ct)
					}
				case strings.HasSuffix(id, "-binary"):
					checkBinaryAttrs(t, a, ceResponseType, "application/x-protobuf", since)
					sdkEvent(t, a)
				default:
					fields := checkStructuredAttrs(t, a, ceResponseType, "application/x-protobuf", since)
					if _, ok := fields["data"]; ok {
						t.Errorf("%s: protobuf data embedded as JSON", id)
					}
					ev := sdkEvent(t, a)
					if !ev.DataBase64 {
						t.Errorf("%s: data not in data_base64", id)
					}
					body = ev.Data()
				}
				got := decodeAnswer(t, testkit.Record{Key: a.Key, Value: body, Headers: a.Headers})
				if want := grpcExpected(t, protocol, reqs[id]); !proto.Equal(got, want) {
					t.Errorf("%s: answer %v, want %v", id, got, want)
				}
			}
			h.waitAllCommitted(30 * time.Second)
		})
	}
}
