package testmodel

import (
	"context"
	"net"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// The gRPC side of the test model serves, on its own listener (ServeGRPC):
//
//	seldon      seldon.protos.Model/Predict, /SendFeedback, /Metadata
//	            seldon.protos.Transformer/TransformInput, seldon.protos.OutputTransformer/TransformOutput,
//	            seldon.protos.Router/Route, /SendFeedback, seldon.protos.Combiner/Aggregate
//	tensorflow  tensorflow.serving.PredictionService/Predict, /Classify, /Regress, /MultiInference
//	v2          inference.GRPCInferenceService/ModelInfer, /ModelReady, /ServerReady, /ServerLive,
//	            /ServerMetadata, /ModelMetadata
//	health      grpc.health.v1.Health/Check: NOT_SERVING while SetNotReady(true)
//
// Infer RPCs go through the same fault pipeline as the REST routes; an HTTP status becomes the gRPC
// code a gRPC server would answer instead (see grpcCode): 503 Unavailable, 429 ResourceExhausted,
// 400 InvalidArgument, 404 NotFound, 500 Internal, and so on; the fail-node tag is Internal. A call whose
// client gives up while delayed or slowed by the slow-node tag is Canceled or, past its deadline,
// DeadlineExceeded. The seldon services answer as their REST
// routes do (see SeldonTransformInputProto and its siblings); the tensorflow Predict and v2 ModelInfer
// apply the server's Role. The Reject hook sees the request's
// protobuf encoding, so a string in the request (an input name, an id) can trigger it. A bad request
// is InvalidArgument; a request for another model is NotFound and, as over REST, not an infer call.

// GRPCServer returns the server's gRPC server, with every service registered, creating it on first
// use. Serve it with ServeGRPC, or register more services on it first.
func (s *Server) GRPCServer() *grpc.Server {
	s.grpcOnce.Do(func() {
		// As large as a REST body may be (gRPC's default is 4 MiB): tests send tens of megabytes.
		g := grpc.NewServer(grpc.MaxRecvMsgSize(maxBody), grpc.MaxSendMsgSize(maxBody))
		seldonpb.RegisterModelServer(g, seldonModel{s: s})
		seldonpb.RegisterTransformerServer(g, seldonTransformer{s: s})
		seldonpb.RegisterOutputTransformerServer(g, seldonOutputTransformer{s: s})
		seldonpb.RegisterRouterServer(g, seldonRouter{s: s})
		seldonpb.RegisterCombinerServer(g, seldonCombiner{s: s})
		tfpb.RegisterPredictionServiceServer(g, tensorflowService{s: s})
		v2pb.RegisterGRPCInferenceServiceServer(g, v2Service{s: s})
		healthpb.RegisterHealthServer(g, healthService{s: s})
		s.grpcSrv.Store(g)
	})
	return s.grpcSrv.Load()
}

// ServeGRPC serves the gRPC services on ln until Shutdown or Close.
func (s *Server) ServeGRPC(ln net.Listener) error { return s.GRPCServer().Serve(ln) }

// stopGRPC stops the gRPC server, if there is one, letting calls in flight finish until ctx ends.
func (s *Server) stopGRPC(ctx context.Context) {
	g := s.grpcSrv.Load()
	if g == nil {
		return
	}
	done := make(chan struct{})
	go func() { g.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		g.Stop()
	}
}

// closeGRPC stops the gRPC server, if there is one, at once.
func (s *Server) closeGRPC() {
	if g := s.grpcSrv.Load(); g != nil {
		g.Stop()
	}
}

// serveGRPC runs one gRPC infer call through the fault pipeline documented on Server, then answer.
func serveGRPC[Req, Resp proto.Message](s *Server, ctx context.Context, req Req, answer func(Req) (Resp, error)) (Resp, error) {
	return serveGRPCNode(s, ctx, req, nil, answer)
}

// serveGRPCNode is serveGRPC with the per-request tags of a seldon node, which triggers reads from the
// request (nil: none).
func serveGRPCNode[Req, Resp proto.Message](s *Server, ctx context.Context, req Req, triggers func(Req) nodeTriggers, answer func(Req) (Resp, error)) (Resp, error) {
	var zero Resp
	leave := s.enter()
	defer leave()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		s.noteTrace(first(md.Get("seldon-puid")), first(md.Get("traceparent")))
	}
	if !s.wait(ctx) {
		return zero, givenUp(ctx, "request cancelled while delayed or hanging")
	}
	if st, msg, failed := s.fault(); failed {
		return zero, status.Error(grpcCode(st), msg)
	}
	if s.reject != nil {
		body, err := proto.MarshalOptions{Deterministic: true}.Marshal(req)
		if err != nil {
			return zero, status.Errorf(codes.Internal, "encode request for the reject hook: %v", err)
		}
		if st, rejected := s.reject(body); rejected {
			return zero, status.Error(grpcCode(validStatus(st)), "rejected by test hook")
		}
	}
	if triggers != nil {
		if st, msg, failed := s.nodeFault(ctx, triggers(req)); failed {
			if st == http.StatusServiceUnavailable && ctx.Err() != nil {
				return zero, givenUp(ctx, msg)
			}
			return zero, status.Error(grpcCode(st), msg)
		}
	}
	out, err := answer(req)
	if err != nil {
		return zero, status.Error(codes.InvalidArgument, err.Error())
	}
	s.served.Add(1)
	return out, nil
}

