package executor

import (
	"bytes"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/executor/graph"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
	"github.com/seldon-kafka/sidecar/tracing"
)

// The synchronous API the legacy executor served beside Kafka: a request made over HTTP (on
// --http_port, with --transport=rest) or gRPC (on --grpc_port, with --transport=grpc) walks the same
// graph as a record and gets the answer in the response, byte for byte what the output topic gets.
//
//	seldon      POST /api/v1.0/predictions, /api/v0.1/predictions    seldon.protos.Seldon/Predict
//	tensorflow  POST /v1/models/<name>:predict                        tensorflow.serving.PredictionService/Predict
//	v2          POST /v2/models/<name>/infer                          inference.GRPCInferenceService/ModelInfer
//
// At most KAFKA_WORKERS requests are walked at once; more wait for a turn as long as their client
// does. While the graph is not ready a request is refused at once (503, Unavailable), so that a load
// balancer tries another replica instead of holding the request.

// api serves the synchronous API with the pipeline's graph, gate and metrics.
type api struct {
	p     *pipeline
	slots chan struct{} // a slot per request being walked
}

func newAPI(p *pipeline) *api {
	return &api{p: p, slots: make(chan struct{}, p.cfg.Workers)}
}

// serve walks the graph for one request.
func (a *api) serve(ctx context.Context, req *protocols.Request) (resp *protocols.Response, err error) {
	ctx, span := a.p.edges.tracer().StartRequest(ctx, req.Headers, a.p.cfg.Transport)
	defer func() { tracing.End(span, err) }()
	select {
	case a.slots <- struct{}{}:
		defer func() { <-a.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if !a.p.gate.isOpen() {
		return nil, &protocols.CallError{Reason: protocols.ReasonRetriesExhausted, Transient: true, Msg: "the graph is not ready" + a.notReady()}
	}
	if err := a.p.graph.Check(req); err != nil {
		return nil, err
	}
	return a.p.graph.Predict(ctx, req)
}

// notReady names the nodes that are not ready, for the refusal's message.
func (a *api) notReady() string {
	nodes := a.p.nodes.Load()
	if nodes == nil {
		return ""
	}
	var names []string
	for _, n := range *nodes {
		if !n.Ready {
			names = append(names, n.Node)
		}
	}
	if len(names) == 0 {
		return ""
	}
	return ": " + strings.Join(names, ", ")
}

// routes registers the protocol's HTTP paths.
func (a *api) routes(mux *http.ServeMux) {
	switch a.p.cfg.Protocol {
	case protocols.Seldon:
		mux.HandleFunc("POST /api/v1.0/predictions", a.handleHTTP)
		mux.HandleFunc("POST /api/v0.1/predictions", a.handleHTTP)
	case protocols.Tensorflow:
		// ":predict" is part of the last path segment, which a ServeMux wildcard cannot split.
		mux.HandleFunc("POST /v1/models/{target}", func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.PathValue("target"), ":predict") {
				a.writeHTTPError(w, "", protocols.Invalid("POST %s: want /v1/models/<name>:predict", r.URL.Path))
				return
			}
			a.handleHTTP(w, r)
		})
	case protocols.V2:
		mux.HandleFunc("POST /v2/models/{name}/infer", a.handleHTTP)
		mux.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", a.handleHTTP)
	}
}

func (a *api) handleHTTP(w http.ResponseWriter, r *http.Request) {
	puid := r.Header.Get(HeaderPuid)
	if puid == "" {
		puid = uuid.NewString()
	}
	// A body is bounded as a record's value is (KAFKA_MESSAGE_MAX_BYTES).
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(a.p.cfg.MessageMaxBytes)))
	if err != nil {
		a.writeHTTPError(w, puid, protocols.Invalid("reading the request body: %v", err))
		return
	}
	ct := r.Header.Get(HeaderContentType)
	if mt, _, _ := mime.ParseMediaType(ct); mt == "application/x-www-form-urlencoded" && a.p.cfg.Protocol == protocols.Seldon {
		// The legacy seldon API took the message as a json= form field too.
		r.Body = io.NopCloser(bytes.NewReader(body))
		if err := r.ParseForm(); err != nil {
			a.writeHTTPError(w, puid, protocols.Invalid("reading the form: %v", err))
			return
		}
		body, ct = []byte(r.PostForm.Get("json")), "application/json"
	}
	var headers []protocols.Header
	for k, vs := range r.Header {
		for _, v := range vs {
			headers = append(headers, protocols.Header{Key: k, Value: v})
		}
	}
	resp, err := a.serve(r.Context(), &protocols.Request{Body: body, ContentType: ct, Puid: puid, Headers: headers})
	if err != nil {
		a.writeHTTPError(w, puid, err)
		return
	}
	a.p.m.api.WithLabelValues("http", "ok").Inc()
	w.Header().Set(HeaderContentType, resp.ContentType)
	w.Header().Set(HeaderPuid, puid)
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(resp.Body)
}

// writeHTTPError answers a failed request with a status for its cause and the protocol's error body:
// seldon's {"status": {...}}, TF Serving's and v2's {"error": "..."}.
func (a *api) writeHTTPError(w http.ResponseWriter, puid string, err error) {
	code, _ := apiStatus(err)
	a.p.m.api.WithLabelValues("http", "error").Inc()
	ce := protocols.AsCallError(err)
	var body any = map[string]string{"error": err.Error()}
	if a.p.cfg.Protocol == protocols.Seldon {
		body = map[string]any{"status": map[string]any{"code": code, "info": err.Error(), "reason": ce.Reason, "status": "FAILURE"}}
	}
	if puid != "" {
		w.Header().Set(HeaderPuid, puid)
	}
	var ne *graph.NodeError
	if errors.As(err, &ne) {
		w.Header().Set(HeaderErrorNode, ne.Node)
	}
	w.Header().Set(HeaderErrorReason, ce.Reason)
	writeStatus(w, code, body)
}

