package seldon

import (
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/grpc"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

// GRPC is how a Seldon graph node is called over gRPC, with the services the legacy executor calls: a
// record's SeldonMessage goes to Model.Predict and a Feedback to Model.SendFeedback; inside a graph a
// transformer's Transformer.TransformInput, an output transformer's OutputTransformer.TransformOutput,
// a router's Router.Route and a combiner's Combiner.Aggregate (a SeldonMessageList of its children's
// answers). Seldon's servers have no readiness RPC of their own; the client asks the gRPC health service.
var GRPC = grpc.Protocol{
	Name: protocols.Seldon,
	Methods: []grpc.Method{
		{
			FullMethod: seldonpb.Model_Predict_FullMethodName,
			Request:    message,
			Response:   message,
		},
		{
			FullMethod: seldonpb.Model_SendFeedback_FullMethodName,
			Request:    (*seldonpb.Feedback)(nil).ProtoReflect().Type(),
			Response:   message,
		},
		{
			Node:       protocols.TransformInput,
			FullMethod: seldonpb.Transformer_TransformInput_FullMethodName,
			Request:    message,
			Response:   message,
		},
		{
			Node:       protocols.TransformOutput,
			FullMethod: seldonpb.OutputTransformer_TransformOutput_FullMethodName,
			Request:    message,
			Response:   message,
		},
		{
			Node:       protocols.Route,
			FullMethod: seldonpb.Router_Route_FullMethodName,
			Request:    message,
			Response:   message,
		},
		{
			Node:       protocols.Aggregate,
			FullMethod: seldonpb.Combiner_Aggregate_FullMethodName,
			Request:    (*seldonpb.SeldonMessageList)(nil).ProtoReflect().Type(),
			Response:   message,
		},
	},
}

var message = (*seldonpb.SeldonMessage)(nil).ProtoReflect().Type()