func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}

// givenUp is the answer to a call its client gave up on while it waited: the context's own code, as
// grpc-go says it, so that it matches the client's whichever reaches the client first (the server's
// copy of the deadline can fire before the client's).
func givenUp(ctx context.Context, msg string) error {
	return status.Error(status.FromContextError(ctx.Err()).Code(), msg)
}

// grpcCode is the code a gRPC server answers where an HTTP server would answer status; the mapping
// is the inverse of gRPC's own HTTP-to-gRPC table where it has one.
func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return codes.InvalidArgument
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusNotFound:
		return codes.NotFound
	case http.StatusConflict:
		return codes.Aborted
	case http.StatusPreconditionFailed:
		return codes.FailedPrecondition
	case http.StatusRequestTimeout, http.StatusGatewayTimeout:
		return codes.DeadlineExceeded
	case http.StatusTooManyRequests:
		return codes.ResourceExhausted
	case http.StatusNotImplemented:
		return codes.Unimplemented
	case http.StatusServiceUnavailable, http.StatusBadGateway:
		return codes.Unavailable
	}
	if status >= 400 && status < 500 {
		return codes.FailedPrecondition
	}
	return codes.Internal
}

type seldonModel struct {
	seldonpb.UnimplementedModelServer
	s *Server
}

func (m seldonModel) Predict(ctx context.Context, req *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	return serveGRPCNode(m.s, ctx, req, m.s.seldonProtoTriggers, func(r *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
		return SeldonPredictProtoWithImage(m.s.model, m.s.image, r)
	})
}

func (m seldonModel) SendFeedback(ctx context.Context, req *seldonpb.Feedback) (*seldonpb.SeldonMessage, error) {
	return serveGRPC(m.s, ctx, req, func(r *seldonpb.Feedback) (*seldonpb.SeldonMessage, error) {
		return seldonFeedback(m.s.model, m.s.image, r)
	})
}

func (m seldonModel) Metadata(context.Context, *emptypb.Empty) (*seldonpb.SeldonModelMetadata, error) {
	return &seldonpb.SeldonModelMetadata{Name: m.s.model, Versions: []string{modelVersion}, Platform: "testmodel"}, nil
}

// seldonProtoTriggers reads the fault tags naming this server's node from a SeldonMessage.
func (s *Server) seldonProtoTriggers(msg *seldonpb.SeldonMessage) nodeTriggers {
	tags := msg.GetMeta().GetTags()
	return nodeTriggers{
		slow: tags[SlowNodeTag].GetStringValue() == s.model,
		fail: tags[FailNodeTag].GetStringValue() == s.model,
	}
}

type seldonTransformer struct {
	seldonpb.UnimplementedTransformerServer
	s *Server
}

