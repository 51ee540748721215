// Package seldon is the Seldon Core v1 microservice protocol: SeldonMessage requests to a graph node's
// /predict, /transform-input, /transform-output, /route and /aggregate endpoints.
package seldon

import (
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/rest"
)

// REST is how a Seldon model container is called over HTTP. The Python wrapper and the other Seldon
// servers answer /health/ping; a custom server that does not is taken as ready once it answers at all.
var REST = rest.Protocol{
	Name: protocols.Seldon,
	// The paths the legacy executor calls; the Python wrapper serves them (and /api/v1.0/… aliases).
	Path:            func(m protocols.Method, _ string) string { return "/" + string(m) },
	ReadyPath:       func(string) string { return "/health/ping" },
	ReadyOnNotFound: true,
	CheckJSON:       rest.CheckObject,
}
