package executor_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/executor"
	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/internal/testmodel"
)

// harness is one sidecar under test against the real broker: its topics, a model server of ours, and
// the configuration the sidecar reads at start.
type harness struct {
	t          *testing.T
	bootstrap  string
	in, out    string
	errs       string // the error topic; out when the test sets none
	group      string
	model      *testmodel.Server
	modelPort  int
	protocol   string
	transport  string // rest when empty
	partitions int
	env        map[string]string
	grace      string                   // --graceful_timeout; 20s when empty
	prepare    func(*executor.Executor) // called before Run, when set
	// configure, when set, changes the configuration read from env before the sidecar is built.
	configure func(*executor.Config)
	// extraArgs follow the operator's arguments.
	extraArgs []string
}

func newHarness(t *testing.T, protocol string, partitions int) *harness {
	t.Helper()
	return newHarnessOn(t, testkit.Bootstrap(t), protocol, partitions)
}

// newHarnessOn is newHarness against a given broker.
func newHarnessOn(t *testing.T, bs, protocol string, partitions int) *harness {
	t.Helper()
	h := &harness{
		t: t, bootstrap: bs, protocol: protocol, partitions: partitions,
		in:  testkit.Topic(t, bs, partitions),
		out: testkit.Topic(t, bs, partitions),
		model: testmodel.New(testmodel.Options{ModelName: "classifier", Reject: func(body []byte) (int, bool) {
			if strings.Contains(string(body), "reject-me") {
				return http.StatusBadRequest, true
			}
			return 0, false
		}}),
	}
	h.errs = h.out
	h.group = "g-" + h.in
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.modelPort = ln.Addr().(*net.TCPAddr).Port
	go func() { _ = h.model.Serve(ln) }()
	t.Cleanup(func() { _ = h.model.Close() })
	h.env = map[string]string{
		"KAFKA_BROKER":       bs,
		"KAFKA_INPUT_TOPIC":  h.in,
		"KAFKA_OUTPUT_TOPIC": h.out,
		"KAFKA_GROUP_ID":     h.group,
		"KAFKA_WORKERS":      "16",
		"ENGINE_PREDICTOR":   h.predictorB64(),
		"MODEL_BACKOFF_MIN":  "20ms",
		"MODEL_BACKOFF_MAX":  "500ms",
	}
	return h
}

// withErrorTopic sends error records to a topic of their own.
func (h *harness) withErrorTopic() {
	h.errs = testkit.Topic(h.t, h.bootstrap, 1)
	h.env["KAFKA_ERROR_TOPIC"] = h.errs
}

// exactlyOnce turns exactly-once on for the sidecars started next, with a transactional id of their own
// (replicas on one machine would otherwise share <group>-<hostname>).
func (h *harness) exactlyOnce(id string) {
	h.env["KAFKA_EXACTLY_ONCE"] = "true"
	h.env["KAFKA_TRANSACTIONAL_ID"] = h.group + "-" + id
}

// predictorB64 is the ENGINE_PREDICTOR value the operator would write for a one-node graph.
func (h *harness) predictorB64() string {
	spec := map[string]any{
		"name": "default",
		"graph": map[string]any{
			"name": "classifier", "type": "MODEL",
			"endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": h.modelPort, "type": "REST"},
		},
		"componentSpecs": []any{map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "classifier"}}}}},
	}
	b, _ := json.Marshal(spec)
	return base64.StdEncoding.EncodeToString(b)
}

func (h *harness) args() []string {
	transport := h.transport
	if transport == "" {
		transport = "rest"
	}
	grace := h.grace
	if grace == "" {
		grace = "20s"
	}
	return append([]string{"--server_type=kafka", "--sdep=iris", "--namespace=test", "--predictor=default",
		"--protocol=" + h.protocol, "--transport=" + transport, "--http_port=0", "--grpc_port=0", "--graceful_timeout=" + grace,
		"--log_level=WARN"}, h.extraArgs...)
}

// sidecar is an executor running in this process.
type sidecar struct {
	health string
	grpc   string // the synchronous gRPC API, with --transport=grpc
	cancel context.CancelFunc
	done   chan error
}

// envMu serialises loading configurations from the process environment, so that sidecars of
// concurrent tests each load their own.
var envMu sync.Mutex

