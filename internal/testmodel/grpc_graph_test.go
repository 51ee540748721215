package testmodel_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/seldon-kafka/sidecar/internal/testmodel"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

func seldonMsg(t *testing.T, js string) *seldonpb.SeldonMessage {
	t.Helper()
	var m seldonpb.SeldonMessage
	if err := protojson.Unmarshal([]byte(js), &m); err != nil {
		t.Fatalf("parse %s: %v", js, err)
	}
	return &m
}

func TestSeldonGraphProtoAnswersAgreeWithREST(t *testing.T) {
	const meta = `"meta":{"puid":"p","tags":{"x":"1","n":2},"requestPath":{"up":"i"},"metrics":[{"key":"k","type":"GAUGE","value":1}]}`
	one := `{` + meta + `,"data":{"names":["a","b"],"ndarray":[[1,2],[3,4]]}}`
	tensor := `{` + meta + `,"data":{"tensor":{"shape":[2,2],"values":[1,2,3,4]}}}`
	list := `{"seldonMessages":[` + one + `,{"data":{"ndarray":[[3,4],[5,6]]},"meta":{"tags":{"x":"2"}}}]}`
	tests := []struct {
		name  string
		rest  seldonNode
		proto func(name, image string, m *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error)
		req   string
	}{
		{"predict", testmodel.SeldonPredictWithImage, testmodel.SeldonPredictProtoWithImage, one},
		{"transform-input ndarray", testmodel.SeldonTransformInput, testmodel.SeldonTransformInputProto, one},
		{"transform-input tensor", testmodel.SeldonTransformInput, testmodel.SeldonTransformInputProto, tensor},
		{"transform-output", testmodel.SeldonTransformOutput, testmodel.SeldonTransformOutputProto, one},
		{"route", testmodel.SeldonRoute, testmodel.SeldonRouteProto, one},
		{"transform-input strData", testmodel.SeldonTransformInput, testmodel.SeldonTransformInputProto, `{"strData":"s"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.proto("n", "img", seldonMsg(t, tt.req))
			if err != nil {
				t.Fatal(err)
			}
			want := seldonMsg(t, mustAnswer(t, func() ([]byte, error) { return tt.rest("n", "img", []byte(tt.req)) }))
			if !proto.Equal(got, want) {
				t.Errorf("gRPC %v\nREST %v", got, want)
			}
		})
	}
	t.Run("aggregate", func(t *testing.T) {
		var l seldonpb.SeldonMessageList
		if err := protojson.Unmarshal([]byte(list), &l); err != nil {
			t.Fatal(err)
		}
		got, err := testmodel.SeldonAggregateProto("n", "img", &l)
		if err != nil {
			t.Fatal(err)
		}
		want := seldonMsg(t, mustAnswer(t, func() ([]byte, error) { return testmodel.SeldonAggregate("n", "img", []byte(list)) }))
		if !proto.Equal(got, want) || got.GetMeta().GetTags()["x"].GetStringValue() != "2" {
			t.Errorf("gRPC %v\nREST %v", got, want)
		}
	})
}

func TestSeldonProtoTransformsEchoCustomDataWithComposedMeta(t *testing.T) {
	custom, err := anypb.New(wrapperspb.String("opaque"))
	if err != nil {
		t.Fatal(err)
	}
	req := &seldonpb.SeldonMessage{
		Meta:      &seldonpb.Meta{Puid: "p", RequestPath: map[string]string{"up": "i"}},
		DataOneof: &seldonpb.SeldonMessage_CustomData{CustomData: custom},
	}
	want := &seldonpb.SeldonMessage{
		Meta:      &seldonpb.Meta{Puid: "p", RequestPath: map[string]string{"up": "i", "n": "img"}},
		DataOneof: &seldonpb.SeldonMessage_CustomData{CustomData: custom},
	}
	for name, f := range map[string]func(string, string, *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error){
		"predict": testmodel.SeldonPredictProtoWithImage, "transform-input": testmodel.SeldonTransformInputProto,
		"transform-output": testmodel.SeldonTransformOutputProto,
	} {
		t.Run(name, func(t *testing.T) {
			got, err := f("n", "img", req)
			if err != nil || !proto.Equal(got, want) {
				t.Errorf("got %v, %v\nwant %v", got, err, want)
			}
		})
	}
	if got, err := testmodel.SeldonRouteProto("n", "img", req); err == nil {
		t.Errorf("a router routed customData: %v", got)
	}
}

func TestGRPCSeldonGraphServicesAnswerAsTheirProtoFunctions(t *testing.T) {
	_, cc := grpcServer(t, testmodel.Options{ModelName: "n", Image: "img"})
	ctx := context.Background()
	req := seldonMsg(t, `{"meta":{"puid":"p"},"data":{"ndarray":[[3,4]]}}`)
	list := &seldonpb.SeldonMessageList{SeldonMessages: []*seldonpb.SeldonMessage{req, seldonMsg(t, `{"data":{"ndarray":[[5,6]]}}`)}}
	tests := []struct {
		name string
		call func() (*seldonpb.SeldonMessage, error)
		want func() (*seldonpb.SeldonMessage, error)
	}{
		{"Model/Predict",
			func() (*seldonpb.SeldonMessage, error) { return seldonpb.NewModelClient(cc).Predict(ctx, req) },
			func() (*seldonpb.SeldonMessage, error) { return testmodel.SeldonPredictProtoWithImage("n", "img", req) }},
		{"Transformer/TransformInput",
			func() (*seldonpb.SeldonMessage, error) {
				return seldonpb.NewTransformerClient(cc).TransformInput(ctx, req)
			},
			func() (*seldonpb.SeldonMessage, error) { return testmodel.SeldonTransformInputProto("n", "img", req) }},
		{"OutputTransformer/TransformOutput",
			func() (*seldonpb.SeldonMessage, error) {
				return seldonpb.NewOutputTransformerClient(cc).TransformOutput(ctx, req)
			},
			func() (*seldonpb.SeldonMessage, error) { return testmodel.SeldonTransformOutputProto("n", "img", req) }},
		{"Router/Route",
			func() (*seldonpb.SeldonMessage, error) { return seldonpb.NewRouterClient(cc).Route(ctx, req) },
			func() (*seldonpb.SeldonMessage, error) { return testmodel.SeldonRouteProto("n", "img", req) }},
		{"Combiner/Aggregate",
			func() (*seldonpb.SeldonMessage, error) { return seldonpb.NewCombinerClient(cc).Aggregate(ctx, list) },
			func() (*seldonpb.SeldonMessage, error) { return testmodel.SeldonAggregateProto("n", "img", list) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.call()
			if err != nil {
				t.Fatal(err)
			}
			want, err := tt.want()
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
		})
	}
	health := healthpb.NewHealthClient(cc)
	for _, svc := range []string{"seldon.protos.Transformer", "seldon.protos.OutputTransformer", "seldon.protos.Router", "seldon.protos.Combiner"} {
		if h, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: svc}); err != nil || h.Status != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health of %s = %v, %v; want SERVING", svc, h, err)
		}
	}
}

func TestGRPCNodeTagsFailAndSlowTheNamedNode(t *testing.T) {
	s, cc := grpcServer(t, testmodel.Options{ModelName: "n", SlowDelay: time.Hour})
	tag := func(key, node string) *seldonpb.SeldonMessage {
		return &seldonpb.SeldonMessage{
			Meta:      &seldonpb.Meta{Tags: map[string]*structpb.Value{key: structpb.NewStringValue(node)}},
			DataOneof: &seldonpb.SeldonMessage_StrData{StrData: "x"},
		}
	}
	data := func(m *seldonpb.SeldonMessage) *seldonpb.SeldonMessage {
		m.DataOneof = &seldonpb.SeldonMessage_Data{Data: &seldonpb.DefaultData{DataOneof: &seldonpb.DefaultData_Tensor{
			Tensor: &seldonpb.Tensor{Shape: []int32{1, 1}, Values: []float64{1}}}}}
		return m
	}
	tests := []struct {
		name    string
		timeout time.Duration
		call    func(ctx context.Context) error
		want    codes.Code
	}{
		{"fail-node on Predict", time.Minute, func(ctx context.Context) error {
			_, err := seldonpb.NewModelClient(cc).Predict(ctx, tag(testmodel.FailNodeTag, "n"))
			return err
		}, codes.Internal},
		{"fail-node for another node", time.Minute, func(ctx context.Context) error {
			_, err := seldonpb.NewTransformerClient(cc).TransformInput(ctx, tag(testmodel.FailNodeTag, "m"))
			return err
		}, codes.OK},
		{"fail-node on Route", time.Minute, func(ctx context.Context) error {
			_, err := seldonpb.NewRouterClient(cc).Route(ctx, data(tag(testmodel.FailNodeTag, "n")))
			return err
		}, codes.Internal},
		{"fail-node in a later message of Aggregate", time.Minute, func(ctx context.Context) error {
			_, err := seldonpb.NewCombinerClient(cc).Aggregate(ctx, &seldonpb.SeldonMessageList{SeldonMessages: []*seldonpb.SeldonMessage{
				data(tag("other", "n")), data(tag(testmodel.FailNodeTag, "n"))}})
			return err
		}, codes.Internal},
		{"slow-node outlasts the deadline", 100 * time.Millisecond, func(ctx context.Context) error {
			_, err := seldonpb.NewOutputTransformerClient(cc).TransformOutput(ctx, tag(testmodel.SlowNodeTag, "n"))
			return err
		}, codes.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.ResetCounters()
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			err := tt.call(ctx)
			if got := status.Code(err); got != tt.want {
				t.Fatalf("code = %s (%v), want %s", got, err, tt.want)
			}
			if tt.want == codes.Internal && status.Convert(err).Message() != "injected failure at n" {
				t.Errorf("message %q, want %q", status.Convert(err).Message(), "injected failure at n")
			}
			if tt.want == codes.DeadlineExceeded {
				return // the call may not even have reached the server in time
			}
			wantServed := int64(0)
			if tt.want == codes.OK {
				wantServed = 1
			}
			if s.Calls() != 1 || s.Served() != wantServed {
				t.Errorf("Calls, Served = %d, %d; want 1, %d", s.Calls(), s.Served(), wantServed)
			}
		})
	}
}

func TestGRPCRoleAppliesToTensorflowPredictAndV2ModelInfer(t *testing.T) {
	_, cc := grpcServer(t, testmodel.Options{ModelName: "m", Role: testmodel.RoleOutputTransformer})
	ctx := context.Background()
	tf, err := tfpb.NewPredictionServiceClient(cc).Predict(ctx, &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "m"},
		Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(2), FloatVal: []float32{1.5, -2}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := tf.GetOutputs()["x"].GetFloatVal(); len(got) != 2 || got[0] != 15 || got[1] != -20 {
		t.Errorf("TF Predict of an output transformer = %v, want [15 -20]", got)
	}
	v2 := v2pb.NewGRPCInferenceServiceClient(cc)
	inf, err := v2.ModelInfer(ctx, &v2pb.ModelInferRequest{ModelName: "m", Inputs: []*v2pb.ModelInferRequest_InferInputTensor{
		{Name: "x", Datatype: "INT32", Shape: []int64{1}, Contents: &v2pb.InferTensorContents{IntContents: []int32{7}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if o := inf.GetOutputs()[0]; o.GetName() != "x" || len(o.GetContents().GetIntContents()) != 1 || o.GetContents().GetIntContents()[0] != 70 {
		t.Errorf("v2 ModelInfer of an output transformer = %v, want x = [70]", o)
	}
	md, err := v2.ModelMetadata(ctx, &v2pb.ModelMetadataRequest{Name: "m"})
	if err != nil || md.GetOutputs()[0].GetName() != "input" {
		t.Errorf("ModelMetadata = %v, %v; want the output named after the input", md, err)
	}
}

func TestTensorflowTransformProtoAppliesTheRoleToEveryRepresentation(t *testing.T) {
	tests := []struct {
		name    string
		role    testmodel.Role
		in, out *tfpb.TensorProto
	}{
		{"transformer float_val", testmodel.RoleTransformer,
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(2), FloatVal: []float32{1.5, -2}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(2), FloatVal: []float32{2.5, -1}}},
		{"transformer tensor_content", testmodel.RoleTransformer,
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(1, 2), TensorContent: le32(1, 0.25)},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(1, 2), TensorContent: le32(2, 1.25)}},
		{"transformer int8 up to its max", testmodel.RoleTransformer,
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT8, TensorShape: shape(2), IntVal: []int32{-128, 126}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT8, TensorShape: shape(2), IntVal: []int32{-127, 127}}},
		{"transformer half rounds to nearest even", testmodel.RoleTransformer,
			// 1 + 1 = 2; 2048 + 1 is a tie between 2048 and 2050, 2050 + 1 between 2050 and 2052: both go even.
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_HALF, TensorShape: shape(3), HalfVal: []int32{0x3c00, 0x6800, 0x6801}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_HALF, TensorShape: shape(3), HalfVal: []int32{0x4000, 0x6800, 0x6802}}},
		{"output transformer double_val", testmodel.RoleOutputTransformer,
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_DOUBLE, TensorShape: shape(1), DoubleVal: []float64{-0.5}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_DOUBLE, TensorShape: shape(1), DoubleVal: []float64{-5}}},
		{"output transformer int64", testmodel.RoleOutputTransformer,
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT64, Int64Val: []int64{-3}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT64, Int64Val: []int64{-30}}},
		{"output transformer half", testmodel.RoleOutputTransformer,
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_HALF, TensorShape: shape(1), TensorContent: []byte{0x00, 0x3c}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_HALF, TensorShape: shape(1), TensorContent: []byte{0x00, 0x49}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testmodel.TensorflowTransformProto(tt.role, "m", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": tt.in}})
			if err != nil {
				t.Fatal(err)
			}
			want := &tfpb.PredictResponse{ModelSpec: &tfpb.ModelSpec{Name: "m", Version: wrapperspb.Int64(1)},
				Outputs: map[string]*tfpb.TensorProto{"x": tt.out}}
			if !proto.Equal(got, want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
		})
	}
	overflows := []struct {
		name string
		role testmodel.Role
		in   *tfpb.TensorProto
	}{
		{"transformer past int8", testmodel.RoleTransformer, &tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT8, IntVal: []int32{127}}},
		{"output transformer past uint16", testmodel.RoleOutputTransformer, &tfpb.TensorProto{Dtype: tfpb.DataType_DT_UINT16, IntVal: []int32{6554}}},
		{"output transformer past half", testmodel.RoleOutputTransformer, &tfpb.TensorProto{Dtype: tfpb.DataType_DT_HALF, HalfVal: []int32{0x7000}}},
	}
	for _, tt := range overflows {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := testmodel.TensorflowTransformProto(tt.role, "m", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": tt.in}}); err == nil {
				t.Errorf("answered %v, want an overflow", got)
			}
		})
	}
}

func TestV2TransformProtoAppliesTheRoleAndKeepsNames(t *testing.T) {
	req := &v2pb.ModelInferRequest{Id: "r", Inputs: []*v2pb.ModelInferRequest_InferInputTensor{
		{Name: "a", Datatype: "UINT8", Shape: []int64{2}},
		{Name: "b", Datatype: "FP64", Shape: []int64{1}},
	}, RawInputContents: [][]byte{{0, 254}, {0, 0, 0, 0, 0, 0, 0xf8, 0x3f}}} // b = 1.5
	tests := []struct {
		role testmodel.Role
		want *v2pb.ModelInferResponse
	}{
		{testmodel.RoleTransformer, &v2pb.ModelInferResponse{ModelName: "m", Id: "r", Outputs: []*v2pb.ModelInferResponse_InferOutputTensor{
			{Name: "a", Datatype: "UINT8", Shape: []int64{2}}, {Name: "b", Datatype: "FP64", Shape: []int64{1}},
		}, RawOutputContents: [][]byte{{1, 255}, {0, 0, 0, 0, 0, 0, 0x04, 0x40}}}}, // 2.5
		{testmodel.RoleModel, nil},
	}
	for _, tt := range tests {
		t.Run(tt.role.String(), func(t *testing.T) {
			got, err := testmodel.V2TransformProto(tt.role, "m", req)
			if tt.want == nil {
				// 254 doubled does not fit a UINT8.
				if err == nil {
					t.Errorf("answered %v, want an overflow", got)
				}
				return
			}
			if err != nil || !proto.Equal(got, tt.want) {
				t.Errorf("got %v, %v\nwant %v", got, err, tt.want)
			}
		})
	}
}
