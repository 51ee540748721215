package executor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/internal/testmodel"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// Inference graphs through Kafka: every node a test model process of its own, the sidecar walking the
// graph for each record. The expected answer of a record is composed, independently of the sidecar,
// from the test model's own functions, in the order the legacy executor calls the nodes.

const image = testmodel.DefaultImage

// gnode is a node of a test graph and the process that serves it.
type gnode struct {
	name     string
	typ      string // MODEL, TRANSFORMER, OUTPUT_TRANSFORMER, ROUTER, COMBINER
	children []*gnode
	proc     *testkit.ModelProcess
}

func gn(name, typ string, children ...*gnode) *gnode {
	return &gnode{name: name, typ: typ, children: children}
}

// start starts a test model process for every node, under the node's name.
func (n *gnode) start(t *testing.T, args ...string) {
	n.proc = testkit.StartModelProcess(t, append([]string{"--model_name=" + n.name}, args...)...)
	for _, c := range n.children {
		c.start(t, args...)
	}
}

// spec is the node as the operator writes it into ENGINE_PREDICTOR.
func (n *gnode) spec() map[string]any {
	s := map[string]any{"name": n.name, "type": n.typ, "endpoint": map[string]any{
		"service_host": "127.0.0.1", "httpPort": n.proc.HTTPPort, "grpcPort": n.proc.GRPCPort}}
	var children []any
	for _, c := range n.children {
		children = append(children, c.spec())
	}
	if children != nil {
		s["children"] = children
	}
	return s
}

// newGraphHarness is a harness whose predictor is the graph rooted at root, its nodes started.
func newGraphHarness(t *testing.T, transport string, root *gnode, partitions int) *harness {
	t.Helper()
	h := newHarness(t, "seldon", partitions)
	h.transport = transport
	root.start(t)
	b, err := json.Marshal(map[string]any{"name": "default", "graph": root.spec()})
	if err != nil {
		t.Fatal(err)
	}
	h.env["ENGINE_PREDICTOR"] = base64.StdEncoding.EncodeToString(b)
	return h
}

// answerOf returns a check that the test model answered the request at node n, for composing the
// expected answers: a refusal there is a mistake of the test.
func answerOf(t *testing.T, n *gnode, req []byte) func([]byte, error) []byte {
	return func(b []byte, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatalf("test model refuses %s at %s: %v", req, n.name, err)
		}
		return b
	}
}

// expectSeldon is the answer the graph under n gives to a seldon JSON request, composed as the legacy
// executor walks it: a transformer's answer goes to its children, a router's index picks one (-1 all,
// the first child's answer kept; -2 none), a combiner gets a JSON array of its children's answers, an
// output transformer gets its child's answer.
func expectSeldon(t *testing.T, n *gnode, req []byte) []byte {
	t.Helper()
	must := answerOf(t, n, req)
	children := func(in []byte) [][]byte {
		var out [][]byte
		for _, c := range n.children {
			out = append(out, expectSeldon(t, c, in))
		}
		return out
	}
	switch n.typ {
	case "MODEL":
		return must(testmodel.SeldonPredictWithImage(n.name, image, req))
	case "TRANSFORMER":
		out := must(testmodel.SeldonTransformInput(n.name, image, req))
		if len(n.children) > 0 {
			return children(out)[0]
		}
		return out
	case "OUTPUT_TRANSFORMER":
		in := req
		if len(n.children) > 0 {
			in = children(req)[0]
		}
		return must(testmodel.SeldonTransformOutput(n.name, image, in))
	case "ROUTER":
		route, err := testmodel.SeldonRouteOf(req)
		if err != nil {
			t.Fatal(err)
		}
		switch route {
		case -1:
			return children(req)[0]
		case -2:
			return req
		}
		return expectSeldon(t, n.children[route], req)
	case "COMBINER":
		return must(testmodel.SeldonAggregate(n.name, image, append(append([]byte("["), bytes.Join(children(req), []byte(","))...), ']')))
	}
	t.Fatalf("node type %s", n.typ)
	return nil
}

// graphRequest is the i-th seldon request: its first feature decides a router's route (i/2 rounded
// alternates the parity once a transformer has doubled it; every tenth is negative, for -1, and a few
// are -2).
func graphRequest(i int) []byte {
	x := float64(i) / 2
	switch {
	case i%50 == 7:
		x = -2
	case i%10 == 3:
		x = -float64(i)
	}
	return []byte(fmt.Sprintf(`{"data":{"names":["a","b"],"ndarray":[[%g,2],[3,%g]]}}`, x, x+1))
}

