package executor_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/internal/testmodel"
	"github.com/seldon-kafka/sidecar/protocols/protofile"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// newGRPCHarness is a harness whose sidecar runs with --transport=grpc against the test model's gRPC
// server. The graph's endpoint names the gRPC port, as the operator writes it for a GRPC endpoint.
func newGRPCHarness(t *testing.T, protocol string, partitions int) *harness {
	t.Helper()
	h := newHarness(t, protocol, partitions)
	h.transport = "grpc"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	grpcPort := ln.Addr().(*net.TCPAddr).Port
	go func() { _ = h.model.ServeGRPC(ln) }()
	spec := map[string]any{
		"name": "default",
		"graph": map[string]any{
			"name": "classifier", "type": "MODEL",
			"endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": h.modelPort, "grpcPort": grpcPort, "type": "GRPC"},
		},
		"componentSpecs": []any{map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "classifier"}}}}},
	}
	b, _ := json.Marshal(spec)
	h.env["ENGINE_PREDICTOR"] = base64.StdEncoding.EncodeToString(b)
	return h
}

// grpcRequest builds the i-th protobuf request of a protocol and its proto-name; the numbers differ
// per record so the answers differ too. The v2 request leaves model_name empty: the sidecar fills in
// the graph node's name.
func grpcRequest(protocol string, i int) (proto.Message, string) {
	f := float64(i)
	switch protocol {
	case "seldon":
		rows, _ := structpb.NewList([]any{[]any{f, 2.0}, []any{3.0, f + 1}})
		return &seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_Data{Data: &seldonpb.DefaultData{
			Names: []string{"a", "b"}, DataOneof: &seldonpb.DefaultData_Ndarray{Ndarray: rows},
		}}}, "seldon.protos.SeldonMessage"
	case "tensorflow":
		return &tfpb.PredictRequest{
			ModelSpec: &tfpb.ModelSpec{Name: "classifier"},
			Inputs: map[string]*tfpb.TensorProto{"x": {
				Dtype:       tfpb.DataType_DT_FLOAT,
				TensorShape: &tfpb.TensorShapeProto{Dim: []*tfpb.TensorShapeProto_Dim{{Size: 2}, {Size: 2}}},
				FloatVal:    []float32{float32(i), 1.5, 2, float32(i)},
			}},
		}, "tensorflow.serving.PredictRequest"
	case "v2":
		return &v2pb.ModelInferRequest{
			Id: fmt.Sprintf("r%d", i),
			Inputs: []*v2pb.ModelInferRequest_InferInputTensor{{
				Name: "x", Datatype: "FP32", Shape: []int64{1, 2},
				Contents: &v2pb.InferTensorContents{Fp32Contents: []float32{float32(i), float32(i + 1)}},
			}},
		}, "inference.ModelInferRequest"
	}
	panic(protocol)
}

// grpcExpected is what the test model answers to a request, after the sidecar has filled in the
// model name.
func grpcExpected(t *testing.T, protocol string, req proto.Message) proto.Message {
	t.Helper()
	var out proto.Message
	var err error
	switch r := proto.Clone(req).(type) {
	case *seldonpb.SeldonMessage:
		out, err = testmodel.SeldonPredictProto("classifier", r)
	case *tfpb.PredictRequest:
		out, err = testmodel.TensorflowPredictProto("classifier", r)
	case *v2pb.ModelInferRequest:
		r.ModelName = "classifier"
		out, err = testmodel.V2InferProto("classifier", r)
	default:
		t.Fatalf("no expectation for %T", req)
	}
	if err != nil {
		t.Fatalf("test model rejects %v: %v", req, err)
	}
	return out
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeAnswer parses an answer as the type its proto-name header names.
func decodeAnswer(t *testing.T, a testkit.Record) proto.Message {
	t.Helper()
	name := a.Headers["proto-name"]
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		t.Fatalf("key %s: proto-name %q names no known message (headers %v)", a.Key, name, a.Headers)
	}
	m := mt.New().Interface()
	if err := proto.Unmarshal(a.Value, m); err != nil {
		t.Fatalf("key %s: answer does not parse as %s: %v", a.Key, name, err)
	}
	return m
}

