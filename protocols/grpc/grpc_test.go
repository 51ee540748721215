package grpc_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	gogrpc "google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/seldon-kafka/sidecar/internal/testmodel"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/grpc"
	"github.com/seldon-kafka/sidecar/protocols/seldon"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	v2 "github.com/seldon-kafka/sidecar/protocols/v2"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func predictRequest() *tfpb.PredictRequest {
	return &tfpb.PredictRequest{
		ModelSpec: &tfpb.ModelSpec{Name: "m"},
		Inputs: map[string]*tfpb.TensorProto{"x": {
			Dtype:       tfpb.DataType_DT_FLOAT,
			TensorShape: &tfpb.TensorShapeProto{Dim: []*tfpb.TensorShapeProto_Dim{{Size: 2}}},
			FloatVal:    []float32{1, 2.5},
		}},
	}
}

func TestRegistryAcceptsOnlyTheProtocolsRequestTypes(t *testing.T) {
	tfBody := marshal(t, predictRequest())
	truncated := tfBody[:len(tfBody)-2]
	tests := []struct {
		name      string
		protocol  grpc.Protocol
		protoName string
		body      []byte
		wantType  string // the decoded type; empty when an error is wanted
		wantErr   string // a part of the error
	}{
		{"tensorflow PredictRequest", tensorflow.GRPC, "tensorflow.serving.PredictRequest", tfBody, "tensorflow.serving.PredictRequest", ""},
		{"surrounding spaces are ignored", tensorflow.GRPC, " tensorflow.serving.PredictRequest\n", tfBody, "tensorflow.serving.PredictRequest", ""},
		{"tensorflow ClassificationRequest", tensorflow.GRPC, "tensorflow.serving.ClassificationRequest", marshal(t, &tfpb.ClassificationRequest{ModelSpec: &tfpb.ModelSpec{Name: "m"}}), "tensorflow.serving.ClassificationRequest", ""},
		{"tensorflow MultiInferenceRequest", tensorflow.GRPC, "tensorflow.serving.MultiInferenceRequest", marshal(t, &tfpb.MultiInferenceRequest{Tasks: []*tfpb.InferenceTask{{MethodName: "x"}}}), "tensorflow.serving.MultiInferenceRequest", ""},
		{"seldon SeldonMessage", seldon.GRPC, "seldon.protos.SeldonMessage", marshal(t, &seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_StrData{StrData: "x"}}), "seldon.protos.SeldonMessage", ""},
		{"seldon Feedback", seldon.GRPC, "seldon.protos.Feedback", marshal(t, &seldonpb.Feedback{Reward: 1}), "seldon.protos.Feedback", ""},
		{"v2 ModelInferRequest", v2.GRPC, "inference.ModelInferRequest", marshal(t, &v2pb.ModelInferRequest{Id: "x"}), "inference.ModelInferRequest", ""},

		{"missing proto-name", tensorflow.GRPC, "", tfBody, "", "no proto-name header"},
		{"blank proto-name", tensorflow.GRPC, "  ", tfBody, "", "no proto-name header"},
		{"unknown name", tensorflow.GRPC, "tensorflow.serving.Nope", tfBody, "", `unknown proto-name "tensorflow.serving.Nope"`},
		{"v2 name to tensorflow", tensorflow.GRPC, "inference.ModelInferRequest", tfBody, "", "not a tensorflow request (it is a message of proto package inference)"},
		{"tensorflow name to v2", v2.GRPC, "tensorflow.serving.PredictRequest", tfBody, "", "not a v2 request"},
		{"seldon name to tensorflow", tensorflow.GRPC, "seldon.protos.SeldonMessage", tfBody, "", "not a tensorflow request"},
		{"a response type", tensorflow.GRPC, "tensorflow.serving.PredictResponse", tfBody, "", "not a tensorflow request"},
		{"a combiner's input to a model", seldon.GRPC, "seldon.protos.SeldonMessageList", tfBody, "", "not a seldon request"},
		{"a core message", tensorflow.GRPC, "tensorflow.TensorProto", tfBody, "", "not a tensorflow request"},
		{"truncated bytes", tensorflow.GRPC, "tensorflow.serving.PredictRequest", truncated, "", "value is not a protobuf tensorflow.serving.PredictRequest"},
		{"empty value", tensorflow.GRPC, "tensorflow.serving.PredictRequest", nil, "", "empty value"},
		{"JSON instead of protobuf", v2.GRPC, "inference.ModelInferRequest", []byte(`{"inputs":[]}`), "", "value is not a protobuf inference.ModelInferRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg, err := grpc.NewRegistry(tt.protocol)
			if err != nil {
				t.Fatal(err)
			}
			msg, m, err := reg.Decode(tt.protoName, tt.body)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				if got := string(msg.ProtoReflect().Descriptor().FullName()); got != tt.wantType {
					t.Errorf("decoded a %s, want %s", got, tt.wantType)
				}
				if m.Request.Descriptor().FullName() != msg.ProtoReflect().Descriptor().FullName() {
					t.Errorf("method takes %s", m.Request.Descriptor().FullName())
				}
				return
			}
			var ce *protocols.CallError
			if !errors.As(err, &ce) || ce.Reason != protocols.ReasonInvalidRequest || ce.Transient {
				t.Fatalf("err = %#v, want an invalid_request CallError", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("err = %q, want it to say %q", err, tt.wantErr)
			}
		})
	}
}

