package testmodel

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

// SeldonPredictProto answers a SeldonMessage the way the test model does on seldon.protos.Model/Predict.
// It is SeldonPredict on the message's JSON form, so the gRPC and REST answers agree by construction:
// per-row [sum, product] for data.ndarray and data.tensor, strData, binData and jsonData echoed,
// meta.puid echoed and meta.requestPath {model: "testmodel"}. customData is echoed too (REST has no
// such field).
func SeldonPredictProto(model string, req *seldonpb.SeldonMessage) (*seldonpb.SeldonMessage, error) {
	if req == nil {
		return nil, errors.New("no request")
	}
	if cd := req.GetCustomData(); cd != nil {
		return &seldonpb.SeldonMessage{
			Meta:      &seldonpb.Meta{Puid: req.GetMeta().GetPuid(), RequestPath: map[string]string{model: "testmodel"}},
			DataOneof: &seldonpb.SeldonMessage_CustomData{CustomData: cd},
		}, nil
	}
	in, err := protojson.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode request as JSON: %w", err)
	}
	out, err := SeldonPredict(model, in)
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
	if fb.GetRequest() == nil && fb.GetResponse() == nil {
		return nil, errors.New("feedback needs the request or the response it is about")
	}
	return &seldonpb.SeldonMessage{Meta: &seldonpb.Meta{
		Puid:        fb.GetRequest().GetMeta().GetPuid(),
		RequestPath: map[string]string{model: "testmodel"},
		Tags:        map[string]*structpb.Value{"reward": structpb.NewNumberValue(float64(fb.GetReward()))},
	}}, nil
}
