package graph

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/payloadlog"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/grpc"
	"github.com/seldon-kafka/sidecar/protocols/rest"
	"github.com/seldon-kafka/sidecar/protocols/seldon"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow"
	v2 "github.com/seldon-kafka/sidecar/protocols/v2"
	"github.com/seldon-kafka/sidecar/tracing"
)

// Options configure a Walker.
type Options struct {
	// Timeout bounds one call to one node; 0 means none (the caller's context still applies).
	Timeout time.Duration
	// MaxAttempts is the number of calls to a node, for one request, before a transient failure is the
	// record's error. Calls made while the Gate is closed do not count: they wait.
	MaxAttempts int
	// Backoff is the wait between attempts.
	Backoff protocols.Backoff
	// RetryStatuses and RetryCodes are the HTTP statuses and gRPC codes a call is made again for; nil
	// means the clients' defaults (rest.DefaultRetryStatuses, grpc.DefaultRetryCodes).
	RetryStatuses []int
	RetryCodes    []codes.Code
	// MaxConns is the number of connections kept to each node's container (REST); at least the calls in
	// flight, so that no call waits for a connection.
	MaxConns int
	// RoutingInjection writes the routes taken into every answer's meta.routing, as the legacy executor
	// does when SELDON_ENABLE_ROUTING_INJECTION is set.
	RoutingInjection bool
	// Gate, when set, is waited at before every call: closed while the graph is not ready.
	Gate Gate
	// Observer, when set, is told of every call and retry (metrics).
	Observer Observer
	// Payloads, when set, is given what each node with a logger receives and answers (payload logging).
	Payloads *payloadlog.Logger
	// Tracer, when set, starts a span for every node call (its retries included), a child of the span
	// in the walk's context, and calls the node with that span's trace context in its headers.
	Tracer *tracing.Tracer
}

// Gate holds calls while the graph is not ready, so that a node that is down costs waiting, not retries.
type Gate interface {
	// Wait returns when calls may be made, or with ctx's error.
	Wait(ctx context.Context) error
	// Suspect says a call failed in a way that a node going down would explain: check readiness now.
	Suspect()
}

// Observer is told of the calls the walk makes.
type Observer interface {
	Called(node string, m protocols.Method, d time.Duration, err error)
	Retried(node string, m protocols.Method)
}

// NodeError is a request a graph node could not serve: the node, the method called, and why.
type NodeError struct {
	Node   string
	Method protocols.Method
	Err    *protocols.CallError
}

func (e *NodeError) Error() string { return fmt.Sprintf("node %s (%s): %v", e.Node, e.Method, e.Err) }
func (e *NodeError) Unwrap() error { return e.Err }

// Walker walks a graph for every request: one Predict per record. It is safe for concurrent use.
type Walker struct {
	g       *Graph
	opts    Options
	clients map[*Node]protocols.Client
	called  []*Node          // the nodes whose containers are called, in the graph's order
	entry   protocols.Client // the client that checks a request (Check); any node's would do
}

// New builds the clients of every node that is called. It connects nothing: the first call or
// readiness check does.
func New(g *Graph, o Options) (*Walker, error) {
	if o.MaxAttempts < 1 {
		o.MaxAttempts = 1
	}
	w := &Walker{g: g, opts: o, clients: map[*Node]protocols.Client{}}
	var shared *rest.Transport
	if g.Transport != "grpc" {
		shared = rest.NewTransport(max(o.MaxConns, 1))
	}
	for _, n := range g.Nodes {
		if !n.Calls() {
			continue
		}
		c, err := w.client(n, shared)
		if err != nil {
			_ = w.Close()
			return nil, fmt.Errorf("graph node %s: %w", n.Name, err)
		}
		w.clients[n] = c
		w.called = append(w.called, n)
		if w.entry == nil {
			w.entry = c
		}
	}
	if w.entry == nil {
		return nil, errors.New("the graph calls no node's container")
	}
	return w, nil
}

