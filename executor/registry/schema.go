package registry

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/bufbuild/protocompile/parser"
	"github.com/bufbuild/protocompile/reporter"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/seldon-kafka/sidecar/protocols"
)

// The registry's schema types. An empty schemaType is Avro, the registry's first and default type.
const (
	typeProtobuf = "PROTOBUF"
	typeJSON     = "JSON"
	typeAvro     = "AVRO"
)

func schemaTypeOf(t string) string {
	if t == "" {
		return typeAvro
	}
	return strings.ToUpper(t)
}

// parseProto reads a registered Protobuf schema: .proto text, as the registry answers by default, or a
// base64 serialized FileDescriptorProto, as Confluent's Python serializer and this package register
// and as some registries answer it back. Only the file itself is read, not its imports: the message
// names and their nesting are all a frame's indexes point into.
func parseProto(schema string) (*descriptorpb.FileDescriptorProto, error) {
	if b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(schema)); err == nil {
		fd := &descriptorpb.FileDescriptorProto{}
		if err := proto.Unmarshal(b, fd); err == nil {
			return fd, nil
		}
	}
	h := reporter.NewHandler(nil)
	file, err := parser.Parse("schema.proto", strings.NewReader(schema), h)
	if err != nil {
		return nil, fmt.Errorf("not a .proto file: %w", err)
	}
	res, err := parser.ResultFromAST(file, false, h)
	if err != nil {
		return nil, fmt.Errorf("not a .proto file: %w", err)
	}
	return res.FileDescriptorProto(), nil
}

// messageAt is the full name of the message a frame's indexes point to in a file.
func messageAt(fd *descriptorpb.FileDescriptorProto, indexes []int) (string, error) {
	name := fd.GetPackage()
	msgs := fd.GetMessageType()
	for depth, i := range indexes {
		if i >= len(msgs) {
			where := "the file"
			if depth > 0 {
				where = name
			}
			return "", fmt.Errorf("message index %d: %s has %d messages", i, where, len(msgs))
		}
		m := msgs[i]
		if name == "" {
			name = m.GetName()
		} else {
			name += "." + m.GetName()
		}
		msgs = m.GetNestedType()
	}
	if len(indexes) == 0 {
		return "", errors.New("no message indexes")
	}
	return name, nil
}

// indexesOf is the path of indexes to a message of a file, by full name; nil when the file has none of
// that name.
func indexesOf(fd *descriptorpb.FileDescriptorProto, full string) []int {
	rel := full
	if pkg := fd.GetPackage(); pkg != "" {
		var ok bool
		if rel, ok = strings.CutPrefix(full, pkg+"."); !ok {
			return nil
		}
	}
	var path []int
	msgs := fd.GetMessageType()
	for part := range strings.SplitSeq(rel, ".") {
		found := -1
		for i, m := range msgs {
			if m.GetName() == part {
				found = i
				break
			}
		}
		if found < 0 {
			return nil
		}
		path = append(path, found)
		msgs = msgs[found].GetNestedType()
	}
	return path
}

// indexPath is the path of indexes to a compiled-in message type, as a frame gives it.
func indexPath(md protoreflect.MessageDescriptor) []int {
	var rev []int
	var d protoreflect.Descriptor = md
	for {
		rev = append(rev, d.Index())
		parent, ok := d.Parent().(protoreflect.MessageDescriptor)
		if !ok {
			break
		}
		d = parent
	}
	path := make([]int, len(rev))
	for i, v := range rev {
		path[len(rev)-1-i] = v
	}
	return path
}

// encodeFile is a compiled-in file as this package registers it: its FileDescriptorProto, serialized
// deterministically (the same bytes every time, so the registry finds it again) and base64-encoded.
func encodeFile(fd protoreflect.FileDescriptor) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(protodesc.ToFileDescriptorProto(fd))
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// builtIn says whether an import is one the registry knows without a reference: Confluent's registry
// ships the google/protobuf well-known types, and Confluent's serializers register no reference to them.
func builtIn(path string) bool { return strings.HasPrefix(path, "google/protobuf/") }

// The JSON Schemas of the answers over REST, by protocol: what this package registers for them. They
// say the answer is a JSON object and name its usual fields, and no more: an answer carries what its
// model writes, and a schema that refused a field some model adds would make good answers fail.
var answerJSONSchemas = map[protocols.Name]jsonSchema{
	protocols.Seldon: {title: "seldon.protos.SeldonMessage", schema: `{"$schema":"http://json-schema.org/draft-07/schema#",` +
		`"title":"seldon.protos.SeldonMessage","description":"The answer of a Seldon protocol model: a SeldonMessage as JSON.",` +
		`"type":"object","properties":{"meta":{"type":"object"},"data":{"type":"object"},"strData":{"type":"string"},` +
		`"jsonData":{},"binData":{"type":"string"},"status":{"type":"object"}}}`},
	protocols.Tensorflow: {title: "tensorflow.serving.PredictResponse", schema: `{"$schema":"http://json-schema.org/draft-07/schema#",` +
		`"title":"tensorflow.serving.PredictResponse","description":"The answer of TensorFlow Serving's REST predict API.",` +
		`"type":"object","properties":{"predictions":{},"outputs":{}}}`},
	protocols.V2: {title: "inference.ModelInferResponse", schema: `{"$schema":"http://json-schema.org/draft-07/schema#",` +
		`"title":"inference.ModelInferResponse","description":"The answer of the Open Inference (v2) protocol's REST infer API.",` +
		`"type":"object","properties":{"model_name":{"type":"string"},"model_version":{"type":"string"},"id":{"type":"string"},` +
		`"parameters":{"type":"object"},"outputs":{"type":"array"}}}`},
}

// jsonSchema is an answer's JSON Schema and its title, the record name subject strategies use.
type jsonSchema struct{ title, schema string }
