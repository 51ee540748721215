// Package seldonpb holds the Go types and gRPC stubs generated from Seldon Core's prediction.proto
// (proto package seldon.protos): SeldonMessage, SeldonMessageList, Feedback and the Model,
// Transformer, OutputTransformer, Router, Combiner, Generic and Seldon services. Do not edit the
// .pb.go files: see protocols/generate.go.
package seldonpb