// config loads the sidecar's configuration from the harness's environment and arguments. The variables
// are set only while it loads: the sidecar reads the environment once, at start.
func (h *harness) config() (executor.Config, error) {
	envMu.Lock()
	defer envMu.Unlock()
	type saved struct {
		v  string
		ok bool
	}
	old := map[string]saved{}
	for k, v := range h.env {
		ov, ok := os.LookupEnv(k)
		old[k] = saved{ov, ok}
		os.Setenv(k, v)
	}
	defer func() {
		for k, o := range old {
			if o.ok {
				os.Setenv(k, o.v)
			} else {
				os.Unsetenv(k)
			}
		}
	}()
	return executor.LoadConfig(h.args())
}

// start runs the sidecar in-process with the harness's environment.
func (h *harness) start() *sidecar {
	h.t.Helper()
	cfg, err := h.config()
	if err != nil {
		h.t.Fatalf("config: %v", err)
	}
	if h.configure != nil {
		h.configure(&cfg)
	}
	level := slog.LevelWarn
	if os.Getenv("SIDECAR_TEST_LOG") != "" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{h.t}, &slog.HandlerOptions{Level: level}))
	e, err := executor.New(cfg, log)
	if err != nil {
		h.t.Fatalf("executor.New: %v", err)
	}
	if h.prepare != nil {
		h.prepare(e)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &sidecar{health: e.HealthAddr(), grpc: e.GRPCAddr(), cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- e.Run(ctx) }()
	h.t.Cleanup(func() { s.stop(h.t) })
	return s
}

