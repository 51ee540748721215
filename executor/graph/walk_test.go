package graph

import (
	"context"
	"encoding/json"
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
)

// The walk against fake node containers on loopback: what each node is sent, in which order, and what
// comes back. The nodes here are plain HTTP handlers, so that each test says exactly what a node answers.

// fakeNode is one graph node's container.
type fakeNode struct {
	name   string
	srv    *httptest.Server
	answer func(path string, body []byte) (int, string)

	mu    sync.Mutex
	calls []fakeCall
}

type fakeCall struct {
	path   string
	body   string
	header http.Header
}

func newFakeNode(t *testing.T, name string, answer func(path string, body []byte) (int, string)) *fakeNode {
	n := &fakeNode{name: name, answer: answer}
	n.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method == http.MethodGet { // readiness
			w.WriteHeader(http.StatusOK)
			return
		}
		n.mu.Lock()
		n.calls = append(n.calls, fakeCall{path: r.URL.Path, body: string(body), header: r.Header.Clone()})
		n.mu.Unlock()
		status, out := n.answer(r.URL.Path, body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, out)
	}))
	t.Cleanup(n.srv.Close)
	return n
}

func (n *fakeNode) port() int { return n.srv.Listener.Addr().(*net.TCPAddr).Port }

func (n *fakeNode) got() []fakeCall {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]fakeCall(nil), n.calls...)
}

// fixed answers the same body to every call.
func fixed(body string) func(string, []byte) (int, string) {
	return func(string, []byte) (int, string) { return http.StatusOK, body }
}

// tree writes a graph node for the spec: name, type and children, at the fake node's port.
func tree(n *fakeNode, typ string, children ...string) string {
	s := fmt.Sprintf(`{"name":%q,"type":%q,"endpoint":{"service_host":"127.0.0.1","httpPort":%d}`, n.name, typ, n.port())
	if len(children) > 0 {
		s += `,"children":[` + strings.Join(children, ",") + `]`
	}
	return s + "}"
}

