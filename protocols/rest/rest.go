// Package rest calls a model container over HTTP/JSON for any of the protocols: the protocol says which
// paths to use and how to check a request; this package owns the connection pool, the timeouts and the
// rules that say which failures are worth a retry.
package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

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
	BaseURL string        // scheme://host:port of the model container
	Model   string        // the graph node's name, used in the protocol's paths
	Timeout time.Duration // per call; 0 means none (the caller's context still applies)
	// MaxConns bounds the connections kept to the model; it should be at least the records in flight so
	// that no call waits for a connection.
	MaxConns int
	// MaxResponseBytes bounds a model's answer; a larger one fails the call instead of exhausting memory.
	MaxResponseBytes int64
	// Transport, when set, is the connection pool to use, shared with the clients of the graph's other
	// nodes; New makes one of its own otherwise.
	Transport *http.Transport
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

// Client is a protocols.Client over HTTP.
type Client struct {
	proto     Protocol
	opts      Options
	base      string
	inferURL  string
	readyURL  string
	http      *http.Client
	transport *http.Transport
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
	base := strings.TrimRight(o.BaseURL, "/")
	tr := o.Transport
	if tr == nil {
		tr = NewTransport(o.MaxConns)
	}
	statuses := o.RetryStatuses
	if statuses == nil {
		statuses = DefaultRetryStatuses
	}
	retry := make(map[int]bool, len(statuses))
	for _, st := range statuses {
		retry[st] = true
	}
	return &Client{
		retry:    retry,
		proto:    p,
		opts:     o,
		base:     base,
		inferURL: base + p.Path(protocols.Predict, o.Model),
		readyURL: base + p.ReadyPath(o.Model),
		// A redirect would turn the POST into a GET; the model's answer is whatever it says first.
		http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		transport: tr,
	}
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

// NewTransport is the connection pool for model containers, keeping up to maxConns connections per
// container so that no call waits for one.
func NewTransport(maxConns int) *http.Transport {
	return &http.Transport{
		Proxy: nil, // the model is in the same pod: an HTTP_PROXY from the environment must not apply
		DialContext: (&net.Dialer{
			Timeout:   5 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:          maxConns,
		MaxIdleConnsPerHost:   maxConns,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // the per-call timeout covers it
		ForceAttemptHTTP2:     false,
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
	return c.post(ctx, c.inferURL, req)
}

// Call posts the request body, unchanged, to the path of a node method.
func (c *Client) Call(ctx context.Context, m protocols.Method, req *protocols.Request) (*protocols.Response, error) {
	if m == protocols.Predict {
		return c.post(ctx, c.inferURL, req)
	}
	return c.post(ctx, c.base+c.proto.Path(m, c.opts.Model), req)
}

func (c *Client) post(ctx context.Context, url string, req *protocols.Request) (*protocols.Response, error) {
	if c.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(req.Body))
	if err != nil {
		return nil, &protocols.CallError{Reason: protocols.ReasonInvalidRequest, Msg: "building the model request", Err: err}
	}
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
	hreq.Header.Set("Content-Type", ct)
	if req.Puid != "" {
		hreq.Header.Set("Seldon-Puid", req.Puid)
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return nil, transportError(ctx, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.opts.MaxResponseBytes+1))
	if err != nil {
		return nil, transportError(ctx, err)
	}
	if resp.StatusCode/100 != 2 {
		return nil, c.statusError(resp.StatusCode, body)
	}
	if int64(len(body)) > c.opts.MaxResponseBytes {
		return nil, &protocols.CallError{Reason: protocols.ReasonModelRejected, Status: resp.StatusCode,
			Msg: fmt.Sprintf("model answer larger than %d bytes (KAFKA_MESSAGE_MAX_BYTES)", c.opts.MaxResponseBytes)}
	}
	rct := resp.Header.Get("Content-Type")
	if rct == "" {
		rct = "application/json"
	}
	return &protocols.Response{Body: body, ContentType: rct}, nil
}

// Ready asks the protocol's readiness endpoint.
func (c *Client) Ready(ctx context.Context) error {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.readyURL, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(hreq)
	if err != nil {
		return fmt.Errorf("model readiness GET %s: %w", c.readyURL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusNotFound && c.proto.ReadyOnNotFound:
		return nil
	}
	// What the server says is often the whole diagnosis: "model iris-classifier not found" when the
	// node is not named as the server names its model.
	if detail := protocols.Detail(body); detail != "" {
		return fmt.Errorf("model readiness GET %s: HTTP %d: %s", c.readyURL, resp.StatusCode, detail)
	}
	return fmt.Errorf("model readiness GET %s: HTTP %d", c.readyURL, resp.StatusCode)
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

func transportError(ctx context.Context, err error) *protocols.CallError {
	msg := "model unreachable"
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
		msg = "model call timed out"
	}
	return &protocols.CallError{Reason: protocols.ReasonRetriesExhausted, Transient: true, Msg: msg, Err: err}
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

// CheckObject accepts a JSON object.
func CheckObject(body []byte) error {
	_, err := topLevel(body)
	return err
}

// CheckObjectWithAny accepts a JSON object holding at least one of the keys.
func CheckObjectWithAny(keys ...string) func([]byte) error {
	return func(body []byte) error {
		fields, err := topLevel(body)
		if err != nil {
			return err
		}
		for _, k := range keys {
			if _, ok := fields[k]; ok {
				return nil
			}
		}
		return fmt.Errorf("the object has none of the fields %q", keys)
	}
}

// topLevel decodes one level of a JSON object; json.Unmarshal validates the whole document on the way.
func topLevel(body []byte) (map[string]json.RawMessage, error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, errors.New("blank value")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		var ute *json.UnmarshalTypeError
		if errors.As(err, &ute) {
			return nil, fmt.Errorf("a JSON %s, not an object", ute.Value)
		}
		return nil, fmt.Errorf("invalid JSON: %v", err)
	}
	if fields == nil {
		return nil, errors.New("JSON null, not an object")
	}
	return fields, nil
}
