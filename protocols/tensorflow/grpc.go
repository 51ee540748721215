package tensorflow

import (
	"slices"

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
			Prepare: func(m proto.Message, model string) proto.Message {
				r := m.(*tfpb.PredictRequest)
				if r.GetModelSpec().GetName() != "" {
					return r
				}
				c := grpc.ShallowCopy(r)
				c.ModelSpec = withName(r.ModelSpec, model)
				return c
			},
		},
		{
			FullMethod: tfpb.PredictionService_Classify_FullMethodName,
			Request:    (*tfpb.ClassificationRequest)(nil).ProtoReflect().Type(),
			Response:   (*tfpb.ClassificationResponse)(nil).ProtoReflect().Type(),
			Prepare: func(m proto.Message, model string) proto.Message {
				r := m.(*tfpb.ClassificationRequest)
				if r.GetModelSpec().GetName() != "" {
					return r
				}
				c := grpc.ShallowCopy(r)
				c.ModelSpec = withName(r.ModelSpec, model)
				return c
			},
		},
		{
			FullMethod: tfpb.PredictionService_Regress_FullMethodName,
			Request:    (*tfpb.RegressionRequest)(nil).ProtoReflect().Type(),
			Response:   (*tfpb.RegressionResponse)(nil).ProtoReflect().Type(),
			Prepare: func(m proto.Message, model string) proto.Message {
				r := m.(*tfpb.RegressionRequest)
				if r.GetModelSpec().GetName() != "" {
					return r
				}
				c := grpc.ShallowCopy(r)
				c.ModelSpec = withName(r.ModelSpec, model)
				return c
			},
		},
		{
			FullMethod: tfpb.PredictionService_MultiInference_FullMethodName,
			Request:    (*tfpb.MultiInferenceRequest)(nil).ProtoReflect().Type(),
			Response:   (*tfpb.MultiInferenceResponse)(nil).ProtoReflect().Type(),
			Prepare: func(m proto.Message, model string) proto.Message {
				r := m.(*tfpb.MultiInferenceRequest)
				if !slices.ContainsFunc(r.GetTasks(), func(t *tfpb.InferenceTask) bool { return t.GetModelSpec().GetName() == "" }) {
					return r
				}
				c := grpc.ShallowCopy(r)
				c.Tasks = make([]*tfpb.InferenceTask, len(r.Tasks))
				for i, t := range r.GetTasks() {
					if t.GetModelSpec().GetName() != "" {
						c.Tasks[i] = t
						continue
					}
					ct := grpc.ShallowCopy(t)
					ct.ModelSpec = withName(t.GetModelSpec(), model)
					c.Tasks[i] = ct
				}
				return c
			},
		},
	},
	// TF Serving has no transformer service: a transformer is a model whose output is the next request.
	TransformByPredict: true,
}

// withName is a copy of spec named model (spec itself is shared with other calls).
func withName(spec *tfpb.ModelSpec, model string) *tfpb.ModelSpec {
	c := &tfpb.ModelSpec{}
	if spec != nil {
		c = grpc.ShallowCopy(spec)
	}
	c.Name = model
	return c
}