func (t seldonTransformer) TransformInput(ctx context.Context, req *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	return serveGRPCNode(t.s, ctx, req, t.s.seldonProtoTriggers, func(r *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
		return SeldonTransformInputProto(t.s.model, t.s.image, r)
	})
}

type seldonOutputTransformer struct {
	seldonpb.UnimplementedOutputTransformerServer
	s *Server
}

func (t seldonOutputTransformer) TransformOutput(ctx context.Context, req *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	return serveGRPCNode(t.s, ctx, req, t.s.seldonProtoTriggers, func(r *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
		return SeldonTransformOutputProto(t.s.model, t.s.image, r)
	})
}

type seldonRouter struct {
	seldonpb.UnimplementedRouterServer
	s *Server
}

func (t seldonRouter) Route(ctx context.Context, req *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	return serveGRPCNode(t.s, ctx, req, t.s.seldonProtoTriggers, func(r *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
		return SeldonRouteProto(t.s.model, t.s.image, r)
	})
}

// SendFeedback answers as the model's does: the test router learns nothing from rewards.
func (t seldonRouter) SendFeedback(ctx context.Context, req *seldonpb.Feedback) (*seldonpb.SeldonMessage, error) {
	return seldonModel{s: t.s}.SendFeedback(ctx, req)
}

type seldonCombiner struct {
	seldonpb.UnimplementedCombinerServer
	s *Server
}

func (c seldonCombiner) Aggregate(ctx context.Context, req *seldonpb.SeldonMessageList) (*seldonpb.SeldonMessage, error) {
	triggers := func(l *seldonpb.SeldonMessageList) nodeTriggers {
		var t nodeTriggers
		for _, m := range l.GetSeldonMessages() {
			mt := c.s.seldonProtoTriggers(m)
			t.slow, t.fail = t.slow || mt.slow, t.fail || mt.fail
		}
		return t
	}
	return serveGRPCNode(c.s, ctx, req, triggers, func(l *seldonpb.SeldonMessageList) (*seldonpb.SeldonMessage, error) {
		return SeldonAggregateProto(c.s.model, c.s.image, l)
	})
}

type tensorflowService struct {
	tfpb.UnimplementedPredictionServiceServer
	s *Server
}

// known answers NotFound unless spec names the served model (and, if given, its only version).
func (t tensorflowService) known(spec *tfpb.ModelSpec) error {
	name := spec.GetName()
	if name != t.s.model {
		return status.Errorf(codes.NotFound, "Servable not found for request: Latest(%s)", name)
	}
	if v := spec.GetVersion(); v != nil && v.GetValue() != 1 {
		return status.Errorf(codes.NotFound, "Servable not found for request: Specific(%s, %d)", name, v.GetValue())
	}
	return nil
}

func (t tensorflowService) Predict(ctx context.Context, req *tfpb.PredictRequest) (*tfpb.PredictResponse, error) {
	if err := t.known(req.GetModelSpec()); err != nil {
		return nil, err
	}
	return serveGRPC(t.s, ctx, req, func(r *tfpb.PredictRequest) (*tfpb.PredictResponse, error) {
		return TensorflowTransformProto(t.s.role, t.s.model, r)
	})
}

func (t tensorflowService) Classify(ctx context.Context, req *tfpb.ClassificationRequest) (*tfpb.ClassificationResponse, error) {
	if err := t.known(req.GetModelSpec()); err != nil {
		return nil, err
	}
	return serveGRPC(t.s, ctx, req, TensorflowClassifyProto)
}

func (t tensorflowService) Regress(ctx context.Context, req *tfpb.RegressionRequest) (*tfpb.RegressionResponse, error) {
	if err := t.known(req.GetModelSpec()); err != nil {
		return nil, err
	}
	return serveGRPC(t.s, ctx, req, func(r *tfpb.RegressionRequest) (*tfpb.RegressionResponse, error) {
		return TensorflowRegressProto(t.s.model, r)
	})
}

