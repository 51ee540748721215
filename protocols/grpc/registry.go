package grpc

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/seldon-kafka/sidecar/protocols"
)

// Conn is the connection a protocol's readiness check calls through (a *grpc.ClientConn in use), so
// that the protocol packages need not import gRPC themselves.
type Conn = grpc.ClientConnInterface

// Method is one request type a protocol takes and the RPC that serves it.
type Method struct {
	// Node is the graph node method the RPC serves; empty is Predict. Records are decoded only as
	// Predict requests: the other methods are called by the graph walk with a node's answer.
	Node protocols.Method
	// FullMethod is the RPC's path, e.g. "/tensorflow.serving.PredictionService/Predict"; the
	// generated *_FullMethodName constants hold them.
	FullMethod string
	Request    protoreflect.MessageType
	Response   protoreflect.MessageType
	// Prepare, when set, fills in what the request left out and the sidecar knows: the name of the
	// graph node called, as the model name. It returns req itself when there is nothing to fill in,
	// else a copy (see ShallowCopy): the same request may be on its way to other nodes at once.
	Prepare func(req proto.Message, model string) proto.Message
}

// Protocol is what differs between the protocols over gRPC.
type Protocol struct {
	Name protocols.Name
	// Methods are the request types the protocol takes, one per proto-name.
	Methods []Method
	// Ready, when set, is the protocol's own readiness check (the Open Inference Protocol's
	// ModelReady). A codes.Unimplemented answer means the server has no such check, and the client
	// falls back to the gRPC health service, then to a TCP connect.
	Ready func(ctx context.Context, cc Conn, model string) error
	// TransformByPredict says that transformers are called as models, with the Predict method of the
	// request's type (TF Serving, v2: the protocol has no transformer service).
	TransformByPredict bool
}

// Registry maps a record's proto-name header to the request type and RPC of one protocol. Names of
// other protocols' requests, of responses, or of no known message are refused: the sidecar serves
// one protocol, and a request it cannot route is an error record, never a guess.
type Registry struct {
	protocol  protocols.Name
	byName    map[protoreflect.FullName]*Method // the Predict methods, by request type: what a record may be
	byNode    map[nodeKey]*Method
	transform bool     // Protocol.TransformByPredict
	names     []string // accepted proto-names, sorted, for error messages
}

type nodeKey struct {
	node protocols.Method
	req  protoreflect.FullName
}

// NewRegistry indexes a protocol's methods by the full name of their request type.
func NewRegistry(p Protocol) (*Registry, error) {
	r := &Registry{protocol: p.Name, byName: make(map[protoreflect.FullName]*Method, len(p.Methods)),
		byNode: make(map[nodeKey]*Method, len(p.Methods)), transform: p.TransformByPredict}
	for i := range p.Methods {
		m := &p.Methods[i]
		if m.Request == nil || m.Response == nil || m.FullMethod == "" {
			return nil, fmt.Errorf("protocol %s: method %d lacks a request type, response type or RPC", p.Name, i)
		}
		if m.Node == "" {
			m.Node = protocols.Predict
		}
		name := m.Request.Descriptor().FullName()
		key := nodeKey{m.Node, name}
		if _, dup := r.byNode[key]; dup {
			return nil, fmt.Errorf("protocol %s: two %s methods take %s", p.Name, m.Node, name)
		}
		r.byNode[key] = m
		if m.Node == protocols.Predict {
			r.byName[name] = m
			r.names = append(r.names, string(name))
		}
	}
	if len(r.names) == 0 {
		return nil, fmt.Errorf("protocol %s has no gRPC methods", p.Name)
	}
	slices.Sort(r.names)
	return r, nil
}

// For returns the RPC that serves a node method for a request of the given type, or nil when the
// protocol has none.
func (r *Registry) For(node protocols.Method, req protoreflect.FullName) *Method {
	if m := r.byNode[nodeKey{node, req}]; m != nil {
		return m
	}
	if r.transform && (node == protocols.TransformInput || node == protocols.TransformOutput) {
		return r.byNode[nodeKey{protocols.Predict, req}]
	}
	return nil
}

// Serves reports whether the protocol has an RPC for a node method, for any request type: whether a
// graph that needs the method can be served at all.
func (r *Registry) Serves(node protocols.Method) bool {
	if r.transform && (node == protocols.TransformInput || node == protocols.TransformOutput) {
		node = protocols.Predict
	}
	for k := range r.byNode {
		if k.node == node {
			return true
		}
	}
	return false
}

// Names are the proto-names the registry accepts, sorted.
func (r *Registry) Names() []string { return slices.Clone(r.names) }

// Lookup returns the method for a proto-name, or a protocols.CallError with Reason invalid_request
// that says why the name is not one of this protocol's requests.
func (r *Registry) Lookup(protoName string) (*Method, error) {
	name := strings.TrimSpace(protoName)
	if name == "" {
		return nil, protocols.Invalid("no proto-name header: over gRPC a record's value is a protobuf message and its proto-name header names the type (a %s request is one of %s)",
			r.protocol, strings.Join(r.names, ", "))
	}
	if m, ok := r.byName[protoreflect.FullName(name)]; ok {
		return m, nil
	}
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(name))
	if err != nil {
		return nil, protocols.Invalid("unknown proto-name %q: a %s request is one of %s", abbreviate(name), r.protocol, strings.Join(r.names, ", "))
	}
	// A known message that is not ours: another protocol's request, or a response sent back in.
	return nil, protocols.Invalid("proto-name %q is not a %s request (it is a message of proto package %s): a %s request is one of %s",
		name, r.protocol, mt.Descriptor().ParentFile().Package(), r.protocol, strings.Join(r.names, ", "))
}

// Decode parses a record's value as the request type its proto-name names.
func (r *Registry) Decode(protoName string, body []byte) (proto.Message, *Method, error) {
	m, err := r.Lookup(protoName)
	if err != nil {
		return nil, nil, err
	}
	if len(body) == 0 {
		// proto3 would parse nothing as an empty message, which no model can answer; an empty value
		// is far more likely a tombstone or a producer bug.
		return nil, nil, protocols.Invalid("empty value where a protobuf %s was expected", m.Request.Descriptor().FullName())
	}
	msg := m.Request.New().Interface()
	if err := proto.Unmarshal(body, msg); err != nil {
		return nil, nil, &protocols.CallError{Reason: protocols.ReasonInvalidRequest,
			Msg: fmt.Sprintf("value is not a protobuf %s", m.Request.Descriptor().FullName()), Err: err}
	}
	return msg, m, nil
}

// abbreviate keeps an error header short when a producer puts something huge in proto-name.
func abbreviate(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}

// ShallowCopy is a new message of m's type whose fields are m's fields: lists, maps and messages are
// shared, so a Prepare may replace a field of the copy but must not change one in place.
func ShallowCopy[M proto.Message](m M) M {
	src := m.ProtoReflect()
	dst := src.Type().New()
	src.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		dst.Set(fd, v)
		return true
	})
	return dst.Interface().(M)
}
