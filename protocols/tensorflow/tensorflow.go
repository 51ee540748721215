// Package tensorflow is the TensorFlow Serving protocol: PredictRequest in its REST (JSON) form or as
// protobuf.
package tensorflow

import (
	"net/url"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/rest"
)

// REST is TensorFlow Serving's REST API. A predict request is a JSON object with "instances" (row format)
// or "inputs" (columnar format); the model status endpoint says whether the model is loaded.
var REST = rest.Protocol{
	Name:      protocols.Tensorflow,
	Path:      rest.ModelPaths("/v1/models/", ":predict", ":route", ":aggregate"),
	ReadyPath: func(model string) string { return "/v1/models/" + url.PathEscape(model) },
	CheckJSON: rest.CheckObjectWithAny("instances", "inputs"),
}
