// Package protocols names the payload protocols a model speaks and the types every model client shares:
// the request taken from a record, the answer that goes back to Kafka, and the error that says whether a
// failed call is worth retrying. One sub-package per protocol holds its codecs; rest (and grpc) hold the
// clients: rest over HTTP/JSON, grpc over gRPC/protobuf.
package protocols

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"
)

// Name is a payload protocol.
type Name string

const (
	Seldon     Name = "seldon"
	Tensorflow Name = "tensorflow"
	V2         Name = "v2"
)

// ParseName reads a protocol as the Seldon operator writes it. kfserving is the operator's older name for
// the v2 (Open Inference) protocol.
func ParseName(s string) (Name, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "seldon":
		return Seldon, nil
	case "tensorflow":
		return Tensorflow, nil
	case "v2", "kfserving", "kserve", "oip":
		return V2, nil
	}
	return "", fmt.Errorf("unknown protocol %q (want seldon, tensorflow or v2)", s)
}

// Method is what a call asks of a graph node: the Seldon predictive unit's methods, each a path (REST)
// or a service (gRPC) of the node's container.
type Method string

const (
	Predict         Method = "predict"
	TransformInput  Method = "transform-input"
	TransformOutput Method = "transform-output"
	Route           Method = "route"
	Aggregate       Method = "aggregate"
)

// Header is a request record's header, forwarded to every node the request visits: HTTP headers over
// REST, gRPC metadata over gRPC.
type Header struct {
	Key, Value string
}

// Request is one inference request on its way to a node: the record's value as it came off the input
// topic, or the previous node's answer.
type Request struct {
	Body        []byte
	ContentType string // the record's Content-Type header, empty when absent
	ProtoName   string // the record's proto-name header (grpc transport)
	Puid        string // the request id, forwarded to the model as Seldon-Puid
	// Headers are the record's other headers, forwarded with every call as the legacy executor does.
	Headers []Header
	// Decoded is the message Body holds, when a client has decoded it (the gRPC client keeps the parsed
	// protobuf message here), so that calls and their retries need not decode it again. When Decoded is
	// set, Body may be nil; when both are, they say the same message, and a call may send Body's bytes
	// as they are instead of encoding Decoded again.
	Decoded any
}

// Response is a node's answer: the next node's request, or what is produced to Kafka.
type Response struct {
	Body        []byte
	ContentType string
	ProtoName   string // set for protobuf answers
	// Decoded is the answer as a message (gRPC); Body is then nil until it is encoded for Kafka.
	Decoded any
}

// Client calls one graph node's container. Implementations are safe for concurrent use.
type Client interface {
	// Check rejects a request that no model call could serve (not JSON, a wrong proto-name, ...) with a
	// *CallError whose Reason is ReasonInvalidRequest, before any call is made.
	Check(req *Request) error
	// Call asks the node's container for one of its methods. A failure is a *CallError that says
	// whether a retry may succeed.
	Call(ctx context.Context, m Method, req *Request) (*Response, error)
	// Ready reports whether the model can take requests now.
	Ready(ctx context.Context) error
	Close() error
}

// Reasons a record could not be served; they go in the error record's Seldon-Error-Reason header and in
// the errors metric's reason label, so they are a closed set.
const (
	ReasonInvalidRequest   = "invalid_request"   // the record's value is not a request of the protocol
	ReasonModelRejected    = "model_rejected"    // the model answered with a client error (4xx, InvalidArgument, ...)
	ReasonRetriesExhausted = "retries_exhausted" // transient failures outlasted the retry budget
	ReasonProduceFailed    = "produce_failed"    // the answer could not be written to the output topic
	// ReasonInvalidAnswer: a graph node answered what the graph cannot use: a route to a child that does
	// not exist, an answer that cannot be chained to the next node or combined with its siblings.
	ReasonInvalidAnswer = "invalid_answer"
	// ReasonInvalidCloudEvent: the record claims to be a CloudEvent (a ce_specversion header, or a
	// content-type of application/cloudevents…) and is not a valid one.
	ReasonInvalidCloudEvent = "invalid_cloudevent"
	// ReasonSchemaUnknown: with the Schema Registry wire format, the registry has no schema for a
	// request's schema id, or none for the answer's type under its subject (and may not register one).
	ReasonSchemaUnknown = "schema_unknown"
	// ReasonRegistryUnavailable: the Schema Registry could not be asked (unreachable, failing, or
	// refusing the sidecar's credentials) within its retries.
	ReasonRegistryUnavailable = "registry_unavailable"
)

