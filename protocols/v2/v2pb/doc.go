// Package v2pb holds the Go types and gRPC stubs generated from KServe's grpc_predict_v2.proto, the
// Open Inference Protocol (proto package inference): ModelInferRequest, ModelInferResponse and
// GRPCInferenceService. Do not edit the .pb.go files: see protocols/generate.go.
package v2pb