// The clients of each protocol, by transport.
var (
	grpcProtocols = map[protocols.Name]grpc.Protocol{protocols.Seldon: seldon.GRPC, protocols.Tensorflow: tensorflow.GRPC, protocols.V2: v2.GRPC}
	restProtocols = map[protocols.Name]rest.Protocol{protocols.Seldon: seldon.REST, protocols.Tensorflow: tensorflow.REST, protocols.V2: v2.REST}
)

// GRPCProtocol is a protocol's gRPC side: the request types it takes and the RPCs that serve them.
func GRPCProtocol(p protocols.Name) (grpc.Protocol, bool) {
	gp, ok := grpcProtocols[p]
	return gp, ok
}

func (w *Walker) client(n *Node, shared *rest.Transport) (protocols.Client, error) {
	if w.g.Transport == "grpc" {
		p, ok := grpcProtocols[w.g.Protocol]
		if !ok {
			return nil, fmt.Errorf("protocol %q has no gRPC client", w.g.Protocol)
		}
		return grpc.New(p, grpc.Options{Target: n.Address("grpc"), Model: n.Name, Timeout: w.opts.Timeout, RetryCodes: w.opts.RetryCodes,
			MaxMessageBytes: w.g.MaxMessageBytes})
	}
	p, ok := restProtocols[w.g.Protocol]
	if !ok {
		return nil, fmt.Errorf("protocol %q has no REST client", w.g.Protocol)
	}
	return rest.New(p, rest.Options{BaseURL: "http://" + n.Address("rest"), Model: n.Name, Timeout: w.opts.Timeout,
		MaxConns: w.opts.MaxConns, Transport: shared, RetryStatuses: w.opts.RetryStatuses, MaxResponseBytes: int64(w.g.MaxMessageBytes)}), nil
}

// Graph is the graph walked.
func (w *Walker) Graph() *Graph { return w.g }

// Check rejects a request no walk could serve (larger than MaxMessageBytes, not JSON of the protocol, a
// wrong proto-name, …) with a *protocols.CallError whose Reason is invalid_request, before any call.
// Over gRPC it keeps the decoded message on req.
func (w *Walker) Check(req *protocols.Request) error {
	if limit := w.g.MaxMessageBytes; limit > 0 && len(req.Body) > limit {
		// Over gRPC no node could be sent it; over REST it is refused the same, so the limit means one
		// thing whatever the transport.
		return protocols.Invalid("the request is %d bytes, over the %d of KAFKA_MESSAGE_MAX_BYTES", len(req.Body), limit)
	}
	return w.entry.Check(req)
}

// record is what one walk shares between its steps and branches.
type record struct {
	puid    string
	headers []protocols.Header
	mu      sync.Mutex
	routes  map[string]int32 // nil unless routing is injected
}

func (r *record) route(node string, v int32) {
	if r.routes == nil {
		return
	}
	r.mu.Lock()
	r.routes[node] = v
	r.mu.Unlock()
}

func (r *record) snapshot() map[string]int32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return maps.Clone(r.routes)
}

