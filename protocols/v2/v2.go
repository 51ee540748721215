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
	Path:      path,
	ReadyPath: func(model string) string { return "/v2/models/" + url.PathEscape(model) + "/ready" },
	CheckJSON: rest.CheckObjectWithAny("inputs"),
}

// path is where the legacy executor sent each node method of a v2 graph: transformers are called as
// models ("/infer"), routers and combiners at "/route" and "/aggregate".
func path(m protocols.Method, model string) string {
	verb := "/infer"
	switch m {
	case protocols.Route:
		verb = "/route"
	case protocols.Aggregate:
		verb = "/aggregate"
	}
	return "/v2/models/" + url.PathEscape(model) + verb
}
