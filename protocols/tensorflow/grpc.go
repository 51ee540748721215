package tensorflow

import (
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/grpc"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
)

// GRPC is TensorFlow Serving's PredictionService: each request type goes to its RPC. A request whose
// model_spec has no name gets the graph node's, as the REST path carries it; TensorFlow Serving would
// refuse it otherwise. TensorFlow Serving has no readiness RPC in PredictionService; the client asks
// the gRPC health service.
var GRPC = grpc.Protocol{
	Name: protocols.Tensorflow,
	Methods: []grpc.Method{
		{
			FullMethod: tfpb.PredictionService_Predict_FullMethodName,
			Request:    (*tfpb.PredictRequest)(nil).ProtoReflect().Type(),
			Response:   (*tfpb.PredictResponse)(nil).ProtoReflect().Type(),
			Prepare: func(m proto.Message, model string) {
				r := m.(*tfpb.PredictRequest)
				r.ModelSpec = withName(r.ModelSpec, model)
			},
		},
		{
			FullMethod: tfpb.PredictionService_Classify_FullMethodName,
			Request:    (*tfpb.ClassificationRequest)(nil).ProtoReflect().Type(),
			Response:   (*tfpb.ClassificationResponse)(nil).ProtoReflect().Type(),
			Prepare: func(m proto.Message, model string) {
				r := m.(*tfpb.ClassificationRequest)
				r.ModelSpec = withName(r.ModelSpec, model)
			},
		},
		{
			FullMethod: tfpb.PredictionService_Regress_FullMethodName,
			Request:    (*tfpb.RegressionRequest)(nil).ProtoReflect().Type(),
			Response:   (*tfpb.RegressionResponse)(nil).ProtoReflect().Type(),
			Prepare: func(m proto.Message, model string) {
				r := m.(*tfpb.RegressionRequest)
				r.ModelSpec = withName(r.ModelSpec, model)
			},
		},
		{
			FullMethod: tfpb.PredictionService_MultiInference_FullMethodName,
			Request:    (*tfpb.MultiInferenceRequest)(nil).ProtoReflect().Type(),
			Response:   (*tfpb.MultiInferenceResponse)(nil).ProtoReflect().Type(),
			Prepare: func(m proto.Message, model string) {
				for _, t := range m.(*tfpb.MultiInferenceRequest).GetTasks() {
					if t != nil {
						t.ModelSpec = withName(t.ModelSpec, model)
					}
				}
			},
		},
	},
}

// withName returns spec with its name set to model when it has none.
func withName(spec *tfpb.ModelSpec, model string) *tfpb.ModelSpec {
	if spec == nil {
		spec = &tfpb.ModelSpec{}
	}
	if spec.Name == "" {
		spec.Name = model
	}
	return spec
}