// Predict walks the graph for one request and returns the answer, encoded for Kafka. A failure is a
// *NodeError naming the node, or ctx's error when ctx ended first.
func (w *Walker) Predict(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
	resp, err := w.Walk(ctx, req)
	if err != nil {
		return nil, err
	}
	if w.g.Transport == "grpc" {
		if err := grpc.Encode(resp); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// Walk is Predict but for the encoding: over gRPC the answer is left decoded (Response.Decoded, no
// Body), for a caller that takes it apart first (package batch).
func (w *Walker) Walk(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
	r := &record{puid: req.Puid, headers: req.Headers}
	if w.opts.RoutingInjection {
		r.routes = map[string]int32{}
	}
	in := message{body: req.Body, contentType: req.ContentType, protoName: req.ProtoName, request: true}
	if d, ok := req.Decoded.(proto.Message); ok {
		in.decoded = d
	}
	out, err := w.walk(ctx, r, w.g.Root, in)
	if err != nil {
		return nil, err
	}
	resp := &protocols.Response{Body: out.body, ContentType: out.contentType, ProtoName: out.protoName, Decoded: out.decoded}
	if w.g.Transport == "grpc" {
		resp.ContentType = grpc.ContentType
	} else if resp.ContentType == "" {
		resp.ContentType = "application/json"
	}
	return resp, nil
}

// walk is the legacy executor's Predict at one node: transform the input (or predict), pass the result
// to the children a router picks (all by default, in parallel), combine their answers, transform the
// output, and write the routes taken into the answer when asked.
func (w *Walker) walk(ctx context.Context, r *record, n *Node, m message) (message, error) {
	// Feedback is logged as such on its way in, and its answer not at all, as the legacy executor did.
	feedback := m.protoName == feedbackName
	if feedback {
		w.logPayload(n, payloadlog.Feedback, r, m)
	} else {
		w.logPayload(n, payloadlog.Request, r, m)
	}
	var err error
	if n.In != "" {
		if m, err = w.call(ctx, r, n, n.In, m, true); err != nil {
			return message{}, err
		}
		r.route(n.Name, -1)
	}
	if len(n.Children) > 0 {
		if m, err = w.children(ctx, r, n, m); err != nil {
			return message{}, err
		}
	}
	if n.Out {
		if m, err = w.call(ctx, r, n, protocols.TransformOutput, m, true); err != nil {
			return message{}, err
		}
	}
	if !feedback {
		w.logPayload(n, payloadlog.Response, r, m)
	}
	if r.routes != nil {
		m = w.g.inject(m, r.snapshot())
		if m.decoded != nil {
			m.body = nil // rewritten: encoded again at the end
		}
	}
	return m, nil
}

// logPayload hands what a node with a logger receives or answers to the payload logger, as the legacy
// executor logs it: the node's input on the way in, its answer on the way out.
func (w *Walker) logPayload(n *Node, kind payloadlog.Kind, r *record, m message) {
	if w.opts.Payloads == nil || n.Logger == nil || !payloadlog.Wants(n.Logger.Mode, kind) {
		return
	}
	body, ct := m.body, m.contentType
	if body == nil && m.decoded != nil {
		var err error
		if body, err = (proto.MarshalOptions{Deterministic: true}).Marshal(m.decoded); err != nil {
			return // the walk reports an unencodable message itself
		}
		ct = grpc.ContentType
	}
	if ct == "" { // as the node's client sends it
		ct = "application/json"
		if w.g.Transport == "grpc" {
			ct = grpc.ContentType
		}
	}
	url := ""
	if n.Logger.URL != nil {
		url = *n.Logger.URL
	}
	w.opts.Payloads.Log(url, kind, n.Name, r.puid, body, ct)
}

func (w *Walker) children(ctx context.Context, r *record, n *Node, m message) (message, error) {
	route := -1
	switch n.Route {
	case routeCall:
		ans, err := w.call(ctx, r, n, protocols.Route, m, false)
		if err != nil {
			return message{}, err
		}
		if route, err = w.g.routeOf(ans); err != nil {
			return message{}, &NodeError{Node: n.Name, Method: protocols.Route, Err: protocols.AsCallError(err)}
		}
	case routeABTest:
		route = 1
		if rand.Float64() < n.RatioA {
			route = 0
		}
	}
	var answers []message
	picked := n.Children
	switch {
	case route == -1:
		var err error
		if answers, err = w.all(ctx, r, n.Children, m); err != nil {
			return message{}, err
		}
		r.route(n.Name, -1)
	case route == -2:
		// No child: the request itself is the answer, as far as this node goes.
		r.route(n.Name, -2)
		return m, nil
	case route >= 0 && route < len(n.Children):
		picked = n.Children[route : route+1]
		a, err := w.walk(ctx, r, picked[0], m)
		if err != nil {
			return message{}, err
		}
		r.route(n.Name, int32(route))
		answers = []message{a}
	default:
		return message{}, &NodeError{Node: n.Name, Method: protocols.Route, Err: invalidAnswer(
			"the router chose child %d, and the node has %d children (0 to %d; -1 is all of them, -2 none)",
			route, len(n.Children), len(n.Children)-1)}
	}
	if !n.Aggregate {
		return answers[0], nil
	}
	r.route(n.Name, -1)
	req, err := w.g.combine(picked, answers)
	if err != nil {
		return message{}, &NodeError{Node: n.Name, Method: protocols.Aggregate, Err: protocols.AsCallError(err)}
	}
	return w.call(ctx, r, n, protocols.Aggregate, req, false)
}

// all walks every child at once, each with the same request. The first child to fail (in time) is the
// walk's failure, and the others are stopped.
func (w *Walker) all(ctx context.Context, r *record, children []*Node, m message) ([]message, error) {
	answers := make([]message, len(children))
	if len(children) == 1 {
		a, err := w.walk(ctx, r, children[0], m)
		answers[0] = a
		return answers, err
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	for i, c := range children {
		wg.Go(func() {
			a, err := w.walk(cctx, r, c, m)
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
					cancel()
				}
				mu.Unlock()
				return
			}
			answers[i] = a
		})
	}
	wg.Wait()
	if first != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, first
	}
	return answers, nil
}

