// Package grpc calls a model container over gRPC for any of the protocols. A request record's value
// is a binary protobuf message and its proto-name header names the type; the protocol says which
// types it takes, which RPC serves each, and how to ask the model whether it is ready. This package
// owns the proto-name registry, the connection, the deadlines and the rules that say which failures
// are worth a retry.
package grpc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/protocols"
)

// ContentType is the Content-Type of answers produced from a gRPC call.
const ContentType = "application/x-protobuf"

// puidMetadata carries the request id to the model, as Seldon's own executor sends it.
const puidMetadata = "seldon-puid"

// Options configure a Client.
type Options struct {
	Target  string        // host:port of the model container's gRPC server
	Model   string        // the graph node's name: the model name where a request leaves it out
	Timeout time.Duration // per call; 0 means none (the caller's context still applies)
	// MaxMessageBytes bounds a request and an answer; a larger answer fails the call instead of
	// exhausting memory. gRPC's own default (4 MiB) is too small for batch inference.
	MaxMessageBytes int
	// RetryCodes are the status codes a call is made again for (nil: DefaultRetryCodes). Any other
	// code is the model's verdict on the request.
	RetryCodes []codes.Code
}

// DefaultRetryCodes are the codes of a server that is busy, restarting or late: Unavailable,
// DeadlineExceeded, ResourceExhausted. Internal and Unknown are what a model server answers when the
// model raises on the input (REST's 500), and that answer does not change on retry.
var DefaultRetryCodes = []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted}

// Client is a protocols.Client over gRPC. It keeps one connection to the model, shared by all calls
// (HTTP/2 multiplexes them), and reconnects on its own when the model restarts.
type Client struct {
	proto  Protocol
	reg    *Registry
	opts   Options
	conn   *grpc.ClientConn
	health healthpb.HealthClient
	retry  Retry
}

var _ protocols.Client = (*Client)(nil)

// New returns a client for one model endpoint. It does not connect: the first call or readiness
// check does.
func New(p Protocol, o Options) (*Client, error) {
	reg, err := NewRegistry(p)
	if err != nil {
		return nil, err
	}
	if o.MaxMessageBytes <= 0 {
		o.MaxMessageBytes = 64 << 20
	}
	conn, err := grpc.NewClient(o.Target,
		// The model is in the same pod: plaintext, and never through an HTTP proxy from the environment.
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithNoProxy(),
		// Pings only while calls are in flight, and no more often than gRPC servers accept by default
		// (5 minutes): more frequent pings get the connection closed with "too_many_pings". The
		// per-call deadline, not keepalive, is what bounds a call to a hung model.
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 5 * time.Minute, Timeout: 20 * time.Second}),
		// gRPC's default reconnect backoff grows to 2 minutes; a model container that restarts should
		// be called again within a second or two of coming back.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(o.MaxMessageBytes), grpc.MaxCallSendMsgSize(o.MaxMessageBytes)),
	)
	if err != nil {
		return nil, fmt.Errorf("gRPC client for %s: %w", o.Target, err)
	}
	return &Client{proto: p, reg: reg, opts: o, conn: conn, health: healthpb.NewHealthClient(conn), retry: RetryOn(o.RetryCodes)}, nil
}

// Registry is the client's proto-name registry.
func (c *Client) Registry() *Registry { return c.reg }

// Check decodes the record's value as the type its proto-name names and keeps the message on req for
// the calls. A request that arrives decoded (the synchronous gRPC API) is checked to be one of the
// protocol's requests.
func (c *Client) Check(req *protocols.Request) error {
	if d, ok := req.Decoded.(proto.Message); ok {
		_, err := c.reg.Lookup(string(d.ProtoReflect().Descriptor().FullName()))
		return err
	}
	msg, _, err := c.reg.Decode(req.ProtoName, req.Body)
	if err != nil {
		return err
	}
	req.Decoded = msg
	return nil
}

