// Package v2 is the Open Inference Protocol (KServe v2, the operator's "kfserving" protocol).
package v2

import (
	"net/url"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/rest"
)

// REST is the Open Inference Protocol over HTTP: an inference request is a JSON object with an "inputs"
// list; the model's own readiness endpoint says whether it is loaded.
var REST = rest.Protocol{
	Name:      protocols.V2,
	Path:      rest.ModelPaths("/v2/models/", "/infer", "/route", "/aggregate"),
	ReadyPath: func(model string) string { return "/v2/models/" + url.PathEscape(model) + "/ready" },
	CheckJSON: rest.CheckObjectWithAny("inputs"),
}
