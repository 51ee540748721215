// Package tfpb holds the Go types and gRPC stubs generated from TensorFlow Serving's API protos
// (proto package tensorflow.serving: PredictRequest, ClassificationRequest, RegressionRequest,
// MultiInferenceRequest, their responses and PredictionService) and the few TensorFlow core protos
// they use (proto package tensorflow: TensorProto, Example, ...). Do not edit the .pb.go files: see
// protocols/generate.go.
package tfpb
