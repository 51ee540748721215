package v2

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/grpc"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// GRPC is the Open Inference Protocol's GRPCInferenceService: a ModelInferRequest goes to ModelInfer,
// with model_name defaulted to the graph node's name when the request leaves it empty. Readiness is
// the protocol's own: ModelReady for the node's model, or ServerReady on a server without it.
var GRPC = grpc.Protocol{
	Name: protocols.V2,
	Methods: []grpc.Method{{
		FullMethod: v2pb.GRPCInferenceService_ModelInfer_FullMethodName,
		Request:    (*v2pb.ModelInferRequest)(nil).ProtoReflect().Type(),
		Response:   (*v2pb.ModelInferResponse)(nil).ProtoReflect().Type(),
		Prepare: func(m proto.Message, model string) proto.Message {
			r := m.(*v2pb.ModelInferRequest)
			if r.ModelName != "" {
				return r
			}
			c := grpc.ShallowCopy(r)
			c.ModelName = model
			return c
		},
	}},
	Ready: ready,
	// v2 has no transformer service: a transformer is a model whose output is the next request.
	TransformByPredict: true,
}

func ready(ctx context.Context, cc grpc.Conn, model string) error {
	c := v2pb.NewGRPCInferenceServiceClient(cc)
	mr, err := c.ModelReady(ctx, &v2pb.ModelReadyRequest{Name: model})
	if err == nil {
		if !mr.GetReady() {
			return fmt.Errorf("model %s is not ready (ModelReady)", model)
		}
		return nil
	}
	if status.Code(err) != codes.Unimplemented {
		return err
	}
	sr, err := c.ServerReady(ctx, &v2pb.ServerReadyRequest{})
	if err != nil {
		return err // Unimplemented too: the caller falls back to other checks
	}
	if !sr.GetReady() {
		return errors.New("server is not ready (ServerReady)")
	}
	return nil
}
