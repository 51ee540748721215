package registry

import (
	"os"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// nested is a schema as a producer might register it: messages after enums, services and options with
// braces, nested messages, a proto2 group (a nested message too) and comments in the way.
const nested = `syntax = "proto2";
// package other.thing; (a comment, not the package)
package acme.v1;
import "google/protobuf/struct.proto";
option java_package = "com.acme";
enum Colour { RED = 0; }
message First { optional string a = 1 [default = "}"]; }
service S { rpc Do(First) returns (First) { option deprecated = true; } }
message Second {
  message Inner { message Deepest {} }
  enum E { X = 0; }
  optional group Grouped = 2 { optional int32 x = 3; }
  /* message NotOne {} */
}
`

func TestMessageIndexesNameTheMessageOfAnyProtoFile(t *testing.T) {
	fd, err := parseProto(nested)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		indexes []int
		want    string
	}{
		{[]int{0}, "acme.v1.First"},
		{[]int{1}, "acme.v1.Second"},
		{[]int{1, 0}, "acme.v1.Second.Inner"},
		{[]int{1, 0, 0}, "acme.v1.Second.Inner.Deepest"},
		{[]int{1, 1}, "acme.v1.Second.Grouped"},
	} {
		got, err := messageAt(fd, tc.indexes)
		if err != nil || got != tc.want {
			t.Errorf("messageAt(%v) = %q, %v; want %q", tc.indexes, got, err, tc.want)
		}
		if back := indexesOf(fd, tc.want); !slices.Equal(back, tc.indexes) {
			t.Errorf("indexesOf(%s) = %v, want %v", tc.want, back, tc.indexes)
		}
	}
	for _, tc := range []struct {
		indexes []int
		want    string
	}{
		{[]int{2}, "message index 2: the file has 2 messages"},
		{[]int{1, 5}, "message index 5: acme.v1.Second has 2 messages"},
		{[]int{0, 0}, "message index 0: acme.v1.First has 0 messages"},
		{nil, "no message indexes"},
	} {
		if _, err := messageAt(fd, tc.indexes); err == nil || err.Error() != tc.want {
			t.Errorf("messageAt(%v): error %v, want %q", tc.indexes, err, tc.want)
		}
	}
	for _, name := range []string{"acme.v1.Third", "other.First", "acme.v1.Colour", "First"} {
		if got := indexesOf(fd, name); got != nil {
			t.Errorf("indexesOf(%s) = %v, want none", name, got)
		}
	}
}

// A schema registered as this package registers it, a base64 FileDescriptorProto, reads back to the
// same indexes the compiled-in types have; and so does the .proto text the project generates from.
func TestCompiledInTypesHaveTheIndexesTheirSchemasGive(t *testing.T) {
	text, err := os.ReadFile("../../protocols/proto/kserve/grpc_predict_v2.proto")
	if err != nil {
		t.Fatal(err)
	}
	fromText, err := parseProto(string(text))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []proto.Message{&seldonpb.SeldonMessage{}, &seldonpb.Feedback{}, &tfpb.PredictResponse{},
		&v2pb.ModelInferResponse{}, &v2pb.ModelInferRequest_InferInputTensor{}} {
		md := m.ProtoReflect().Descriptor()
		t.Run(string(md.FullName()), func(t *testing.T) {
			schema, err := encodeFile(md.ParentFile())
			if err != nil {
				t.Fatal(err)
			}
			fd, err := parseProto(schema)
			if err != nil {
				t.Fatal(err)
			}
			path := indexPath(md)
			if got, err := messageAt(fd, path); err != nil || got != string(md.FullName()) {
				t.Errorf("indexes %v name %q (%v) in the registered file", path, got, err)
			}
			if md.ParentFile().Package() == "inference" {
				if got := indexesOf(fromText, string(md.FullName())); !slices.Equal(got, path) {
					t.Errorf("the .proto text gives %v, the compiled type %v", got, path)
				}
			}
		})
	}
}

func TestTheSameFileEncodesTheSameEveryTime(t *testing.T) {
	fd := (&tfpb.PredictRequest{}).ProtoReflect().Descriptor().ParentFile()
	a, _ := encodeFile(fd)
	b, _ := encodeFile(fd)
	if a != b || a == "" {
		t.Fatalf("two encodings differ (or are empty): the registry would see two schemas")
	}
}

func TestUnreadableProtoSchemasSayWhere(t *testing.T) {
	_, err := parseProto("syntax = \"proto3\";\nmessage {")
	if err == nil || !strings.Contains(err.Error(), "not a .proto file: schema.proto:2") {
		t.Fatalf("error %v, want one pointing at line 2", err)
	}
}