func TestRegistryNamesEachProtocolsRequests(t *testing.T) {
	tests := []struct {
		protocol grpc.Protocol
		want     []string
	}{
		{seldon.GRPC, []string{"seldon.protos.Feedback", "seldon.protos.SeldonMessage"}},
		{tensorflow.GRPC, []string{"tensorflow.serving.ClassificationRequest", "tensorflow.serving.MultiInferenceRequest",
			"tensorflow.serving.PredictRequest", "tensorflow.serving.RegressionRequest"}},
		{v2.GRPC, []string{"inference.ModelInferRequest"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.protocol.Name), func(t *testing.T) {
			reg, err := grpc.NewRegistry(tt.protocol)
			if err != nil {
				t.Fatal(err)
			}
			if got := reg.Names(); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("Names() = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRegistryRefusesABrokenProtocol(t *testing.T) {
	msgType := (*tfpb.PredictRequest)(nil).ProtoReflect().Type()
	m := grpc.Method{FullMethod: "/x/Y", Request: msgType, Response: msgType}
	tests := []struct {
		name string
		p    grpc.Protocol
	}{
		{"no methods", grpc.Protocol{Name: "x"}},
		{"no RPC", grpc.Protocol{Name: "x", Methods: []grpc.Method{{Request: msgType, Response: msgType}}}},
		{"two methods for one type", grpc.Protocol{Name: "x", Methods: []grpc.Method{m, m}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := grpc.NewRegistry(tt.p); err == nil {
				t.Error("NewRegistry accepted it")
			}
		})
	}
}

func TestCallErrorRetriesTheCodesItIsTold(t *testing.T) {
	retry := grpc.RetryOn([]codes.Code{codes.Internal})
	if ce := grpc.CallError(status.Error(codes.Internal, "x"), retry); !ce.Transient {
		t.Error("Internal is not retried when it is asked for")
	}
	if ce := grpc.CallError(status.Error(codes.Unavailable, "x"), retry); ce.Transient {
		t.Error("Unavailable is retried when only Internal is asked for")
	}
	if ce := grpc.CallError(status.Error(codes.Unavailable, "x"), grpc.RetryOn([]codes.Code{})); ce.Transient {
		t.Error("an empty list retries Unavailable")
	}
}

func TestCallErrorRetriesOnlyTransientCodes(t *testing.T) {
	tests := []struct {
		err        error
		transient  bool
		reason     string
		code, want string
	}{
		{status.Error(codes.Unavailable, "connection refused"), true, protocols.ReasonRetriesExhausted, "Unavailable", "connection refused"},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), true, protocols.ReasonRetriesExhausted, "DeadlineExceeded", "deadline"},
		{status.Error(codes.ResourceExhausted, "queue full"), true, protocols.ReasonRetriesExhausted, "ResourceExhausted", "queue full"},
		// gRPC's size limit, the client's or the server's: the same message would fail again.
		{status.Error(codes.ResourceExhausted, "grpc: received message larger than max (2000 vs. 1000)"), false, protocols.ReasonModelRejected, "ResourceExhausted", "KAFKA_MESSAGE_MAX_BYTES"},
		{status.Error(codes.ResourceExhausted, "grpc: trying to send message larger than max (2000 vs. 1000)"), false, protocols.ReasonModelRejected, "ResourceExhausted", "larger than max"},
		{status.Error(codes.InvalidArgument, "bad shape"), false, protocols.ReasonModelRejected, "InvalidArgument", "bad shape"},
		{status.Error(codes.NotFound, "no such model"), false, protocols.ReasonModelRejected, "NotFound", "no such model"},
		{status.Error(codes.Internal, "boom"), false, protocols.ReasonModelRejected, "Internal", "boom"},
		{status.Error(codes.Unimplemented, ""), false, protocols.ReasonModelRejected, "Unimplemented", "model answered Unimplemented"},
		{status.Error(codes.FailedPrecondition, strings.Repeat("x", 2000)), false, protocols.ReasonModelRejected, "FailedPrecondition", "…"},
		{errors.New("not from gRPC"), true, protocols.ReasonRetriesExhausted, "", "not from gRPC"},
	}
	for _, tt := range tests {
		t.Run(status.Code(tt.err).String(), func(t *testing.T) {
			ce := grpc.CallError(tt.err, nil)
			if ce.Transient != tt.transient || ce.Reason != tt.reason || ce.Code != tt.code {
				t.Errorf("CallError = {Transient %v, Reason %q, Code %q}, want {%v, %q, %q}", ce.Transient, ce.Reason, ce.Code, tt.transient, tt.reason, tt.code)
			}
			if !strings.Contains(ce.Error(), tt.want) {
				t.Errorf("Error() = %q, want it to say %q", ce.Error(), tt.want)
			}
			if len(ce.Msg) > 600 {
				t.Errorf("message of %d bytes is not bounded", len(ce.Msg))
			}
		})
	}
}

// model is a test model serving gRPC on a loopback port.
func model(t *testing.T, opts testmodel.Options) (*testmodel.Server, string) {
	t.Helper()
	s := testmodel.New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.ServeGRPC(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	return s, ln.Addr().String()
}

func client(t *testing.T, p grpc.Protocol, target string) *grpc.Client {
	t.Helper()
	c, err := grpc.New(p, grpc.Options{Target: target, Model: "m", Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestClientCallsTheRightRPCAndFillsInTheModelName(t *testing.T) {
	_, target := model(t, testmodel.Options{ModelName: "m"})
	rows, _ := structpb.NewList([]any{[]any{1.0, 2.0}})
	examples := &tfpb.Input{Kind: &tfpb.Input_ExampleList{ExampleList: &tfpb.ExampleList{Examples: []*tfpb.Example{{
		Features: &tfpb.Features{Feature: map[string]*tfpb.Feature{"f": {Kind: &tfpb.Feature_FloatList{FloatList: &tfpb.FloatList{Value: []float32{1.5}}}}}},
	}}}}}
	tests := []struct {
		name      string
		protocol  grpc.Protocol
		protoName string
		req       proto.Message
		// want computes the expected answer from the request as the sidecar sends it.
		want func() (proto.Message, error)
	}{
		{"seldon Predict", seldon.GRPC, "seldon.protos.SeldonMessage",
			&seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_Data{Data: &seldonpb.DefaultData{DataOneof: &seldonpb.DefaultData_Ndarray{Ndarray: rows}}}},
			func() (proto.Message, error) {
				return testmodel.SeldonPredictProto("m", &seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_Data{Data: &seldonpb.DefaultData{DataOneof: &seldonpb.DefaultData_Ndarray{Ndarray: rows}}}})
			}},
		{"seldon SendFeedback", seldon.GRPC, "seldon.protos.Feedback",
			&seldonpb.Feedback{Request: &seldonpb.SeldonMessage{Meta: &seldonpb.Meta{Puid: "p"}}, Reward: 0.5},
			func() (proto.Message, error) {
				return testmodel.SeldonFeedbackProto("m", &seldonpb.Feedback{Request: &seldonpb.SeldonMessage{Meta: &seldonpb.Meta{Puid: "p"}}, Reward: 0.5})
			}},
		{"tensorflow Predict without a model name", tensorflow.GRPC, "tensorflow.serving.PredictRequest",
			&tfpb.PredictRequest{Inputs: predictRequest().Inputs},
			func() (proto.Message, error) { return testmodel.TensorflowPredictProto("m", predictRequest()) }},
		{"tensorflow Classify", tensorflow.GRPC, "tensorflow.serving.ClassificationRequest",
			&tfpb.ClassificationRequest{Input: examples},
			func() (proto.Message, error) {
				return testmodel.TensorflowClassifyProto(&tfpb.ClassificationRequest{Input: examples})
			}},
		{"tensorflow Regress", tensorflow.GRPC, "tensorflow.serving.RegressionRequest",
			&tfpb.RegressionRequest{ModelSpec: &tfpb.ModelSpec{Version: wrapperspb.Int64(1)}, Input: examples},
			func() (proto.Message, error) {
				return testmodel.TensorflowRegressProto("m", &tfpb.RegressionRequest{Input: examples})
			}},
		{"tensorflow MultiInference", tensorflow.GRPC, "tensorflow.serving.MultiInferenceRequest",
			&tfpb.MultiInferenceRequest{Tasks: []*tfpb.InferenceTask{{MethodName: "tensorflow/serving/regress"}, {MethodName: "tensorflow/serving/classify"}}, Input: examples},
			func() (proto.Message, error) {
				return testmodel.TensorflowMultiInferenceProto("m", &tfpb.MultiInferenceRequest{Tasks: []*tfpb.InferenceTask{{MethodName: "tensorflow/serving/regress"}, {MethodName: "tensorflow/serving/classify"}}, Input: examples})
			}},
		{"v2 ModelInfer without a model name", v2.GRPC, "inference.ModelInferRequest",
			&v2pb.ModelInferRequest{Id: "r1", Inputs: []*v2pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "INT32", Shape: []int64{2}, Contents: &v2pb.InferTensorContents{IntContents: []int32{3, -4}}}}},
			func() (proto.Message, error) {
				return testmodel.V2InferProto("m", &v2pb.ModelInferRequest{Id: "r1", Inputs: []*v2pb.ModelInferRequest_InferInputTensor{{Name: "x", Datatype: "INT32", Shape: []int64{2}, Contents: &v2pb.InferTensorContents{IntContents: []int32{3, -4}}}}})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := client(t, tt.protocol, target)
			req := &protocols.Request{Body: marshal(t, tt.req), ProtoName: tt.protoName, Puid: "p-1"}
			if err := c.Check(req); err != nil {
				t.Fatalf("Check: %v", err)
			}
			resp, err := c.Infer(context.Background(), req)
			if err != nil {
				t.Fatalf("Infer: %v", err)
			}
			want, err := tt.want()
			if err != nil {
				t.Fatal(err)
			}
			if resp.ProtoName != string(want.ProtoReflect().Descriptor().FullName()) || resp.ContentType != grpc.ContentType {
				t.Errorf("ProtoName, ContentType = %q, %q", resp.ProtoName, resp.ContentType)
			}
			got := want.ProtoReflect().New().Interface()
			if err := proto.Unmarshal(resp.Body, got); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("answer\n got %v\nwant %v", got, want)
			}
		})
	}
}

func TestClientDecodesOnceAndInferWorksWithoutCheck(t *testing.T) {
	s, target := model(t, testmodel.Options{ModelName: "m"})
	c := client(t, tensorflow.GRPC, target)
	req := &protocols.Request{Body: marshal(t, predictRequest()), ProtoName: "tensorflow.serving.PredictRequest"}
	// Infer alone (a caller that skips Check) decodes on the way.
	if _, err := c.Infer(context.Background(), req); err != nil {
		t.Fatalf("Infer without Check: %v", err)
	}
	// Retries reuse the decoded message: the body is not decoded again (without it, there is nothing to
	// decode).
	req.Body = nil
	if _, err := c.Infer(context.Background(), req); err != nil {
		t.Fatalf("second Infer: %v", err)
	}
	if s.Served() != 2 {
		t.Errorf("served %d, want 2", s.Served())
	}
	bad := &protocols.Request{Body: []byte{0xff}, ProtoName: "tensorflow.serving.PredictRequest"}
	if _, err := c.Infer(context.Background(), bad); protocols.AsCallError(err).Reason != protocols.ReasonInvalidRequest {
		t.Errorf("Infer of garbage: %v, want invalid_request", err)
	}
}

func TestClientClassifiesTheModelsFailures(t *testing.T) {
	tests := []struct {
		name      string
		fault     func(*testmodel.Server)
		req       *tfpb.PredictRequest
		code      string
		transient bool
	}{
		{"unavailable", func(s *testmodel.Server) { s.SetUnavailable(time.Minute) }, predictRequest(), "Unavailable", true},
		{"overloaded", func(s *testmodel.Server) { s.FailNext(1, http.StatusTooManyRequests) }, predictRequest(), "ResourceExhausted", true},
		{"slower than the deadline", func(s *testmodel.Server) { s.SetDelay(time.Minute) }, predictRequest(), "DeadlineExceeded", true},
		{"rejected by the hook", func(*testmodel.Server) {}, &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"reject-me": {Dtype: tfpb.DataType_DT_FLOAT, FloatVal: []float32{1}}}}, "InvalidArgument", false},
		{"a bad request", func(*testmodel.Server) {}, &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_BOOL, BoolVal: []bool{true}}}}, "InvalidArgument", false},
		{"another model", func(*testmodel.Server) {}, &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "other"}, Inputs: predictRequest().Inputs}, "NotFound", false},
		{"a server error", func(s *testmodel.Server) { s.FailNext(1, http.StatusInternalServerError) }, predictRequest(), "Internal", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, target := model(t, testmodel.Options{ModelName: "m", Reject: func(b []byte) (int, bool) {
				return http.StatusBadRequest, strings.Contains(string(b), "reject-me")
			}})
			tt.fault(s)
			c, err := grpc.New(tensorflow.GRPC, grpc.Options{Target: target, Model: "m", Timeout: 300 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			req := &protocols.Request{Body: marshal(t, tt.req), ProtoName: "tensorflow.serving.PredictRequest"}
			if err := c.Check(req); err != nil {
				t.Fatal(err)
			}
			_, err = c.Infer(context.Background(), req)
			ce := protocols.AsCallError(err)
			if err == nil || ce.Code != tt.code || ce.Transient != tt.transient {
				t.Fatalf("Infer: %v (code %q, transient %v), want code %s, transient %v", err, ce.Code, ce.Transient, tt.code, tt.transient)
			}
		})
	}
}

