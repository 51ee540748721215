package testmodel

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
)

// DefaultModelName is served when Options.ModelName is empty.
const DefaultModelName = "model"

// modelVersion is the only version the test model has.
const modelVersion = "1"

// DefaultSlowDelay is how long a call tagged slow-node waits when
// Options.SlowDelay is zero: far longer than any sane client timeout, so
// that a test provoking a timeout does not depend on the machine's speed.
const DefaultSlowDelay = 10 * time.Second

// Options configure a Server.
type Options struct {
	// ModelName is the model the tensorflow and v2 routes serve (others get
	// 404); seldon reports it in meta.requestPath. It is also the node's
	// name in a graph, which the fail-node and slow-node tags name. Default
	// "model".
	ModelName string
	// Image is what the seldon answers report for the node in
	// meta.requestPath ({ModelName: Image}), as the Python wrapper reports
	// its container image. Default DefaultImage ("testmodel").
	Image string
	// Role is the part the tensorflow and v2 infer routes play in a graph
	// (see Role); the zero value is RoleModel. New panics on an unknown
	// role: use ParseRole on untrusted names.
	Role Role
	// SlowDelay is how long a seldon call whose meta.tags["slow-node"]
	// names this node waits before answering, unless its client gives up
	// first. Zero means DefaultSlowDelay.
	SlowDelay time.Duration
	// Delay is the initial value of SetDelay: a latency every call waits on
	// its own, as if the model could serve any number of calls at once.
	Delay time.Duration
	// CallCost is a cost charged once per infer call, whatever the rows it
	// carries: each call holds the model's single compute slot for CallCost,
	// so calls queue one behind another and at most 1/CallCost calls a
	// second are served — the shape of a model on one accelerator, where a
	// call carrying a batch of rows serves them all for the price of one.
	// Zero (the default) charges nothing.
	CallCost time.Duration
	// Reject, if set, sees every infer request body after the injected
	// faults; returning (status, true) answers that status instead of the
	// model's answer.
	Reject func(body []byte) (status int, reject bool)
}

// Server is the test model server. Its faults can be changed at any time,
// from any goroutine, while requests are in flight.
//
// Every infer call (any protocol, any graph role) goes through, in order:
// count the call, wait the delay, wait while hanging (SetHanging), then hold the compute slot
// for the call cost (giving up if the client does, while waiting, hanging or queued), 503 if not
// ready, 503 if inside a SetUnavailable window, the FailNext status while any
// are left, the Reject hook, then, for seldon calls only, the per-request
// tags (wait SlowDelay if meta.tags["slow-node"] names this node, giving up
// if the client does; 500 "injected failure at <name>" if
// meta.tags["fail-node"] does; an aggregate looks at every message's tags),
// then the model's answer (400 if the request is bad, else 200 and counted
// as served). Requests for an unknown model are not infer calls: they get
// 404 at once.
type Server struct {
	model     string
	image     string
	role      Role
	slowDelay time.Duration
	reject    func([]byte) (int, bool)
	srv       *http.Server

	grpcOnce sync.Once
	grpcSrv  atomic.Pointer[grpc.Server] // see grpc.go; nil until first used

	delay    atomic.Int64 // time.Duration
	callCost time.Duration
	slot     chan struct{} // the one compute slot a call holds for callCost
	notReady atomic.Bool
	// hung is non-nil while SetHanging(true) holds: infer calls wait for it to close.
	hung atomic.Pointer[chan struct{}]

	mu               sync.Mutex
	unavailableUntil time.Time
	failLeft         int
	failStatus       int

	calls, served, inFlight, maxInFlight atomic.Int64

	traceMu     sync.Mutex
	traceparent map[string]string // by request id: the traceparent of its last infer call
}

// New returns a Server; use Handler with httptest, or Serve/ListenAndServe.
func New(opts Options) *Server {
	s := &Server{model: opts.ModelName, image: opts.Image, slowDelay: opts.SlowDelay, reject: opts.Reject,
		callCost: opts.CallCost, slot: make(chan struct{}, 1)}
	if s.model == "" {
		s.model = DefaultModelName
	}
	if s.image == "" {
		s.image = DefaultImage
	}
	if s.slowDelay == 0 {
		s.slowDelay = DefaultSlowDelay
	}
	role, err := ParseRole(string(opts.Role))
	if err != nil {
		// A test that misspells a role would otherwise see wrong numbers far from the cause.
		panic(fmt.Sprintf("testmodel.New: %v", err))
	}
	s.role = role
	s.delay.Store(int64(opts.Delay))
	s.srv = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	return s
}

// Handler serves all routes of all three protocols.
func (s *Server) Handler() http.Handler { return s.srv.Handler }

// ModelName is the model name the server answers to.
func (s *Server) ModelName() string { return s.model }

// Role is the part the server's tensorflow and v2 infer routes play.
func (s *Server) Role() Role { return s.role }

// Serve serves on ln until Shutdown or Close; it then returns
// http.ErrServerClosed, like http.Server.
func (s *Server) Serve(ln net.Listener) error { return s.srv.Serve(ln) }

// ListenAndServe listens on the TCP address addr and serves like Serve.
func (s *Server) ListenAndServe(addr string) error {
	s.srv.Addr = addr
	return s.srv.ListenAndServe()
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx ends; the gRPC server too, when there is one.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopGRPC(ctx)
	return s.srv.Shutdown(ctx)
}

