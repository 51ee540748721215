// Package rest calls a model container over HTTP/JSON for any of the protocols: the protocol says which
// paths to use and how to check a request; this package owns the connection pool, the timeouts and the
// rules that say which failures are worth a retry.
package rest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/valyala/fasthttp"
	"golang.org/x/net/http/httpguts"

	"github.com/seldon-kafka/sidecar/protocols"
)

// Protocol is what differs between the protocols over REST.
type Protocol struct {
	Name protocols.Name
	// Path is the path of a node method for the node named model.
	Path      func(m protocols.Method, model string) string
	ReadyPath func(model string) string
	// ReadyOnNotFound takes a 404 from ReadyPath as ready: the server is up but has no such check.
	ReadyOnNotFound bool
	// CheckJSON rejects a JSON request body that cannot be a request of the protocol.
	CheckJSON func(body []byte) error
}

// Options configure a Client.
type Options struct {
	BaseURL string        // http://host:port of the model container
	Model   string        // the graph node's name, used in the protocol's paths
	Timeout time.Duration // per call; 0 means none (the caller's context still applies)
	// MaxConns bounds the idle connections kept to the model; it should be at least the records in
	// flight so that no call waits for a connection to be opened.
	MaxConns int
	// MaxResponseBytes bounds a model's answer; a larger one fails the call instead of exhausting memory.
	MaxResponseBytes int64
	// Transport, when set, is the connection pool to use, shared with the clients of the graph's other
	// nodes; New makes one of its own otherwise.
	Transport *Transport
	// RetryStatuses are the HTTP statuses a call is made again for (nil: DefaultRetryStatuses). Any other
	// error status is the model's verdict on the request. Connection errors and timeouts are always
	// retried.
	RetryStatuses []int
}

// DefaultRetryStatuses are the statuses of a server that is busy, restarting or behind a proxy that
// lost it: 408, 429, 502, 503, 504. A 500 is not among them: model servers (MLServer, Seldon's Python
// wrapper) answer 500 when the model raises on the input, and that answer does not change on retry.
var DefaultRetryStatuses = []int{http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusBadGateway,
	http.StatusServiceUnavailable, http.StatusGatewayTimeout}

// Client is a protocols.Client over HTTP/1.1. Redirects are not followed: a redirect would turn the POST
// into a GET, and the model's answer is whatever it says first.
type Client struct {
	proto     Protocol
	opts      Options
	addr      string // host:port dialled
	host      string // the Host header: the base URL's host, as written
	base      string // http://host:port/prefix, for messages
	prefix    string // the base URL's path, before every request path
	badURL    error  // the base URL cannot be called
	paths     map[protocols.Method]string
	readyPath string
	transport *Transport
	retry     map[int]bool // the statuses retried
}

var _ protocols.Client = (*Client)(nil)

// New returns a client for one model endpoint.
func New(p Protocol, o Options) *Client {
	if o.MaxConns <= 0 {
		o.MaxConns = 100
	}
	if o.MaxResponseBytes <= 0 {
		o.MaxResponseBytes = 64 << 20
	}
	c := &Client{proto: p, opts: o, transport: o.Transport, paths: map[protocols.Method]string{}}
	if c.transport == nil {
		c.transport = NewTransport(o.MaxConns)
	}
	u, err := url.Parse(strings.TrimRight(o.BaseURL, "/"))
	switch {
	case err != nil:
		c.badURL = fmt.Errorf("model URL %q: %w", o.BaseURL, err)
	case u.Scheme != "http" || u.Host == "":
		c.badURL = fmt.Errorf("model URL %q: want http://host:port (the model is in the same pod)", o.BaseURL)
	default:
		c.addr, c.host = u.Host, u.Host
		if u.Port() == "" {
			c.addr = net.JoinHostPort(u.Hostname(), "80")
		}
		c.prefix = u.EscapedPath()
		c.base = "http://" + u.Host + c.prefix
	}
	// The paths are made once: a call only looks its own up.
	for _, m := range []protocols.Method{protocols.Predict, protocols.TransformInput, protocols.TransformOutput,
		protocols.Route, protocols.Aggregate} {
		c.paths[m] = c.prefix + p.Path(m, o.Model)
	}
	c.readyPath = c.prefix + p.ReadyPath(o.Model)
	statuses := o.RetryStatuses
	if statuses == nil {
		statuses = DefaultRetryStatuses
	}
	c.retry = make(map[int]bool, len(statuses))
	for _, st := range statuses {
		c.retry[st] = true
	}
	return c
}

