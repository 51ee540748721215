package testmodel_test

import (
	"context"
	"encoding/binary"
	"math"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/seldon-kafka/sidecar/internal/testmodel"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

func TestSeldonPredictProtoAgreesWithREST(t *testing.T) {
	tests := []string{
		`{"data":{"names":["a","b"],"ndarray":[[1,2],[3,4]]}}`,
		`{"data":{"tensor":{"shape":[2,2],"values":[1,2,3,4]}}}`,
		`{"strData":"hello","meta":{"puid":"p-1"}}`,
		`{"binData":"aGVsbG8="}`,
		`{"jsonData":{"a":[1,2]}}`,
	}
	for _, req := range tests {
		t.Run(req, func(t *testing.T) {
			var in seldonpb.SeldonMessage
			if err := protojson.Unmarshal([]byte(req), &in); err != nil {
				t.Fatal(err)
			}
			got, err := testmodel.SeldonPredictProto("m", &in)
			if err != nil {
				t.Fatalf("SeldonPredictProto: %v", err)
			}
			rest, err := testmodel.SeldonPredict("m", []byte(req))
			if err != nil {
				t.Fatal(err)
			}
			var want seldonpb.SeldonMessage
			if err := protojson.Unmarshal(rest, &want); err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(got, &want) {
				t.Errorf("gRPC answer %v\nREST answer %v", got, &want)
			}
		})
	}
}

func TestSeldonPredictProtoRefusesWhatRESTRefuses(t *testing.T) {
	for _, msg := range []*seldonpb.SeldonMessage{
		{},
		{DataOneof: &seldonpb.SeldonMessage_Data{Data: &seldonpb.DefaultData{DataOneof: &seldonpb.DefaultData_Tftensor{Tftensor: &tfpb.TensorProto{}}}}},
		{DataOneof: &seldonpb.SeldonMessage_Data{Data: &seldonpb.DefaultData{DataOneof: &seldonpb.DefaultData_Tensor{Tensor: &seldonpb.Tensor{Shape: []int32{2, 2}, Values: []float64{1}}}}}},
	} {
		if out, err := testmodel.SeldonPredictProto("m", msg); err == nil {
			t.Errorf("SeldonPredictProto(%v) = %v, want an error", msg, out)
		}
	}
}

func shape(dims ...int64) *tfpb.TensorShapeProto {
	s := &tfpb.TensorShapeProto{}
	for _, d := range dims {
		s.Dim = append(s.Dim, &tfpb.TensorShapeProto_Dim{Size: d})
	}
	return s
}

func le32(vals ...float32) []byte {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

func TestTensorflowPredictProtoDoublesEveryNumber(t *testing.T) {
	tests := []struct {
		name    string
		in, out *tfpb.TensorProto
	}{
		{"float_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(2), FloatVal: []float32{1.5, -2}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(2), FloatVal: []float32{3, -4}}},
		{"tensor_content", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(1, 2), TensorContent: le32(1, 0.25)},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(1, 2), TensorContent: le32(2, 0.5)}},
		{"double_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_DOUBLE, TensorShape: shape(1), DoubleVal: []float64{1e300}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_DOUBLE, TensorShape: shape(1), DoubleVal: []float64{2e300}}},
		{"int8 int_val", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT8, TensorShape: shape(2), IntVal: []int32{-64, 63}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT8, TensorShape: shape(2), IntVal: []int32{-128, 126}}},
		{"int16 tensor_content", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT16, TensorShape: shape(1), TensorContent: []byte{0xff, 0xff}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT16, TensorShape: shape(1), TensorContent: []byte{0xfe, 0xff}}},
		{"int64 exact", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT64, TensorShape: shape(1), Int64Val: []int64{1<<62 - 1}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT64, TensorShape: shape(1), Int64Val: []int64{1<<63 - 2}}},
		{"half: normal and subnormal", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_HALF, TensorShape: shape(3), HalfVal: []int32{0x3c00, 0x0200, 0x8001}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_HALF, TensorShape: shape(3), HalfVal: []int32{0x4000, 0x0400, 0x8002}}},
		{"scalar", &tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT32, IntVal: []int32{21}},
			&tfpb.TensorProto{Dtype: tfpb.DataType_DT_INT32, IntVal: []int32{42}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testmodel.TensorflowPredictProto("m", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": tt.in}})
			if err != nil {
				t.Fatalf("TensorflowPredictProto: %v", err)
			}
			want := &tfpb.PredictResponse{ModelSpec: &tfpb.ModelSpec{Name: "m", Version: wrapperspb.Int64(1)},
				Outputs: map[string]*tfpb.TensorProto{"x": tt.out}}
			if !proto.Equal(got, want) {
				t.Errorf("got %v\nwant %v", got, want)
			}
		})
	}
}