func (t tensorflowService) MultiInference(ctx context.Context, req *tfpb.MultiInferenceRequest) (*tfpb.MultiInferenceResponse, error) {
	for _, task := range req.GetTasks() {
		if err := t.known(task.GetModelSpec()); err != nil {
			return nil, err
		}
	}
	return serveGRPC(t.s, ctx, req, func(r *tfpb.MultiInferenceRequest) (*tfpb.MultiInferenceResponse, error) {
		return TensorflowMultiInferenceProto(t.s.model, r)
	})
}

type v2Service struct {
	v2pb.UnimplementedGRPCInferenceServiceServer
	s *Server
}

// known answers NotFound unless the request names the served model and, if any, its only version.
func (v v2Service) known(name, version string) error {
	if name == v.s.model && (version == "" || version == modelVersion) {
		return nil
	}
	if version != "" {
		name += " version " + version
	}
	return status.Errorf(codes.NotFound, "model %s is not found", name)
}

func (v v2Service) ServerLive(context.Context, *v2pb.ServerLiveRequest) (*v2pb.ServerLiveResponse, error) {
	return &v2pb.ServerLiveResponse{Live: true}, nil
}

func (v v2Service) ServerReady(context.Context, *v2pb.ServerReadyRequest) (*v2pb.ServerReadyResponse, error) {
	return &v2pb.ServerReadyResponse{Ready: !v.s.notReady.Load()}, nil
}

func (v v2Service) ModelReady(_ context.Context, req *v2pb.ModelReadyRequest) (*v2pb.ModelReadyResponse, error) {
	if err := v.known(req.GetName(), req.GetVersion()); err != nil {
		return nil, err
	}
	return &v2pb.ModelReadyResponse{Ready: !v.s.notReady.Load()}, nil
}

func (v v2Service) ServerMetadata(context.Context, *v2pb.ServerMetadataRequest) (*v2pb.ServerMetadataResponse, error) {
	return &v2pb.ServerMetadataResponse{Name: "testmodel", Version: modelVersion, Extensions: []string{}}, nil
}

func (v v2Service) ModelMetadata(_ context.Context, req *v2pb.ModelMetadataRequest) (*v2pb.ModelMetadataResponse, error) {
	if err := v.known(req.GetName(), req.GetVersion()); err != nil {
		return nil, err
	}
	tensor := func(name string) *v2pb.ModelMetadataResponse_TensorMetadata {
		return &v2pb.ModelMetadataResponse_TensorMetadata{Name: name, Datatype: "FP32", Shape: []int64{-1, -1}}
	}
	return &v2pb.ModelMetadataResponse{
		Name: v.s.model, Versions: []string{modelVersion}, Platform: "testmodel",
		Inputs:  []*v2pb.ModelMetadataResponse_TensorMetadata{tensor("input")},
		Outputs: []*v2pb.ModelMetadataResponse_TensorMetadata{tensor(v2OutputName(v.s.role, "input"))},
	}, nil
}

func (v v2Service) ModelInfer(ctx context.Context, req *v2pb.ModelInferRequest) (*v2pb.ModelInferResponse, error) {
	if err := v.known(req.GetModelName(), req.GetModelVersion()); err != nil {
		return nil, err
	}
	return serveGRPC(v.s, ctx, req, func(r *v2pb.ModelInferRequest) (*v2pb.ModelInferResponse, error) {
		return V2TransformProto(v.s.role, v.s.model, r)
	})
}

// healthService answers the standard health check: the whole server ("") and each of its services
// are SERVING unless the model is set not ready.
type healthService struct {
	healthpb.UnimplementedHealthServer
	s *Server
}

var healthServices = map[string]bool{
	"": true, "seldon.protos.Model": true, "seldon.protos.Transformer": true, "seldon.protos.OutputTransformer": true,
	"seldon.protos.Router": true, "seldon.protos.Combiner": true, "tensorflow.serving.PredictionService": true,
	"inference.GRPCInferenceService": true,
}

func (h healthService) Check(_ context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if !healthServices[req.GetService()] {
		return nil, status.Errorf(codes.NotFound, "unknown service %q", req.GetService())
	}
	if h.s.notReady.Load() {
		return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_NOT_SERVING}, nil
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}