func TestEachProtocolAnswersEveryProtobufRecordOverGRPC(t *testing.T) {
	responses := map[string]string{
		"seldon":     "seldon.protos.SeldonMessage",
		"tensorflow": "tensorflow.serving.PredictResponse",
		"v2":         "inference.ModelInferResponse",
	}
	for _, protocol := range []string{"seldon", "tensorflow", "v2"} {
		t.Run(protocol, func(t *testing.T) {
			const n = 500
			h := newGRPCHarness(t, protocol, 3)
			h.start()
			recs := make([]testkit.Record, n)
			reqs := make([]proto.Message, n)
			for i := range recs {
				req, name := grpcRequest(protocol, i)
				reqs[i] = req
				recs[i] = testkit.Record{
					Key:     []byte(fmt.Sprintf("key-%d", i)),
					Value:   mustMarshal(t, req),
					Headers: map[string]string{"proto-name": name, "Seldon-Puid": fmt.Sprintf("puid-%d", i)},
				}
			}
			testkit.Produce(t, h.bootstrap, h.in, recs)

			answers := testkit.Consume(t, h.bootstrap, h.out, n, 90*time.Second)
			byKey := map[string]testkit.Record{}
			for _, a := range answers {
				if _, dup := byKey[string(a.Key)]; dup {
					t.Errorf("two answers for key %s", a.Key)
				}
				byKey[string(a.Key)] = a
			}
			for i, r := range recs {
				a, ok := byKey[string(r.Key)]
				if !ok {
					t.Fatalf("no answer for key %s", r.Key)
				}
				if a.Headers["Seldon-Error-Reason"] != "" {
					t.Fatalf("key %s: error record: %v", r.Key, a.Headers)
				}
				if got, want := a.Headers["proto-name"], responses[protocol]; got != want {
					t.Fatalf("key %s: proto-name %q, want %q", r.Key, got, want)
				}
				if got := a.Headers["Content-Type"]; got != "application/x-protobuf" {
					t.Errorf("key %s: Content-Type %q", r.Key, got)
				}
				if got, want := a.Headers["Seldon-Puid"], fmt.Sprintf("puid-%d", i); got != want {
					t.Errorf("key %s: Seldon-Puid %q, want %q", r.Key, got, want)
				}
				if got, want := decodeAnswer(t, a), grpcExpected(t, protocol, reqs[i]); !proto.Equal(got, want) {
					t.Fatalf("key %s: answer\n got %v\nwant %v", r.Key, got, want)
				}
			}
			if got := h.model.Served(); got != n {
				t.Errorf("model served %d calls for %d records", got, n)
			}
			h.waitAllCommitted(30 * time.Second)
		})
	}
}

// buildProtofile builds cmd/protofile once per test binary run.
func buildProtofile(t *testing.T) string {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	bin := filepath.Join(t.TempDir(), "protofile")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/protofile")
	cmd.Dir = filepath.Join(filepath.Dir(here), "..")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/protofile: %v\n%s", err, out)
	}
	return bin
}

func TestAFileOfLengthPrefixedPredictRequestsIsAnsweredInFull(t *testing.T) {
	const n = 200
	bin := buildProtofile(t)
	h := newGRPCHarness(t, "tensorflow", 2)
	h.start()

	var file bytes.Buffer
	reqs := make([]proto.Message, n)
	for i := range reqs {
		reqs[i], _ = grpcRequest("tensorflow", i)
		if err := protofile.Write(&file, mustMarshal(t, reqs[i])); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "requests.data")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--broker="+h.bootstrap, "--topic="+h.in,
		"--proto-name=tensorflow.serving.PredictRequest", "--key=req-{n}", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("protofile: %v\n%s", err, out)
	}

	answers := testkit.Consume(t, h.bootstrap, h.out, n, 90*time.Second)
	seen := map[string]bool{}
	for _, a := range answers {
		if r := a.Headers["Seldon-Error-Reason"]; r != "" {
			t.Fatalf("key %s: error record %s: %s", a.Key, r, a.Headers["Seldon-Error-Message"])
		}
		var i int
		if _, err := fmt.Sscanf(string(a.Key), "req-%d", &i); err != nil || i < 0 || i >= n {
			t.Fatalf("answer with key %q", a.Key)
		}
		if seen[string(a.Key)] {
			t.Fatalf("two answers for key %s", a.Key)
		}
		seen[string(a.Key)] = true
		if got, want := decodeAnswer(t, a), grpcExpected(t, "tensorflow", reqs[i]); !proto.Equal(got, want) {
			t.Fatalf("key %s: answer\n got %v\nwant %v", a.Key, got, want)
		}
	}
	h.waitAllCommitted(30 * time.Second)
}

func TestProtofileRefusesAFileThatIsNotOfTheNamedType(t *testing.T) {
	bin := buildProtofile(t)
	bs := testkit.Bootstrap(t)
	topic := testkit.Topic(t, bs, 1)
	var file bytes.Buffer
	// Field 2 (the inputs map) claims 5 bytes and has 4: not a PredictRequest.
	_ = protofile.Write(&file, []byte{0x12, 0x05, 0x0a, 0x03, 'a', 'b'})
	path := filepath.Join(t.TempDir(), "bad.data")
	if err := os.WriteFile(path, file.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "--broker="+bs, "--topic="+topic, path).CombinedOutput()
	if err == nil {
		t.Fatalf("protofile accepted a damaged message:\n%s", out)
	}
	if !bytes.Contains(out, []byte("message 0 is not a tensorflow.serving.PredictRequest")) {
		t.Errorf("the error does not name the message and the type:\n%s", out)
	}
	if recs := testkit.ConsumeAll(t, bs, topic, 500*time.Millisecond); len(recs) != 0 {
		t.Errorf("%d records produced from a file that failed its check", len(recs))
	}
}

