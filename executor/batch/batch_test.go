package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/executor/graph"
	"github.com/seldon-kafka/sidecar/internal/testmodel"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/sdep"
)

// The Batcher around a real graph walk and the real test model on loopback, over REST and gRPC.

// recorder is an Observer that keeps what it is told.
type recorder struct {
	mu      sync.Mutex
	batches []int
	alone   map[string]int
}

func (r *recorder) Batched(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches = append(r.batches, n)
}

func (r *recorder) Alone(cause string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.alone == nil {
		r.alone = map[string]int{}
	}
	r.alone[cause] += n
}

func (r *recorder) seen() ([]int, map[string]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.batches), r.alone
}

// serve serves h on loopback and returns its port.
func serve(t *testing.T, h http.Handler) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().(*net.TCPAddr).Port
}

// oneModel is the walker of a one-model graph named m at the ports.
func oneModel(t *testing.T, protocol protocols.Name, transport string, httpPort, grpcPort int) *graph.Walker {
	t.Helper()
	var spec sdep.PredictorSpec
	js := fmt.Sprintf(`{"name":"p","graph":{"name":"m","type":"MODEL","endpoint":{"service_host":"127.0.0.1","httpPort":%d,"grpcPort":%d}}}`,
		httpPort, grpcPort)
	if err := json.Unmarshal([]byte(js), &spec); err != nil {
		t.Fatal(err)
	}
	g, err := graph.Parse(spec, protocol, transport)
	if err != nil {
		t.Fatal(err)
	}
	w, err := graph.New(g, graph.Options{Timeout: 10 * time.Second, MaxAttempts: 1, MaxConns: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// modelBatcher is a Batcher in front of the test model, with a recorder for its observer.
func modelBatcher(t *testing.T, protocol protocols.Name, transport string, o Options) (*Batcher, *testmodel.Server, *recorder) {
	t.Helper()
	model := testmodel.New(testmodel.Options{ModelName: "m"})
	httpPort := serve(t, model.Handler())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = model.ServeGRPC(ln) }()
	t.Cleanup(func() { _ = model.Close() })
	rec := &recorder{}
	o.Observer = rec
	b, err := New(oneModel(t, protocol, transport, httpPort, ln.Addr().(*net.TCPAddr).Port), o)
	if err != nil {
		t.Fatal(err)
	}
	return b, model, rec
}

// request is the i-th request of a protocol over a transport, with 1 to 3 rows of two numbers, as a
// record's value; poison makes its first row one the test model refuses: 1e308, whose double (and
// seldon's row sum) overflows a float64 and which no float32 holds.
func request(t *testing.T, protocol protocols.Name, transport string, i int, poison bool) *protocols.Request {
	t.Helper()
	rows := i%3 + 1
	x := func(r, c int) float64 {
		if poison && r == 0 {
			return 1e308
		}
		return float64(10*i + 2*r + c)
	}
	var jsonRows []string
	var nested [][]any
	var flat []float32
	for r := range rows {
		jsonRows = append(jsonRows, fmt.Sprintf("[%g,%g]", x(r, 0), x(r, 1)))
		nested = append(nested, []any{x(r, 0), x(r, 1)})
		flat = append(flat, float32(x(r, 0)), float32(x(r, 1)))
	}
	var msg proto.Message
	switch transport + "/" + string(protocol) {
	case "rest/seldon":
		return &protocols.Request{Body: []byte(`{"data":{"names":["a","b"],"ndarray":[` + strings.Join(jsonRows, ",") + `]}}`)}
	case "rest/tensorflow":
		return &protocols.Request{Body: []byte(`{"instances":[` + strings.Join(jsonRows, ",") + `]}`)}
	case "rest/v2":
		data := strings.ReplaceAll(strings.ReplaceAll(strings.Join(jsonRows, ","), "[", ""), "]", "")
		return &protocols.Request{Body: fmt.Appendf(nil, `{"id":"r%d","inputs":[{"name":"x","shape":[%d,2],"datatype":"FP32","data":[%s]}]}`,
			i, rows, data)}
	case "grpc/seldon":
		msg = ndarrayMsg(nested...)
	case "grpc/tensorflow":
		msg = &tfpb.PredictRequest{ModelSpec: &tfpb.ModelSpec{Name: "m"}, Inputs: map[string]*tfpb.TensorProto{
			"x": {Dtype: tfpb.DataType_DT_FLOAT, TensorShape: shape(rows, 2), FloatVal: flat}}}
	case "grpc/v2":
		msg = v2Typed(fmt.Sprintf("r%d", i), rows, flat...)
	default:
		t.Fatalf("no request for %s over %s", protocol, transport)
	}
	b, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return &protocols.Request{Body: b, ProtoName: string(msg.ProtoReflect().Descriptor().FullName())}
}

type result struct {
	resp *protocols.Response
	err  error
}

// predictAll calls Predict for every request at once and returns the results in order.
func predictAll(t *testing.T, b *Batcher, reqs []*protocols.Request) []result {
	t.Helper()
	for _, r := range reqs {
		if err := b.Check(r); err != nil {
			t.Fatalf("Check: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make([]result, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Go(func() { out[i].resp, out[i].err = b.Predict(ctx, r) })
	}
	wg.Wait()
	return out
}

// alone is the walker's answer to a request by itself: what a batch must give it.
func alone(t *testing.T, b *Batcher, req *protocols.Request) result {
	t.Helper()
	resp, err := b.Walker.Predict(context.Background(), req)
	return result{resp, err}
}

var everyProtocol = []struct {
	protocol  protocols.Name
	transport string
}{
	{protocols.Seldon, "rest"}, {protocols.Tensorflow, "rest"}, {protocols.V2, "rest"},
	{protocols.Seldon, "grpc"}, {protocols.Tensorflow, "grpc"}, {protocols.V2, "grpc"},
}

func TestConcurrentCallsBecomeOneModelCallAndEachGetsItsOwnAnswer(t *testing.T) {
	for _, pt := range everyProtocol {
		t.Run(string(pt.protocol)+" over "+pt.transport, func(t *testing.T) {
			// A wait far longer than the test: only a full batch is sent.
			b, model, rec := modelBatcher(t, pt.protocol, pt.transport, Options{Size: 4, Wait: time.Hour})
			var reqs []*protocols.Request
			for i := range 4 {
				reqs = append(reqs, request(t, pt.protocol, pt.transport, i, false))
			}
			got := predictAll(t, b, reqs)
			if calls := model.Calls(); calls != 1 {
				t.Fatalf("%d model calls for a batch of 4, want 1", calls)
			}
			for i, r := range reqs {
				if got[i].err != nil {
					t.Fatalf("request %d: %v", i, got[i].err)
				}
				sameAnswer(t, i, got[i].resp, alone(t, b, r))
			}
			if batches, _ := rec.seen(); !slices.Equal(batches, []int{4}) {
				t.Errorf("batches %v, want [4]", batches)
			}
		})
	}
}

func sameAnswer(t *testing.T, i int, got *protocols.Response, want result) {
	t.Helper()
	if want.err != nil {
		t.Fatalf("request %d alone: %v", i, want.err)
	}
	if !bytes.Equal(got.Body, want.resp.Body) || got.ContentType != want.resp.ContentType || got.ProtoName != want.resp.ProtoName {
		t.Errorf("request %d: answer %q %q %q\nalone %q %q %q", i, got.ContentType, got.ProtoName, got.Body,
			want.resp.ContentType, want.resp.ProtoName, want.resp.Body)
	}
}

func TestAPoisonRecordGetsItsOwnErrorAndItsBatchMatesTheirAnswers(t *testing.T) {
	for _, pt := range everyProtocol {
		t.Run(string(pt.protocol)+" over "+pt.transport, func(t *testing.T) {
			b, model, rec := modelBatcher(t, pt.protocol, pt.transport, Options{Size: 4, Wait: time.Hour})
			const poison = 2
			var reqs []*protocols.Request
			for i := range 4 {
				reqs = append(reqs, request(t, pt.protocol, pt.transport, i, i == poison))
			}
			got := predictAll(t, b, reqs)
			// The batch, then each record alone.
			if calls := model.Calls(); calls != 1+4 {
				t.Errorf("%d model calls, want the batch's and one per record", calls)
			}
			for i, r := range reqs {
				if i == poison {
					var ne *graph.NodeError
					if !errors.As(got[i].err, &ne) || ne.Err.Reason != protocols.ReasonModelRejected {
						t.Errorf("the poison record: %v, want the model's rejection", got[i].err)
					}
					continue
				}
				if got[i].err != nil {
					t.Fatalf("request %d, a batch-mate of the poison record: %v", i, got[i].err)
				}
				sameAnswer(t, i, got[i].resp, alone(t, b, r))
			}
			if _, causes := rec.seen(); causes[CauseCallFailed] != 4 {
				t.Errorf("records called alone: %v, want the 4 of the failed batch", causes)
			}
		})
	}
}

func TestRecordsThatDoNotMergeGoToBatchesOfTheirOwn(t *testing.T) {
	b, model, rec := modelBatcher(t, protocols.V2, "rest", Options{Size: 2, Wait: time.Hour})
	req := func(datatype string, v int) *protocols.Request {
		return &protocols.Request{Body: fmt.Appendf(nil, `{"inputs":[{"name":"x","shape":[1],"datatype":%q,"data":[%d]}]}`, datatype, v)}
	}
	reqs := []*protocols.Request{req("FP32", 1), req("INT32", 2), req("FP32", 3), req("INT32", 4),
		{Body: []byte(`{"parameters":{"a":1},"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[5]}]}`)}}
	got := predictAll(t, b, reqs)
	for i, r := range reqs {
		if got[i].err != nil {
			t.Fatalf("request %d: %v", i, got[i].err)
		}
		sameAnswer(t, i, got[i].resp, alone(t, b, r))
	}
	if batches, causes := rec.seen(); !slices.Equal(batches, []int{2, 2}) || causes[CauseUnmergeable] != 1 {
		t.Errorf("batches %v, alone %v; want two batches of 2 and the request with parameters alone", batches, causes)
	}
	if calls := model.Calls(); calls != 3+int64(len(reqs)) {
		t.Errorf("%d model calls, want 3 (two batches and one alone) before the checks' %d", calls, len(reqs))
	}
}

func TestABatchThatIsNotFullIsSentWhenItsWaitIsOver(t *testing.T) {
	b, _, rec := modelBatcher(t, protocols.Tensorflow, "rest", Options{Size: 100, Wait: 5 * time.Millisecond})
	var reqs []*protocols.Request
	for i := range 5 {
		reqs = append(reqs, request(t, protocols.Tensorflow, "rest", i, false))
	}
	got := predictAll(t, b, reqs)
	for i, r := range reqs {
		if got[i].err != nil {
			t.Fatalf("request %d: %v", i, got[i].err)
		}
		sameAnswer(t, i, got[i].resp, alone(t, b, r))
	}
	batches, _ := rec.seen()
	sum := 0
	for _, n := range batches {
		sum += n
	}
	if sum != len(reqs) {
		t.Errorf("batches %v carry %d records, want %d", batches, sum, len(reqs))
	}
}

func TestACallerThatGivesUpDoesNotFailItsBatchMates(t *testing.T) {
	b, model, _ := modelBatcher(t, protocols.Seldon, "rest", Options{Size: 3, Wait: time.Hour})
	reqs := []*protocols.Request{request(t, protocols.Seldon, "rest", 0, false), request(t, protocols.Seldon, "rest", 1, false),
		request(t, protocols.Seldon, "rest", 2, false)}
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() {
		_, err := b.Predict(ctx, reqs[0])
		left <- err
	}()
	waitJoined(t, b, 1)
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up got %v, want its context's error", err)
	}
	got := predictAll(t, b, reqs[1:])
	for i, r := range reqs[1:] {
		if got[i].err != nil {
			t.Fatalf("request %d: %v", i+1, got[i].err)
		}
		sameAnswer(t, i+1, got[i].resp, alone(t, b, r))
	}
	if calls := model.Calls(); calls != 1+2 {
		t.Errorf("%d model calls, want the batch of 3 and the 2 alone of the check", calls)
	}
}

// waitJoined waits until n calls wait in an open batch.
func waitJoined(t *testing.T, b *Batcher, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		b.mu.Lock()
		joined := 0
		for _, bt := range b.open {
			joined += len(bt.members)
		}
		b.mu.Unlock()
		if joined == n {
			return
		}
	}
	t.Fatalf("%d calls did not join a batch", n)
}

func TestAnAnswerThatCannotBeCutBackSendsEachRecordAlone(t *testing.T) {
	// A model that answers one row whatever it is sent.
	var calls atomic.Int64
	const answer = `{"outputs":[{"name":"y","shape":[1],"datatype":"FP32","data":[7]}]}`
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			calls.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, answer)
	}))
	var logs bytes.Buffer
	rec := &recorder{}
	b, err := New(oneModel(t, protocols.V2, "rest", port, 0), Options{Size: 2, Wait: time.Hour, Observer: rec,
		Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []*protocols.Request{request(t, protocols.V2, "rest", 0, false), request(t, protocols.V2, "rest", 3, false)}
	got := predictAll(t, b, reqs)
	for i := range reqs {
		if got[i].err != nil || string(got[i].resp.Body) != answer {
			t.Errorf("request %d: %v %s, want the model's own answer to it alone", i, got[i].err, got[i].resp.Body)
		}
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d model calls, want the batch and one per record", n)
	}
	if _, causes := rec.seen(); causes[CauseAnswerMismatch] != 2 {
		t.Errorf("alone: %v, want 2 for %s", causes, CauseAnswerMismatch)
	}
	if !strings.Contains(logs.String(), "could not be cut back") {
		t.Errorf("no warning in the log: %s", logs.String())
	}
}

func TestABatchCarriesOnlyTheHeadersItsRecordsShare(t *testing.T) {
	model := testmodel.New(testmodel.Options{ModelName: "m"})
	var mu sync.Mutex
	var seen []http.Header
	port := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			mu.Lock()
			seen = append(seen, r.Header.Clone())
			mu.Unlock()
		}
		model.Handler().ServeHTTP(w, r)
	}))
	b, err := New(oneModel(t, protocols.Seldon, "rest", port, 0), Options{Size: 2, Wait: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	reqs := []*protocols.Request{request(t, protocols.Seldon, "rest", 0, false), request(t, protocols.Seldon, "rest", 1, false)}
	for i, r := range reqs {
		r.Puid = fmt.Sprintf("puid-%d", i)
		r.Headers = []protocols.Header{{Key: "Tenant", Value: "acme"}, {Key: "Trace", Value: fmt.Sprint(i)}}
	}
	for i, g := range predictAll(t, b, reqs) {
		if g.err != nil {
			t.Fatalf("request %d: %v", i, g.err)
		}
	}
	if len(seen) != 1 {
		t.Fatalf("%d model calls, want 1", len(seen))
	}
	if h := seen[0]; h.Get("Tenant") != "acme" || h.Values("Trace") != nil || h.Get("Seldon-Puid") != "" {
		t.Errorf("the batch's call carried Tenant %q, Trace %q, Seldon-Puid %q; want only the shared Tenant",
			h.Get("Tenant"), h.Values("Trace"), h.Get("Seldon-Puid"))
	}
}

func TestOnlyAGraphOfOneModelBatches(t *testing.T) {
	ep := `"endpoint":{"service_host":"127.0.0.1","httpPort":9000,"grpcPort":9500}`
	tests := []struct {
		name, graph string
		ok          bool
	}{
		{"one model", `{"name":"m","type":"MODEL",` + ep + `}`, true},
		{"a prepackaged server", `{"name":"m","implementation":"SKLEARN_SERVER",` + ep + `}`, true},
		{"a transformer before the model", `{"name":"t","type":"TRANSFORMER",` + ep + `,"children":[{"name":"m","type":"MODEL",` + ep + `}]}`, false},
		{"an output transformer", `{"name":"o","type":"OUTPUT_TRANSFORMER",` + ep + `,"children":[{"name":"m","type":"MODEL",` + ep + `}]}`, false},
		{"a transformer alone", `{"name":"t","type":"TRANSFORMER",` + ep + `}`, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var spec sdep.PredictorSpec
			if err := json.Unmarshal([]byte(`{"name":"p","graph":`+tc.graph+`}`), &spec); err != nil {
				t.Fatal(err)
			}
			g, err := graph.Parse(spec, protocols.Seldon, "rest")
			if err != nil {
				t.Fatal(err)
			}
			if err := Supported(g); (err == nil) != tc.ok {
				t.Errorf("Supported = %v, want ok %v", err, tc.ok)
			}
		})
	}
}
