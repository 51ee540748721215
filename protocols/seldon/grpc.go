package seldon

import (
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/grpc"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

// GRPC is how a Seldon model container is called over gRPC: a SeldonMessage goes to Model.Predict and
// a Feedback to Model.SendFeedback, both answered with a SeldonMessage. The sidecar serves a single
// MODEL node, so the other services' inputs (a SeldonMessageList for a combiner) are not requests it
// takes. Seldon's servers have no readiness RPC of their own; the client asks the gRPC health service.
var GRPC = grpc.Protocol{
	Name: protocols.Seldon,
	Methods: []grpc.Method{
		{
			FullMethod: seldonpb.Model_Predict_FullMethodName,
			Request:    (*seldonpb.SeldonMessage)(nil).ProtoReflect().Type(),
			Response:   (*seldonpb.SeldonMessage)(nil).ProtoReflect().Type(),
		},
		{
			FullMethod: seldonpb.Model_SendFeedback_FullMethodName,
			Request:    (*seldonpb.Feedback)(nil).ProtoReflect().Type(),
			Response:   (*seldonpb.SeldonMessage)(nil).ProtoReflect().Type(),
		},
	},
}
