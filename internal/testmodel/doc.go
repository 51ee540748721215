// Package testmodel is a small, deterministic model server for tests and
// demos. It speaks three inference protocols at once, over REST (Serve) and
// over gRPC (ServeGRPC, see grpc.go), the way a real model container would,
// and lets tests inject faults at run time.
//
// Routes (all infer routes share the fault injection described on Server):
//
//	seldon      POST /predict, POST /api/v1.0/predictions   infer
//	            GET  /health/ping                           liveness ("pong")
//	            GET  /health/status                         readiness
//	tensorflow  POST /v1/models/{name}:predict              infer
//	            GET  /v1/models/{name}                      model status (readiness)
//	v2          POST /v2/models/{name}[/versions/1]/infer   infer
//	            GET  /v2/health/live, /v2/health/ready      liveness, readiness
//	            GET  /v2/models/{name}[/versions/1]/ready   model readiness
//	            GET  /v2/models/{name}[/versions/1]         model metadata
//	            GET  /v2                                    server metadata
//
// Answers are pure functions of the request, exported so tests can compute
// the expected bytes: SeldonPredict, TensorflowPredict and V2Infer for REST;
// SeldonPredictProto, SeldonFeedbackProto, TensorflowPredictProto,
// TensorflowClassifyProto, TensorflowRegressProto,
// TensorflowMultiInferenceProto and V2InferProto for gRPC.
package testmodel
