// Package testmodel is a small, deterministic model server for tests and
// demos. It speaks three inference protocols at once, over REST (Serve) and
// over gRPC (ServeGRPC, see grpc.go), the way a real model container would,
// and lets tests inject faults at run time. One server can stand for any
// node of a Seldon inference graph, so tests can build graphs of real
// processes (see cmd/testmodel and testkit.StartModelProcess).
//
// Routes (all infer routes share the fault injection described on Server):
//
//	seldon      POST /predict, POST /api/v1.0/predictions   model: per row [sum, product]
//	            POST /transform-input                       transformer: every number x2
//	            POST /transform-output                      output transformer: every number +1
//	            POST /route                                 router: route on the first number (RouteFor)
//	            POST /aggregate                             combiner: element-wise mean
//	            GET  /health/ping                           liveness ("pong")
//	            GET  /health/status                         readiness
//	tensorflow  POST /v1/models/{name}:predict              infer, by Role: x2, +1 or x10
//	            POST /v1/models/{name}:route                router: [route]
//	            POST /v1/models/{name}:aggregate            combiner: mean of "predictions"
//	            GET  /v1/models/{name}                      model status (readiness)
//	v2          POST /v2/models/{name}[/versions/1]/infer   infer, by Role: x2, +1 or x10
//	            POST /v2/models/{name}[/versions/1]/route   router: [route]
//	            POST /v2/models/{name}[/versions/1]/aggregate  combiner: mean of each output
//	            GET  /v2/health/live, /v2/health/ready      liveness, readiness
//	            GET  /v2/models/{name}[/versions/1]/ready   model readiness
//	            GET  /v2/models/{name}[/versions/1]         model metadata
//	            GET  /v2                                    server metadata
//
// The seldon routes answer every graph part whatever the server's Role, as
// the executor picks the part by the route; they compose meta as Seldon's
// Python wrapper does and obey the per-request fault tags FailNodeTag and
// SlowNodeTag. With tensorflow and v2 the executor calls a transformer on the
// same infer route as a model, so Options.Role picks the function instead.
//
// Answers are pure functions of the request, exported so tests can compute
// the expected bytes: for REST SeldonPredict (and SeldonPredictWithImage),
// SeldonTransformInput, SeldonTransformOutput, SeldonRoute, SeldonRouteOf,
// SeldonAggregate, TensorflowPredict, TensorflowTransform, TensorflowRoute,
// TensorflowAggregate, V2Infer, V2Transform, V2Route and V2Aggregate; for
// gRPC SeldonPredictProto (and SeldonPredictProtoWithImage),
// SeldonTransformInputProto, SeldonTransformOutputProto, SeldonRouteProto,
// SeldonAggregateProto, SeldonFeedbackProto, TensorflowPredictProto,
// TensorflowTransformProto, TensorflowClassifyProto, TensorflowRegressProto,
// TensorflowMultiInferenceProto, V2InferProto and V2TransformProto.
package testmodel
