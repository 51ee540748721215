package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/seldon-kafka/sidecar/internal/testmodel"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// The codecs against the test model's own answer functions: a batch merged, answered by the model in
// one call and cut back must give each record exactly what the model answers it alone.

// model answers a request as the test model would, over the codec's transport.
type model func(req *protocols.Request) (*protocols.Response, error)

func restModel(answer func([]byte) ([]byte, error)) model {
	return func(req *protocols.Request) (*protocols.Response, error) {
		body, err := answer(req.Body)
		return &protocols.Response{Body: body, ContentType: "application/json"}, err
	}
}

func grpcModel[Req, Resp proto.Message](answer func(Req) (Resp, error)) model {
	return func(req *protocols.Request) (*protocols.Response, error) {
		out, err := answer(req.Decoded.(Req))
		return &protocols.Response{Decoded: out, ContentType: "application/x-protobuf",
			ProtoName: string(out.ProtoReflect().Descriptor().FullName())}, err
	}
}

var (
	seldonRESTModel = restModel(func(b []byte) ([]byte, error) { return testmodel.SeldonPredict("m", b) })
	tfRESTModel     = restModel(testmodel.TensorflowPredict)
	v2RESTModel     = restModel(func(b []byte) ([]byte, error) { return testmodel.V2Infer("m", b) })
	seldonGRPCModel = grpcModel(func(r *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
		return testmodel.SeldonPredictProto("m", r)
	})
	tfGRPCModel = grpcModel(func(r *tfpb.PredictRequest) (*tfpb.PredictResponse, error) {
		return testmodel.TensorflowPredictProto("m", r)
	})
	v2GRPCModel = grpcModel(func(r *v2pb.ModelInferRequest) (*v2pb.ModelInferResponse, error) {
		return testmodel.V2InferProto("m", r)
	})
)

func jsonReqs(bodies ...string) []*protocols.Request {
	out := make([]*protocols.Request, len(bodies))
	for i, b := range bodies {
		out[i] = &protocols.Request{Body: []byte(b)}
	}
	return out
}

func protoReqs(msgs ...proto.Message) []*protocols.Request {
	out := make([]*protocols.Request, len(msgs))
	for i, m := range msgs {
		out[i] = &protocols.Request{Decoded: m, ProtoName: string(m.ProtoReflect().Descriptor().FullName())}
	}
	return out
}

func ndarrayMsg(rows ...[]any) *seldonpb.SeldonMessage {
	l, err := structpb.NewList(func() []any {
		out := make([]any, len(rows))
		for i, r := range rows {
			out[i] = r
		}
		return out
	}())
	if err != nil {
		panic(err)
	}
	return &seldonpb.SeldonMessage{DataOneof: ndarray([]string{"a", "b"}, l.Values)}
}

func tfFloats(rows int, vals ...float32) *tfpb.PredictRequest {
	return &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "m"}, Inputs: map[string]*tfpb.TensorProto{
		"x": {Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(rows, len(vals)/rows), FloatVal: vals},
		"y": {Dtype: tfpb.DataType_DT_INT32, TensorShape: shape(rows, 1), TensorContent: int32LE(make([]int32, rows)...)},
	}}
}

func shape(dims ...int) *tfpb.TensorShapeProto {
	s := &tfpb.TensorShapeProto{}
	for _, d := range dims {
		s.Dim = append(s.Dim, &tfpb.TensorShapeProto_Dim{Size: int64(d)})
	}
	return s
}

func int32LE(vs ...int32) []byte {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(v))
	}
	return b
}

func v2Typed(id string, rows int, vals ...float32) *v2pb.ModelInferRequest {
	return &v2pb.ModelInferRequest{Id: id, Inputs: []*v2pb.ModelInferRequest_InferInputTensor{{
		Name: "x", Datatype: "FP32", Shape: []int64{int64(rows), int64(len(vals) / rows)},
		Contents: &v2pb.InferTensorContents{Fp32Contents: vals},
	}}}
}