// stop shuts the sidecar down as SIGTERM would and fails the test if Run does not end cleanly.
func (s *sidecar) stop(t *testing.T) {
	if s.cancel == nil {
		return
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("Run did not return within 60s of cancel")
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

func getStatus(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// request builds the i-th request of a protocol; the numbers differ per record so answers differ too.
func request(protocol string, i int) []byte {
	switch protocol {
	case "seldon":
		return []byte(fmt.Sprintf(`{"data":{"names":["a","b"],"ndarray":[[%d,2],[3,%d]]}}`, i, i+1))
	case "tensorflow":
		return []byte(fmt.Sprintf(`{"instances":[[%d,1.5],[2,%d]]}`, i, i))
	case "v2":
		return []byte(fmt.Sprintf(`{"id":"r%d","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[%d,%d]}]}`, i, i, i+1))
	}
	panic(protocol)
}

// expected is what the test model answers to a request.
func expected(t *testing.T, protocol string, req []byte) string {
	t.Helper()
	var out []byte
	var err error
	switch protocol {
	case "seldon":
		out, err = testmodel.SeldonPredict("classifier", req)
	case "tensorflow":
		out, err = testmodel.TensorflowPredict(req)
	case "v2":
		out, err = testmodel.V2Infer("classifier", req)
	}
	if err != nil {
		t.Fatalf("test model rejects %s: %v", req, err)
	}
	return strings.TrimSpace(string(out))
}

func records(protocol string, n int) []testkit.Record {
	recs := make([]testkit.Record, n)
	for i := range recs {
		recs[i] = testkit.Record{
			Key:     []byte(fmt.Sprintf("key-%d", i)),
			Value:   request(protocol, i),
			Headers: map[string]string{"Seldon-Puid": fmt.Sprintf("puid-%d", i)},
		}
	}
	return recs
}

// endOffsetsOf is the offsets a group that consumed everything has committed.
func (h *harness) waitAllCommitted(timeout time.Duration) {
	h.t.Helper()
	testkit.WaitCommitted(h.t, h.bootstrap, h.group, h.in, testkit.EndOffsets(h.t, h.bootstrap, h.in), timeout)
}

func TestEachProtocolAnswersEveryRecordOverREST(t *testing.T) {
	for _, protocol := range []string{"seldon", "tensorflow", "v2"} {
		t.Run(protocol, func(t *testing.T) {
			const n = 1000
			h := newHarness(t, protocol, 3)
			h.start()
			recs := records(protocol, n)
			testkit.Produce(t, h.bootstrap, h.in, recs)

			answers := testkit.Consume(t, h.bootstrap, h.out, n, 90*time.Second)
			byKey := map[string]testkit.Record{}
			for _, a := range answers {
				if _, dup := byKey[string(a.Key)]; dup {
					t.Errorf("two answers for key %s", a.Key)
				}
				byKey[string(a.Key)] = a
			}
			for i, r := range recs {
				a, ok := byKey[string(r.Key)]
				if !ok {
					t.Fatalf("no answer for key %s", r.Key)
				}
				if a.Headers["Seldon-Error-Reason"] != "" {
					t.Fatalf("key %s: error record: %v", r.Key, a.Headers)
				}
				if got, want := a.Headers["Seldon-Puid"], fmt.Sprintf("puid-%d", i); got != want {
					t.Errorf("key %s: Seldon-Puid %q, want %q", r.Key, got, want)
				}
				if ct := a.Headers["Content-Type"]; !strings.HasPrefix(ct, "application/json") {
					t.Errorf("key %s: Content-Type %q", r.Key, ct)
				}
				if got, want := strings.TrimSpace(string(a.Value)), expected(t, protocol, r.Value); got != want {
					t.Fatalf("key %s: answer\n got %s\nwant %s", r.Key, got, want)
				}
			}
			h.waitAllCommitted(30 * time.Second)
		})
	}
}

func TestSameKeyAnswersArriveInOrderWhileKeysRunInParallel(t *testing.T) {
	const keys, perKey = 20, 50
	h := newHarness(t, "seldon", 2)
	h.env["KAFKA_WORKERS"] = "16"
	h.model.SetDelay(2 * time.Millisecond)
	h.start()
	var recs []testkit.Record
	for i := range perKey {
		for k := range keys {
			recs = append(recs, testkit.Record{
				Key:   []byte(fmt.Sprintf("k%02d", k)),
				Value: []byte(fmt.Sprintf(`{"data":{"ndarray":[[%d]]}}`, i)),
			})
		}
	}
	testkit.Produce(t, h.bootstrap, h.in, recs)
	answers := testkit.Consume(t, h.bootstrap, h.out, keys*perKey, 120*time.Second)
	next := map[string]int{}
	for _, a := range answers {
		var body struct {
			Data struct{ Ndarray [][]float64 } `json:"data"`
		}
		if err := json.Unmarshal(a.Value, &body); err != nil || len(body.Data.Ndarray) != 1 {
			t.Fatalf("answer %s: %v", a.Value, err)
		}
		seq := int(body.Data.Ndarray[0][0]) // the sum of a one-number row is the number
		if want := next[string(a.Key)]; seq != want {
			t.Fatalf("key %s: answer %d arrived when %d was due", a.Key, seq, want)
		}
		next[string(a.Key)]++
	}
	for k := range keys {
		if got := next[fmt.Sprintf("k%02d", k)]; got != perKey {
			t.Errorf("key k%02d: %d answers, want %d", k, got, perKey)
		}
	}
	// Two partitions, yet more than two calls ran at once: parallelism is by key, not by partition.
	if mc := h.model.MaxConcurrent(); mc <= 2 {
		t.Errorf("at most %d model calls ran at once; want more than the 2 partitions", mc)
	}
	if mc := h.model.MaxConcurrent(); mc > 16 {
		t.Errorf("%d model calls ran at once; KAFKA_WORKERS is 16", mc)
	}
	h.waitAllCommitted(30 * time.Second)
}

func TestTransientModelFailuresAreRetriedNotErrored(t *testing.T) {
	cases := []struct {
		name  string
		fault func(m *testmodel.Server)
	}{
		{"503 for a while, readiness up", func(m *testmodel.Server) { m.SetUnavailable(2 * time.Second) }},
		{"429 for the next 40 calls", func(m *testmodel.Server) { m.FailNext(40, http.StatusTooManyRequests) }},
		{"not ready for a while", func(m *testmodel.Server) {
			m.SetNotReady(true)
			time.AfterFunc(4*time.Second, func() { m.SetNotReady(false) })
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const n = 200
			h := newHarness(t, "tensorflow", 2)
			h.expectRetriedNotErrored(tc.fault, records("tensorflow", n), nil)
		})
	}
}

// expectRetriedNotErrored starts the sidecar with a generous retry budget, injects fault once it is
// ready, sends recs and proves that every record is answered, no error record is written, the fault was
// exercised and everything is committed. check, when given, looks at each answer too.
func (h *harness) expectRetriedNotErrored(fault func(*testmodel.Server), recs []testkit.Record, check func(testkit.Record)) {
	t := h.t
	t.Helper()
	h.withErrorTopic()
	// With backoff from 20ms to 1s, 12 attempts span at least 3 s even with jitter.
	h.env["MODEL_MAX_ATTEMPTS"] = "12"
	h.env["MODEL_BACKOFF_MAX"] = "1s"
	s := h.start()
	waitFor(t, "ready", 30*time.Second, func() bool { return getStatus(t, "http://"+s.health+"/ready") == 200 })
	fault(h.model)
	testkit.Produce(t, h.bootstrap, h.in, recs)
	answers := testkit.Consume(t, h.bootstrap, h.out, len(recs), 90*time.Second)
	seen := map[string]bool{}
	for _, a := range answers {
		if r := a.Headers["Seldon-Error-Reason"]; r != "" {
			t.Fatalf("error record in the output topic: %s", r)
		}
		if check != nil {
			check(a)
		}
		seen[string(a.Key)] = true
	}
	if len(seen) != len(recs) {
		t.Errorf("%d distinct keys answered, want %d", len(seen), len(recs))
	}
	if errs := testkit.ConsumeAll(t, h.bootstrap, h.errs, 500*time.Millisecond); len(errs) != 0 {
		t.Errorf("%d error records, want none; first: %v", len(errs), errs[0].Headers)
	}
	if h.model.Calls() <= int64(len(recs)) {
		t.Errorf("model saw %d calls for %d records: the fault was not exercised", h.model.Calls(), len(recs))
	}
	h.waitAllCommitted(30 * time.Second)
}

func TestModelDownPausesAndReadinessFails(t *testing.T) {
	h := newHarness(t, "v2", 1)
	h.model.SetNotReady(true)
	s := h.start()
	ready := "http://" + s.health + "/ready"
	// The sidecar reaches the broker but the model is down: not ready, and nothing is consumed.
	time.Sleep(2 * time.Second)
	if code := getStatus(t, ready); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready = %d while the model is down, want 503", code)
	}
	if code := getStatus(t, "http://"+s.health+"/live"); code != http.StatusOK {
		t.Fatalf("/live = %d, want 200", code)
	}
	testkit.Produce(t, h.bootstrap, h.in, records("v2", 50))
	time.Sleep(2 * time.Second)
	if calls := h.model.Calls(); calls != 0 {
		t.Fatalf("%d model calls while the model was not ready", calls)
	}
	if got := testkit.CommittedOffsets(t, h.bootstrap, h.group, h.in); got[0] != 0 {
		t.Fatalf("committed %v while nothing was answered", got)
	}
	h.model.SetNotReady(false)
	waitFor(t, "ready", 30*time.Second, func() bool { return getStatus(t, ready) == 200 })
	answers := testkit.Consume(t, h.bootstrap, h.out, 50, 60*time.Second)
	for _, a := range answers {
		if r := a.Headers["Seldon-Error-Reason"]; r != "" {
			t.Fatalf("error record: %v", a.Headers)
		}
	}
	h.waitAllCommitted(30 * time.Second)
}

func TestPoisonRecordsBecomeErrorRecordsAndGoodOnesAreAnswered(t *testing.T) {
	poison := []struct {
		name, value, contentType string
		reason                   string
		status                   string
	}{
		{"not JSON", `{"instances": [1, 2`, "", "invalid_request", ""},
		{"JSON array", `[[1, 2], [3, 4]]`, "", "invalid_request", ""},
		{"empty value", ``, "", "invalid_request", ""},
		{"JSON string", `"hello"`, "application/json", "invalid_request", ""},
		{"no instances", `{"signature_name": "x"}`, "", "invalid_request", ""},
		{"model says 400", `{"instances": [[1]], "note": "reject-me"}`, "", "model_rejected", "400"},
		{"model says 400 for a bad shape", `{"instances": [[1, 2], [3]]}`, "", "model_rejected", "400"},
	}
	for _, errorTopic := range []bool{false, true} {
		t.Run(fmt.Sprintf("error topic %v", errorTopic), func(t *testing.T) {
			h := newHarness(t, "tensorflow", 2)
			if errorTopic {
				h.withErrorTopic()
			}
			h.start()
			var recs []testkit.Record
			good := 0
			for i, p := range poison {
				recs = append(recs, testkit.Record{Key: []byte(fmt.Sprintf("good-%d", i)), Value: request("tensorflow", i)})
				good++
				r := testkit.Record{Key: []byte("poison-" + strconv.Itoa(i)), Value: []byte(p.value),
					Headers: map[string]string{"trace": p.name}}
				if p.contentType != "" {
					r.Headers["Content-Type"] = p.contentType
				}
				recs = append(recs, r)
			}
			recs = append(recs, testkit.Record{Key: []byte("good-last"), Value: request("tensorflow", 99)})
			good++
			testkit.Produce(t, h.bootstrap, h.in, recs)

			var answers, errs []testkit.Record
			if errorTopic {
				answers = testkit.Consume(t, h.bootstrap, h.out, good, 60*time.Second)
				errs = testkit.Consume(t, h.bootstrap, h.errs, len(poison), 60*time.Second)
			} else {
				for _, r := range testkit.Consume(t, h.bootstrap, h.out, len(recs), 60*time.Second) {
					if r.Headers["Seldon-Error-Reason"] != "" {
						errs = append(errs, r)
					} else {
						answers = append(answers, r)
					}
				}
			}
			if len(answers) != good {
				t.Errorf("%d answers, want %d", len(answers), good)
			}
			for _, a := range answers {
				if !strings.HasPrefix(string(a.Key), "good-") {
					t.Errorf("answer for %s", a.Key)
				}
			}
			if len(errs) != len(poison) {
				t.Fatalf("%d error records, want %d", len(errs), len(poison))
			}
			byTrace := map[string]testkit.Record{}
			for _, e := range errs {
				byTrace[e.Headers["trace"]] = e
			}
			for i, p := range poison {
				e, ok := byTrace[p.name]
				if !ok {
					t.Errorf("%s: no error record", p.name)
					continue
				}
				if got, want := string(e.Key), "poison-"+strconv.Itoa(i); got != want {
					t.Errorf("%s: key %q, want %q", p.name, got, want)
				}
				if string(e.Value) != p.value {
					t.Errorf("%s: value %q, want the original %q", p.name, e.Value, p.value)
				}
				if got := e.Headers["Seldon-Error-Reason"]; got != p.reason {
					t.Errorf("%s: reason %q, want %q (message %q)", p.name, got, p.reason, e.Headers["Seldon-Error-Message"])
				}
				if got := e.Headers["Seldon-Error-Status"]; got != p.status {
					t.Errorf("%s: status %q, want %q", p.name, got, p.status)
				}
				if e.Headers["Seldon-Error-Message"] == "" || e.Headers["Seldon-Puid"] == "" {
					t.Errorf("%s: headers lack a message or a puid: %v", p.name, e.Headers)
				}
				if e.Headers["Seldon-Source-Topic"] != h.in || e.Headers["Seldon-Source-Offset"] == "" {
					t.Errorf("%s: headers lack the source: %v", p.name, e.Headers)
				}
			}
			h.waitAllCommitted(30 * time.Second)
		})
	}
}

func TestRetriesExhaustedBecomeErrorRecords(t *testing.T) {
	h := newHarness(t, "seldon", 1)
	h.env["MODEL_MAX_ATTEMPTS"] = "3"
	s := h.start()
	waitFor(t, "ready", 30*time.Second, func() bool { return getStatus(t, "http://"+s.health+"/ready") == 200 })
	h.model.FailNext(3, http.StatusServiceUnavailable)
	testkit.Produce(t, h.bootstrap, h.in, records("seldon", 1))
	got := testkit.Consume(t, h.bootstrap, h.out, 1, 30*time.Second)[0]
	if r := got.Headers["Seldon-Error-Reason"]; r != "retries_exhausted" {
		t.Fatalf("reason %q, want retries_exhausted; headers %v", r, got.Headers)
	}
	if s := got.Headers["Seldon-Error-Status"]; s != "503" {
		t.Errorf("status %q, want 503", s)
	}
	if c := h.model.Calls(); c != 3 {
		t.Errorf("%d calls, want MODEL_MAX_ATTEMPTS=3", c)
	}
	h.waitAllCommitted(30 * time.Second)
}

var _ = sync.Mutex{}

func TestAModelThatRaisesIsRefusedAtOnceUnlessToldToRetry(t *testing.T) {
	// Model servers answer 500 when the model raises on the input: retrying repeats the verdict and
	// holds the records behind it. It is retried only when MODEL_RETRY_STATUSES says so.
	for _, tc := range []struct {
		name      string
		statuses  string // MODEL_RETRY_STATUSES; unset when empty
		wantCalls int64
		reason    string
	}{
		{"by default", "", 1, "model_rejected"},
		{"MODEL_RETRY_STATUSES=500", "500", 3, "retries_exhausted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "seldon", 1)
			h.withErrorTopic()
			h.env["MODEL_MAX_ATTEMPTS"] = "3"
			if tc.statuses != "" {
				h.env["MODEL_RETRY_STATUSES"] = tc.statuses
			}
			s := h.start()
			waitFor(t, "ready", 30*time.Second, func() bool { return getStatus(t, "http://"+s.health+"/ready") == 200 })
			h.model.FailNext(1000, http.StatusInternalServerError)
			testkit.Produce(t, h.bootstrap, h.in, records("seldon", 1))
			errs := testkit.Consume(t, h.bootstrap, h.errs, 1, 60*time.Second)
			if got := errs[0].Headers["Seldon-Error-Reason"]; got != tc.reason || errs[0].Headers["Seldon-Error-Status"] != "500" {
				t.Errorf("error record %v; want %s with status 500", errs[0].Headers, tc.reason)
			}
			if calls := h.model.Calls(); calls != tc.wantCalls {
				t.Errorf("the model was called %d times for the record, want %d", calls, tc.wantCalls)
			}
		})
	}
}