// CallError is a failed model call or a request rejected before the call.
type CallError struct {
	Reason    string // one of the Reason constants
	Transient bool   // a retry may succeed: connection refused, timeout, 429, 5xx, Unavailable
	Status    int    // HTTP status, 0 when there was no answer
	Code      string // gRPC code name, empty for REST
	Msg       string // what went wrong, for people
	Err       error  // the cause, when there is one
}

func (e *CallError) Error() string {
	var b strings.Builder
	b.WriteString(e.Msg)
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " (gRPC %s)", e.Code)
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

func (e *CallError) Unwrap() error { return e.Err }

// Invalid returns the error for a request that fails a protocol's check.
func Invalid(format string, args ...any) *CallError {
	return &CallError{Reason: ReasonInvalidRequest, Msg: fmt.Sprintf(format, args...)}
}

// AsCallError returns err as a *CallError; an error of another type is taken as transient, since the
// client could not say what it was.
func AsCallError(err error) *CallError {
	var ce *CallError
	if errors.As(err, &ce) {
		return ce
	}
	return &CallError{Reason: ReasonRetriesExhausted, Transient: true, Msg: "model call failed", Err: err}
}

// DetailBytes bounds the model's own words (an error body or status message) quoted in a CallError.
const DetailBytes = 512

// Truncate bounds s to about max bytes for a record header, keeping its head and its tail with "…"
// between (a Python traceback's last line is its cause), never cutting inside a character: consumers
// read headers as UTF-8. Non-breaking spaces, which Go's protobuf errors put in their text, become
// spaces: a header is for grep as much as for people.
func Truncate(s string, max int) string {
	s = strings.ReplaceAll(s, "\u00a0", " ")
	if len(s) <= max {
		return s
	}
	head := max / 2
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	tail := len(s) - (max - head)
	for tail < len(s) && !utf8.RuneStart(s[tail]) {
		tail++
	}
	return s[:head] + "…" + s[tail:]
}

// Detail is what a model's error body says, for people: the message of the error shapes model servers
// answer with — {"error": "…"} (MLServer, TF Serving, the v2 protocol) and Seldon's
// {"status": {"info": "…"}} — or else the body itself, bounded by DetailBytes.
func Detail(body []byte) string {
	var shape struct {
		Error  any `json:"error"`
		Status *struct {
			Info string `json:"info"`
		} `json:"status"`
	}
	text := strings.TrimSpace(string(body))
	if json.Unmarshal(body, &shape) == nil {
		switch e := shape.Error.(type) {
		case string:
			if e != "" {
				text = e
			}
		case map[string]any: // {"error": {"message": "…"}}, as some servers nest it
			if m, ok := e["message"].(string); ok && m != "" {
				text = m
			}
		}
		if shape.Error == nil && shape.Status != nil && shape.Status.Info != "" {
			text = shape.Status.Info
		}
	}
	return Truncate(strings.TrimSpace(text), DetailBytes)
}

// Backoff is capped exponential backoff with jitter: the wait after the n-th failure is Min·2ⁿ⁻¹, at most
// Max, drawn from its upper half so that the retries of many records spread out.
type Backoff struct {
	Min, Max time.Duration
}

// Delay is the wait after the attempt-th failure (1-based).
func (b Backoff) Delay(attempt int) time.Duration {
	d := b.Max
	if attempt >= 1 && attempt < 32 {
		if e := b.Min << (attempt - 1); e > 0 && e < d && e>>(attempt-1) == b.Min { // no bits shifted out
			d = e
		}
	}
	if d <= 0 {
		return 0
	}
	return d/2 + rand.N(d/2+1)
}
