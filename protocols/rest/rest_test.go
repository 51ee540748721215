package rest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/rest"
	"github.com/seldon-kafka/sidecar/protocols/seldon"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow"
	v2 "github.com/seldon-kafka/sidecar/protocols/v2"
)

var allProtocols = []rest.Protocol{seldon.REST, tensorflow.REST, v2.REST}

// seen is what a test server received.
type seen struct {
	mu      sync.Mutex
	method  string
	path    string // as sent, escaped
	header  http.Header
	body    string
	handler http.HandlerFunc
}

func (s *seen) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.method, s.path, s.header, s.body = r.Method, r.URL.EscapedPath(), r.Header.Clone(), string(b)
	h := s.handler
	s.mu.Unlock()
	h(w, r)
}

// server starts a model server answering with h; the client is for it.
func server(t *testing.T, p rest.Protocol, model string, h http.HandlerFunc) (*rest.Client, *seen) {
	t.Helper()
	s := &seen{handler: h}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c := rest.New(p, rest.Options{BaseURL: srv.URL + "/", Model: model, Timeout: 5 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c, s
}

func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType == "" {
			w.Header()["Content-Type"] = nil // no sniffing: no Content-Type at all
		} else {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}
}

func callError(t *testing.T, err error) *protocols.CallError {
	t.Helper()
	if err == nil {
		t.Fatal("Infer succeeded, want an error")
	}
	var ce *protocols.CallError
	if !errors.As(err, &ce) {
		t.Fatalf("Infer error %v (%T) is not a *protocols.CallError", err, err)
	}
	return ce
}

func TestCheckRejectsWhatNoModelCouldServe(t *testing.T) {
	tests := []struct {
		proto       rest.Protocol
		body        string
		contentType string
		ok          bool
		want        string // in the message
	}{
		{seldon.REST, `{"data":{"ndarray":[[1,2]]}}`, "", true, ""},
		{seldon.REST, `{}`, "application/json", true, ""},
		{seldon.REST, `  {"strData":"x"}`, "application/json; charset=utf-8", true, ""},
		{seldon.REST, `{"jsonData":{}}`, "application/vnd.seldon+json", true, ""},
		{seldon.REST, ``, "", false, "empty"},
		{seldon.REST, ``, "application/octet-stream", false, "empty"},
		{seldon.REST, ` `, "", false, "blank"},
		{seldon.REST, `not json`, "", false, "invalid JSON"},
		{seldon.REST, `{"data": }`, "application/json", false, "invalid JSON"},
		{seldon.REST, `{"a":1} {"b":2}`, "", false, "invalid JSON"},
		{seldon.REST, `[{"data":1}]`, "", false, "array"},
		{seldon.REST, `null`, "", false, "null"},
		{seldon.REST, `"text"`, "", false, "string"},
		{seldon.REST, `42`, "", false, "number"},
		{seldon.REST, `true`, "", false, "bool"},
		{tensorflow.REST, `{"instances":[[1.0,2.0]]}`, "", true, ""},
		{tensorflow.REST, `{"signature_name":"serving_default","inputs":{"x":[1]}}`, "", true, ""},
		{tensorflow.REST, `{"data":{"ndarray":[[1]]}}`, "", false, "instances"},
		{tensorflow.REST, `{}`, "", false, "instances"},
		{tensorflow.REST, `[1,2]`, "", false, "array"},
		{v2.REST, `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, "", true, ""},
		{v2.REST, `{"instances":[[1]]}`, "", false, "inputs"},
		{v2.REST, `null`, "application/json", false, "null"},
		// Another content type is the model's to judge.
		{v2.REST, "\x00\x01binary tensor", "application/octet-stream", true, ""},
		{seldon.REST, "a=1&b=2", "application/x-www-form-urlencoded", true, ""},
		{tensorflow.REST, "not json", "text/plain", true, ""},
	}
	for _, tc := range tests {
		c := rest.New(tc.proto, rest.Options{BaseURL: "http://127.0.0.1:1", Model: "m"})
		err := c.Check(&protocols.Request{Body: []byte(tc.body), ContentType: tc.contentType})
		if tc.ok {
			if err != nil {
				t.Errorf("%s: Check(%q, %q) = %v, want ok", tc.proto.Name, tc.body, tc.contentType, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: Check(%q, %q) passed, want an error", tc.proto.Name, tc.body, tc.contentType)
			continue
		}
		var ce *protocols.CallError
		if !errors.As(err, &ce) || ce.Reason != protocols.ReasonInvalidRequest || ce.Transient {
			t.Errorf("%s: Check(%q) = %#v, want a non-transient %s CallError", tc.proto.Name, tc.body, err, protocols.ReasonInvalidRequest)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Check(%q) = %q, want it to mention %q", tc.proto.Name, tc.body, err, tc.want)
		}
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"":                                true,
		"application/json":                true,
		"Application/JSON":                true,
		"application/json; charset=utf-8": true,
		"application/cloudevents+json":    true,
		"text/json":                       true,
		"application/octet-stream":        false,
		"application/x-protobuf":          false,
		"text/plain":                      false,
		"application/json;;":              false, // unparsable: not JSON, so not judged here
	} {
		if got := rest.IsJSON(ct); got != want {
			t.Errorf("IsJSON(%q) = %v, want %v", ct, got, want)
		}
	}
}

func TestInferPostsToTheProtocolsPath(t *testing.T) {
	tests := []struct {
		proto     rest.Protocol
		model     string
		inferPath string
		readyPath string
	}{
		{seldon.REST, "classifier", "/predict", "/health/ping"},
		{seldon.REST, "name with space", "/predict", "/health/ping"},
		{tensorflow.REST, "half_plus_two", "/v1/models/half_plus_two:predict", "/v1/models/half_plus_two"},
		{tensorflow.REST, "a/b c", "/v1/models/a%2Fb%20c:predict", "/v1/models/a%2Fb%20c"},
		{v2.REST, "iris", "/v2/models/iris/infer", "/v2/models/iris/ready"},
		{v2.REST, "a/b?c", "/v2/models/a%2Fb%3Fc/infer", "/v2/models/a%2Fb%3Fc/ready"},
	}
	for _, tc := range tests {
		t.Run(string(tc.proto.Name)+" "+tc.model, func(t *testing.T) {
			t.Parallel()
			c, s := server(t, tc.proto, tc.model, answer(200, "application/json", `{}`))
			if _, err := c.Infer(context.Background(), &protocols.Request{Body: []byte(`{"x":1}`)}); err != nil {
				t.Fatalf("Infer: %v", err)
			}
			s.mu.Lock()
			method, path := s.method, s.path
			s.mu.Unlock()
			if method != http.MethodPost || path != tc.inferPath {
				t.Errorf("Infer sent %s %s, want POST %s", method, path, tc.inferPath)
			}
			if err := c.Ready(context.Background()); err != nil {
				t.Fatalf("Ready: %v", err)
			}
			s.mu.Lock()
			method, path = s.method, s.path
			s.mu.Unlock()
			if method != http.MethodGet || path != tc.readyPath {
				t.Errorf("Ready sent %s %s, want GET %s", method, path, tc.readyPath)
			}
		})
	}
}

func TestInferReturnsTheModelsAnswer(t *testing.T) {
	tests := []struct {
		name       string
		respCT     string
		wantCT     string
		reqCT      string
		wantReqCT  string
		puid       string
		wantNoPuid bool
	}{
		{name: "JSON answer", respCT: "application/json; charset=utf-8", wantCT: "application/json; charset=utf-8",
			reqCT: "application/json", wantReqCT: "application/json", puid: "p-123"},
		{name: "no content types: JSON both ways", respCT: "", wantCT: "application/json",
			reqCT: "", wantReqCT: "application/json", puid: "p-456"},
		{name: "binary request content type forwarded", respCT: "application/octet-stream", wantCT: "application/octet-stream",
			reqCT: "application/octet-stream", wantReqCT: "application/octet-stream", puid: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, s := server(t, v2.REST, "m", answer(200, tc.respCT, `{"outputs":[]}`))
			resp, err := c.Infer(context.Background(), &protocols.Request{Body: []byte(`{"inputs":[]}`), ContentType: tc.reqCT, Puid: tc.puid})
			if err != nil {
				t.Fatalf("Infer: %v", err)
			}
			if string(resp.Body) != `{"outputs":[]}` || resp.ContentType != tc.wantCT {
				t.Errorf("response = %q (%s), want %q (%s)", resp.Body, resp.ContentType, `{"outputs":[]}`, tc.wantCT)
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.body != `{"inputs":[]}` {
				t.Errorf("the model received %q, want the request body unchanged", s.body)
			}
			if got := s.header.Get("Content-Type"); got != tc.wantReqCT {
				t.Errorf("request Content-Type = %q, want %q", got, tc.wantReqCT)
			}
			got, present := s.header["Seldon-Puid"]
			switch {
			case tc.puid == "" && present:
				t.Errorf("Seldon-Puid %q sent without a puid", got)
			case tc.puid != "" && (len(got) != 1 || got[0] != tc.puid):
				t.Errorf("Seldon-Puid = %q, want %q", got, tc.puid)
			}
		})
	}
}

func TestInferClassifiesFailedAnswers(t *testing.T) {
	tests := []struct {
		status    int
		transient bool
	}{
		{400, false}, {401, false}, {403, false}, {404, false}, {405, false}, {413, false}, {415, false}, {422, false},
		// A 500 is what a model server answers when the model raises on the input: not retried.
		{500, false}, {501, false},
		{408, true}, {429, true}, {502, true}, {503, true}, {504, true},
	}
	for _, tc := range tests {
		t.Run(http.StatusText(tc.status), func(t *testing.T) {
			t.Parallel()
			c, _ := server(t, seldon.REST, "m", answer(tc.status, "text/plain", "  model says no  \n"))
			_, err := c.Infer(context.Background(), &protocols.Request{Body: []byte(`{}`)})
			ce := callError(t, err)
			wantReason := protocols.ReasonModelRejected
			if tc.transient {
				wantReason = protocols.ReasonRetriesExhausted
			}
			if ce.Transient != tc.transient || ce.Reason != wantReason || ce.Status != tc.status {
				t.Errorf("HTTP %d: CallError{Transient: %v, Reason: %s, Status: %d}, want {%v, %s, %d}",
					tc.status, ce.Transient, ce.Reason, ce.Status, tc.transient, wantReason, tc.status)
			}
			if !strings.Contains(ce.Msg, ": model says no") || strings.HasSuffix(ce.Msg, "\n") {
				t.Errorf("message %q does not carry the trimmed body", ce.Msg)
			}
		})
	}
}

func TestInferKeepsTheHeadAndTheTailOfALongErrorBody(t *testing.T) {
	// A Python traceback: the cause is on the last line.
	body := "Traceback (most recent call last):\n" + strings.Repeat("  File \"model.py\", line 9, in predict\n", 100) +
		"ValueError: expected 4 features, got 3"
	c, _ := server(t, seldon.REST, "m", answer(422, "text/plain", body))
	_, err := c.Infer(context.Background(), &protocols.Request{Body: []byte(`{}`)})
	ce := callError(t, err)
	if !strings.Contains(ce.Msg, ": Traceback (most recent call last)") || !strings.HasSuffix(ce.Msg, "ValueError: expected 4 features, got 3") ||
		!strings.Contains(ce.Msg, "…") {
		t.Errorf("message %q does not keep the head and the tail of the body", ce.Msg)
	}
	if n := len(ce.Msg) - len("model answered Unprocessable Entity: "); n > protocols.DetailBytes+len("…") {
		t.Errorf("message quotes %d bytes of the body, more than %d", n, protocols.DetailBytes)
	}
	if ce.Transient || ce.Reason != protocols.ReasonModelRejected || ce.Status != 422 {
		t.Errorf("CallError = %+v, want a non-transient model_rejected with Status 422", ce)
	}
}

func TestInferQuotesTheMessageOfKnownErrorShapes(t *testing.T) {
	tests := []struct {
		name, body, want string
	}{
		{"MLServer, TF Serving, v2", `{"error":"Model iris-classifier not found"}`, ": Model iris-classifier not found"},
		{"Seldon's Python wrapper", `{"status":{"code":-1,"info":"expected 4 features","reason":"MICROSERVICE_BAD_DATA","status":"FAILURE"}}`, ": expected 4 features"},
		{"a nested error", `{"error":{"code":3,"message":"bad tensor"}}`, ": bad tensor"},
		{"any other JSON", `{"detail":"nope"}`, `: {"detail":"nope"}`},
		{"plain text", "nope\n", ": nope"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := server(t, seldon.REST, "m", answer(400, "application/json", tc.body))
			_, err := c.Infer(context.Background(), &protocols.Request{Body: []byte(`{}`)})
			if ce := callError(t, err); !strings.HasSuffix(ce.Msg, tc.want) {
				t.Errorf("message %q, want it to end %q", ce.Msg, tc.want)
			}
		})
	}
}

func TestInferRetriesTheStatusesItIsTold(t *testing.T) {
	for _, tc := range []struct {
		statuses  []int
		status    int
		transient bool
	}{
		{[]int{500}, 500, true},
		{[]int{500}, 503, false},
		{[]int{}, 503, false}, // an empty list retries no status
		{nil, 503, true},      // nil is the default
	} {
		t.Run(fmt.Sprint(tc.statuses, tc.status), func(t *testing.T) {
			h := answer(tc.status, "text/plain", "x")
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			c := rest.New(seldon.REST, rest.Options{BaseURL: srv.URL, Model: "m", RetryStatuses: tc.statuses})
			_, err := c.Infer(context.Background(), &protocols.Request{Body: []byte(`{}`)})
			if ce := callError(t, err); ce.Transient != tc.transient {
				t.Errorf("retrying %v, HTTP %d: transient %v, want %v", tc.statuses, tc.status, ce.Transient, tc.transient)
			}
		})
	}
}

func TestInferTransportFailuresAreTransient(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		t.Parallel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		c := rest.New(seldon.REST, rest.Options{BaseURL: "http://" + addr, Model: "m", Timeout: 5 * time.Second})
		_, err = c.Infer(context.Background(), &protocols.Request{Body: []byte(`{}`)})
		ce := callError(t, err)
		if !ce.Transient || ce.Status != 0 || ce.Reason != protocols.ReasonRetriesExhausted {
			t.Errorf("connection refused: %+v, want transient, no status, reason %s", ce, protocols.ReasonRetriesExhausted)
		}
		if strings.Contains(ce.Msg, "timed out") {
			t.Errorf("connection refused reported as %q", ce.Msg)
		}
	})

	slow := func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so that the server notices the client hanging up
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	t.Run("client timeout", func(t *testing.T) {
		t.Parallel()
		s := httptest.NewServer(http.HandlerFunc(slow))
		defer s.Close()
		c := rest.New(tensorflow.REST, rest.Options{BaseURL: s.URL, Model: "m", Timeout: 50 * time.Millisecond})
		defer c.Close()
		start := time.Now()
		_, err := c.Infer(context.Background(), &protocols.Request{Body: []byte(`{"instances":[]}`)})
		ce := callError(t, err)
		if !ce.Transient || !strings.Contains(ce.Msg, "timed out") {
			t.Errorf("timeout: %+v, want transient and \"timed out\"", ce)
		}
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("timeout error %v does not wrap context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("the call took %v with a 50ms timeout", d)
		}
	})
	t.Run("caller's deadline", func(t *testing.T) {
		t.Parallel()
		s := httptest.NewServer(http.HandlerFunc(slow))
		defer s.Close()
		c := rest.New(v2.REST, rest.Options{BaseURL: s.URL, Model: "m"}) // no timeout of its own
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		_, err := c.Infer(ctx, &protocols.Request{Body: []byte(`{"inputs":[]}`)})
		ce := callError(t, err)
		if !ce.Transient || !strings.Contains(ce.Msg, "timed out") {
			t.Errorf("deadline: %+v, want transient and \"timed out\"", ce)
		}
	})
	t.Run("body cut off", func(t *testing.T) {
		t.Parallel()
		s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100")
			w.WriteHeader(200)
			_, _ = io.WriteString(w, `{"partial":`)
			panic(http.ErrAbortHandler) // drop the connection mid-body
		}))
		defer s.Close()
		c := rest.New(seldon.REST, rest.Options{BaseURL: s.URL, Model: "m", Timeout: 5 * time.Second})
		defer c.Close()
		_, err := c.Infer(context.Background(), &protocols.Request{Body: []byte(`{}`)})
		if ce := callError(t, err); !ce.Transient {
			t.Errorf("a connection dropped mid-answer: %+v, want transient", ce)
		}
	})
}

func TestInferRefusesAnAnswerLargerThanTheLimit(t *testing.T) {
	const limit = 100
	for _, tc := range []struct {
		size int
		ok   bool
	}{{limit, true}, {limit + 1, false}, {10 * limit, false}} {
		s := httptest.NewServer(answer(200, "application/json", `"`+strings.Repeat("a", tc.size-2)+`"`))
		c := rest.New(seldon.REST, rest.Options{BaseURL: s.URL, Model: "m", MaxResponseBytes: limit})
		resp, err := c.Infer(context.Background(), &protocols.Request{Body: []byte(`{}`)})
		switch {
		case tc.ok && err != nil:
			t.Errorf("answer of %d bytes with a limit of %d: %v", tc.size, limit, err)
		case tc.ok && len(resp.Body) != tc.size:
			t.Errorf("answer of %d bytes came back as %d", tc.size, len(resp.Body))
		case !tc.ok:
			ce := callError(t, err)
			if ce.Transient || !strings.Contains(ce.Msg, "larger than") {
				t.Errorf("answer of %d bytes with a limit of %d: %+v, want a non-transient error saying it is too large", tc.size, limit, ce)
			}
		}
		_ = c.Close()
		s.Close()
	}
}

func TestReady(t *testing.T) {
	tests := []struct {
		proto  rest.Protocol
		status int
		ready  bool
	}{
		{seldon.REST, 200, true},
		{seldon.REST, 204, true},
		{seldon.REST, 404, true}, // a custom server without /health/ping
		{seldon.REST, 503, false},
		{seldon.REST, 500, false},
		{tensorflow.REST, 200, true},
		{tensorflow.REST, 404, false}, // the model is not loaded
		{tensorflow.REST, 503, false},
		{v2.REST, 200, true},
		{v2.REST, 404, false},
		{v2.REST, 400, false},
		{v2.REST, 503, false},
	}
	for _, tc := range tests {
		c, _ := server(t, tc.proto, "m", answer(tc.status, "application/json", `{}`))
		err := c.Ready(context.Background())
		if (err == nil) != tc.ready {
			t.Errorf("%s: Ready with HTTP %d = %v, want ready %v", tc.proto.Name, tc.status, err, tc.ready)
		}
	}

	t.Run("nothing listening", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		_ = ln.Close()
		for _, p := range allProtocols {
			c := rest.New(p, rest.Options{BaseURL: "http://" + addr, Model: "m"})
			if err := c.Ready(context.Background()); err == nil {
				t.Errorf("%s: Ready with nothing listening = nil", p.Name)
			}
		}
	})
}