// Infer calls the Predict RPC for the request's type and returns the model's answer as binary
// protobuf, with ProtoName set to the answer's type.
func (c *Client) Infer(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
	resp, err := c.Call(ctx, protocols.Predict, req)
	if err != nil {
		return nil, err
	}
	if err := Encode(resp); err != nil {
		return nil, err
	}
	return resp, nil
}

// Call calls the RPC that serves a node method for the request's type. The answer is kept decoded
// (Response.Decoded), for the next node; Encode gives it its bytes.
func (c *Client) Call(ctx context.Context, node protocols.Method, req *protocols.Request) (*protocols.Response, error) {
	msg, ok := req.Decoded.(proto.Message)
	if !ok {
		if err := c.Check(req); err != nil {
			return nil, err
		}
		msg = req.Decoded.(proto.Message)
	}
	reqType := msg.ProtoReflect().Descriptor().FullName()
	m := c.reg.For(node, reqType)
	if m == nil {
		return nil, &protocols.CallError{Reason: protocols.ReasonInvalidAnswer,
			Msg: fmt.Sprintf("the %s protocol has no %s RPC that takes a %s", c.proto.Name, node, reqType)}
	}
	var send any = msg
	if m.Prepare != nil {
		msg = m.Prepare(msg, c.opts.Model)
		send = msg
	}
	var opts []grpc.CallOption
	if req.Body != nil && send == req.Decoded {
		// The record's own bytes, which Check decoded, say exactly this message: they are sent as they
		// are instead of being encoded again (a seldon ndarray is hundreds of small messages, and
		// encoding them was a seventh of the sidecar's CPU per record over gRPC).
		send, opts = encoded(req.Body), passBytes
	}
	if c.opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.Timeout)
		defer cancel()
	}
	ctx = outgoing(ctx, req)
	out := m.Response.New().Interface()
	if err := c.conn.Invoke(ctx, m.FullMethod, send, out, opts...); err != nil {
		return nil, CallError(err, c.retry)
	}
	return &protocols.Response{Decoded: out, ContentType: ContentType, ProtoName: string(out.ProtoReflect().Descriptor().FullName())}, nil
}

// encoded is a request message already in its wire form.
type encoded []byte

// passBytes is the call option that sends an encoded request as it is; anything else, and every answer,
// goes through gRPC's own protobuf codec.
var passBytes = []grpc.CallOption{grpc.ForceCodecV2(bytesCodec{encoding.GetCodecV2("proto")})}

type bytesCodec struct{ encoding.CodecV2 }