// ModelPaths is a Protocol.Path for servers that name the model in the path — prefix, the escaped
// model name, then a verb: the legacy executor's paths for TF Serving and v2 graphs, where
// transformers are called as models (the predict verb) and routers and combiners at their own verbs.
func ModelPaths(prefix, predict, route, aggregate string) func(m protocols.Method, model string) string {
	return func(m protocols.Method, model string) string {
		verb := predict
		switch m {
		case protocols.Route:
			verb = route
		case protocols.Aggregate:
			verb = aggregate
		}
		return prefix + url.PathEscape(model) + verb
	}
}

// Check validates a request body: JSON of the protocol's shape when the content type is JSON or absent.
// Another content type (a v2 binary tensor request, a form) is the model's to judge and passes as is.
func (c *Client) Check(req *protocols.Request) error {
	if len(req.Body) == 0 {
		return protocols.Invalid("empty value: a %s request is a JSON object", c.proto.Name)
	}
	if !IsJSON(req.ContentType) {
		return nil
	}
	if c.proto.CheckJSON == nil {
		return nil
	}
	if err := c.proto.CheckJSON(req.Body); err != nil {
		return protocols.Invalid("not a %s request: %v", c.proto.Name, err)
	}
	return nil
}

// Infer posts the request body to the protocol's inference path, unchanged.
func (c *Client) Infer(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
	return c.Call(ctx, protocols.Predict, req)
}

// Call posts the request body, unchanged, to the path of a node method.
func (c *Client) Call(ctx context.Context, m protocols.Method, req *protocols.Request) (*protocols.Response, error) {
	path, ok := c.paths[m]
	if !ok {
		path = c.prefix + c.proto.Path(m, c.opts.Model)
	}
	return c.post(ctx, path, req)
}

// deadline is when a call started now must end: the client's timeout or the caller's deadline, whichever
// comes first; zero for none.
func (c *Client) deadline(ctx context.Context) time.Time {
	var d time.Time
	if c.opts.Timeout > 0 {
		d = time.Now().Add(c.opts.Timeout)
	}
	if cd, ok := ctx.Deadline(); ok && (d.IsZero() || cd.Before(d)) {
		d = cd
	}
	return d
}

func (c *Client) post(ctx context.Context, path string, req *protocols.Request) (*protocols.Response, error) {
	if c.badURL != nil {
		return nil, &protocols.CallError{Reason: protocols.ReasonInvalidRequest, Msg: "building the model request", Err: c.badURL}
	}
	deadline := c.deadline(ctx)
	hreq := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(hreq)
	hreq.Header.SetMethod(http.MethodPost)
	hreq.Header.SetRequestURI(path)
	hreq.Header.SetHost(c.host)
	// The record's headers go to every node, as the legacy executor sends them; those that describe the
	// HTTP message itself are this request's own.
	for _, h := range req.Headers {
		if forwardable(h) {
			hreq.Header.Add(h.Key, h.Value)
		}
	}
	ct := req.ContentType
	if ct == "" {
		ct = "application/json"
	}
	hreq.Header.SetContentType(ct)
	if req.Puid != "" {
		hreq.Header.Set("Seldon-Puid", req.Puid)
	}
	hreq.SetBodyRaw(req.Body) // sent from the record's own bytes, not copied

	resp := fasthttp.AcquireResponse()
	defer releaseResponse(resp)
	err := c.transport.roundTrip(ctx, c.addr, deadline, hreq, resp, int(c.opts.MaxResponseBytes))
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		if st := resp.StatusCode(); st/100 != 2 {
			return nil, c.statusError(st, nil)
		}
		return nil, &protocols.CallError{Reason: protocols.ReasonModelRejected, Status: resp.StatusCode(),
			Msg: fmt.Sprintf("model answer larger than %d bytes (KAFKA_MESSAGE_MAX_BYTES)", c.opts.MaxResponseBytes)}
	case err != nil:
		return nil, c.failed(ctx, deadline, http.MethodPost, path, err)
	}
	status := resp.StatusCode()
	if status/100 != 2 {
		return nil, c.statusError(status, resp.Body())
	}
	rct := string(resp.Header.ContentType())
	if rct == "" {
		rct = "application/json"
	}
	return &protocols.Response{Body: answerBody(resp), ContentType: rct}, nil
}

// pooledBodyMax is the largest response buffer given back to fasthttp's pool. A larger one is left to
// the garbage collector: pooled, a buffer of megabytes would stay in memory, unused, until the
// collector's second cycle after its call, on top of the answers made since.
const pooledBodyMax = 64 << 10

