package executor_test

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/schemaregistry/serde"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/seldon-kafka/sidecar/executor/registry"
	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/internal/testregistry"
)

// protoSource is one of the .proto files the project generates its types from: the text a producer's
// Confluent serializer registers for them.
func protoSource(t *testing.T, rel string) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(here), "..", "protocols", "proto", rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withRegistry turns the wire format on for a harness, against a test registry with basic auth.
func (h *harness) withRegistry(env map[string]string) *testregistry.Server {
	reg := testregistry.New(h.t, testregistry.Options{User: "sidecar", Password: "Registry-Pw-1"})
	h.env["SCHEMA_REGISTRY_URL"] = reg.URL
	h.env["SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO"] = "sidecar:Registry-Pw-1"
	for k, v := range env {
		h.env[k] = v
	}
	return reg
}

// readFrame reads an answer's frame with Confluent's own reader, as a consumer with Confluent's
// deserializer would.
func readFrame(t *testing.T, key []byte, value []byte, schemaType string) (serde.SchemaID, []byte) {
	t.Helper()
	if !registry.IsFramed(value) || len(value) < 6 {
		t.Fatalf("key %s: answer % x is not framed", key, value[:min(len(value), 8)])
	}
	id := serde.SchemaID{SchemaType: schemaType}
	n, err := id.FromBytes(value)
	if err != nil {
		t.Fatalf("key %s: Confluent's reader refuses the frame: %v", key, err)
	}
	return id, value[n:]
}

func TestFramedRequestsAreAnsweredFramedOverEachTransport(t *testing.T) {
	type protocolCase struct {
		protocol, requestFile, answer string
	}
	for _, pc := range []protocolCase{
		{"seldon", "seldon/prediction.proto", "seldon.protos.SeldonMessage"},
		{"tensorflow", "tensorflow_serving/apis/predict.proto", "tensorflow.serving.PredictResponse"},
		{"v2", "kserve/grpc_predict_v2.proto", "inference.ModelInferResponse"},
	} {
		t.Run("grpc/"+pc.protocol, func(t *testing.T) {
			const n = 60
			h := newGRPCHarness(t, pc.protocol, 2)
			reg := h.withRegistry(map[string]string{"SCHEMA_REGISTRY_AUTO_REGISTER": "true"})
			reqID := reg.Register(t, h.in+"-value", testregistry.Schema{Schema: protoSource(t, pc.requestFile), SchemaType: "PROTOBUF"})
			h.start()

			recs := make([]testkit.Record, n)
			reqs := make([]proto.Message, n)
			for i := range recs {
				req, name := grpcRequest(pc.protocol, i)
				reqs[i] = req
				md := req.ProtoReflect().Descriptor()
				value := registry.Header{ID: reqID, Indexes: []int{md.Index()}}.Frame(mustMarshal(t, req))
				headers := map[string]string{}
				if i%10 == 9 {
					value, headers["proto-name"] = mustMarshal(t, req), name // a plain record among framed ones
				}
				recs[i] = testkit.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: value, Headers: headers}
			}
			testkit.Produce(t, h.bootstrap, h.in, recs)
			answers := byKey(t, testkit.Consume(t, h.bootstrap, h.out, n, 90*time.Second))

			sc, answerID, ok := reg.Latest(h.out + "-value")
			if !ok || sc.SchemaType != "PROTOBUF" {
				t.Fatalf("no Protobuf schema registered under %s-value (subjects %v)", h.out, reg.Subjects())
			}
			mt, _ := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(pc.answer))
			for i, r := range recs {
				a := answers[string(r.Key)]
				if a.Headers["Seldon-Error-Reason"] != "" {
					t.Fatalf("key %s: error record: %v", r.Key, a.Headers)
				}
				if got := a.Headers["proto-name"]; got != pc.answer {
					t.Fatalf("key %s: proto-name %q, want %q", r.Key, got, pc.answer)
				}
				value := a.Value
				if i%10 != 9 {
					id, payload := readFrame(t, r.Key, a.Value, "PROTOBUF")
					if id.ID != answerID || len(id.MessageIndexes) != 1 || id.MessageIndexes[0] != mt.Descriptor().Index() {
						t.Fatalf("key %s: framed with id %d indexes %v; want %d and %s's [%d]", r.Key, id.ID, id.MessageIndexes, answerID, pc.answer, mt.Descriptor().Index())
					}
					value = payload
				} else if registry.IsFramed(a.Value) {
					t.Fatalf("key %s: a plain request's answer is framed", r.Key)
				}
				got := mt.New().Interface()
				if err := proto.Unmarshal(value, got); err != nil {
					t.Fatalf("key %s: answer does not parse as %s: %v", r.Key, pc.answer, err)
				}
				if want := grpcExpected(t, pc.protocol, reqs[i]); !proto.Equal(got, want) {
					t.Fatalf("key %s: answer\n got %v\nwant %v", r.Key, got, want)
				}
			}
			if got := reg.Requests("GET /schemas/ids/{id}"); got != 1 {
				t.Errorf("the request schema was fetched %d times for %d records", got, n)
			}
			h.waitAllCommitted(30 * time.Second)
		})
	}

	for _, protocol := range []string{"seldon", "tensorflow", "v2"} {
		t.Run("rest/"+protocol, func(t *testing.T) {
			const n = 60
			h := newHarness(t, protocol, 2)
			reg := h.withRegistry(map[string]string{"SCHEMA_REGISTRY_AUTO_REGISTER": "true"})
			reqID := reg.Register(t, h.in+"-value", testregistry.Schema{Schema: `{"type":"object"}`, SchemaType: "JSON"})
			h.start()
			recs := records(protocol, n)
			for i := range recs {
				recs[i].Value = registry.Header{ID: reqID}.Frame(recs[i].Value)
			}
			testkit.Produce(t, h.bootstrap, h.in, recs)
			answers := byKey(t, testkit.Consume(t, h.bootstrap, h.out, n, 90*time.Second))
			sc, answerID, ok := reg.Latest(h.out + "-value")
			if !ok || sc.SchemaType != "JSON" {
				t.Fatalf("no JSON Schema registered under %s-value (subjects %v)", h.out, reg.Subjects())
			}
			for _, r := range recs {
				a := answers[string(r.Key)]
				if a.Headers["Seldon-Error-Reason"] != "" {
					t.Fatalf("key %s: error record: %v", r.Key, a.Headers)
				}
				id, payload := readFrame(t, r.Key, a.Value, "JSON")
				if id.ID != answerID {
					t.Fatalf("key %s: framed with id %d, want %d", r.Key, id.ID, answerID)
				}
				_, req, _ := registry.ParseID(r.Value)
				if got, want := strings.TrimSpace(string(payload)), expected(t, protocol, req); got != want {
					t.Fatalf("key %s: answer\n got %s\nwant %s", r.Key, got, want)
				}
			}
			h.waitAllCommitted(30 * time.Second)
		})
	}
}

