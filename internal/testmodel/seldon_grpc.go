package testmodel

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

// The seldon gRPC answers are the REST answers of the message's JSON form (protojson), so the gRPC and
// REST answers agree by construction.

// SeldonPredictProto answers a SeldonMessage the way the test model does on seldon.protos.Model/Predict.
// It is SeldonPredictProtoWithImage with DefaultImage.
func SeldonPredictProto(model string, req *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	return SeldonPredictProtoWithImage(model, DefaultImage, req)
}

// SeldonPredictProtoWithImage answers a SeldonMessage the way a test model named name, reporting image,
// does on seldon.protos.Model/Predict: SeldonPredictWithImage on the message's JSON form. Per-row [sum,
// product] for data.ndarray and data.tensor, strData, binData and jsonData echoed, meta composed as the
// Python wrapper does. customData is echoed too (REST has no such field).
func SeldonPredictProtoWithImage(name, image string, req *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	return seldonProtoAnswer(req, true, func(b []byte) ([]byte, error) { return SeldonPredictWithImage(name, image, b) })
}

// SeldonTransformInputProto answers a SeldonMessage the way a test model named name, reporting image,
// does on seldon.protos.Transformer/TransformInput: SeldonTransformInput on the message's JSON form, so
// every number doubled. customData is echoed.
func SeldonTransformInputProto(name, image string, req *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	return seldonProtoAnswer(req, true, func(b []byte) ([]byte, error) { return SeldonTransformInput(name, image, b) })
}

// SeldonTransformOutputProto answers a SeldonMessage the way a test model named name, reporting image,
// does on seldon.protos.OutputTransformer/TransformOutput: SeldonTransformOutput on the message's JSON
// form, so 1 added to every number. customData is echoed.
func SeldonTransformOutputProto(name, image string, req *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	return seldonProtoAnswer(req, true, func(b []byte) ([]byte, error) { return SeldonTransformOutput(name, image, b) })
}

// SeldonRouteProto answers a SeldonMessage the way a test model named name, reporting image, does on
// seldon.protos.Router/Route: SeldonRoute on the message's JSON form, the route as data.ndarray
// [[route]] named "t:0".
func SeldonRouteProto(name, image string, req *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	return seldonProtoAnswer(req, false, func(b []byte) ([]byte, error) { return SeldonRoute(name, image, b) })
}

// SeldonAggregateProto answers a SeldonMessageList the way a test model named name, reporting image,
// does on seldon.protos.Combiner/Aggregate: SeldonAggregate on the list's JSON form, the element-wise mean
// of the messages' data with their metas merged.
func SeldonAggregateProto(name, image string, req *seldonpb.SeldonMessageList) (*seldonpb.SeldonMessage, error) {
	if req == nil {
		return nil, errors.New("no request")
	}
	in, err := protojson.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request as JSON: %w", err)
	}
	return seldonProtoDecode(SeldonAggregate(name, image, in))
}

// seldonProtoAnswer runs a REST answer on a SeldonMessage's JSON form. With echoCustom, customData, which
// has no REST form (and whose type protojson may not know), is answered as a stand-in strData and put back
// into the answer, so its meta is composed as any other message's.
func seldonProtoAnswer(req *seldonpb.SeldonMessage, echoCustom bool, answer func([]byte) ([]byte, error)) (*seldonpb.SeldonMessage, error) {
	if req == nil {
		return nil, errors.New("no request")
	}
	var custom *anypb.Any
	if cd := req.GetCustomData(); cd != nil && echoCustom {
		stand := proto.Clone(req).(*seldonpb.SeldonMessage)
		stand.DataOneof = &seldonpb.SeldonMessage_StrData{}
		req, custom = stand, cd
	}
	in, err := protojson.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request as JSON: %w", err)
	}
	resp, err := seldonProtoDecode(answer(in))
	if err != nil {
		return nil, err
	}
	if custom != nil {
		resp.DataOneof = &seldonpb.SeldonMessage_CustomData{CustomData: custom}
	}
	return resp, nil
}

// seldonProtoDecode decodes a REST answer into a SeldonMessage.
func seldonProtoDecode(out []byte, err error) (*seldonpb.SeldonMessage, error) {
	if err != nil {
		return nil, err
	}
	var resp seldonpb.SeldonMessage
	if err := protojson.Unmarshal(out, &resp); err != nil {
		return nil, fmt.Errorf("decode answer %s: %w", abbreviate(out), err)
	}
	return &resp, nil
}

// SeldonFeedbackProto answers a Feedback the way the test model does on seldon.protos.Model/SendFeedback:
// a SeldonMessage with meta.requestPath {model: "testmodel"}, the request's puid, and the reward in
// meta.tags["reward"]. A feedback with neither a request nor a response is refused.
func SeldonFeedbackProto(model string, fb *seldonpb.Feedback) (*seldonpb.SeldonMessage, error) {
	return seldonFeedback(model, DefaultImage, fb)
}

func seldonFeedback(name, image string, fb *seldonpb.Feedback) (*seldonpb.SeldonMessage, error) {
	if fb.GetRequest() == nil && fb.GetResponse() == nil {
		return nil, errors.New("feedback needs the request or the response it is about")
	}
	return &seldonpb.SeldonMessage{Meta: &seldonpb.Meta{
		Puid:        fb.GetRequest().GetMeta().GetPuid(),
		RequestPath: map[string]string{name: image},
		Tags:        map[string]*structpb.Value{"reward": structpb.NewNumberValue(float64(fb.GetReward()))},
	}}, nil
}