// Close stops the server (and the gRPC server) at once, dropping in-flight
// requests.
func (s *Server) Close() error {
	s.closeGRPC()
	return s.srv.Close()
}

// SetUnavailable makes infer calls answer 503 for the next d; d <= 0 ends
// the window now.
func (s *Server) SetUnavailable(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d <= 0 {
		s.unavailableUntil = time.Time{}
		return
	}
	s.unavailableUntil = time.Now().Add(d)
}

// FailNext makes the next n infer calls answer status, replacing any count
// left from an earlier FailNext; n <= 0 cancels it. A status outside
// 200..599 becomes 500, since net/http cannot end a response with a 1xx.
func (s *Server) FailNext(n int, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failLeft = max(n, 0)
	s.failStatus = validStatus(status)
}

// SetNotReady makes the readiness endpoints of all protocols, and the infer
// endpoints, answer 503 while set. Liveness stays 200.
func (s *Server) SetNotReady(notReady bool) { s.notReady.Store(notReady) }

// SetHanging(true) makes every infer call — those arriving and those still in their delay — wait
// without answering until SetHanging(false) or until its client gives up, while readiness and liveness
// go on answering: a model stuck on its requests (a deadlock, a hung GPU), which only a client's
// timeout notices. Calls are answered as usual once it is released.
func (s *Server) SetHanging(hanging bool) {
	if hanging {
		ch := make(chan struct{})
		s.hung.CompareAndSwap(nil, &ch)
		return
	}
	if ch := s.hung.Swap(nil); ch != nil {
		close(*ch)
	}
}

// SetDelay makes every infer call wait d before answering.
func (s *Server) SetDelay(d time.Duration) { s.delay.Store(int64(d)) }

// Traceparent is the W3C traceparent header (gRPC metadata) of the last infer call made with the
// request id puid (Seldon-Puid), "" when there was none: what the model was told of the trace.
func (s *Server) Traceparent(puid string) string {
	s.traceMu.Lock()
	defer s.traceMu.Unlock()
	return s.traceparent[puid]
}

// noteTrace records the traceparent an infer call came with.
func (s *Server) noteTrace(puid, traceparent string) {
	if puid == "" {
		return
	}
	s.traceMu.Lock()
	defer s.traceMu.Unlock()
	if s.traceparent == nil {
		s.traceparent = map[string]string{}
	}
	s.traceparent[puid] = traceparent
}

// Calls is the number of infer calls received, whatever their outcome.
func (s *Server) Calls() int64 { return s.calls.Load() }

// Served is the number of infer calls answered 200 by the model.
func (s *Server) Served() int64 { return s.served.Load() }

// MaxConcurrent is the largest number of infer calls seen in flight at once,
// which lets a test prove its client calls in parallel.
func (s *Server) MaxConcurrent() int64 { return s.maxInFlight.Load() }

// ResetCounters zeroes Calls, Served and MaxConcurrent between test phases.
func (s *Server) ResetCounters() {
	s.calls.Store(0)
	s.served.Store(0)
	s.maxInFlight.Store(s.inFlight.Load())
}

// enter records the start of an infer call; call the returned func when it
// ends.
func (s *Server) enter() (leave func()) {
	s.calls.Add(1)
	n := s.inFlight.Add(1)
	for {
		m := s.maxInFlight.Load()
		if n <= m || s.maxInFlight.CompareAndSwap(m, n) {
			break
		}
	}
	return func() { s.inFlight.Add(-1) }
}

// wait sleeps for the configured delay, then while the server hangs, then holds the compute slot for
// the call cost; false means the client gave up first.
func (s *Server) wait(ctx context.Context) bool {
	if !sleep(ctx, time.Duration(s.delay.Load())) {
		return false
	}
	for {
		ch := s.hung.Load()
		if ch == nil {
			break
		}
		select {
		case <-*ch:
		case <-ctx.Done():
			return false
		}
	}
	if s.callCost <= 0 {
		return true
	}
	select {
	case s.slot <- struct{}{}:
	case <-ctx.Done():
		return false
	}
	defer func() { <-s.slot }()
	return sleep(ctx, s.callCost)
}

// sleep waits d; false means ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// nodeFault acts on the tags of a seldon call that name this node (see
// Server), after the server-wide faults.
func (s *Server) nodeFault(ctx context.Context, t nodeTriggers) (status int, msg string, failed bool) {
	if t.slow && !sleep(ctx, s.slowDelay) {
		return http.StatusServiceUnavailable, "request cancelled while slowed by the " + SlowNodeTag + " tag", true
	}
	if t.fail {
		return http.StatusInternalServerError, "injected failure at " + s.model, true
	}
	return 0, "", false
}

// fault returns the injected failure for this call, if any, consuming one
// FailNext.
func (s *Server) fault() (status int, msg string, failed bool) {
	if s.notReady.Load() {
		return http.StatusServiceUnavailable, "model not ready (injected)", true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if time.Now().Before(s.unavailableUntil) {
		return http.StatusServiceUnavailable, "model unavailable (injected)", true
	}
	if s.failLeft > 0 {
		s.failLeft--
		return s.failStatus, "injected failure", true
	}
	return 0, "", false
}

func validStatus(status int) int {
	if status < 200 || status > 599 {
		return http.StatusInternalServerError
	}
	return status
}