func TestRecordsTheRegistryCannotFrameBecomeErrorRecords(t *testing.T) {
	h := newGRPCHarness(t, "seldon", 1)
	h.withErrorTopic()
	reg := h.withRegistry(nil) // no registering: the answer's schema must be there already
	text := protoSource(t, "seldon/prediction.proto")
	reqID := reg.Register(t, h.in+"-value", testregistry.Schema{Schema: text, SchemaType: "PROTOBUF"})
	jsonID := reg.Register(t, "other-value", testregistry.Schema{Schema: `{"type":"object"}`, SchemaType: "JSON"})
	h.start()

	req, _ := grpcRequest("seldon", 1)
	payload := mustMarshal(t, req)
	cases := []struct {
		key, reason, stage, msg string
		value                   []byte
	}{
		{"unknown-id", "schema_unknown", "decode", "schema 9999: not in the schema registry", registry.Header{ID: 9999, Indexes: []int{0}}.Frame(payload)},
		{"too-short", "invalid_request", "decode", "not in the Schema Registry wire format: 3 bytes: too short", []byte{0, 0, 0}},
		{"json-schema", "invalid_request", "decode", fmt.Sprintf("schema %d is JSON: over gRPC a framed request's schema is Protobuf", jsonID), registry.Header{ID: jsonID, Indexes: []int{0}}.Frame(payload)},
		{"no-answer-schema", "schema_unknown", "produce", "which the answer's schema imports, under its own subject: not in the schema registry", registry.Header{ID: reqID, Indexes: []int{0}}.Frame(payload)},
	}
	recs := make([]testkit.Record, len(cases))
	for i, c := range cases {
		recs[i] = testkit.Record{Key: []byte(c.key), Value: c.value}
	}
	testkit.Produce(t, h.bootstrap, h.in, recs)
	errs := byKey(t, testkit.Consume(t, h.bootstrap, h.errs, len(cases), 60*time.Second))
	for _, c := range cases {
		e := errs[c.key]
		if e.Headers["Seldon-Error-Reason"] != c.reason || e.Headers["Seldon-Error-Stage"] != c.stage ||
			!strings.Contains(e.Headers["Seldon-Error-Message"], c.msg) {
			t.Errorf("key %s: error record %v; want %s at %s saying %q", c.key, e.Headers, c.reason, c.stage, c.msg)
		}
		if string(e.Value) != string(c.value) {
			t.Errorf("key %s: the error record does not carry the original value", c.key)
		}
	}
	h.waitAllCommitted(30 * time.Second)
}

