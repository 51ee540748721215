package graph

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// feedbackName is the proto name of a seldon.protos.Feedback request (gRPC), which a node's SendFeedback
// takes and its payload logger logs as feedback.
var feedbackName = string((*seldonpb.Feedback)(nil).ProtoReflect().Descriptor().FullName())

// What passes between nodes, per protocol and transport, as the legacy executor passes it: a node's
// whole answer becomes the next node's request (its Chain step), a combiner gets its children's answers
// as one message, a router's answer is read for a child's index, and with SELDON_ENABLE_ROUTING_INJECTION
// each answer gets the routes taken in meta.routing. JSON is rewritten with encoding/json exactly where
// the legacy executor rewrote it, so that the bytes a node receives, and the answer, are the same.

// message is a request or a node's answer on its way through the graph.
type message struct {
	body        []byte
	contentType string
	protoName   string
	decoded     proto.Message // over gRPC; body is then nil until the answer is encoded for Kafka
	// request is true for the record's own request (and a router's -2 handing it back): it is already
	// a request of the protocol and is never rewritten to be chained.
	request bool
}

func (m message) asRequest(r *record) *protocols.Request {
	return &protocols.Request{Body: m.body, ContentType: m.contentType, ProtoName: m.protoName,
		Puid: r.puid, Headers: r.headers, Decoded: m.decoded}
}

func fromResponse(r *protocols.Response) message {
	msg := message{body: r.Body, contentType: r.ContentType, protoName: r.ProtoName}
	if d, ok := r.Decoded.(proto.Message); ok {
		msg.decoded = d
	}
	return msg
}

// invalidAnswer is a node answer the graph cannot use.
func invalidAnswer(format string, args ...any) *protocols.CallError {
	return &protocols.CallError{Reason: protocols.ReasonInvalidAnswer, Msg: fmt.Sprintf(format, args...)}
}

// chain makes the answer that reaches node n a request of the protocol (the legacy Chain): seldon
// messages chain as they are; a TF Serving answer's "predictions" become "instances" (REST) or a
// PredictResponse's outputs a PredictRequest's inputs (gRPC); a v2 answer's outputs become inputs.
func (g *Graph) chain(n *Node, m message) (message, error) {
	if m.request || g.Protocol == protocols.Seldon {
		return m, nil
	}
	if g.Transport == "grpc" {
		return chainProto(n, m)
	}
	var from, to string
	switch g.Protocol {
	case protocols.Tensorflow:
		from, to = "predictions", "instances"
	case protocols.V2:
		from, to = "outputs", "inputs"
	}
	var obj map[string]any
	if err := json.Unmarshal(m.body, &obj); err != nil || obj == nil {
		return m, invalidAnswer("the answer passed to %s is not a JSON object, so it cannot be made its request", n.Name)
	}
	if _, ok := obj["inputs"]; ok {
		return m, nil
	}
	if _, ok := obj["instances"]; ok && g.Protocol == protocols.Tensorflow {
		return m, nil
	}
	v, ok := obj[from]
	if !ok {
		return m, invalidAnswer("the answer passed to %s has no %q to make its %q from", n.Name, from, to)
	}
	obj[to] = v
	delete(obj, from)
	b, err := json.Marshal(obj)
	if err != nil {
		return m, invalidAnswer("re-encoding the answer passed to %s: %v", n.Name, err)
	}
	m.body = b
	return m, nil
}

func chainProto(n *Node, m message) (message, error) {
	switch r := m.decoded.(type) {
	case *tfpb.PredictRequest, *tfpb.ClassificationRequest, *tfpb.RegressionRequest, *tfpb.MultiInferenceRequest, *v2pb.ModelInferRequest:
		return m, nil
	case *tfpb.PredictResponse:
		req := &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: n.Name}, Inputs: r.GetOutputs()}
		return message{decoded: req, protoName: string(req.ProtoReflect().Descriptor().FullName()), contentType: m.contentType}, nil
	case *v2pb.ModelInferResponse:
		req := &v2pb.ModelInferRequest{ModelName: n.Name, Id: r.GetId(), Parameters: r.GetParameters(),
			RawInputContents: r.GetRawOutputContents()}
		for _, o := range r.GetOutputs() {
			req.Inputs = append(req.Inputs, &v2pb.ModelInferRequest_InferInputTensor{Name: o.GetName(),
				Datatype: o.GetDatatype(), Shape: o.GetShape(), Parameters: o.GetParameters(), Contents: o.GetContents()})
		}
		return message{decoded: req, protoName: string(req.ProtoReflect().Descriptor().FullName()), contentType: m.contentType}, nil
	}
	return m, invalidAnswer("an answer of type %s cannot be made a request for %s", m.protoName, n.Name)
}