func walker(t *testing.T, protocol protocols.Name, graphJSON string, o Options) *Walker {
	t.Helper()
	g, err := Parse(spec(t, `{"name":"p","graph":`+graphJSON+`}`), protocol, "rest")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 1
	}
	o.Timeout = 5 * time.Second
	o.MaxConns = 8
	o.Backoff = protocols.Backoff{Min: time.Millisecond, Max: time.Millisecond}
	w, err := New(g, o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func predict(t *testing.T, w *Walker, body string, headers ...protocols.Header) (*protocols.Response, error) {
	t.Helper()
	req := &protocols.Request{Body: []byte(body), Puid: "puid-1", Headers: headers}
	if err := w.Check(req); err != nil {
		t.Fatalf("Check: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return w.Predict(ctx, req)
}

// calledWith checks that a node was called once, at path, with body.
func calledWith(t *testing.T, n *fakeNode, path, body string) {
	t.Helper()
	calls := n.got()
	if len(calls) != 1 {
		t.Fatalf("%s called %d times, want once", n.name, len(calls))
	}
	if calls[0].path != path || calls[0].body != body {
		t.Errorf("%s got POST %s %s\nwant POST %s %s", n.name, calls[0].path, calls[0].body, path, body)
	}
}

func TestWalkPassesEachAnswerToTheNextNodeUnchanged(t *testing.T) {
	const (
		req  = `{"data":{"ndarray":[[1,2]]}}`
		tAns = `{"data":{"ndarray":[[2,4]]},"meta":{"requestPath":{"t":"img"}}}`
		mAns = `{"data":{"names":["sum"],"ndarray":[[6]]},"meta":{"requestPath":{"m":"img","t":"img"}}}`
		oAns = `{"data":{"names":["sum"],"ndarray":[[7]]},"meta":{"requestPath":{"m":"img","o":"img","t":"img"}}}`
	)
	o := newFakeNode(t, "o", fixed(oAns))
	tr := newFakeNode(t, "t", fixed(tAns))
	m := newFakeNode(t, "m", fixed(mAns))
	w := walker(t, protocols.Seldon, tree(o, "OUTPUT_TRANSFORMER", tree(tr, "TRANSFORMER", tree(m, "MODEL"))), Options{})
	resp, err := predict(t, w, req)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	calledWith(t, tr, "/transform-input", req)
	calledWith(t, m, "/predict", tAns)
	calledWith(t, o, "/transform-output", mAns)
	if string(resp.Body) != oAns {
		t.Errorf("answer %s, want the output transformer's %s", resp.Body, oAns)
	}
}

// routeTo answers a router call with the index in the SeldonMessage form the Python wrapper writes.
func routeTo(route int) func(string, []byte) (int, string) {
	return fixed(fmt.Sprintf(`{"data":{"names":["t:0"],"ndarray":[[%d]]},"meta":{"requestPath":{"r":"img"}}}`, route))
}

func TestWalkFollowsTheRoutersChoice(t *testing.T) {
	const req = `{"data":{"ndarray":[[5]]}}`
	tests := []struct {
		name       string
		router     func(string, []byte) (int, string)
		wantCalled []bool // a, b
		wantAnswer string
	}{
		{"first child", routeTo(0), []bool{true, false}, `{"a":1}`},
		{"second child", routeTo(1), []bool{false, true}, `{"b":1}`},
		{"-1: every child, the first one's answer", routeTo(-1), []bool{true, true}, `{"a":1}`},
		{"-2: no child, the request is the answer", routeTo(-2), []bool{false, false}, req},
		{"a bare JSON array", fixed(`[1]`), []bool{false, true}, `{"b":1}`},
		{"a tensor", fixed(`{"data":{"tensor":{"shape":[1],"values":[1]}}}`), []bool{false, true}, `{"b":1}`},
		{"no data: every child", fixed(`{"strData":"x"}`), []bool{true, true}, `{"a":1}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := newFakeNode(t, "r", tc.router)
			a := newFakeNode(t, "a", fixed(`{"a":1}`))
			b := newFakeNode(t, "b", fixed(`{"b":1}`))
			w := walker(t, protocols.Seldon, tree(r, "ROUTER", tree(a, "MODEL"), tree(b, "MODEL")), Options{})
			resp, err := predict(t, w, req)
			if err != nil {
				t.Fatalf("Predict: %v", err)
			}
			calledWith(t, r, "/route", req)
			for i, n := range []*fakeNode{a, b} {
				if called := len(n.got()) > 0; called != tc.wantCalled[i] {
					t.Errorf("%s called: %v, want %v", n.name, called, tc.wantCalled[i])
				}
			}
			if string(resp.Body) != tc.wantAnswer {
				t.Errorf("answer %s, want %s", resp.Body, tc.wantAnswer)
			}
		})
	}
}

func TestWalkRefusesAnUnusableRouteNamingTheRouter(t *testing.T) {
	for _, tc := range []struct {
		name   string
		answer string
	}{
		{"a child that does not exist", `{"data":{"ndarray":[[7]]}}`},
		{"below -2", `{"data":{"ndarray":[[-3]]}}`},
		{"not a route at all", `{"predictions":[1]}`},
		{"an empty array", `[]`},
		{"an empty ndarray", `{"data":{"ndarray":[]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFakeNode(t, "r", fixed(tc.answer))
			a := newFakeNode(t, "a", fixed(`{"a":1}`))
			b := newFakeNode(t, "b", fixed(`{"b":1}`))
			w := walker(t, protocols.Seldon, tree(r, "ROUTER", tree(a, "MODEL"), tree(b, "MODEL")), Options{})
			_, err := predict(t, w, `{"data":{"ndarray":[[1]]}}`)
			var ne *NodeError
			if !errors.As(err, &ne) {
				t.Fatalf("Predict = %v, want a *NodeError", err)
			}
			if ne.Node != "r" || ne.Method != protocols.Route || ne.Err.Reason != protocols.ReasonInvalidAnswer {
				t.Errorf("error at %s (%s) %s: %v; want the router r, route, invalid_answer", ne.Node, ne.Method, ne.Err.Reason, ne)
			}
			if len(a.got())+len(b.got()) != 0 {
				t.Error("a child was called after an unusable route")
			}
		})
	}
}

func TestWalkCallsACombinersChildrenAtOnceAndSendsThemAsAJSONArray(t *testing.T) {
	const req = `{"data":{"ndarray":[[1]]}}`
	// Each child answers only when all three are in flight: a sequential walk would never finish.
	var arrived sync.WaitGroup
	arrived.Add(3)
	child := func(name string) *fakeNode {
		return newFakeNode(t, name, func(string, []byte) (int, string) {
			arrived.Done()
			arrived.Wait()
			return http.StatusOK, fmt.Sprintf(`{"data":{"ndarray":[[%q]]}}`, name)
		})
	}
	a, b, c := child("a"), child("b"), child("c")
	comb := newFakeNode(t, "comb", fixed(`{"combined":true}`))
	w := walker(t, protocols.Seldon, tree(comb, "COMBINER", tree(a, "MODEL"), tree(b, "MODEL"), tree(c, "MODEL")), Options{})
	resp, err := predict(t, w, req)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	for _, n := range []*fakeNode{a, b, c} {
		calledWith(t, n, "/predict", req)
	}
	calledWith(t, comb, "/aggregate", `[{"data":{"ndarray":[["a"]]}},{"data":{"ndarray":[["b"]]}},{"data":{"ndarray":[["c"]]}}]`)
	if string(resp.Body) != `{"combined":true}` {
		t.Errorf("answer %s, want the combiner's", resp.Body)
	}
}

func TestWalkNamesTheNodeThatFailed(t *testing.T) {
	tests := []struct {
		name        string
		model       func(string, []byte) (int, string)
		attempts    int
		wantReason  string
		wantCalls   int
		wantInError string
	}{
		{"a client error is not retried", func(string, []byte) (int, string) {
			return http.StatusBadRequest, `{"status":{"info":"bad shape"}}`
		}, 3, protocols.ReasonModelRejected, 1, "bad shape"},
		{"a transient error is retried, then given up", func(string, []byte) (int, string) {
			return http.StatusServiceUnavailable, `{}`
		}, 3, protocols.ReasonRetriesExhausted, 3, "3 attempts"},
		{"an answer a combiner cannot take", fixed(`not json`), 1, protocols.ReasonInvalidAnswer, 1, "not JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			good := newFakeNode(t, "good", fixed(`{"ok":1}`))
			bad := newFakeNode(t, "bad", tc.model)
			comb := newFakeNode(t, "comb", fixed(`{}`))
			w := walker(t, protocols.Seldon, tree(comb, "COMBINER", tree(good, "MODEL"), tree(bad, "MODEL")), Options{MaxAttempts: tc.attempts})
			_, err := predict(t, w, `{"data":{"ndarray":[[1]]}}`)
			var ne *NodeError
			if !errors.As(err, &ne) {
				t.Fatalf("Predict = %v, want a *NodeError", err)
			}
			wantNode, wantMethod := "bad", protocols.Predict
			if tc.wantReason == protocols.ReasonInvalidAnswer {
				wantNode, wantMethod = "comb", protocols.Aggregate
			}
			if ne.Node != wantNode || ne.Method != wantMethod || ne.Err.Reason != tc.wantReason || !strings.Contains(ne.Error(), tc.wantInError) {
				t.Errorf("error %v (node %s, %s, reason %s); want node %s, %s, %s, saying %q",
					ne, ne.Node, ne.Method, ne.Err.Reason, wantNode, wantMethod, tc.wantReason, tc.wantInError)
			}
			if got := len(bad.got()); got != tc.wantCalls {
				t.Errorf("the failing node was called %d times, want %d", got, tc.wantCalls)
			}
			if len(comb.got()) != 0 && tc.wantReason != protocols.ReasonInvalidAnswer {
				t.Error("the combiner was called although a child failed")
			}
		})
	}
}

func TestWalkSendsTheRecordsHeadersToEveryNode(t *testing.T) {
	tr := newFakeNode(t, "t", fixed(`{"data":{"ndarray":[[1]]}}`))
	m := newFakeNode(t, "m", fixed(`{"data":{"ndarray":[[2]]}}`))
	w := walker(t, protocols.Seldon, tree(tr, "TRANSFORMER", tree(m, "MODEL")), Options{})
	_, err := predict(t, w, `{"data":{"ndarray":[[0]]}}`,
		protocols.Header{Key: "X-Tenant", Value: "blue"},
		protocols.Header{Key: "traceparent", Value: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"},
		protocols.Header{Key: "Content-Length", Value: "999"},  // frames the HTTP message: not forwarded
		protocols.Header{Key: "X-Bad", Value: "line\r\nbreak"}) // not a valid HTTP value: not forwarded
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	for _, n := range []*fakeNode{tr, m} {
		h := n.got()[0].header
		if h.Get("X-Tenant") != "blue" || h.Get("Traceparent") == "" || h.Get("Seldon-Puid") != "puid-1" {
			t.Errorf("%s got headers %v, want X-Tenant, traceparent and Seldon-Puid", n.name, h)
		}
		if h.Get("X-Bad") != "" {
			t.Errorf("%s got an invalid header value", n.name)
		}
	}
}

// legacyInject is the legacy executor's routing injection, written out independently: decode into
// interface{}, set meta.routing, encode with encoding/json.
func legacyInject(t *testing.T, body string, routing map[string]int32) string {
	var v any
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	if meta, ok := v.(map[string]any)["meta"].(map[string]any); ok {
		meta["routing"] = routing
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestWalkInjectsTheRoutesTakenAsTheLegacyExecutor(t *testing.T) {
	// Keys out of order, a float that encoding/json writes differently and an HTML character: the
	// answer is re-encoded, as the legacy executor re-encodes it.
	const mAns = `{"meta":{"requestPath":{"m":"img"}},"data":{"names":["a<b"],"ndarray":[[1.0,2.50]]}}`
	r := newFakeNode(t, "r", routeTo(1))
	a := newFakeNode(t, "a", fixed(`{"meta":{},"data":{"ndarray":[[0]]}}`))
	m := newFakeNode(t, "m", fixed(mAns))
	w := walker(t, protocols.Seldon, tree(r, "ROUTER", tree(a, "MODEL"), tree(m, "MODEL")), Options{RoutingInjection: true})
	resp, err := predict(t, w, `{"data":{"ndarray":[[1]]}}`)
	if err != nil {
		t.Fatalf("Predict: %v", err)
	}
	want := legacyInject(t, mAns, map[string]int32{"m": -1, "r": 1})
	if string(resp.Body) != want {
		t.Errorf("answer\n%s\nwant\n%s", resp.Body, want)
	}
	if !strings.Contains(want, `"routing":{"m":-1,"r":1}`) || !strings.Contains(want, `\u003c`) {
		t.Fatalf("the expectation itself is off: %s", want)
	}
}

func TestWalkChainsTensorflowAndV2AnswersIntoRequests(t *testing.T) {
	tests := []struct {
		name      string
		protocol  protocols.Name
		req       string
		tAnswer   string
		wantModel string
		tPath     string
		mPath     string
	}{
		{"tensorflow: predictions become instances", protocols.Tensorflow, `{"instances":[[1,2]]}`,
			`{"predictions":[[2.0,3]],"model_version":"1"}`, `{"instances":[[2,3]],"model_version":"1"}`,
			"/v1/models/t:predict", "/v1/models/m:predict"},
		{"v2: outputs become inputs", protocols.V2, `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`,
			`{"model_name":"t","outputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[2]}]}`,
			`{"inputs":[{"data":[2],"datatype":"FP32","name":"x","shape":[1]}],"model_name":"t"}`,
			"/v2/models/t/infer", "/v2/models/m/infer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := newFakeNode(t, "t", fixed(tc.tAnswer))
			m := newFakeNode(t, "m", fixed(`{"done":true}`))
			w := walker(t, tc.protocol, tree(tr, "TRANSFORMER", tree(m, "MODEL")), Options{})
			if _, err := predict(t, w, tc.req); err != nil {
				t.Fatalf("Predict: %v", err)
			}
			calledWith(t, tr, tc.tPath, tc.req)
			calledWith(t, m, tc.mPath, tc.wantModel)
		})
	}
}
