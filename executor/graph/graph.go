// Package graph is a SeldonDeployment predictor's inference graph: parsed and checked once at start
// (Parse), then walked for every request (Walker.Predict) the way the legacy Seldon executor walks it —
// transformers, models, routers, combiners and output transformers, each node's container called over
// REST or gRPC with retries, and each node's answer passed to the next. The Kafka data path sees one
// Predict call per record.
package graph

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/sdep"
)

// Graph is a parsed predictor graph.
type Graph struct {
	Root *Node
	// Nodes are the graph's nodes, depth first, parents before children (the operator's order).
	Nodes     []*Node
	Protocol  protocols.Name
	Transport string // rest or grpc
	// MaxMessageBytes bounds a request and an answer of every node call (KAFKA_MESSAGE_MAX_BYTES): a
	// larger request is refused by Check, a larger answer fails the call without retries; 0 is the
	// clients' own default.
	MaxMessageBytes int
}

// Node is a graph node and what the walk does at it: which of the node's container methods it calls,
// in the order the legacy executor calls them.
type Node struct {
	Name           string
	Type           string // as the operator defaults it: MODEL, TRANSFORMER, ...; empty when only methods say
	Implementation string
	Parameters     []sdep.Parameter
	Logger         *sdep.Logger

	// In is the call made on the way in: Predict (a model), TransformInput, or "" for none.
	In protocols.Method
	// Route says how a node with children picks them: routeAll (every child, in parallel), routeCall
	// (ask the node's router), or routeABTest (the built-in RANDOM_ABTEST).
	Route routing
	// Aggregate says whether the children's answers go to the node's combiner; without one, the first
	// child's answer is the node's.
	Aggregate bool
	// Out says whether the answer goes through the node's output transformer on the way back.
	Out bool
	// RatioA is the share of requests RANDOM_ABTEST sends to the first child.
	RatioA float64

	// Host, HTTPPort and GRPCPort are where the node's container listens; zero for a node that makes no
	// call (a RANDOM_ABTEST router, a unit that only passes its children's answers through).
	Host     string
	HTTPPort int
	GRPCPort int

	Children []*Node
}

type routing int

const (
	routeAll routing = iota
	routeCall
	routeABTest
)

// Calls reports whether the node's container is called at all.
func (n *Node) Calls() bool { return n.In != "" || n.Route == routeCall || n.Aggregate || n.Out }

// Address is where the node is called over the transport: host:port.
func (n *Node) Address(transport string) string {
	port := n.HTTPPort
	if transport == "grpc" {
		port = n.GRPCPort
	}
	return net.JoinHostPort(n.Host, strconv.Itoa(port))
}

// SpecError is a graph the sidecar cannot serve, found at start. Node names the node ("" for the graph
// as a whole).
type SpecError struct {
	Node string
	Msg  string
}

func (e *SpecError) Error() string {
	if e.Node == "" {
		return e.Msg
	}
	return fmt.Sprintf("graph node %q: %s", e.Node, e.Msg)
}

func specErr(node, format string, args ...any) error {
	return &SpecError{Node: node, Msg: fmt.Sprintf(format, args...)}
}

// The implementations of the legacy Java engine's built-in units. The Go executor the operator runs
// serves only RANDOM_ABTEST itself; a node naming one of the others, with no type or method that says
// what to call, would answer nothing there, so it is refused here rather than silently passed through.
const (
	implABTest      = "RANDOM_ABTEST"
	implUnknown     = "UNKNOWN_IMPLEMENTATION"
	implSimpleModel = "SIMPLE_MODEL"
	implSimpleRoute = "SIMPLE_ROUTER"
	implAverage     = "AVERAGE_COMBINER"
)