// call makes one node method's call, chaining the message into a request of the protocol first when
// the method takes one.
func (w *Walker) call(ctx context.Context, r *record, n *Node, method protocols.Method, m message, chain bool) (message, error) {
	if chain {
		var err error
		if m, err = w.g.chain(n, m); err != nil {
			return message{}, &NodeError{Node: n.Name, Method: method, Err: protocols.AsCallError(err)}
		}
	}
	ctx, span := w.opts.Tracer.StartCall(ctx, n.Name, string(method))
	req := m.asRequest(r)
	req.Headers = w.opts.Tracer.NodeHeaders(ctx, req.Headers)
	resp, err := w.invoke(ctx, n, method, req)
	tracing.End(span, err)
	if err != nil {
		if ctx.Err() != nil {
			return message{}, ctx.Err()
		}
		return message{}, &NodeError{Node: n.Name, Method: method, Err: protocols.AsCallError(err)}
	}
	return fromResponse(resp), nil
}

// invoke calls a node, retrying transient failures with capped exponential backoff and jitter. Only
// calls made while the gate is open count against the attempts: while it is closed, the call waits.
func (w *Walker) invoke(ctx context.Context, n *Node, method protocols.Method, req *protocols.Request) (*protocols.Response, error) {
	c := w.clients[n]
	for attempt := 1; ; attempt++ {
		if w.opts.Gate != nil {
			if err := w.opts.Gate.Wait(ctx); err != nil {
				return nil, err
			}
		}
		start := time.Now()
		resp, err := c.Call(ctx, method, req)
		if w.opts.Observer != nil {
			w.opts.Observer.Called(n.Name, method, time.Since(start), err)
		}
		if err == nil {
			return resp, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		ce := protocols.AsCallError(err)
		if !ce.Transient {
			return nil, ce
		}
		if w.opts.Gate != nil {
			w.opts.Gate.Suspect()
		}
		if attempt >= w.opts.MaxAttempts {
			ce.Reason = protocols.ReasonRetriesExhausted
			ce.Msg = fmt.Sprintf("%s, %d attempts", ce.Msg, attempt)
			return nil, ce
		}
		if w.opts.Observer != nil {
			w.opts.Observer.Retried(n.Name, method)
		}
		tracing.Retried(ctx, attempt, ce)
		t := time.NewTimer(w.opts.Backoff.Delay(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
	}
}

// NodeStatus is one node's readiness: Err is nil when it is ready.
type NodeStatus struct {
	Node    string
	Address string
	Err     error
}

// Ready asks every node that is called whether it can take requests now, all at once, and returns
// their answers in the graph's order.
func (w *Walker) Ready(ctx context.Context) []NodeStatus {
	out := make([]NodeStatus, len(w.called))
	var wg sync.WaitGroup
	for i, n := range w.called {
		out[i] = NodeStatus{Node: n.Name, Address: n.Address(w.g.Transport)}
		wg.Go(func() { out[i].Err = w.clients[n].Ready(ctx) })
	}
	wg.Wait()
	return out
}

// Close closes every node's client.
func (w *Walker) Close() error {
	var errs []error
	for _, c := range w.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