func TestTensorflowPredictProtoRefusesWhatItCannotDouble(t *testing.T) {
	tests := []struct {
		name string
		req  *tfpb.PredictRequest
		want string
	}{
		{"no inputs", &tfpb.PredictRequest{}, "no inputs"},
		{"strings", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"s": {Dtype: tfpb.DataType_DT_STRING, StringVal: [][]byte{[]byte("a")}}}}, "not supported"},
		{"count off the shape", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(3), FloatVal: []float32{1}}}}, "1 values for shape [3]"},
		{"unknown dimension", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(-1)}}}, "unknown dimension"},
		{"int8 overflow", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_INT8, IntVal: []int32{64}}}}, "overflows"},
		{"uint8 out of range", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_UINT8, IntVal: []int32{-1}}}}, "out of range"},
		{"float overflow", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_FLOAT, FloatVal: []float32{math.MaxFloat32}}}}, "overflows"},
		{"half overflow", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_HALF, HalfVal: []int32{0x7bff}}}}, "overflows"},
		{"short tensor_content", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(2), TensorContent: le32(1)}}}, "4 bytes, want 8"},
		{"output_filter names nothing", &tfpb.PredictRequest{Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_INT32, IntVal: []int32{1}}}, OutputFilter: []string{"y"}}, `no tensor named "y"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testmodel.TensorflowPredictProto("m", tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

func floatFeature(v ...float32) *tfpb.Feature {
	return &tfpb.Feature{Kind: &tfpb.Feature_FloatList{FloatList: &tfpb.FloatList{Value: v}}}
}

func TestTensorflowClassifyRegressAndMultiInference(t *testing.T) {
	input := &tfpb.Input{Kind: &tfpb.Input_ExampleListWithContext{ExampleListWithContext: &tfpb.ExampleListWithContext{
		Context: &tfpb.Example{Features: &tfpb.Features{Feature: map[string]*tfpb.Feature{
			"c": {Kind: &tfpb.Feature_Int64List{Int64List: &tfpb.Int64List{Value: []int64{10}}}},
		}}},
		Examples: []*tfpb.Example{
			{Features: &tfpb.Features{Feature: map[string]*tfpb.Feature{"a": floatFeature(1, 2), "s": {Kind: &tfpb.Feature_BytesList{BytesList: &tfpb.BytesList{Value: [][]byte{[]byte("x")}}}}}}},
			{Features: &tfpb.Features{Feature: map[string]*tfpb.Feature{"a": floatFeature(0.5)}}},
		},
	}}}
	classes := &tfpb.ClassificationResult{Classifications: []*tfpb.Classifications{
		{Classes: []*tfpb.Class{{Label: "a[0]", Score: 2}, {Label: "a[1]", Score: 4}, {Label: "c", Score: 20}}},
		{Classes: []*tfpb.Class{{Label: "a", Score: 1}, {Label: "c", Score: 20}}},
	}}
	regressions := &tfpb.RegressionResult{Regressions: []*tfpb.Regression{{Value: 26}, {Value: 21}}}
	spec := &tfpb.ModelSpec{Name: "m", Version: wrapperspb.Int64(1)}

	c, err := testmodel.TensorflowClassifyProto(&tfpb.ClassificationRequest{Input: input})
	if err != nil || !proto.Equal(c, &tfpb.ClassificationResponse{Result: classes}) {
		t.Errorf("Classify = %v, %v; want %v", c, err, classes)
	}
	r, err := testmodel.TensorflowRegressProto("m", &tfpb.RegressionRequest{Input: input})
	if err != nil || !proto.Equal(r, &tfpb.RegressionResponse{ModelSpec: spec, Result: regressions}) {
		t.Errorf("Regress = %v, %v; want %v", r, err, regressions)
	}
	mi, err := testmodel.TensorflowMultiInferenceProto("m", &tfpb.MultiInferenceRequest{Input: input, Tasks: []*tfpb.InferenceTask{
		{MethodName: "tensorflow/serving/regress"}, {MethodName: "tensorflow/serving/classify"},
	}})
	want := &tfpb.MultiInferenceResponse{Results: []*tfpb.InferenceResult{
		{ModelSpec: spec, Result: &tfpb.InferenceResult_RegressionResult{RegressionResult: regressions}},
		{ModelSpec: spec, Result: &tfpb.InferenceResult_ClassificationResult{ClassificationResult: classes}},
	}}
	if err != nil || !proto.Equal(mi, want) {
		t.Errorf("MultiInference = %v, %v; want %v", mi, err, want)
	}
	for name, req := range map[string]*tfpb.MultiInferenceRequest{
		"no tasks":       {Input: input},
		"unknown method": {Input: input, Tasks: []*tfpb.InferenceTask{{MethodName: "tensorflow/serving/predict"}}},
		"no input":       {Tasks: []*tfpb.InferenceTask{{MethodName: "tensorflow/serving/regress"}}},
	} {
		if _, err := testmodel.TensorflowMultiInferenceProto("m", req); err == nil {
			t.Errorf("MultiInference with %s: no error", name)
		}
	}
}

func TestV2InferProtoDoublesTypedAndRawContents(t *testing.T) {
	raw16 := []byte{0x00, 0x3c, 0x00, 0xc0} // FP16 1.0, -2.0
	tests := []struct {
		name string
		req  *v2pb.ModelInferRequest
		want *v2pb.ModelInferResponse
	}{
		{"typed FP32 and INT64",
			&v2pb.ModelInferRequest{Id: "r", Inputs: []*v2pb.ModelInferRequest_InferInputTensor{
				{Name: "a", Datatype: "FP32", Shape: []int64{1, 2}, Contents: &v2pb.InferTensorContents{Fp32Contents: []float32{1, 2.5}}},
				{Name: "b", Datatype: "INT64", Shape: []int64{1}, Contents: &v2pb.InferTensorContents{Int64Contents: []int64{-7}}},
			}},
			&v2pb.ModelInferResponse{ModelName: "m", Id: "r", Outputs: []*v2pb.ModelInferResponse_InferOutputTensor{
				{Name: "a_doubled", Datatype: "FP32", Shape: []int64{1, 2}, Contents: &v2pb.InferTensorContents{Fp32Contents: []float32{2, 5}}},
				{Name: "b_doubled", Datatype: "INT64", Shape: []int64{1}, Contents: &v2pb.InferTensorContents{Int64Contents: []int64{-14}}},
			}}},
		{"typed UINT8 and UINT64",
			&v2pb.ModelInferRequest{Inputs: []*v2pb.ModelInferRequest_InferInputTensor{
				{Name: "a", Datatype: "UINT8", Shape: []int64{1}, Contents: &v2pb.InferTensorContents{UintContents: []uint32{127}}},
				{Name: "b", Datatype: "UINT64", Shape: []int64{1}, Contents: &v2pb.InferTensorContents{Uint64Contents: []uint64{1<<63 - 1}}},
			}},
			&v2pb.ModelInferResponse{ModelName: "m", Outputs: []*v2pb.ModelInferResponse_InferOutputTensor{
				{Name: "a_doubled", Datatype: "UINT8", Shape: []int64{1}, Contents: &v2pb.InferTensorContents{UintContents: []uint32{254}}},
				{Name: "b_doubled", Datatype: "UINT64", Shape: []int64{1}, Contents: &v2pb.InferTensorContents{Uint64Contents: []uint64{1<<64 - 2}}},
			}}},
		{"raw FP16 and INT16",
			&v2pb.ModelInferRequest{Inputs: []*v2pb.ModelInferRequest_InferInputTensor{
				{Name: "h", Datatype: "FP16", Shape: []int64{2}},
				{Name: "i", Datatype: "INT16", Shape: []int64{1}},
			}, RawInputContents: [][]byte{raw16, {0x00, 0xc0}}},
			&v2pb.ModelInferResponse{ModelName: "m", Outputs: []*v2pb.ModelInferResponse_InferOutputTensor{
				{Name: "h_doubled", Datatype: "FP16", Shape: []int64{2}},
				{Name: "i_doubled", Datatype: "INT16", Shape: []int64{1}},
			}, RawOutputContents: [][]byte{{0x00, 0x40, 0x00, 0xc4}, {0x00, 0x80}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testmodel.V2InferProto("m", tt.req)
			if err != nil {
				t.Fatalf("V2InferProto: %v", err)
			}
			if !proto.Equal(got, tt.want) {
				t.Errorf("got %v\nwant %v", got, tt.want)
			}
		})
	}
}

func TestV2InferProtoAgreesWithREST(t *testing.T) {
	rest, err := testmodel.V2Infer("m", []byte(`{"id":"r1","inputs":[{"name":"x","shape":[1,3],"datatype":"INT32","data":[1,-2,3]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := testmodel.V2InferProto("m", &v2pb.ModelInferRequest{Id: "r1", Inputs: []*v2pb.ModelInferRequest_InferInputTensor{
		{Name: "x", Datatype: "INT32", Shape: []int64{1, 3}, Contents: &v2pb.InferTensorContents{IntContents: []int32{1, -2, 3}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	o := got.Outputs[0]
	want := `{"model_name":"m","id":"r1","outputs":[{"name":"x_doubled","shape":[1,3],"datatype":"INT32","data":[2,-4,6]}]}`
	if string(rest) != want || o.Name != "x_doubled" || o.Datatype != "INT32" || len(o.Contents.IntContents) != 3 ||
		o.Contents.IntContents[0] != 2 || o.Contents.IntContents[1] != -4 || o.Contents.IntContents[2] != 6 {
		t.Errorf("REST %s\ngRPC %v", rest, got)
	}
}

func TestV2InferProtoRefusesWhatItCannotDouble(t *testing.T) {
	in := func(name, dt string, shape []int64, c *v2pb.InferTensorContents) *v2pb.ModelInferRequest_InferInputTensor {
		return &v2pb.ModelInferRequest_InferInputTensor{Name: name, Datatype: dt, Shape: shape, Contents: c}
	}
	tests := []struct {
		name string
		req  *v2pb.ModelInferRequest
		want string
	}{
		{"no inputs", &v2pb.ModelInferRequest{}, "no inputs"},
		{"duplicate names", &v2pb.ModelInferRequest{Inputs: []*v2pb.ModelInferRequest_InferInputTensor{
			in("x", "INT32", []int64{1}, &v2pb.InferTensorContents{IntContents: []int32{1}}),
			in("x", "INT32", []int64{1}, &v2pb.InferTensorContents{IntContents: []int32{1}})}}, "duplicate"},
		{"BYTES", &v2pb.ModelInferRequest{Inputs: []*v2pb.ModelInferRequest_InferInputTensor{in("x", "BYTES", []int64{1}, &v2pb.InferTensorContents{BytesContents: [][]byte{{1}}})}}, "not supported"},
		{"typed FP16", &v2pb.ModelInferRequest{Inputs: []*v2pb.ModelInferRequest_InferInputTensor{in("x", "FP16", []int64{1}, &v2pb.InferTensorContents{Fp32Contents: []float32{1}})}}, "raw_input_contents"},
		{"INT8 overflow", &v2pb.ModelInferRequest{Inputs: []*v2pb.ModelInferRequest_InferInputTensor{in("x", "INT8", []int64{1}, &v2pb.InferTensorContents{IntContents: []int32{100}})}}, "overflows"},
		{"count off the shape", &v2pb.ModelInferRequest{Inputs: []*v2pb.ModelInferRequest_InferInputTensor{in("x", "FP32", []int64{2}, &v2pb.InferTensorContents{Fp32Contents: []float32{1}})}}, "1 fp32_contents for 2"},
		{"raw of the wrong size", &v2pb.ModelInferRequest{Inputs: []*v2pb.ModelInferRequest_InferInputTensor{in("x", "FP32", []int64{2}, nil)}, RawInputContents: [][]byte{{1, 2, 3}}}, "3 bytes, want 8"},
		{"raw for some inputs only", &v2pb.ModelInferRequest{Inputs: []*v2pb.ModelInferRequest_InferInputTensor{in("x", "FP32", []int64{1}, nil), in("y", "FP32", []int64{1}, nil)}, RawInputContents: [][]byte{le32(1)}}, "1 raw_input_contents for 2 inputs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := testmodel.V2InferProto("m", tt.req)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

// grpcServer serves a test model's gRPC side on a loopback port and returns a connection to it.
func grpcServer(t *testing.T, opts testmodel.Options) (*testmodel.Server, *grpc.ClientConn) {
	t.Helper()
	s := testmodel.New(opts)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.ServeGRPC(ln) }()
	t.Cleanup(func() { _ = s.Close() })
	cc, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return s, cc
}

func TestGRPCFaultsBecomeTheCodesAGRPCServerAnswers(t *testing.T) {
	tests := []struct {
		name  string
		fault func(*testmodel.Server)
		req   *tfpb.PredictRequest
		code  codes.Code
	}{
		{"not ready", func(s *testmodel.Server) { s.SetNotReady(true) }, nil, codes.Unavailable},
		{"unavailable window", func(s *testmodel.Server) { s.SetUnavailable(time.Minute) }, nil, codes.Unavailable},
		{"429", func(s *testmodel.Server) { s.FailNext(1, http.StatusTooManyRequests) }, nil, codes.ResourceExhausted},
		{"500", func(s *testmodel.Server) { s.FailNext(1, http.StatusInternalServerError) }, nil, codes.Internal},
		{"504", func(s *testmodel.Server) { s.FailNext(1, http.StatusGatewayTimeout) }, nil, codes.DeadlineExceeded},
		{"reject hook 400", func(*testmodel.Server) {}, &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "m"},
			Inputs: map[string]*tfpb.TensorProto{"reject-me": {Dtype: tfpb.DataType_DT_INT32, IntVal: []int32{1}}}}, codes.InvalidArgument},
		{"bad request", func(*testmodel.Server) {}, &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "m"}}, codes.InvalidArgument},
		{"other model", func(*testmodel.Server) {}, &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "n"}}, codes.NotFound},
		{"served", func(*testmodel.Server) {}, nil, codes.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, cc := grpcServer(t, testmodel.Options{ModelName: "m", Reject: func(b []byte) (int, bool) {
				return http.StatusBadRequest, strings.Contains(string(b), "reject-me")
			}})
			tt.fault(s)
			req := tt.req
			if req == nil {
				req = &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "m"}, Inputs: map[string]*tfpb.TensorProto{"x": {Dtype: tfpb.DataType_DT_INT32, IntVal: []int32{4}}}}
			}
			_, err := tfpb.NewPredictionServiceClient(cc).Predict(context.Background(), req)
			if got := status.Code(err); got != tt.code {
				t.Fatalf("code = %s (%v), want %s", got, err, tt.code)
			}
			wantServed := int64(0)
			if tt.code == codes.OK {
				wantServed = 1
			}
			if s.Served() != wantServed {
				t.Errorf("Served() = %d, want %d", s.Served(), wantServed)
			}
		})
	}
}