// Parse reads a predictor's graph as the operator writes it, with the operator's defaults, and checks
// that every node can be served with the protocol and transport. Every problem is a *SpecError naming
// the node.
func Parse(p sdep.PredictorSpec, protocol protocols.Name, transport string) (*Graph, error) {
	g := &Graph{Protocol: protocol, Transport: transport}
	if strings.TrimSpace(p.Graph.Name) == "" {
		return nil, specErr("", "the predictor's graph has no root node (graph.name is empty)")
	}
	ports := p.DefaultPorts
	if ports == nil {
		ports = sdep.ContainerPorts([]sdep.PredictorSpec{p}, p.Name)
	}
	single := len(p.Graph.Children) == 0
	seen := map[string]bool{}
	var parse func(u sdep.PredictiveUnit) (*Node, error)
	parse = func(u sdep.PredictiveUnit) (*Node, error) {
		if strings.TrimSpace(u.Name) == "" {
			return nil, specErr("", "a node has no name")
		}
		if seen[u.Name] {
			return nil, specErr(u.Name, "two nodes have this name: node names must be unique, they name the containers and the paths called")
		}
		seen[u.Name] = true
		n, err := parseNode(u, protocol, transport)
		if err != nil {
			return nil, err
		}
		g.Nodes = append(g.Nodes, n)
		for _, c := range u.Children {
			child, err := parse(c)
			if err != nil {
				return nil, err
			}
			n.Children = append(n.Children, child)
		}
		if err := checkChildren(n); err != nil {
			return nil, err
		}
		if n.Calls() {
			if err := resolveEndpoint(n, u.Endpoint, transport, ports, single); err != nil {
				return nil, err
			}
		}
		return n, nil
	}
	root, err := parse(p.Graph)
	if err != nil {
		return nil, err
	}
	g.Root = root
	return g, nil
}

// parseNode reads what the walk does at a node: the operator's defaulting (addDefaultsToGraph: a node
// with no type, methods or implementation is a MODEL; a prepackaged server is a MODEL), then the
// legacy executor's reading of type and methods.
func parseNode(u sdep.PredictiveUnit, protocol protocols.Name, transport string) (*Node, error) {
	n := &Node{Name: u.Name, Type: strings.ToUpper(strings.TrimSpace(u.Type)),
		Implementation: strings.ToUpper(strings.TrimSpace(u.Implementation)), Parameters: u.Parameters, Logger: u.Logger}
	if n.Implementation == implUnknown {
		n.Implementation = ""
	}
	if n.Type == sdep.TypeUnknown {
		n.Type = ""
	}
	switch {
	case n.Type == "" && len(u.Methods) == 0 && n.Implementation == "":
		n.Type = sdep.TypeModel
	case u.IsPrepackaged(): // SKLEARN_SERVER, TENSORFLOW_SERVER, MLFLOW_SERVER, TRITON_SERVER, …
		n.Type = sdep.TypeModel
	}
	methods := map[string]bool{}
	for _, m := range u.Methods {
		switch mm := strings.ToUpper(strings.TrimSpace(m)); mm {
		case sdep.MethodTransformInput, sdep.MethodTransformOutput, sdep.MethodRoute, sdep.MethodAggregate, sdep.MethodSendFeedback:
			methods[mm] = true
		default:
			return nil, specErr(u.Name, "unknown method %q (want TRANSFORM_INPUT, TRANSFORM_OUTPUT, ROUTE, AGGREGATE or SEND_FEEDBACK)", m)
		}
	}
	switch n.Type {
	case sdep.TypeModel:
		n.In = protocols.Predict
	case sdep.TypeTransformer:
		n.In = protocols.TransformInput
	case sdep.TypeRouter:
		n.Route = routeCall
	case sdep.TypeCombiner:
		n.Aggregate = true
	case sdep.TypeOutputTransformer:
		n.Out = true
	case "":
	default:
		return nil, specErr(u.Name, "unknown type %q (want MODEL, TRANSFORMER, OUTPUT_TRANSFORMER, ROUTER or COMBINER)", u.Type)
	}
	// The legacy executor: a MODEL predicts even when TRANSFORM_INPUT is also asked for.
	if methods[sdep.MethodTransformInput] && n.In == "" {
		n.In = protocols.TransformInput
	}
	if methods[sdep.MethodRoute] {
		n.Route = routeCall
	}
	if methods[sdep.MethodAggregate] {
		n.Aggregate = true
	}
	if methods[sdep.MethodTransformOutput] {
		n.Out = true
	}
	switch n.Implementation {
	case implABTest:
		if n.Route != routeCall {
			n.Route = routeABTest
			n.RatioA = 0.5
			// As the legacy executor reads it: the ratioA parameter, when it is the only one.
			if len(u.Parameters) == 1 && u.Parameters[0].Name == "ratioA" {
				r, err := strconv.ParseFloat(strings.TrimSpace(u.Parameters[0].Value), 64)
				if err != nil || r < 0 || r > 1 {
					return nil, specErr(u.Name, "RANDOM_ABTEST parameter ratioA %q: want a number from 0 to 1", u.Parameters[0].Value)
				}
				n.RatioA = r
			}
		}
	case implSimpleModel, implSimpleRoute, implAverage:
		if !n.Calls() {
			return nil, specErr(u.Name, "implementation %s was a built-in unit of Seldon's retired Java engine, which the Go executor does not serve; give the node a container and a type", n.Implementation)
		}
	}
	if l := u.Logger; l != nil {
		switch strings.ToLower(l.Mode) {
		case "", "request", "response", "all":
		default:
			return nil, specErr(u.Name, "logger mode %q: want request, response or all", l.Mode)
		}
	}
	if err := checkProtocol(n, protocol, transport); err != nil {
		return nil, err
	}
	return n, nil
}