func TestPoisonProtobufRecordsBecomeErrorRecordsAndGoodOnesAreAnswered(t *testing.T) {
	good := func(i int) []byte { req, _ := grpcRequest("tensorflow", i); return mustMarshal(t, req) }
	v2req, _ := grpcRequest("v2", 1)
	truncated := good(7)
	truncated = truncated[:len(truncated)-3]
	if err := proto.Unmarshal(truncated, &tfpb.PredictRequest{}); err == nil {
		t.Fatal("precondition: the truncated request still parses")
	}
	rejected := &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "classifier"}, Inputs: map[string]*tfpb.TensorProto{
		"reject-me": {Dtype: tfpb.DataType_DT_FLOAT, FloatVal: []float32{1}},
	}}
	words := &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "classifier"}, Inputs: map[string]*tfpb.TensorProto{
		"words": {Dtype: tfpb.DataType_DT_STRING, StringVal: [][]byte{[]byte("hello")}},
	}}
	poison := []struct {
		name      string
		value     []byte
		protoName string // "-" for no header
		reason    string
		code      string
	}{
		{"missing proto-name", good(1), "-", "invalid_request", ""},
		{"unknown proto-name", good(2), "tensorflow.serving.NoSuchRequest", "invalid_request", ""},
		{"v2 name to a tensorflow sidecar", mustMarshal(t, v2req), "inference.ModelInferRequest", "invalid_request", ""},
		{"a response sent as a request", good(3), "tensorflow.serving.PredictResponse", "invalid_request", ""},
		{"truncated bytes", truncated, "tensorflow.serving.PredictRequest", "invalid_request", ""},
		{"empty value", nil, "tensorflow.serving.PredictRequest", "invalid_request", ""},
		{"model says InvalidArgument (hook)", mustMarshal(t, rejected), "tensorflow.serving.PredictRequest", "model_rejected", "InvalidArgument"},
		{"model says InvalidArgument (strings)", mustMarshal(t, words), "tensorflow.serving.PredictRequest", "model_rejected", "InvalidArgument"},
	}
	h := newGRPCHarness(t, "tensorflow", 2)
	h.withErrorTopic()
	h.start()
	var recs []testkit.Record
	for i, p := range poison {
		recs = append(recs, testkit.Record{Key: []byte(fmt.Sprintf("good-%d", i)), Value: good(100 + i),
			Headers: map[string]string{"proto-name": "tensorflow.serving.PredictRequest"}})
		r := testkit.Record{Key: []byte("poison-" + strconv.Itoa(i)), Value: p.value, Headers: map[string]string{"trace": p.name}}
		if p.protoName != "-" {
			r.Headers["proto-name"] = p.protoName
		}
		recs = append(recs, r)
	}
	recs = append(recs, testkit.Record{Key: []byte("good-last"), Value: good(999),
		Headers: map[string]string{"proto-name": "tensorflow.serving.PredictRequest"}})
	testkit.Produce(t, h.bootstrap, h.in, recs)

	answers := testkit.Consume(t, h.bootstrap, h.out, len(poison)+1, 60*time.Second)
	errs := testkit.Consume(t, h.bootstrap, h.errs, len(poison), 60*time.Second)
	for _, a := range answers {
		if !bytes.HasPrefix(a.Key, []byte("good-")) || a.Headers["Seldon-Error-Reason"] != "" {
			t.Errorf("answer for %s: %v", a.Key, a.Headers)
			continue
		}
		if _, ok := decodeAnswer(t, a).(*tfpb.PredictResponse); !ok {
			t.Errorf("%s: answer is not a PredictResponse", a.Key)
		}
	}
	byTrace := map[string]testkit.Record{}
	for _, e := range errs {
		byTrace[e.Headers["trace"]] = e
	}
	for i, p := range poison {
		e, ok := byTrace[p.name]
		if !ok {
			t.Errorf("%s: no error record", p.name)
			continue
		}
		if got, want := string(e.Key), "poison-"+strconv.Itoa(i); got != want {
			t.Errorf("%s: key %q, want %q", p.name, got, want)
		}
		if !bytes.Equal(e.Value, p.value) {
			t.Errorf("%s: value is not the original", p.name)
		}
		if got := e.Headers["Seldon-Error-Reason"]; got != p.reason {
			t.Errorf("%s: reason %q, want %q (message %q)", p.name, got, p.reason, e.Headers["Seldon-Error-Message"])
		}
		if got := e.Headers["Seldon-Error-Code"]; got != p.code {
			t.Errorf("%s: code %q, want %q", p.name, got, p.code)
		}
		if e.Headers["Seldon-Error-Message"] == "" {
			t.Errorf("%s: no message", p.name)
		}
		t.Logf("%s: %s", p.name, e.Headers["Seldon-Error-Message"])
	}
	h.waitAllCommitted(30 * time.Second)
}

