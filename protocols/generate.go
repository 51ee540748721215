package protocols

// The protobuf and gRPC code in seldon/seldonpb, tensorflow/tfpb and v2/v2pb is generated from the
// .proto files under proto/ and checked in. Regenerate it with
//
//	go generate ./protocols
//
// which runs proto/generate.sh. The script insists on these tool versions, so that the output only
// changes when a .proto does:
//
//	protoc              3.21.12  apt-get install protobuf-compiler (Debian 12)
//	protoc-gen-go       v1.36.12 go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
//	protoc-gen-go-grpc  v1.5.1   go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.5.1

//go:generate bash proto/generate.sh