func TestGRPCReadinessFollowsSetNotReady(t *testing.T) {
	s, cc := grpcServer(t, testmodel.Options{ModelName: "m"})
	health := healthpb.NewHealthClient(cc)
	v2 := v2pb.NewGRPCInferenceServiceClient(cc)
	ctx := context.Background()
	check := func(wantReady bool) {
		t.Helper()
		h, err := health.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || (h.Status == healthpb.HealthCheckResponse_SERVING) != wantReady {
			t.Errorf("health = %v, %v; want ready %v", h, err, wantReady)
		}
		mr, err := v2.ModelReady(ctx, &v2pb.ModelReadyRequest{Name: "m"})
		if err != nil || mr.Ready != wantReady {
			t.Errorf("ModelReady = %v, %v; want %v", mr, err, wantReady)
		}
		sr, err := v2.ServerReady(ctx, &v2pb.ServerReadyRequest{})
		if err != nil || sr.Ready != wantReady {
			t.Errorf("ServerReady = %v, %v; want %v", sr, err, wantReady)
		}
	}
	check(true)
	s.SetNotReady(true)
	check(false)
	s.SetNotReady(false)
	check(true)
	if _, err := v2.ModelReady(ctx, &v2pb.ModelReadyRequest{Name: "other"}); status.Code(err) != codes.NotFound {
		t.Errorf("ModelReady for another model: %v, want NotFound", err)
	}
	if _, err := health.Check(ctx, &healthpb.HealthCheckRequest{Service: "no.such.Service"}); status.Code(err) != codes.NotFound {
		t.Errorf("health of an unknown service: %v, want NotFound", err)
	}
}

func TestGRPCSeldonServiceAnswersPredictAndFeedback(t *testing.T) {
	_, cc := grpcServer(t, testmodel.Options{ModelName: "m"})
	c := seldonpb.NewModelClient(cc)
	rows, _ := structpb.NewList([]any{[]any{2.0, 3.0}})
	resp, err := c.Predict(context.Background(), &seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_Data{
		Data: &seldonpb.DefaultData{DataOneof: &seldonpb.DefaultData_Ndarray{Ndarray: rows}}}})
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.GetData().GetNdarray().AsSlice(); len(got) != 1 || got[0].([]any)[0] != 5.0 || got[0].([]any)[1] != 6.0 {
		t.Errorf("Predict answered %v, want [[5 6]]", got)
	}
	fb, err := c.SendFeedback(context.Background(), &seldonpb.Feedback{Response: resp, Reward: 1})
	if err != nil || fb.GetMeta().GetTags()["reward"].GetNumberValue() != 1 {
		t.Errorf("SendFeedback = %v, %v", fb, err)
	}
}