func v2Raw(id string, rows int, vals ...int32) *v2pb.ModelInferRequest {
	per := int64(len(vals) / rows)
	return &v2pb.ModelInferRequest{Id: id, Inputs: []*v2pb.ModelInferRequest_InferInputTensor{
		{Name: "x", Datatype: "INT32", Shape: []int64{int64(rows), per}},
		{Name: "y", Datatype: "FP64", Shape: []int64{int64(rows)}},
	}, RawInputContents: [][]byte{int32LE(vals...), make([]byte, 8*rows)}}
}

func TestABatchCutBackGivesEachRecordItsAnswerAlone(t *testing.T) {
	tests := []struct {
		name  string
		codec codec
		model model
		reqs  []*protocols.Request
		rows  []int
	}{
		{"seldon ndarray", seldonREST{}, seldonRESTModel, jsonReqs(
			`{"data":{"names":["a","b"],"ndarray":[[1,2]]}}`,
			`{"data":{"names":["a","b"],"ndarray":[[3,4],[5,6]]}}`,
			`{"data":{"names":["a","b"],"ndarray":[[7,8],[9,10],[11,12]]}}`), []int{1, 2, 3}},
		{"seldon ndarray with the same meta", seldonREST{}, seldonRESTModel, jsonReqs(
			`{"meta":{"tags":{"t":"x"}}, "data": {"ndarray": [ [1.5, 2] ] } }`,
			`{"meta":{"tags":{"t":"x"}}, "data": {"ndarray": [ [3, 4e2] , [5,6]] } }`), []int{1, 2}},
		{"tensorflow instances", tensorflowREST{}, tfRESTModel, jsonReqs(
			`{"instances":[[1,2]]}`, `{"instances":[[3,4],[5,6]]}`, `{"instances":[[7,8]]}`), []int{1, 2, 1}},
		{"tensorflow instances of named inputs", tensorflowREST{}, tfRESTModel, jsonReqs(
			`{"signature_name":"s","instances":[{"a":[1,2],"b":3}]}`,
			`{"signature_name":"s","instances":[{"a":[4,5],"b":6},{"a":[7,8],"b":9}]}`), []int{1, 2}},
		{"v2 flat data", v2REST{}, v2RESTModel, jsonReqs(
			`{"id":"r1","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`,
			`{"id":"r2","inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[3,4,5,6]}]}`), []int{1, 2}},
		{"v2 data nested by row, no ids", v2REST{}, v2RESTModel, jsonReqs(
			`{"inputs":[{"name":"x","shape":[2,3],"datatype":"INT64","data":[[1,2,3],[4,5,6]]}]}`,
			`{"inputs":[{"name":"x","shape":[1,3],"datatype":"INT64","data":[[7,8,9]]}]}`), []int{2, 1}},
		{"v2 two inputs of three dimensions", v2REST{}, v2RESTModel, jsonReqs(
			`{"id":"a","inputs":[{"name":"x","shape":[1,2,2],"datatype":"INT32","data":[1,2,3,4]},{"name":"y","shape":[1],"datatype":"FP64","data":[0.5]}],"outputs":[{"name":"x_doubled"}]}`,
			`{"id":"b","inputs":[{"name":"x","shape":[2,2,2],"datatype":"INT32","data":[5,6,7,8,9,10,11,12]},{"name":"y","shape":[2],"datatype":"FP64","data":[1.5,2.5]}],"outputs":[{"name":"x_doubled"}]}`),
			[]int{1, 2}},
		{"seldon gRPC ndarray", seldonGRPC{}, seldonGRPCModel, protoReqs(
			ndarrayMsg([]any{1.0, 2.0}), ndarrayMsg([]any{3.0, 4.0}, []any{5.0, 6.0})), []int{1, 2}},
		{"tensorflow gRPC float_val and tensor_content", tensorflowGRPC{}, tfGRPCModel, protoReqs(
			tfFloats(1, 1, 2), tfFloats(3, 3, 4, 5, 6, 7, 8), tfFloats(1, 9, 10)), []int{1, 3, 1}},
		{"v2 gRPC typed contents", v2GRPC{}, v2GRPCModel, protoReqs(
			v2Typed("r1", 1, 1, 2), v2Typed("r2", 2, 3, 4, 5, 6)), []int{1, 2}},
		{"v2 gRPC raw contents", v2GRPC{}, v2GRPCModel, protoReqs(
			v2Raw("r1", 2, 1, 2, 3, 4), v2Raw("r2", 1, 5, 6)), []int{2, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			parts := make([]part, len(tc.reqs))
			for i, r := range tc.reqs {
				p, ok := tc.codec.read(r)
				if !ok {
					t.Fatalf("request %d cannot be merged", i)
				}
				if p.rows != tc.rows[i] {
					t.Errorf("request %d: %d rows, want %d", i, p.rows, tc.rows[i])
				}
				if i > 0 && p.key != parts[0].key {
					t.Fatalf("request %d's key differs from request 0's:\n%q\n%q", i, p.key, parts[0].key)
				}
				parts[i] = p
			}
			batch, err := tc.model(tc.codec.merge(parts))
			if err != nil {
				t.Fatalf("the model refuses the batch: %v", err)
			}
			outs, err := tc.codec.split(batch, parts)
			if err != nil {
				t.Fatalf("split: %v", err)
			}
			if len(outs) != len(tc.reqs) {
				t.Fatalf("%d answers for %d requests", len(outs), len(tc.reqs))
			}
			for i, r := range tc.reqs {
				alone, err := tc.model(r)
				if err != nil {
					t.Fatalf("the model refuses request %d: %v", i, err)
				}
				if outs[i].ContentType != alone.ContentType || outs[i].ProtoName != alone.ProtoName {
					t.Errorf("request %d: answer of type %q %q, alone %q %q", i, outs[i].ContentType, outs[i].ProtoName,
						alone.ContentType, alone.ProtoName)
				}
				if alone.Decoded != nil {
					if !proto.Equal(outs[i].Decoded.(proto.Message), alone.Decoded.(proto.Message)) {
						t.Errorf("request %d:\n got %v\nwant %v", i, outs[i].Decoded, alone.Decoded)
					}
				} else if string(outs[i].Body) != string(alone.Body) {
					t.Errorf("request %d:\n got %s\nwant %s", i, outs[i].Body, alone.Body)
				}
			}
		})
	}
}

