package grpc_test

import (
	"bytes"
	"errors"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/grpc"
	"github.com/seldon-kafka/sidecar/protocols/seldon"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	v2 "github.com/seldon-kafka/sidecar/protocols/v2"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// FuzzCheck feeds arbitrary proto-names and values to every protocol's decode path (Check), the part
// of the sidecar that reads what producers send. Whatever comes in, Check must not panic; it either
// refuses the record as invalid_request or keeps a message that encodes back to a value that decodes
// to the same message, so that Infer can always send it.
func FuzzCheck(f *testing.F) {
	rows, _ := structpb.NewList([]any{[]any{1.0, 2.0}, []any{3.0, 4.0}})
	seeds := []struct {
		name string
		msg  proto.Message
	}{
		{"seldon.protos.SeldonMessage", &seldonpb.SeldonMessage{Meta: &seldonpb.Meta{Puid: "p"}, DataOneof: &seldonpb.SeldonMessage_Data{Data: &seldonpb.DefaultData{
			Names: []string{"a", "b"}, DataOneof: &seldonpb.DefaultData_Ndarray{Ndarray: rows}}}}},
		{"seldon.protos.SeldonMessage", &seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_Data{Data: &seldonpb.DefaultData{
			DataOneof: &seldonpb.DefaultData_Tftensor{Tftensor: &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, FloatVal: []float32{1}}}}}}},
		{"seldon.protos.Feedback", &seldonpb.Feedback{Request: &seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_StrData{StrData: "x"}}, Reward: 1}},
		{"tensorflow.serving.PredictRequest", predictRequest()},
		{"tensorflow.serving.ClassificationRequest", &tfpb.ClassificationRequest{Input: &tfpb.Input{Kind: &tfpb.Input_ExampleListWithContext{
			ExampleListWithContext: &tfpb.ExampleListWithContext{
				Context:  &tfpb.Example{Features: &tfpb.Features{Feature: map[string]*tfpb.Feature{"c": {Kind: &tfpb.Feature_Int64List{Int64List: &tfpb.Int64List{Value: []int64{7}}}}}}},
				Examples: []*tfpb.Example{{Features: &tfpb.Features{Feature: map[string]*tfpb.Feature{"f": {Kind: &tfpb.Feature_FloatList{FloatList: &tfpb.FloatList{Value: []float32{1}}}}}}}},
			}}}}},
		{"tensorflow.serving.MultiInferenceRequest", &tfpb.MultiInferenceRequest{Tasks: []*tfpb.InferenceTask{{MethodName: "tensorflow/serving/regress"}}}},
		{"inference.ModelInferRequest", &v2pb.ModelInferRequest{Id: "r", Inputs: []*v2pb.ModelInferRequest_InferInputTensor{{
			Name: "x", Datatype: "FP32", Shape: []int64{1, 2}, Contents: &v2pb.InferTensorContents{Fp32Contents: []float32{1, 2}},
			Parameters: map[string]*v2pb.InferParameter{"p": {ParameterChoice: &v2pb.InferParameter_StringParam{StringParam: "s"}}},
		}}, RawInputContents: [][]byte{{1, 2, 3, 4}}}},
	}
	for _, s := range seeds {
		b, err := proto.Marshal(s.msg)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(s.name, b)
		f.Add(s.name, b[:len(b)/2])
		f.Add("inference.ModelInferRequest", b)
	}
	f.Add("", []byte{})
	f.Add("tensorflow.serving.PredictResponse", []byte{0x0a, 0x00})

	var clients []*grpc.Client
	for _, p := range []grpc.Protocol{seldon.GRPC, tensorflow.GRPC, v2.GRPC} {
		// Never called: Check makes no connection.
		c, err := grpc.New(p, grpc.Options{Target: "127.0.0.1:1", Model: "m"})
		if err != nil {
			f.Fatal(err)
		}
		defer c.Close()
		clients = append(clients, c)
	}

	f.Fuzz(func(t *testing.T, protoName string, body []byte) {
		for _, c := range clients {
			req := &protocols.Request{Body: body, ProtoName: protoName}
			err := c.Check(req)
			if err != nil {
				var ce *protocols.CallError
				if !errors.As(err, &ce) || ce.Reason != protocols.ReasonInvalidRequest || ce.Transient {
					t.Fatalf("Check(%q): %v is not an invalid_request CallError", protoName, err)
				}
				if req.Decoded != nil {
					t.Fatalf("Check(%q) failed and still kept a decoded message", protoName)
				}
				continue
			}
			if req.Decoded == nil {
				t.Fatalf("Check(%q) passed and kept nothing for Infer", protoName)
			}
			// What Infer would send: it must encode, and decode back to the same message.
			sent, err := proto.MarshalOptions{Deterministic: true}.Marshal(decodedMessage(t, c, protoName, body))
			if err != nil {
				t.Fatalf("Check(%q) kept a message that does not encode: %v", protoName, err)
			}
			if len(sent) == 0 {
				// Bytes that set only default values (a zero reward written out, say) decode to a message
				// that encodes to nothing, and an empty record is refused by design: no round trip.
				continue
			}
			again := &protocols.Request{Body: sent, ProtoName: protoName}
			if err := c.Check(again); err != nil {
				t.Fatalf("the encoded message does not decode: %v", err)
			}
			resent, err := proto.MarshalOptions{Deterministic: true}.Marshal(decodedMessage(t, c, protoName, sent))
			if err != nil || !bytes.Equal(sent, resent) {
				t.Fatalf("encoding is not stable: %v", err)
			}
		}
	})
}

// decodedMessage decodes body as the client's registry does, and fills in what Check fills in.
func decodedMessage(t *testing.T, c *grpc.Client, protoName string, body []byte) proto.Message {
	t.Helper()
	msg, m, err := c.Registry().Decode(protoName, body)
	if err != nil {
		t.Fatalf("Decode after a passing Check: %v", err)
	}
	if m.Prepare != nil {
		m.Prepare(msg, "m")
	}
	return msg
}