// checkChildren refuses a router or combiner with nothing to route to or combine, and a RANDOM_ABTEST
// without the two children it picks between.
func checkChildren(n *Node) error {
	switch {
	case n.Route == routeCall && len(n.Children) == 0:
		return specErr(n.Name, "a router needs children to route to, and has none")
	case n.Aggregate && len(n.Children) == 0:
		return specErr(n.Name, "a combiner needs children to combine, and has none")
	case n.Route == routeABTest && len(n.Children) != 2:
		return specErr(n.Name, "RANDOM_ABTEST picks one of two children, and the node has %d", len(n.Children))
	}
	return nil
}

// checkProtocol refuses a node method the protocol cannot express over the transport: TF Serving and v2
// have no route or aggregate RPC (the legacy executor panicked there on the first request).
func checkProtocol(n *Node, protocol protocols.Name, transport string) error {
	if transport != "grpc" || protocol == protocols.Seldon {
		return nil
	}
	switch {
	case n.Route == routeCall:
		return specErr(n.Name, "a router over gRPC needs the seldon protocol: the %s protocol has no route RPC (use --transport=rest, or RANDOM_ABTEST)", protocol)
	case n.Aggregate:
		return specErr(n.Name, "a combiner over gRPC needs the seldon protocol: the %s protocol has no aggregate RPC (use --transport=rest)", protocol)
	}
	return nil
}

// resolveEndpoint sets where a node is called. The operator writes endpoint.service_host, httpPort and
// grpcPort into ENGINE_PREDICTOR; a hand-written manifest (--file) may give only service_port, or
// nothing, in which case the operator's own defaults are applied: the node's container in
// componentSpecs[0] is on localhost, at 9000 + its index among the containers (HTTP) and 9500 + it (gRPC).
func resolveEndpoint(n *Node, ep *sdep.Endpoint, transport string, ports map[string][2]int, single bool) error {
	n.Host = "localhost"
	if ep != nil {
		if h := strings.TrimSpace(ep.ServiceHost); h != "" {
			n.Host = h
		}
		n.HTTPPort, n.GRPCPort = int(ep.HTTPPort), int(ep.GRPCPort)
		// The operator sets service_port to the gRPC port when the endpoint or the deployment is gRPC,
		// else to the HTTP port; read back the same way.
		if sp := int(ep.ServicePort); sp != 0 {
			if strings.EqualFold(ep.Type, "GRPC") || transport == "grpc" {
				if n.GRPCPort == 0 {
					n.GRPCPort = sp
				}
			} else if n.HTTPPort == 0 {
				n.HTTPPort = sp
			}
		}
	}
	if p, ok := ports[n.Name]; ok {
		if n.HTTPPort == 0 {
			n.HTTPPort = p[0]
		}
		if n.GRPCPort == 0 {
			n.GRPCPort = p[1]
		}
	}
	if single {
		// A one-node graph with no endpoint and no componentSpecs: the operator's first container.
		if n.HTTPPort == 0 {
			n.HTTPPort = 9000
		}
		if n.GRPCPort == 0 {
			n.GRPCPort = 9500
		}
	}
	port, flag := n.HTTPPort, "httpPort"
	if transport == "grpc" {
		port, flag = n.GRPCPort, "grpcPort"
	}
	if port == 0 {
		return specErr(n.Name, "no endpoint to call: set endpoint.%s (or service_port), or name a container of componentSpecs[0] after the node", flag)
	}
	for _, p := range []int{n.HTTPPort, n.GRPCPort} {
		if p < 0 || p > 65535 {
			return specErr(n.Name, "%d is not a port", p)
		}
	}
	return nil
}