func TestRequestsThatCannotBeMergedAreCalledAlone(t *testing.T) {
	withParams := v2Typed("r", 1, 1, 2)
	withParams.Parameters = map[string]*v2pb.InferParameter{"p": {}}
	inputParams := v2Typed("r", 1, 1, 2)
	inputParams.Inputs[0].Parameters = map[string]*v2pb.InferParameter{"p": {}}
	broadcast := tfFloats(2, 1, 2, 3, 4)
	broadcast.Inputs["x"].FloatVal = []float32{0} // one value for every element
	unknownRank := tfFloats(1, 1, 2)
	unknownRank.Inputs["x"].TensorShape.UnknownRank = true
	tensor := &seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_Data{Data: &seldonpb.DefaultData{
		DataOneof: &seldonpb.DefaultData_Tensor{Tensor: &seldonpb.Tensor{Shape: []int32{1, 2}, Values: []float64{1, 2}}}}}}
	tests := []struct {
		name  string
		codec codec
		req   *protocols.Request
	}{
		{"seldon tensor", seldonREST{}, jsonReqs(`{"data":{"tensor":{"shape":[1,2],"values":[1,2]}}}`)[0]},
		{"seldon strData", seldonREST{}, jsonReqs(`{"strData":"hello"}`)[0]},
		{"seldon jsonData", seldonREST{}, jsonReqs(`{"jsonData":{"a":1}}`)[0]},
		{"seldon 1-D ndarray", seldonREST{}, jsonReqs(`{"data":{"ndarray":[1,2,3]}}`)[0]},
		{"seldon empty ndarray", seldonREST{}, jsonReqs(`{"data":{"ndarray":[]}}`)[0]},
		{"seldon ndarray and tensor", seldonREST{}, jsonReqs(`{"data":{"ndarray":[[1]],"tensor":{"shape":[1],"values":[1]}}}`)[0]},
		{"data given twice", seldonREST{}, jsonReqs(`{"data":{"ndarray":[[1]]},"data":{"ndarray":[[2]]}}`)[0]},
		{"not JSON", seldonREST{}, jsonReqs(`{"data":{"ndarray":[[1]]}`)[0]},
		{"trailing bytes", seldonREST{}, jsonReqs(`{"data":{"ndarray":[[1]]}} {}`)[0]},
		{"another content type", seldonREST{}, &protocols.Request{Body: []byte(`{"data":{"ndarray":[[1]]}}`), ContentType: "text/plain"}},
		{"tensorflow columnar inputs", tensorflowREST{}, jsonReqs(`{"inputs":{"x":[[1,2]]}}`)[0]},
		{"tensorflow instances and inputs", tensorflowREST{}, jsonReqs(`{"instances":[[1]],"inputs":[[1]]}`)[0]},
		{"v2 parameters", v2REST{}, jsonReqs(`{"parameters":{"content_type":"np"},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`)[0]},
		{"v2 input parameters", v2REST{}, jsonReqs(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1],"parameters":{"content_type":"np"}}]}`)[0]},
		{"v2 inputs of different rows", v2REST{}, jsonReqs(`{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"y","shape":[2],"datatype":"FP32","data":[1,2]}]}`)[0]},
		{"v2 data not matching its shape", v2REST{}, jsonReqs(`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[1,2,3]}]}`)[0]},
		{"v2 shape of no rows", v2REST{}, jsonReqs(`{"inputs":[{"name":"x","shape":[0,2],"datatype":"FP32","data":[]}]}`)[0]},
		{"v2 scalar", v2REST{}, jsonReqs(`{"inputs":[{"name":"x","shape":[],"datatype":"FP32","data":[1]}]}`)[0]},
		{"v2 binary tensor request", v2REST{}, &protocols.Request{Body: []byte("{}\x00\x01"), ContentType: "application/octet-stream"}},
		{"seldon gRPC tensor", seldonGRPC{}, protoReqs(tensor)[0]},
		{"seldon gRPC strData", seldonGRPC{}, protoReqs(&seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_StrData{StrData: "x"}})[0]},
		{"seldon gRPC feedback", seldonGRPC{}, protoReqs(&seldonpb.Feedback{Request: ndarrayMsg([]any{1.0})})[0]},
		{"tensorflow gRPC one value for all elements", tensorflowGRPC{}, protoReqs(broadcast)[0]},
		{"tensorflow gRPC unknown rank", tensorflowGRPC{}, protoReqs(unknownRank)[0]},
		{"tensorflow gRPC classification", tensorflowGRPC{}, protoReqs(&tfpb.ClassificationRequest{})[0]},
		{"v2 gRPC parameters", v2GRPC{}, protoReqs(withParams)[0]},
		{"v2 gRPC input parameters", v2GRPC{}, protoReqs(inputParams)[0]},
		{"v2 gRPC raw contents short of the shape", v2GRPC{}, protoReqs(func() proto.Message {
			r := v2Raw("r", 2, 1, 2, 3, 4)
			r.RawInputContents[0] = r.RawInputContents[0][:12]
			return r
		}())[0]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if p, ok := tc.codec.read(tc.req); ok {
				t.Errorf("read as mergeable, %d rows, key %q", p.rows, p.key)
			}
		})
	}
}

func TestRequestsOfDifferentShapesGoToDifferentBatches(t *testing.T) {
	v2 := func(name, dtype, shape, data string) string {
		return fmt.Sprintf(`{"inputs":[{"name":%q,"shape":%s,"datatype":%q,"data":%s}]}`, name, shape, dtype, data)
	}
	tests := []struct {
		name  string
		codec codec
		a, b  *protocols.Request
		same  bool
	}{
		{"seldon: rows of other widths", seldonREST{}, jsonReqs(`{"data":{"ndarray":[[1,2]]}}`)[0], jsonReqs(`{"data":{"ndarray":[[1,2,3]]}}`)[0], false},
		{"seldon: other names", seldonREST{}, jsonReqs(`{"data":{"names":["a"],"ndarray":[[1]]}}`)[0], jsonReqs(`{"data":{"names":["b"],"ndarray":[[1]]}}`)[0], false},
		{"seldon: other meta", seldonREST{}, jsonReqs(`{"meta":{"puid":"1"},"data":{"ndarray":[[1]]}}`)[0], jsonReqs(`{"meta":{"puid":"2"},"data":{"ndarray":[[1]]}}`)[0], false},
		{"seldon: other row counts", seldonREST{}, jsonReqs(`{"data":{"ndarray":[[1]]}}`)[0], jsonReqs(`{"data":{"ndarray":[[1],[2]]}}`)[0], true},
		{"tensorflow: strings and numbers", tensorflowREST{}, jsonReqs(`{"instances":[["a"]]}`)[0], jsonReqs(`{"instances":[[1]]}`)[0], false},
		{"tensorflow: other signatures", tensorflowREST{}, jsonReqs(`{"signature_name":"a","instances":[[1]]}`)[0], jsonReqs(`{"signature_name":"b","instances":[[1]]}`)[0], false},
		{"v2: other datatypes", v2REST{}, jsonReqs(v2("x", "FP32", "[1,2]", "[1,2]"))[0], jsonReqs(v2("x", "FP64", "[1,2]", "[1,2]"))[0], false},
		{"v2: other input names", v2REST{}, jsonReqs(v2("x", "FP32", "[1,2]", "[1,2]"))[0], jsonReqs(v2("y", "FP32", "[1,2]", "[1,2]"))[0], false},
		{"v2: other dimensions beyond the first", v2REST{}, jsonReqs(v2("x", "FP32", "[1,2]", "[1,2]"))[0], jsonReqs(v2("x", "FP32", "[2,1]", "[1,2]"))[0], false},
		{"v2: flat and nested data", v2REST{}, jsonReqs(v2("x", "FP32", "[1,2]", "[1,2]"))[0], jsonReqs(v2("x", "FP32", "[1,2]", "[[1,2]]"))[0], false},
		{"v2: other first dimensions", v2REST{}, jsonReqs(v2("x", "FP32", "[1,2]", "[1,2]"))[0], jsonReqs(v2("x", "FP32", "[3,2]", "[1,2,3,4,5,6]"))[0], true},
		{"v2 gRPC: typed and raw contents", v2GRPC{}, protoReqs(v2Typed("r", 1, 1))[0], protoReqs(func() proto.Message {
			r := v2Typed("r", 1, 1)
			r.Inputs[0].Contents = nil
			r.RawInputContents = [][]byte{make([]byte, 4)}
			return r
		}())[0], false},
		{"v2 gRPC: with an id and without", v2GRPC{}, protoReqs(v2Typed("r", 1, 1))[0], protoReqs(v2Typed("", 1, 1))[0], false},
		{"v2 gRPC: other ids", v2GRPC{}, protoReqs(v2Typed("a", 1, 1))[0], protoReqs(v2Typed("b", 2, 1, 2))[0], true},
		{"tensorflow gRPC: other widths", tensorflowGRPC{}, protoReqs(tfFloats(1, 1, 2))[0], protoReqs(tfFloats(1, 1, 2, 3))[0], false},
		{"seldon gRPC: other row widths", seldonGRPC{}, protoReqs(ndarrayMsg([]any{1.0}))[0], protoReqs(ndarrayMsg([]any{1.0, 2.0}))[0], false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, okA := tc.codec.read(tc.a)
			b, okB := tc.codec.read(tc.b)
			if !okA || !okB {
				t.Fatalf("mergeable: %v and %v, want both", okA, okB)
			}
			if (a.key == b.key) != tc.same {
				t.Errorf("same key: %v, want %v\n%q\n%q", a.key == b.key, tc.same, a.key, b.key)
			}
		})
	}
}

func TestAnAnswerWithoutTheRowsSentIsAMismatch(t *testing.T) {
	two := func(c codec, reqs []*protocols.Request) []part {
		var parts []part
		for _, r := range reqs {
			p, ok := c.read(r)
			if !ok {
				t.Fatalf("%T cannot read %v", c, r)
			}
			parts = append(parts, p)
		}
		return parts
	}
	json := func(body string) *protocols.Response {
		return &protocols.Response{Body: []byte(body), ContentType: "application/json"}
	}
	seldonReqs := jsonReqs(`{"data":{"ndarray":[[1]]}}`, `{"data":{"ndarray":[[2]]}}`)
	tfReqs := jsonReqs(`{"instances":[[1]]}`, `{"instances":[[2]]}`)
	v2Reqs := jsonReqs(`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`,
		`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[3,4]}]}`)
	tests := []struct {
		name   string
		codec  codec
		reqs   []*protocols.Request
		answer *protocols.Response
	}{
		{"seldon: one row for two", seldonREST{}, seldonReqs, json(`{"data":{"ndarray":[[1]]}}`)},
		{"seldon: a tensor", seldonREST{}, seldonReqs, json(`{"data":{"tensor":{"shape":[2,1],"values":[1,2]}}}`)},
		{"seldon: strData", seldonREST{}, seldonReqs, json(`{"strData":"2 rows"}`)},
		{"seldon: not JSON", seldonREST{}, seldonReqs, &protocols.Response{Body: []byte("ok"), ContentType: "text/plain"}},
		{"tensorflow: three rows for two", tensorflowREST{}, tfReqs, json(`{"predictions":[1,2,3]}`)},
		{"tensorflow: no predictions", tensorflowREST{}, tfReqs, json(`{"outputs":[1,2]}`)},
		{"v2: shape[0] of another batch", v2REST{}, v2Reqs, json(`{"outputs":[{"name":"y","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}`)},
		{"v2: data short of the shape", v2REST{}, v2Reqs, json(`{"outputs":[{"name":"y","shape":[2,2],"datatype":"FP32","data":[1,2,3]}]}`)},
		{"v2: a scalar output", v2REST{}, v2Reqs, json(`{"outputs":[{"name":"y","shape":[],"datatype":"FP32","data":[1]}]}`)},
		{"seldon gRPC: one row for two", seldonGRPC{}, protoReqs(ndarrayMsg([]any{1.0}), ndarrayMsg([]any{2.0})),
			&protocols.Response{Decoded: ndarrayMsg([]any{1.0})}},
		{"tensorflow gRPC: one row for two", tensorflowGRPC{}, protoReqs(tfFloats(1, 1), tfFloats(1, 2)),
			&protocols.Response{Decoded: &tfpb.PredictResponse{Outputs: map[string]*tfpb.TensorProto{
				"x": {Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(1, 1), FloatVal: []float32{1}}}}}},
		{"v2 gRPC: contents short of the shape", v2GRPC{}, protoReqs(v2Typed("", 1, 1), v2Typed("", 1, 2)),
			&protocols.Response{Decoded: &v2pb.ModelInferResponse{Outputs: []*v2pb.ModelInferResponse_InferOutputTensor{{
				Name: "y", Datatype: "FP32", Shape: []int64{2, 1}, Contents: &v2pb.InferTensorContents{Fp32Contents: []float32{math.Pi}}}}}}},
		{"v2 gRPC: a ModelInferRequest answered", v2GRPC{}, protoReqs(v2Typed("", 1, 1), v2Typed("", 1, 2)),
			&protocols.Response{Decoded: v2Typed("", 2, 1, 2)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outs, err := tc.codec.split(tc.answer, two(tc.codec, tc.reqs))
			if !errors.Is(err, errMismatch) {
				t.Errorf("split = %d answers, %v; want a mismatch", len(outs), err)
			}
		})
	}
}

func TestRawBytesElementsAreCutAtTheirLengths(t *testing.T) {
	elem := func(s string) []byte {
		return append(binary.LittleEndian.AppendUint32(nil, uint32(len(s))), s...)
	}
	b := append(append(elem("ab"), elem("")...), elem("cde")...)
	ends, ok := rawCuts("BYTES", b, []int{1, 2})
	if !ok || len(ends) != 2 || ends[0] != 6 || ends[1] != len(b) {
		t.Errorf("rawCuts = %v, %v; want [6 %d]", ends, ok, len(b))
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(b, 0), b[:3]} {
		if _, ok := rawCuts("BYTES", bad, []int{3}); ok {
			t.Errorf("rawCuts accepts %d bytes as 3 elements", len(bad))
		}
	}
	if _, ok := rawCuts("STRING", b, []int{3}); ok {
		t.Error("rawCuts accepts an unknown datatype")
	}
}