func TestClientReadinessUsesTheBestCheckTheServerHas(t *testing.T) {
	t.Run("v2 ModelReady", func(t *testing.T) {
		s, target := model(t, testmodel.Options{ModelName: "m"})
		c := client(t, v2.GRPC, target)
		if err := c.Ready(context.Background()); err != nil {
			t.Fatalf("Ready: %v", err)
		}
		s.SetNotReady(true)
		if err := c.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "ModelReady") {
			t.Fatalf("Ready while not ready = %v, want a ModelReady failure", err)
		}
	})
	t.Run("v2 model of another name", func(t *testing.T) {
		_, target := model(t, testmodel.Options{ModelName: "other"})
		if err := client(t, v2.GRPC, target).Ready(context.Background()); status.Code(err) != codes.NotFound {
			t.Fatalf("Ready = %v, want NotFound", err)
		}
	})
	for _, p := range []grpc.Protocol{seldon.GRPC, tensorflow.GRPC} {
		t.Run(string(p.Name)+" health service", func(t *testing.T) {
			s, target := model(t, testmodel.Options{ModelName: "m"})
			c := client(t, p, target)
			if err := c.Ready(context.Background()); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			s.SetNotReady(true)
			if err := c.Ready(context.Background()); err == nil || !strings.Contains(err.Error(), "NOT_SERVING") {
				t.Fatalf("Ready while not ready = %v, want NOT_SERVING", err)
			}
		})
	}
	for _, p := range []grpc.Protocol{v2.GRPC, tensorflow.GRPC} {
		t.Run(string(p.Name)+" server with no check: TCP connect", func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			bare := gogrpc.NewServer() // no services at all: every check is Unimplemented
			go func() { _ = bare.Serve(ln) }()
			c := client(t, p, ln.Addr().String())
			if err := c.Ready(context.Background()); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			bare.Stop()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if err := c.Ready(ctx); err == nil {
				t.Fatal("Ready after the server stopped = nil")
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		target := ln.Addr().String()
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := client(t, tensorflow.GRPC, target).Ready(ctx); err == nil {
			t.Fatal("Ready with nothing listening = nil")
		}
	})
}

func TestClientReconnectsWhenTheModelComesBack(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := ln.Addr().String()
	ln.Close()
	c := client(t, tensorflow.GRPC, target)
	req := &protocols.Request{Body: marshal(t, predictRequest()), ProtoName: "tensorflow.serving.PredictRequest"}
	if err := c.Check(req); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Infer(context.Background(), req); !protocols.AsCallError(err).Transient {
		t.Fatalf("Infer with the model down: %v, want a transient error", err)
	}
	s := testmodel.New(testmodel.Options{ModelName: "m"})
	ln, err = net.Listen("tcp", target)
	if err != nil {
		t.Skipf("port %s taken meanwhile: %v", target, err)
	}
	go func() { _ = s.ServeGRPC(ln) }()
	defer s.Close()
	// The reconnect backoff is capped at 2s; well within 10s the call goes through.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.Infer(context.Background(), req)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 10s after the model came back: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