// byKey indexes records by key, failing on a key answered twice.
func byKey(t *testing.T, recs []testkit.Record) map[string]testkit.Record {
	t.Helper()
	out := make(map[string]testkit.Record, len(recs))
	for _, r := range recs {
		if _, dup := out[string(r.Key)]; dup {
			t.Fatalf("two records for key %s", r.Key)
		}
		out[string(r.Key)] = r
	}
	return out
}

// The registry's credentials rotate as the Kafka ones do: new credentials on disk that the registry
// refuses are left alone and the ones in use stay; credentials it takes are used for the requests that
// follow, without a restart and without an error record.
func TestRegistryCredentialsRotateFromTheirFile(t *testing.T) {
	h := newHarness(t, "seldon", 2)
	reg := h.withRegistry(map[string]string{"SCHEMA_REGISTRY_AUTO_REGISTER": "true", "KAFKA_SECURITY_RELOAD_INTERVAL": "200ms"})
	delete(h.env, "SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO")
	userInfo := filepath.Join(t.TempDir(), "user-info")
	write := func(v string) {
		// As a Secret volume updates: the new file is renamed over the old.
		tmp := userInfo + ".new"
		if err := os.WriteFile(tmp, []byte(v+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, userInfo); err != nil {
			t.Fatal(err)
		}
	}
	write("sidecar:Registry-Pw-1")
	h.env["SCHEMA_REGISTRY_BASIC_AUTH_USER_INFO_FILE"] = userInfo
	_, logs := h.startCaptured()

	// Each round's requests name a schema of their own, which the sidecar has not fetched yet: serving
	// them needs a registry request with the credentials in use.
	sent := 0
	round := func(name string) {
		t.Helper()
		id := reg.Register(t, h.in+"-value", testregistry.Schema{Schema: `{"type":"object","title":"` + name + `"}`, SchemaType: "JSON"})
		recs := records("seldon", 10)
		for i := range recs {
			recs[i].Key = []byte(fmt.Sprintf("%s-%d", name, i))
			recs[i].Value = registry.Header{ID: id}.Frame(recs[i].Value)
		}
		testkit.Produce(t, h.bootstrap, h.in, recs)
		sent += len(recs)
		for _, a := range testkit.Consume(t, h.bootstrap, h.out, sent, 60*time.Second)[sent-len(recs):] {
			if reason := a.Headers["Seldon-Error-Reason"]; reason != "" {
				t.Fatalf("round %s: key %s: error record %s: %s", name, a.Key, reason, a.Headers["Seldon-Error-Message"])
			}
			readFrame(t, a.Key, a.Value, "JSON")
		}
	}
	waitLogged := func(what string) {
		t.Helper()
		waitFor(t, "the log to say "+what, 30*time.Second, func() bool { return strings.Contains(logs.String(), what) })
	}

	round("first")

	write("sidecar:not-the-password")
	waitLogged("the registry refused it; the material in use stays")
	round("after-a-refused-rotation")

	reg.SetCredentials("sidecar", "Registry-Pw-2")
	write("sidecar:Registry-Pw-2")
	waitLogged("schema registry material rotated")
	round("after-the-rotation")

	for _, secret := range []string{"Registry-Pw-1", "Registry-Pw-2", "not-the-password"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log holds the secret %q", secret)
		}
	}
	h.waitAllCommitted(30 * time.Second)
}