// answerBody is the answer's bytes, owned by the caller. A small answer is copied, and its buffer reused
// by a later call; a large one keeps the buffer it was read into, which is then not pooled: a copy would
// hold the answer twice while it is made (two 64 MB answers in flight were 500 MB more at the peak).
func answerBody(resp *fasthttp.Response) []byte {
	body := resp.Body()
	if len(body) <= pooledBodyMax {
		return bytes.Clone(body)
	}
	resp.ReleaseBody(0) // fasthttp lets go of the buffer: it is the answer's now
	return body[:len(body):len(body)]
}

// releaseResponse gives resp back to fasthttp's pool, without a body buffer larger than pooledBodyMax.
func releaseResponse(resp *fasthttp.Response) {
	resp.ReleaseBody(pooledBodyMax)
	fasthttp.ReleaseResponse(resp)
}

// Ready asks the protocol's readiness endpoint.
func (c *Client) Ready(ctx context.Context) error {
	if c.badURL != nil {
		return c.badURL
	}
	readyURL := c.base + c.readyPath[len(c.prefix):]
	hreq := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(hreq)
	hreq.Header.SetMethod(http.MethodGet)
	hreq.Header.SetRequestURI(c.readyPath)
	hreq.Header.SetHost(c.host)
	resp := fasthttp.AcquireResponse()
	defer releaseResponse(resp)
	err := c.transport.roundTrip(ctx, c.addr, c.deadline(ctx), hreq, resp, 64<<10)
	if err != nil && !errors.Is(err, fasthttp.ErrBodyTooLarge) {
		return fmt.Errorf("model readiness: %w", c.failed(ctx, time.Time{}, http.MethodGet, c.readyPath, err))
	}
	status := resp.StatusCode()
	switch {
	case status/100 == 2:
		return nil
	case status == http.StatusNotFound && c.proto.ReadyOnNotFound:
		return nil
	}
	// What the server says is often the whole diagnosis: "model iris-classifier not found" when the
	// node is not named as the server names its model.
	if err == nil {
		if detail := protocols.Detail(resp.Body()); detail != "" {
			return fmt.Errorf("model readiness GET %s: HTTP %d: %s", readyURL, status, detail)
		}
	}
	return fmt.Errorf("model readiness GET %s: HTTP %d", readyURL, status)
}

// Close drops the pooled connections.
func (c *Client) Close() error {
	c.transport.CloseIdleConnections()
	return nil
}

// forwardable says whether a record header may be sent as an HTTP header: not one that frames the
// message (the client sets those), and a valid field name and value.
func forwardable(h protocols.Header) bool {
	switch http.CanonicalHeaderKey(h.Key) {
	case "Content-Type", "Content-Length", "Content-Encoding", "Transfer-Encoding", "Host", "Connection",
		"Keep-Alive", "Te", "Trailer", "Upgrade", "Proxy-Connection", "Expect", "Seldon-Puid":
		return false
	}
	return httpguts.ValidHeaderFieldName(h.Key) && httpguts.ValidHeaderFieldValue(h.Value)
}

// statusError is a model's error answer: transient when its status is one the client retries.
func (c *Client) statusError(code int, body []byte) *protocols.CallError {
	e := &protocols.CallError{Status: code, Transient: c.retry[code], Msg: "model answered " + http.StatusText(code)}
	if e.Transient {
		e.Reason = protocols.ReasonRetriesExhausted
	} else {
		e.Reason = protocols.ReasonModelRejected
	}
	if detail := protocols.Detail(body); detail != "" {
		e.Msg += ": " + detail
	}
	return e
}

// failed is a call that got no answer: transient, whether the model was unreachable, the call timed out
// or the caller's context ended (then the error wraps ctx's own).
func (c *Client) failed(ctx context.Context, deadline time.Time, method, path string, err error) *protocols.CallError {
	e := &protocols.CallError{Reason: protocols.ReasonRetriesExhausted, Transient: true, Msg: "model unreachable"}
	var te interface{ Timeout() bool }
	switch {
	case ctx.Err() != nil || errors.Is(err, errCanceled):
		e.Err = context.Cause(ctx)
		if errors.Is(e.Err, context.DeadlineExceeded) {
			e.Msg = "model call timed out"
		}
	case errors.As(err, &te) && te.Timeout(), !deadline.IsZero() && !time.Now().Before(deadline):
		e.Msg = "model call timed out"
		e.Err = fmt.Errorf("%s %s%s: %w", method, c.base, path[len(c.prefix):], context.DeadlineExceeded)
	default:
		e.Err = fmt.Errorf("%s %s%s: %w", method, c.base, path[len(c.prefix):], err)
	}
	return e
}

// IsJSON reports whether a Content-Type names JSON; an absent one is taken as JSON, the protocols' default.
func IsJSON(contentType string) bool {
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json") || mt == "text/json"
}