// combine makes a combiner's request from its children's answers: over REST a bare JSON array of them
// (every one must be JSON), over gRPC a SeldonMessageList.
func (g *Graph) combine(children []*Node, answers []message) (message, error) {
	if g.Transport == "grpc" {
		list := &seldonpb.SeldonMessageList{}
		for i, a := range answers {
			sm, ok := a.decoded.(*seldonpb.SeldonMessage)
			if !ok {
				return message{}, invalidAnswer("the answer of %s is a %s, not a SeldonMessage to combine", children[i].Name, a.protoName)
			}
			list.SeldonMessages = append(list.SeldonMessages, sm)
		}
		return message{decoded: list, protoName: string(list.ProtoReflect().Descriptor().FullName()), contentType: answers[0].contentType}, nil
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i, a := range answers {
		if !json.Valid(a.body) {
			return message{}, invalidAnswer("the answer of %s is not JSON, so it cannot be combined", children[i].Name)
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(a.body)
	}
	b.WriteByte(']')
	return message{body: b.Bytes(), contentType: answers[0].contentType}, nil
}

// routeOf reads a router's answer as the legacy executor does: a SeldonMessage whose data holds the
// child's index first (ndarray [[i]], tensor values, tftensor int_val), or, over REST, a bare JSON
// array of integers. A message with no data means -1, every child.
func (g *Graph) routeOf(m message) (int, error) {
	var routes []int
	if sm, ok := m.decoded.(*seldonpb.SeldonMessage); ok {
		routes = routesOf(sm)
	} else if m.decoded != nil {
		return 0, invalidAnswer("a router answered a %s, not a SeldonMessage", m.protoName)
	} else {
		var sm seldonpb.SeldonMessage
		if err := protojson.Unmarshal(m.body, &sm); err == nil {
			routes = routesOf(&sm)
		} else if err := json.Unmarshal(m.body, &routes); err != nil {
			return 0, invalidAnswer("the router's answer is neither a SeldonMessage nor a JSON array of child indexes: %s",
				protocols.Truncate(string(m.body), 200))
		}
	}
	if len(routes) == 0 {
		return 0, invalidAnswer("the router's answer holds no child index")
	}
	return routes[0], nil
}

func routesOf(sm *seldonpb.SeldonMessage) []int {
	d := sm.GetData()
	switch {
	case d.GetNdarray() != nil:
		var out []int
		for _, v := range d.GetNdarray().GetValues() {
			if lv := v.GetListValue(); lv != nil {
				if len(lv.GetValues()) == 0 {
					return nil
				}
				out = append(out, int(lv.GetValues()[0].GetNumberValue()))
			} else {
				out = append(out, int(v.GetNumberValue()))
			}
		}
		return out
	case d.GetTensor() != nil:
		var out []int
		for _, v := range d.GetTensor().GetValues() {
			out = append(out, int(v))
		}
		return out
	case d.GetTftensor() != nil:
		var out []int
		for _, v := range d.GetTftensor().GetIntVal() {
			out = append(out, int(v))
		}
		return out
	}
	return []int{-1}
}

// inject writes the routes taken so far into an answer's meta.routing, as the legacy executor does
// with SELDON_ENABLE_ROUTING_INJECTION: over REST the JSON is decoded and re-encoded with
// encoding/json (keys sorted, numbers as float64) whether or not it has a meta object to write into;
// an answer that is not JSON passes unchanged. Over gRPC a SeldonMessage gets meta.routing.
func (g *Graph) inject(m message, routes map[string]int32) message {
	if m.decoded != nil {
		sm, ok := m.decoded.(*seldonpb.SeldonMessage)
		if !ok {
			return m
		}
		// A copy: the same message may be on its way to a sibling node at this moment.
		sm = proto.Clone(sm).(*seldonpb.SeldonMessage)
		if sm.Meta == nil {
			sm.Meta = &seldonpb.Meta{}
		}
		sm.Meta.Routing = maps.Clone(routes)
		m.decoded = sm
		return m
	}
	var v any
	if err := json.Unmarshal(m.body, &v); err != nil {
		return m
	}
	if obj, ok := v.(map[string]any); ok {
		if meta, ok := obj["meta"].(map[string]any); ok {
			meta["routing"] = routes
		}
	}
	b, err := json.Marshal(v)
	if err != nil {
		return m
	}
	m.body = b
	return m
}