// graphRecords are n keyed records (20 keys, so order per key is checked) for the transport.
func graphRecords(t *testing.T, transport string, n int) []testkit.Record {
	recs := make([]testkit.Record, n)
	for i := range recs {
		recs[i] = testkit.Record{Key: []byte(fmt.Sprintf("k%02d", i%20)), Value: graphRequest(i),
			Headers: map[string]string{"Seldon-Puid": fmt.Sprintf("puid-%d", i)}}
		if transport == "grpc" {
			recs[i].Value = protoOfJSON(t, recs[i].Value)
			recs[i].Headers["proto-name"] = "seldon.protos.SeldonMessage"
		}
	}
	return recs
}

func protoOfJSON(t *testing.T, js []byte) []byte {
	t.Helper()
	var m seldonpb.SeldonMessage
	if err := protojson.Unmarshal(js, &m); err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(&m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sameAnswer compares an answer with the expected JSON: byte for byte over REST; as messages over
// gRPC, where the nodes answered the same content as protobuf.
func sameAnswer(t *testing.T, transport string, got, want []byte) bool {
	t.Helper()
	if transport != "grpc" {
		return bytes.Equal(got, want)
	}
	var g, w seldonpb.SeldonMessage
	if err := proto.Unmarshal(got, &g); err != nil {
		t.Fatalf("answer is not a SeldonMessage: %v", err)
	}
	if err := protojson.Unmarshal(want, &w); err != nil {
		t.Fatalf("expected %s: %v", want, err)
	}
	return proto.Equal(&g, &w)
}

// checkGraphAnswers checks one answer per record, each the expected composition, and the answers of a
// key in the order of its records.
func checkGraphAnswers(t *testing.T, transport string, root *gnode, recs, answers []testkit.Record) {
	t.Helper()
	wantByKey := map[string][][]byte{}
	for _, r := range recs {
		wantByKey[string(r.Key)] = append(wantByKey[string(r.Key)], expectSeldon(t, root, graphRequest(puidIndex(t, r.Headers["Seldon-Puid"]))))
	}
	seen := map[string]int{}
	for _, a := range answers {
		if reason := a.Headers["Seldon-Error-Reason"]; reason != "" {
			t.Fatalf("key %s: error record: %s at %s: %s", a.Key, reason, a.Headers["Seldon-Error-Node"], a.Headers["Seldon-Error-Message"])
		}
		k := string(a.Key)
		i := seen[k]
		seen[k]++
		if i >= len(wantByKey[k]) {
			t.Fatalf("key %s: more answers than records", k)
		}
		if want := wantByKey[k][i]; !sameAnswer(t, transport, a.Value, want) {
			t.Fatalf("key %s, answer %d (%s): got\n%s\nwant\n%s", k, i, a.Headers["Seldon-Puid"], answerText(a.Value, transport), want)
		}
	}
	for k, want := range wantByKey {
		if seen[k] != len(want) {
			t.Errorf("key %s: %d answers, want %d", k, seen[k], len(want))
		}
	}
}

func answerText(b []byte, transport string) string {
	if transport != "grpc" {
		return string(b)
	}
	var m seldonpb.SeldonMessage
	_ = proto.Unmarshal(b, &m)
	return protojson.Format(&m)
}

func puidIndex(t *testing.T, puid string) int {
	var i int
	if _, err := fmt.Sscanf(puid, "puid-%d", &i); err != nil {
		t.Fatalf("Seldon-Puid %q: %v", puid, err)
	}
	return i
}

// The graph shapes of the legacy examples, and one of each nested in another.
func graphShapes() []struct {
	name string
	root func() *gnode
} {
	return []struct {
		name string
		root func() *gnode
	}{
		{"transformer then model", func() *gnode { return gn("t", "TRANSFORMER", gn("m", "MODEL")) }},
		{"output transformer over a model", func() *gnode { return gn("o", "OUTPUT_TRANSFORMER", gn("m", "MODEL")) }},
		{"router with two children", func() *gnode { return gn("r", "ROUTER", gn("a", "MODEL"), gn("b", "MODEL")) }},
		{"combiner over three nodes", func() *gnode {
			return gn("c", "COMBINER", gn("m1", "MODEL"), gn("t1", "TRANSFORMER"), gn("o1", "OUTPUT_TRANSFORMER"))
		}},
		{"nested", func() *gnode {
			return gn("t", "TRANSFORMER", gn("r", "ROUTER", gn("m", "MODEL"), gn("c", "COMBINER", gn("m2", "MODEL"), gn("m3", "MODEL"))))
		}},
	}
}

func TestEveryGraphShapeAnswersTheComposedAnswer(t *testing.T) {
	for _, transport := range []string{"rest", "grpc"} {
		for _, shape := range graphShapes() {
			t.Run(transport+"/"+shape.name, func(t *testing.T) {
				const n = 500
				root := shape.root()
				h := newGraphHarness(t, transport, root, 3)
				s := h.start()
				recs := graphRecords(t, transport, n)
				testkit.Produce(t, h.bootstrap, h.in, recs)
				answers := testkit.Consume(t, h.bootstrap, h.out, n, 120*time.Second)
				checkGraphAnswers(t, transport, root, recs, answers)
				h.waitAllCommitted(30 * time.Second)

				// The synchronous API walks the same graph: the same answer for the same request.
				for _, a := range answers[:20] {
					i := puidIndex(t, a.Headers["Seldon-Puid"])
					got := syncPredict(t, transport, s, graphRequest(i))
					if !bytes.Equal(got, a.Value) {
						t.Fatalf("request %d: the synchronous API answered\n%s\nKafka\n%s", i, answerText(got, transport), answerText(a.Value, transport))
					}
				}
			})
		}
	}
}

// syncPredict asks the sidecar's synchronous API: seldon POST /api/v1.0/predictions over REST,
// seldon.protos.Seldon/Predict over gRPC (answered as protobuf bytes, as Kafka gets them).
func syncPredict(t *testing.T, transport string, s *sidecar, req []byte) []byte {
	t.Helper()
	if transport == "grpc" {
		conn, err := grpc.NewClient(s.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var in seldonpb.SeldonMessage
		if err := protojson.Unmarshal(req, &in); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := seldonpb.NewSeldonClient(conn).Predict(metadata.AppendToOutgoingContext(ctx, "seldon-puid", "sync"), &in)
		if err != nil {
			t.Fatalf("Seldon/Predict: %v", err)
		}
		b, err := proto.MarshalOptions{Deterministic: true}.Marshal(out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	resp, err := http.Post("http://"+s.health+"/api/v1.0/predictions", "application/json", bytes.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /api/v1.0/predictions: %d %s", resp.StatusCode, body)
	}
	return body
}

func TestGraphNodesGetWhatTheLegacyExecutorSends(t *testing.T) {
	// meta.requestPath is written by the nodes: the router's answer is read for the route and never
	// passed on, so the router's name is not in it, and only the nodes a record visited are.
	root := gn("t", "TRANSFORMER", gn("r", "ROUTER", gn("a", "MODEL"), gn("b", "MODEL")))
	h := newGraphHarness(t, "rest", root, 1)
	h.start()
	recs := []testkit.Record{
		{Key: []byte("0"), Value: []byte(`{"data":{"ndarray":[[2,1]]}}`)},                          // 4 after t: child a
		{Key: []byte("1"), Value: []byte(`{"data":{"ndarray":[[2.5,1]]}}`)},                        // 5: child b
		{Key: []byte("2"), Value: []byte(`{"data":{"ndarray":[[-1,1]]}}`)},                         // -2 after t: no child, t's answer
		{Key: []byte("3"), Value: []byte(`{"data":{"ndarray":[[-1.5,1]]},"meta":{"puid":"p-3"}}`)}, // -3: both children, a's answer
	}
	testkit.Produce(t, h.bootstrap, h.in, recs)
	answers := testkit.Consume(t, h.bootstrap, h.out, len(recs), 60*time.Second)
	want := map[string]string{
		"0": `{"a":"testmodel","t":"testmodel"}`,
		"1": `{"b":"testmodel","t":"testmodel"}`,
		"2": `{"t":"testmodel"}`,
		"3": `{"a":"testmodel","t":"testmodel"}`,
	}
	for _, a := range answers {
		var body struct {
			Meta struct {
				Puid        string          `json:"puid"`
				RequestPath json.RawMessage `json:"requestPath"`
				Routing     json.RawMessage `json:"routing"`
			} `json:"meta"`
		}
		if err := json.Unmarshal(a.Value, &body); err != nil {
			t.Fatalf("answer %s: %v", a.Value, err)
		}
		if got := string(body.Meta.RequestPath); got != want[string(a.Key)] {
			t.Errorf("record %s: meta.requestPath %s, want %s (answer %s)", a.Key, got, want[string(a.Key)], a.Value)
		}
		if body.Meta.Routing != nil {
			t.Errorf("record %s: meta.routing %s written without SELDON_ENABLE_ROUTING_INJECTION", a.Key, body.Meta.Routing)
		}
		if string(a.Key) == "3" && body.Meta.Puid != "p-3" {
			t.Errorf("record 3: meta.puid %q, want the request's p-3", body.Meta.Puid)
		}
		if a.Headers["Seldon-Puid"] == "" || !strings.HasPrefix(a.Headers["Content-Type"], "application/json") {
			t.Errorf("record %s: headers %v, want Seldon-Puid and the JSON content type", a.Key, a.Headers)
		}
	}
}

func TestRoutingInjectionWritesTheRoutesTakenAsTheLegacyExecutor(t *testing.T) {
	root := gn("r", "ROUTER", gn("a", "MODEL"), gn("b", "MODEL"))
	h := newGraphHarness(t, "rest", root, 1)
	h.env["SELDON_ENABLE_ROUTING_INJECTION"] = "true"
	h.start()
	tests := []struct {
		req     string
		child   string // whose answer it is; "" for the request itself
		routing map[string]int32
	}{
		{`{"data":{"ndarray":[[4,1]]}}`, "a", map[string]int32{"a": -1, "r": 0}},
		{`{"data":{"ndarray":[[5,1]]}}`, "b", map[string]int32{"b": -1, "r": 1}},
		{`{"data":{"ndarray":[[-5,1]]}}`, "a", map[string]int32{"a": -1, "b": -1, "r": -1}},
		{`{"data":{"ndarray":[[-2,1]]}}`, "", map[string]int32{"r": -2}},
	}
	var recs []testkit.Record
	for i, tc := range tests {
		recs = append(recs, testkit.Record{Key: []byte(fmt.Sprint(i)), Value: []byte(tc.req)})
	}
	testkit.Produce(t, h.bootstrap, h.in, recs)
	answers := testkit.Consume(t, h.bootstrap, h.out, len(recs), 60*time.Second)
	for _, a := range answers {
		var i int
		fmt.Sscan(string(a.Key), &i)
		tc := tests[i]
		answer := []byte(tc.req)
		if tc.child != "" {
			var err error
			if answer, err = testmodel.SeldonPredictWithImage(tc.child, image, answer); err != nil {
				t.Fatal(err)
			}
		}
		// The legacy executor decodes each answer into interface{}, sets meta.routing where there is a
		// meta object, and encodes it again with encoding/json.
		var v any
		if err := json.Unmarshal(answer, &v); err != nil {
			t.Fatal(err)
		}
		if meta, ok := v.(map[string]any)["meta"].(map[string]any); ok {
			meta["routing"] = tc.routing
		}
		want, _ := json.Marshal(v)
		if !bytes.Equal(a.Value, want) {
			t.Errorf("record %d: got\n%s\nwant\n%s", i, a.Value, want)
		}
	}
}

func TestAGraphNodeThatFailsBecomesAnErrorRecordNamingIt(t *testing.T) {
	// transformer → router → [model, combiner → [model, model]]
	root := gn("t", "TRANSFORMER", gn("r", "ROUTER", gn("m", "MODEL"), gn("c", "COMBINER", gn("m2", "MODEL"), gn("m3", "MODEL"))))
	h := newGraphHarness(t, "rest", root, 2)
	h.withErrorTopic()
	h.env["MODEL_TIMEOUT"] = "500ms"
	h.env["MODEL_MAX_ATTEMPTS"] = "2"
	h.start()
	bad := map[string]struct {
		value             string
		node, method      string
		reason, inMessage string
	}{
		"route-7":             {`{"data":{"ndarray":[[500000,1]]}}`, "r", "route", "invalid_answer", "child 7"},
		"combiner-500":        {`{"meta":{"tags":{"fail-node":"c"}},"data":{"ndarray":[[1.5,1]]}}`, "c", "aggregate", "model_rejected", "injected failure at c"},
		"transformer-timeout": {`{"meta":{"tags":{"slow-node":"t"}},"data":{"ndarray":[[1,1]]}}`, "t", "transform-input", "retries_exhausted", "timed out"},
	}
	var recs []testkit.Record
	for i := range 60 {
		recs = append(recs, testkit.Record{Key: []byte(fmt.Sprintf("good-%d", i)), Value: graphRequest(i),
			Headers: map[string]string{"Seldon-Puid": fmt.Sprintf("puid-%d", i)}})
	}
	for k, b := range bad {
		recs = append(recs, testkit.Record{Key: []byte(k), Value: []byte(b.value)})
	}
	testkit.Produce(t, h.bootstrap, h.in, recs)
	errs := testkit.Consume(t, h.bootstrap, h.errs, len(bad), 90*time.Second)
	for _, e := range errs {
		b, ok := bad[string(e.Key)]
		if !ok {
			t.Fatalf("error record for %s: %v", e.Key, e.Headers)
		}
		if e.Headers["Seldon-Error-Node"] != b.node || e.Headers["Seldon-Error-Method"] != b.method ||
			e.Headers["Seldon-Error-Reason"] != b.reason || !strings.Contains(e.Headers["Seldon-Error-Message"], b.inMessage) {
			t.Errorf("%s: error record %v; want node %s, method %s, reason %s, saying %q", e.Key, e.Headers, b.node, b.method, b.reason, b.inMessage)
		}
		if string(e.Value) != b.value {
			t.Errorf("%s: the error record carries %s, not the request", e.Key, e.Value)
		}
	}
	// Every good record is answered, around the bad ones.
	answers := testkit.Consume(t, h.bootstrap, h.out, 60, 60*time.Second)
	checkGraphAnswers(t, "rest", root, recs[:60], answers)
	h.waitAllCommitted(30 * time.Second)
}

// role is the test model role that serves a node type over TF Serving and v2, where transformers are
// called as models.
func (n *gnode) role() testmodel.Role {
	switch n.typ {
	case "TRANSFORMER":
		return testmodel.RoleTransformer
	case "OUTPUT_TRANSFORMER":
		return testmodel.RoleOutputTransformer
	}
	return testmodel.RoleModel
}

// startWithRoles starts every node's process with the role its type needs.
func (n *gnode) startWithRoles(t *testing.T) {
	n.proc = testkit.StartModelProcess(t, "--model_name="+n.name, "--role="+string(n.role()))
	for _, c := range n.children {
		c.startWithRoles(t)
	}
}

// legacyChain is the legacy executor's Chain for TF Serving and v2 over REST, written out: a request
// passes unchanged; an answer's "predictions" (TF) or "outputs" (v2) is renamed and the object encoded
// again with encoding/json.
func legacyChain(t *testing.T, protocol string, body []byte) []byte {
	var obj map[string]any
	if err := json.Unmarshal(body, &obj); err != nil {
		t.Fatalf("%s: %v", body, err)
	}
	from, to := "outputs", "inputs"
	if protocol == "tensorflow" {
		from, to = "predictions", "instances"
		if _, ok := obj["instances"]; ok {
			return body
		}
	}
	if _, ok := obj["inputs"]; ok {
		return body
	}
	obj[to] = obj[from]
	delete(obj, from)
	b, _ := json.Marshal(obj)
	return b
}

// expectJSON is the answer a TF Serving or v2 graph gives over REST, composed from the test model's
// functions as the legacy executor walks it.
func expectJSON(t *testing.T, protocol string, n *gnode, req []byte) []byte {
	t.Helper()
	must := answerOf(t, n, req)
	transform := func(in []byte) []byte {
		in = legacyChain(t, protocol, in)
		if protocol == "tensorflow" {
			return must(testmodel.TensorflowTransform(n.role(), in))
		}
		return must(testmodel.V2Transform(n.role(), n.name, in))
	}
	var answers [][]byte
	walkChildren := func(in []byte) {
		for _, c := range n.children {
			answers = append(answers, expectJSON(t, protocol, c, in))
		}
	}
	switch n.typ {
	case "MODEL", "TRANSFORMER":
		out := transform(req)
		if len(n.children) == 0 {
			return out
		}
		walkChildren(out)
		return answers[0]
	case "OUTPUT_TRANSFORMER":
		walkChildren(req)
		return transform(answers[0])
	case "ROUTER":
		var routes []int
		var raw []byte
		if protocol == "tensorflow" {
			raw = must(testmodel.TensorflowRoute(req))
		} else {
			raw = must(testmodel.V2Route(req))
		}
		if err := json.Unmarshal(raw, &routes); err != nil || len(routes) == 0 {
			t.Fatalf("route %s: %v", raw, err)
		}
		switch routes[0] {
		case -1:
			walkChildren(req)
			return answers[0]
		case -2:
			return req
		}
		return expectJSON(t, protocol, n.children[routes[0]], req)
	case "COMBINER":
		walkChildren(req)
		body := append(append([]byte("["), bytes.Join(answers, []byte(","))...), ']')
		if protocol == "tensorflow" {
			return must(testmodel.TensorflowAggregate(body))
		}
		return must(testmodel.V2Aggregate(n.name, body))
	}
	t.Fatalf("node type %s", n.typ)
	return nil
}

// jsonRequest is the i-th TF Serving or v2 request; its first number decides a router's route.
func jsonRequest(protocol string, i int) []byte {
	x := float64(i)
	if i%10 == 3 {
		x = -x
	}
	if protocol == "tensorflow" {
		return []byte(fmt.Sprintf(`{"instances":[[%g,1.5],[2,%g]]}`, x, x))
	}
	return []byte(fmt.Sprintf(`{"id":"r%d","inputs":[{"name":"x","shape":[1,2],"datatype":"FP64","data":[%g,%d]}]}`, i, x, i+1))
}

func TestTensorflowAndV2GraphsOverRESTAsTheLegacyExecutorChainsThem(t *testing.T) {
	shapes := []struct {
		name string
		root func() *gnode
	}{
		{"transformer then model", func() *gnode { return gn("t", "TRANSFORMER", gn("m", "MODEL")) }},
		{"output transformer over a model", func() *gnode { return gn("o", "OUTPUT_TRANSFORMER", gn("m", "MODEL")) }},
		{"router", func() *gnode { return gn("r", "ROUTER", gn("a", "MODEL"), gn("b", "TRANSFORMER")) }},
		{"combiner", func() *gnode { return gn("c", "COMBINER", gn("m1", "MODEL"), gn("t1", "TRANSFORMER")) }},
	}
	for _, protocol := range []string{"tensorflow", "v2"} {
		for _, shape := range shapes {
			t.Run(protocol+"/"+shape.name, func(t *testing.T) {
				const n = 200
				root := shape.root()
				root.startWithRoles(t)
				h := newHarness(t, protocol, 2)
				b, _ := json.Marshal(map[string]any{"name": "default", "graph": root.spec()})
				h.env["ENGINE_PREDICTOR"] = base64.StdEncoding.EncodeToString(b)
				h.start()
				recs := make([]testkit.Record, n)
				for i := range recs {
					recs[i] = testkit.Record{Key: []byte(fmt.Sprint(i)), Value: jsonRequest(protocol, i)}
				}
				testkit.Produce(t, h.bootstrap, h.in, recs)
				for _, a := range testkit.Consume(t, h.bootstrap, h.out, n, 60*time.Second) {
					var i int
					fmt.Sscan(string(a.Key), &i)
					if reason := a.Headers["Seldon-Error-Reason"]; reason != "" {
						t.Fatalf("record %d: error record %s at %s: %s", i, reason, a.Headers["Seldon-Error-Node"], a.Headers["Seldon-Error-Message"])
					}
					if want := expectJSON(t, protocol, root, recs[i].Value); !bytes.Equal(a.Value, want) {
						t.Fatalf("record %d: got\n%s\nwant\n%s", i, a.Value, want)
					}
				}
			})
		}
	}
}

func TestTensorflowAndV2ChainsOverGRPC(t *testing.T) {
	// TF Serving's PredictResponse outputs become the next PredictRequest's inputs, for the next node's
	// model name; v2's ModelInferResponse outputs become ModelInferRequest inputs.
	for _, protocol := range []string{"tensorflow", "v2"} {
		t.Run(protocol, func(t *testing.T) {
			const n = 100
			root := gn("o", "OUTPUT_TRANSFORMER", gn("t", "TRANSFORMER", gn("m", "MODEL")))
			root.startWithRoles(t)
			h := newHarness(t, protocol, 2)
			h.transport = "grpc"
			b, _ := json.Marshal(map[string]any{"name": "default", "graph": root.spec()})
			h.env["ENGINE_PREDICTOR"] = base64.StdEncoding.EncodeToString(b)
			h.start()
			recs := make([]testkit.Record, n)
			msgs := make([]proto.Message, n)
			for i := range recs {
				msg, name := grpcRequest(protocol, i)
				if r, ok := msg.(*tfpb.PredictRequest); ok {
					r.ModelSpec = nil // named by the sidecar after the node called, as the v2 request's model_name
				}
				msgs[i] = msg
				body, err := proto.Marshal(msg)
				if err != nil {
					t.Fatal(err)
				}
				recs[i] = testkit.Record{Key: []byte(fmt.Sprint(i)), Value: body, Headers: map[string]string{"proto-name": name}}
			}
			testkit.Produce(t, h.bootstrap, h.in, recs)
			for _, a := range testkit.Consume(t, h.bootstrap, h.out, n, 60*time.Second) {
				var i int
				fmt.Sscan(string(a.Key), &i)
				if reason := a.Headers["Seldon-Error-Reason"]; reason != "" {
					t.Fatalf("record %d: error record %s at %s: %s", i, reason, a.Headers["Seldon-Error-Node"], a.Headers["Seldon-Error-Message"])
				}
				want, got := expectProtoChain(t, protocol, msgs[i]), newAnswer(protocol)
				if err := proto.Unmarshal(a.Value, got); err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(got, want) {
					t.Fatalf("record %d: got\n%v\nwant\n%v", i, got, want)
				}
			}
		})
	}
}

func newAnswer(protocol string) proto.Message {
	if protocol == "tensorflow" {
		return &tfpb.PredictResponse{}
	}
	return &v2pb.ModelInferResponse{}
}

// expectProtoChain is t (transformer) then m (model) then o (output transformer) over gRPC, each answer
// made the next request as the graph chains it.
func expectProtoChain(t *testing.T, protocol string, req proto.Message) proto.Message {
	t.Helper()
	steps := []struct {
		node string
		role testmodel.Role
	}{{"t", testmodel.RoleTransformer}, {"m", testmodel.RoleModel}, {"o", testmodel.RoleOutputTransformer}}
	if protocol == "tensorflow" {
		in := proto.Clone(req).(*tfpb.PredictRequest)
		var out *tfpb.PredictResponse
		for _, s := range steps {
			if out != nil {
				in = &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: s.node}, Inputs: out.GetOutputs()}
			}
			var err error
			if out, err = testmodel.TensorflowTransformProto(s.role, s.node, in); err != nil {
				t.Fatalf("%s: %v", s.node, err)
			}
		}
		return out
	}
	in := proto.Clone(req).(*v2pb.ModelInferRequest)
	var out *v2pb.ModelInferResponse
	for _, s := range steps {
		if out != nil {
			in = &v2pb.ModelInferRequest{ModelName: s.node, Id: out.GetId(), Parameters: out.GetParameters(), RawInputContents: out.GetRawOutputContents()}
			for _, o := range out.GetOutputs() {
				in.Inputs = append(in.Inputs, &v2pb.ModelInferRequest_InferInputTensor{Name: o.GetName(), Datatype: o.GetDatatype(),
					Shape: o.GetShape(), Parameters: o.GetParameters(), Contents: o.GetContents()})
			}
		}
		var err error
		if out, err = testmodel.V2TransformProto(s.role, s.node, in); err != nil {
			t.Fatalf("%s: %v", s.node, err)
		}
	}
	return out
}

func TestAGraphIsReadyOnlyWhenEveryNodeIsAndReadySaysWhichIsNot(t *testing.T) {
	// transformer → model, served in this process; the model's container is down at first (a seldon
	// node is ready when it answers /health/ping), and comes up on its port later.
	serve := func(name, addr string) int {
		s := testmodel.New(testmodel.Options{ModelName: name})
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = s.Serve(ln) }()
		t.Cleanup(func() { _ = s.Close() })
		return ln.Addr().(*net.TCPAddr).Port
	}
	tPort := serve("t", "127.0.0.1:0")
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mPort := free.Addr().(*net.TCPAddr).Port
	free.Close()
	spec := map[string]any{"name": "default", "graph": map[string]any{
		"name": "t", "type": "TRANSFORMER", "endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": tPort},
		"children": []any{map[string]any{"name": "m", "type": "MODEL", "endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": mPort}}},
	}}
	h := newHarness(t, "seldon", 1)
	b, _ := json.Marshal(spec)
	h.env["ENGINE_PREDICTOR"] = base64.StdEncoding.EncodeToString(b)
	s := h.start()

	type readyBody struct {
		Ready bool `json:"ready"`
		Model bool `json:"model"`
		Nodes []struct {
			Node  string `json:"node"`
			Ready bool   `json:"ready"`
			Error string `json:"error"`
		} `json:"nodes"`
	}
	ready := func() (int, readyBody) {
		resp, err := http.Get("http://" + s.health + "/ready")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body readyBody
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	waitFor(t, "/ready to report the nodes", 20*time.Second, func() bool { _, b := ready(); return len(b.Nodes) == 2 })
	code, body := ready()
	if code != http.StatusServiceUnavailable || body.Model {
		t.Fatalf("/ready %d %+v with the model not ready; want 503 and model false", code, body)
	}
	for _, n := range body.Nodes {
		if n.Ready != (n.Node == "t") {
			t.Errorf("node %s ready=%v", n.Node, n.Ready)
		}
		if n.Node == "m" && !strings.Contains(n.Error, "connection refused") {
			t.Errorf("node m: error %q, want the cause (its port refuses connections)", n.Error)
		}
	}
	if metric(t, s, `seldon_kafka_node_ready{node="m"}`) != 0 || metric(t, s, `seldon_kafka_node_ready{node="t"}`) != 1 {
		t.Error("seldon_kafka_node_ready does not say m is down and t is up")
	}

	// Records that arrive while a node is not ready wait; none becomes an error record.
	const n = 50
	recs := make([]testkit.Record, n)
	for i := range recs {
		recs[i] = testkit.Record{Key: []byte(fmt.Sprint(i)), Value: graphRequest(i)}
	}
	testkit.Produce(t, h.bootstrap, h.in, recs)
	serve("m", fmt.Sprintf("127.0.0.1:%d", mPort))
	answers := testkit.Consume(t, h.bootstrap, h.out, n, 60*time.Second)
	for _, a := range answers {
		if a.Headers["Seldon-Error-Reason"] != "" {
			t.Fatalf("error record while the model was not ready: %v", a.Headers)
		}
	}
	waitFor(t, "/ready 200", 20*time.Second, func() bool { code, _ := ready(); return code == http.StatusOK })
	if got := metric(t, s, `seldon_kafka_node_call_duration_seconds_count{method="transform-input",node="t",outcome="ok"}`); got < n {
		t.Errorf("%v transform-input calls to t counted, want at least %d", got, n)
	}
	if got := metric(t, s, `seldon_kafka_node_call_duration_seconds_count{method="predict",node="m",outcome="ok"}`); got < n {
		t.Errorf("%v predict calls to m counted, want at least %d", got, n)
	}
}

func TestTheSynchronousAPIAnswersAsKafkaAndRefusesABadBodyWithItsReason(t *testing.T) {
	for _, tc := range []struct {
		protocol, path string
		good, bad      string
		badSays        string
	}{
		{"seldon", "/api/v1.0/predictions", `{"data":{"ndarray":[[1,2]]}}`, `[1,2]`, "not a seldon request"},
		{"tensorflow", "/v1/models/classifier:predict", `{"instances":[[1,2]]}`, `{"nothing":1}`, "instances"},
		{"v2", "/v2/models/classifier/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, `not json`, "invalid JSON"},
	} {
		t.Run(tc.protocol, func(t *testing.T) {
			h := newHarness(t, tc.protocol, 1)
			s := h.start()
			waitFor(t, "the sidecar ready", 30*time.Second, func() bool { return getStatus(t, "http://"+s.health+"/ready") == http.StatusOK })
			post := func(body string) (int, http.Header, string) {
				resp, err := http.Post("http://"+s.health+tc.path, "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, resp.Header, string(b)
			}
			code, hdr, body := post(tc.good)
			if want := expected(t, tc.protocol, []byte(tc.good)); code != http.StatusOK || body != want {
				t.Errorf("good request: %d %s; want 200 %s", code, body, want)
			}
			if hdr.Get("Seldon-Puid") == "" {
				t.Error("the answer has no Seldon-Puid")
			}
			code, hdr, body = post(tc.bad)
			if code != http.StatusBadRequest || !strings.Contains(body, tc.badSays) || hdr.Get("Seldon-Error-Reason") != "invalid_request" {
				t.Errorf("bad request: %d %v %s; want 400, invalid_request, saying %q", code, hdr, body, tc.badSays)
			}
		})
	}
}