// apiStatus is the HTTP status and gRPC code a failed request is answered with.
func apiStatus(err error) (int, codes.Code) {
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout, codes.DeadlineExceeded
	}
	if errors.Is(err, context.Canceled) {
		return 499, codes.Canceled // the client went away; nginx's number for it
	}
	ce := protocols.AsCallError(err)
	switch ce.Reason {
	case protocols.ReasonInvalidRequest:
		return http.StatusBadRequest, codes.InvalidArgument
	case protocols.ReasonModelRejected:
		code, httpStatus := codes.Internal, http.StatusInternalServerError
		if ce.Status >= 400 && ce.Status < 600 {
			httpStatus = ce.Status
		}
		for c := codes.OK; c <= codes.Unauthenticated; c++ {
			if c.String() == ce.Code {
				code = c
			}
		}
		return httpStatus, code
	case protocols.ReasonRetriesExhausted:
		return http.StatusServiceUnavailable, codes.Unavailable
	}
	return http.StatusInternalServerError, codes.Internal
}

// grpcServer serves the protocol's gRPC service.
func (a *api) grpcServer() *grpc.Server {
	s := grpc.NewServer(grpc.MaxRecvMsgSize(a.p.cfg.MessageMaxBytes), grpc.MaxSendMsgSize(a.p.cfg.MessageMaxBytes))
	switch a.p.cfg.Protocol {
	case protocols.Seldon:
		seldonpb.RegisterSeldonServer(s, seldonAPI{a: a})
	case protocols.Tensorflow:
		tfpb.RegisterPredictionServiceServer(s, tensorflowAPI{a: a})
	case protocols.V2:
		v2pb.RegisterGRPCInferenceServiceServer(s, v2API{a: a})
	}
	return s
}

// callGRPC walks the graph for a gRPC request and returns the answer as the RPC's response type.
func callGRPC[Resp proto.Message](ctx context.Context, a *api, in proto.Message) (Resp, error) {
	var zero Resp
	md, _ := metadata.FromIncomingContext(ctx)
	puid := ""
	if v := md.Get("seldon-puid"); len(v) > 0 {
		puid = v[0]
	}
	if puid == "" {
		puid = uuid.NewString()
	}
	var headers []protocols.Header
	for k, vs := range md {
		if strings.HasPrefix(k, ":") {
			continue // pseudo-headers of HTTP/2
		}
		for _, v := range vs {
			headers = append(headers, protocols.Header{Key: k, Value: v})
		}
	}
	_ = grpc.SetHeader(ctx, metadata.Pairs("seldon-puid", puid))
	req := &protocols.Request{Decoded: in, ProtoName: string(in.ProtoReflect().Descriptor().FullName()), Puid: puid, Headers: headers}
	resp, err := a.serve(ctx, req)
	if err != nil {
		a.p.m.api.WithLabelValues("grpc", "error").Inc()
		_, code := apiStatus(err)
		return zero, status.Error(code, err.Error())
	}
	out, ok := resp.Decoded.(Resp)
	if !ok {
		a.p.m.api.WithLabelValues("grpc", "error").Inc()
		return zero, status.Errorf(codes.Internal, "the graph answered a %s, not a %s", resp.ProtoName, zero.ProtoReflect().Descriptor().FullName())
	}
	a.p.m.api.WithLabelValues("grpc", "ok").Inc()
	return out, nil
}

type seldonAPI struct {
	seldonpb.UnimplementedSeldonServer
	a *api
}

func (s seldonAPI) Predict(ctx context.Context, in *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	return callGRPC[*seldonpb.SeldonMessage](ctx, s.a, in)
}

func (s seldonAPI) SendFeedback(ctx context.Context, in *seldonpb.Feedback) (*seldonpb.SeldonMessage, error) {
	return callGRPC[*seldonpb.SeldonMessage](ctx, s.a, in)
}

type tensorflowAPI struct {
	tfpb.UnimplementedPredictionServiceServer
	a *api
}

func (t tensorflowAPI) Predict(ctx context.Context, in *tfpb.PredictRequest) (*tfpb.PredictResponse, error) {
	return callGRPC[*tfpb.PredictResponse](ctx, t.a, in)
}

type v2API struct {
	v2pb.UnimplementedGRPCInferenceServiceServer
	a *api
}

func (v v2API) ModelInfer(ctx context.Context, in *v2pb.ModelInferRequest) (*v2pb.ModelInferResponse, error) {
	return callGRPC[*v2pb.ModelInferResponse](ctx, v.a, in)
}

func (v v2API) ServerLive(context.Context, *v2pb.ServerLiveRequest) (*v2pb.ServerLiveResponse, error) {
	return &v2pb.ServerLiveResponse{Live: true}, nil
}

func (v v2API) ServerReady(context.Context, *v2pb.ServerReadyRequest) (*v2pb.ServerReadyResponse, error) {
	return &v2pb.ServerReadyResponse{Ready: v.a.p.gate.isOpen()}, nil
}

func (v v2API) ModelReady(context.Context, *v2pb.ModelReadyRequest) (*v2pb.ModelReadyResponse, error) {
	return &v2pb.ModelReadyResponse{Ready: v.a.p.gate.isOpen()}, nil
}