func (c bytesCodec) Marshal(v any) (mem.BufferSlice, error) {
	if b, ok := v.(encoded); ok {
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return c.CodecV2.Marshal(v)
}

// Encode gives a decoded answer its bytes, once: deterministic, so that the same answer is the same
// bytes (map order would vary otherwise).
func Encode(r *protocols.Response) error {
	msg, ok := r.Decoded.(proto.Message)
	if r.Body != nil || !ok {
		return nil
	}
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
	if err != nil {
		return &protocols.CallError{Reason: protocols.ReasonModelRejected,
			Msg: "encoding the model's " + string(msg.ProtoReflect().Descriptor().FullName()), Err: err}
	}
	if body == nil {
		body = []byte{} // an empty message is a valid answer: no bytes, but not "not encoded"
	}
	r.Body = body
	return nil
}

// outgoing puts the request id and the record's headers in the call's metadata, as the legacy executor
// sends them. Headers gRPC reserves or cannot carry are left out.
func outgoing(ctx context.Context, req *protocols.Request) context.Context {
	md := metadata.MD{}
	for _, h := range req.Headers {
		k := strings.ToLower(h.Key)
		if validMetadata(k, h.Value) {
			md.Append(k, h.Value)
		}
	}
	if req.Puid != "" {
		md.Set(puidMetadata, req.Puid)
	}
	if len(md) == 0 {
		return ctx
	}
	return metadata.NewOutgoingContext(ctx, md)
}

// validMetadata accepts what gRPC lets a client send: a key of [0-9a-z-_.] that gRPC does not reserve
// (grpc-*, content-type, te, user-agent, the request id set separately), and a printable ASCII value
// unless the key is a -bin one.
func validMetadata(k, v string) bool {
	switch {
	case k == "" || strings.HasPrefix(k, "grpc-"):
		return false
	case k == "content-type" || k == "te" || k == "user-agent" || k == puidMetadata:
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	if strings.HasSuffix(k, "-bin") {
		return true
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return false
		}
	}
	return true
}

// Retry is the set of codes a failed call is made again for.
type Retry map[codes.Code]bool

// RetryOn is the set of codes; nil is DefaultRetryCodes.
func RetryOn(cs []codes.Code) Retry {
	if cs == nil {
		cs = DefaultRetryCodes
	}
	r := make(Retry, len(cs))
	for _, c := range cs {
		r[c] = true
	}
	return r
}

// CallError classifies a failed call's error as a protocols.CallError: the codes in retry (nil: the
// defaults) are transient and retried by the executor, the rest are the model rejecting the request.
func CallError(err error, retry Retry) *protocols.CallError {
	if retry == nil {
		retry = RetryOn(nil)
	}
	st, ok := status.FromError(err)
	if !ok {
		// Not from gRPC at all (it always answers with a status): say what it was and let it be retried.
		return &protocols.CallError{Reason: protocols.ReasonRetriesExhausted, Transient: true, Msg: "model call failed", Err: err}
	}
	code := st.Code()
	msg := protocols.Truncate(strings.TrimSpace(st.Message()), protocols.DetailBytes)
	if msg == "" {
		msg = "model answered " + code.String()
	}
	ce := &protocols.CallError{Code: code.String(), Msg: msg}
	if code == codes.ResourceExhausted && strings.Contains(msg, "message larger than max") {
		// gRPC's own size limit, the client's or the server's: the same message fails again, so it is not
		// retried as an overloaded server's ResourceExhausted is.
		ce.Reason, ce.Msg = protocols.ReasonModelRejected, msg+" (the sidecar's limit is KAFKA_MESSAGE_MAX_BYTES; a model server has its own)"
		return ce
	}
	if retry[code] {
		ce.Reason, ce.Transient = protocols.ReasonRetriesExhausted, true
	} else {
		ce.Reason = protocols.ReasonModelRejected
	}
	return ce
}

// Ready asks the model with the protocol's own check where it has one and the server implements it,
// else with the standard gRPC health service, else by connecting to its port.
func (c *Client) Ready(ctx context.Context) error {
	if c.proto.Ready != nil {
		err := c.proto.Ready(ctx, c.conn, c.opts.Model)
		if status.Code(err) != codes.Unimplemented {
			if err != nil {
				return fmt.Errorf("model readiness (the %s protocol's check, at %s): %w", c.proto.Name, c.opts.Target, err)
			}
			return nil
		}
	}
	resp, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{})
	switch {
	case err == nil:
		if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("model readiness (grpc.health.v1.Health/Check at %s): %s", c.opts.Target, s)
		}
		return nil
	case status.Code(err) != codes.Unimplemented:
		return fmt.Errorf("model readiness (grpc.health.v1.Health/Check at %s): %w", c.opts.Target, err)
	}
	// A server with neither check: listening is all that can be known before a call.
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", c.opts.Target)
	if err != nil {
		return fmt.Errorf("model readiness (a TCP connect to %s): %w", c.opts.Target, err)
	}
	return conn.Close()
}

// Close closes the connection; calls in flight fail with codes.Canceled.
func (c *Client) Close() error {
	if err := c.conn.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("closing the gRPC connection to %s: %w", c.opts.Target, err)
	}
	return nil
}