func TestUnavailableGRPCModelIsRetriedAndNothingIsLost(t *testing.T) {
	cases := []struct {
		name  string
		fault func(m *testmodel.Server)
	}{
		{"Unavailable for a while", func(m *testmodel.Server) { m.SetUnavailable(2 * time.Second) }},
		{"ResourceExhausted for the next 40 calls", func(m *testmodel.Server) { m.FailNext(40, http.StatusTooManyRequests) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const n = 200
			h := newGRPCHarness(t, "v2", 2)
			var recs []testkit.Record
			for i := range n {
				req, name := grpcRequest("v2", i)
				recs = append(recs, testkit.Record{Key: []byte(fmt.Sprintf("key-%d", i)), Value: mustMarshal(t, req),
					Headers: map[string]string{"proto-name": name}})
			}
			h.expectRetriedNotErrored(tc.fault, recs, func(a testkit.Record) {
				if _, ok := decodeAnswer(t, a).(*v2pb.ModelInferResponse); !ok {
					t.Fatalf("%s: not a ModelInferResponse", a.Key)
				}
			})
		})
	}
}

func TestRetriesExhaustedOverGRPCCarryTheCode(t *testing.T) {
	h := newGRPCHarness(t, "seldon", 1)
	h.env["MODEL_MAX_ATTEMPTS"] = "3"
	s := h.start()
	waitFor(t, "ready", 30*time.Second, func() bool { return getStatus(t, "http://"+s.health+"/ready") == 200 })
	h.model.FailNext(3, http.StatusServiceUnavailable)
	req, name := grpcRequest("seldon", 1)
	testkit.Produce(t, h.bootstrap, h.in, []testkit.Record{{Key: []byte("k"), Value: mustMarshal(t, req),
		Headers: map[string]string{"proto-name": name}}})
	got := testkit.Consume(t, h.bootstrap, h.out, 1, 30*time.Second)[0]
	if r := got.Headers["Seldon-Error-Reason"]; r != "retries_exhausted" {
		t.Fatalf("reason %q, want retries_exhausted; headers %v", r, got.Headers)
	}
	if c := got.Headers["Seldon-Error-Code"]; c != "Unavailable" {
		t.Errorf("code %q, want Unavailable", c)
	}
	if c := h.model.Calls(); c != 3 {
		t.Errorf("%d calls, want MODEL_MAX_ATTEMPTS=3", c)
	}
	h.waitAllCommitted(30 * time.Second)
}

func TestGRPCModelNotReadyPausesAndReadinessFails(t *testing.T) {
	for _, protocol := range []string{"v2", "tensorflow"} { // ModelReady, and the gRPC health service
		t.Run(protocol, func(t *testing.T) {
			h := newGRPCHarness(t, protocol, 1)
			h.model.SetNotReady(true)
			s := h.start()
			ready := "http://" + s.health + "/ready"
			time.Sleep(2 * time.Second)
			if code := getStatus(t, ready); code != http.StatusServiceUnavailable {
				t.Fatalf("/ready = %d while the model is not ready, want 503", code)
			}
			var recs []testkit.Record
			for i := range 20 {
				req, name := grpcRequest(protocol, i)
				recs = append(recs, testkit.Record{Key: []byte(strconv.Itoa(i)), Value: mustMarshal(t, req),
					Headers: map[string]string{"proto-name": name}})
			}
			testkit.Produce(t, h.bootstrap, h.in, recs)
			time.Sleep(time.Second)
			if calls := h.model.Calls(); calls != 0 {
				t.Fatalf("%d model calls while the model was not ready", calls)
			}
			h.model.SetNotReady(false)
			waitFor(t, "ready", 30*time.Second, func() bool { return getStatus(t, ready) == 200 })
			for _, a := range testkit.Consume(t, h.bootstrap, h.out, len(recs), 60*time.Second) {
				if r := a.Headers["Seldon-Error-Reason"]; r != "" {
					t.Fatalf("error record: %v", a.Headers)
				}
			}
			h.waitAllCommitted(30 * time.Second)
		})
	}
}
