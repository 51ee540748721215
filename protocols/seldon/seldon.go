// Package seldon is the Seldon Core v1 microservice protocol: SeldonMessage requests to a model's
// /predict endpoint.
package seldon

import (
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/rest"
)

// REST is how a Seldon model container is called over HTTP. The Python wrapper and the other Seldon
// servers answer /health/ping; a custom server that does not is taken as ready once it answers at all.
var REST = rest.Protocol{
	Name:            protocols.Seldon,
	InferPath:       func(string) string { return "/predict" },
	ReadyPath:       func(string) string { return "/health/ping" },
	ReadyOnNotFound: true,
	CheckJSON:       rest.CheckObject,
}
