package executor_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding"
	"github.com/cloudevents/sdk-go/v2/event"
	cehttp "github.com/cloudevents/sdk-go/v2/protocol/http"

	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

// Payload logging: a graph node's logger gets what the node receives and answers, as CloudEvents by
// HTTP or as records of a topic, as the legacy executor sends them; a logger that is down or slow
// costs no answer.

// withLogger gives the harness's model a logger, as the operator writes it into ENGINE_PREDICTOR.
func (h *harness) withLogger(logger map[string]any) {
	spec := map[string]any{
		"name": "default",
		"graph": map[string]any{
			"name": "classifier", "type": "MODEL", "logger": logger,
			"endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": h.modelPort, "type": "REST"},
		},
	}
	b, _ := json.Marshal(spec)
	h.env["ENGINE_PREDICTOR"] = base64.StdEncoding.EncodeToString(b)
}

// eventSink is an HTTP payload logger that reads every request as a CloudEvent with the SDK.
type eventSink struct {
	t      *testing.T
	mu     sync.Mutex
	events []event.Event
	hold   chan struct{} // when not nil, each request waits for it to close
}

func (s *eventSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.hold != nil {
		select {
		case <-s.hold:
		case <-r.Context().Done():
			return
		}
	}
	ev, err := binding.ToEvent(context.Background(), cehttp.NewMessageFromHttpRequest(r))
	if err != nil {
		s.t.Errorf("the logger got something that is not a CloudEvent: %v (headers %v)", err, r.Header)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if err := ev.Validate(); err != nil {
		s.t.Errorf("invalid CloudEvent: %v", err)
	}
	s.mu.Lock()
	s.events = append(s.events, *ev)
	s.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func (s *eventSink) received() []event.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]event.Event(nil), s.events...)
}

// logged is one payload log message, from either sink.
type logged struct {
	typ, requestID, modelID, deployment, namespace, endpoint, protocol, contentType string
	data                                                                            string
}

func checkLogged(t *testing.T, got []logged, recs []testkit.Record) {
	t.Helper()
	want := map[string]string{}
	for _, r := range recs {
		id := r.Headers["Seldon-Puid"]
		want[id+" io.seldon.serving.inference.request"] = string(r.Value)
		want[id+" io.seldon.serving.inference.response"] = expected(t, "seldon", r.Value)
	}
	for _, g := range got {
		k := g.requestID + " " + g.typ
		data, ok := want[k]
		if !ok {
			t.Errorf("unexpected or repeated message %s", k)
			continue
		}
		delete(want, k)
		if strings.TrimSpace(g.data) != data {
			t.Errorf("%s: data %s, want %s", k, g.data, data)
		}
		if g.modelID != "classifier" || g.deployment != "iris" || g.namespace != "test" || g.endpoint != "default" ||
			g.protocol != "seldon" || !strings.HasPrefix(g.contentType, "application/json") {
			t.Errorf("%s: attributes %+v", k, g)
		}
	}
	for k := range want {
		t.Errorf("not logged: %s", k)
	}
}

func loggedRecords(n int) []testkit.Record {
	recs := make([]testkit.Record, n)
	for i := range recs {
		recs[i] = testkit.Record{Key: []byte(fmt.Sprintf("k%d", i)), Value: request("seldon", i),
			Headers: map[string]string{"Seldon-Puid": fmt.Sprintf("log-%d", i)}}
	}
	return recs
}

func TestANodesLoggerGetsEveryRequestAndAnswerAsCloudEventsOverHTTP(t *testing.T) {
	sink := &eventSink{t: t}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	h := newHarness(t, "seldon", 2)
	h.withLogger(map[string]any{"mode": "all", "url": srv.URL})
	h.start()
	recs := loggedRecords(40)
	testkit.Produce(t, h.bootstrap, h.in, recs)
	testkit.Consume(t, h.bootstrap, h.out, len(recs), 60*time.Second)
	waitFor(t, "every payload logged", 30*time.Second, func() bool { return len(sink.received()) >= 2*len(recs) })
	var got []logged
	ids := map[string]bool{}
	for _, ev := range sink.received() {
		ext := func(k string) string { s, _ := ev.Extensions()[k].(string); return s }
		got = append(got, logged{typ: ev.Type(), requestID: ext("requestid"), modelID: ext("modelid"),
			deployment: ext("inferenceservicename"), namespace: ext("namespace"), endpoint: ext("endpoint"),
			protocol: ext("protocol"), contentType: ev.DataContentType(), data: string(ev.Data())})
		if ids[ev.ID()] {
			t.Errorf("two messages with id %s", ev.ID())
		}
		ids[ev.ID()] = true
		if ev.SpecVersion() != "1.0" || !strings.HasPrefix(ev.Source(), "http://localhost:") {
			t.Errorf("event %s", ev)
		}
	}
	checkLogged(t, got, recs)
}

func TestANodesLoggerSendsToATopicWithTheLegacyHeaders(t *testing.T) {
	h := newHarness(t, "seldon", 1)
	topic := testkit.Topic(t, h.bootstrap, 1)
	h.env["LOGGER_KAFKA_BROKER"] = h.bootstrap
	h.env["LOGGER_KAFKA_TOPIC"] = topic
	h.withLogger(map[string]any{"mode": "all"})
	h.start()
	recs := loggedRecords(20)
	testkit.Produce(t, h.bootstrap, h.in, recs)
	testkit.Consume(t, h.bootstrap, h.out, len(recs), 60*time.Second)
	var got []logged
	for _, r := range testkit.Consume(t, h.bootstrap, topic, 2*len(recs), 60*time.Second) {
		hd := r.Headers
		got = append(got, logged{typ: hd["type"], requestID: hd["requestid"], modelID: hd["modelid"],
			deployment: hd["inferenceservicename"], namespace: hd["namespace"], endpoint: hd["endpoint"],
			protocol: hd["protocol"], contentType: hd["content-type"], data: string(r.Value)})
	}
	checkLogged(t, got, recs)
}

func TestALoggerThatIsDownOrSlowCostsNoAnswer(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(&eventSink{t: t, hold: release})
	defer slow.Close()
	defer close(release) // before slow.Close: its requests are waiting for this
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more
	cases := []struct {
		name, url, reason string
	}{
		{"slow: the queue fills and messages are dropped", slow.URL, "queue_full"},
		{"down: every message fails", down, "failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, "seldon", 2)
			h.withLogger(map[string]any{"mode": "all", "url": tc.url})
			h.extraArgs = []string{"--logger_workers=1", "--log_work_buffer_size=4", "--log_write_timeout_ms=60000"}
			s := h.start()
			recs := loggedRecords(100)
			testkit.Produce(t, h.bootstrap, h.in, recs)
			// Every answer arrives while the logger holds its first message (or refuses every one).
			for _, a := range testkit.Consume(t, h.bootstrap, h.out, len(recs), 60*time.Second) {
				if r := a.Headers["Seldon-Error-Reason"]; r != "" {
					t.Fatalf("error record %s: %s", r, a.Headers["Seldon-Error-Message"])
				}
			}
			metric := `seldon_kafka_payload_logs_dropped_total{reason="` + tc.reason + `"}`
			waitFor(t, metric, 30*time.Second, func() bool {
				v, err := readMetric(s, metric)
				return err == nil && v > 0
			})
			h.waitAllCommitted(30 * time.Second)
		})
	}
}

// A seldon.protos.Feedback record is logged as the legacy executor logged it: once, as it reaches the
// node, with the type io.seldon.serving.feedback that feedback consumers subscribe to; its answer is not
// logged. The predictions around it are logged as requests and answers.
func TestFeedbackIsLoggedWithTheFeedbackType(t *testing.T) {
	sink := &eventSink{t: t}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	h := newGRPCHarness(t, "seldon", 1)
	spec := map[string]any{}
	b, _ := base64.StdEncoding.DecodeString(h.env["ENGINE_PREDICTOR"])
	if err := json.Unmarshal(b, &spec); err != nil {
		t.Fatal(err)
	}
	spec["graph"].(map[string]any)["logger"] = map[string]any{"mode": "all", "url": srv.URL}
	b, _ = json.Marshal(spec)
	h.env["ENGINE_PREDICTOR"] = base64.StdEncoding.EncodeToString(b)
	// One key: the records are served in turn. One logger worker: their payloads arrive in the order
	// they were logged, so once the last prediction's answer is in, anything logged for the feedback is.
	h.extraArgs = []string{"--logger_workers=1"}
	h.start()

	predict, predictName := grpcRequest("seldon", 1)
	fb := &seldonpb.Feedback{Request: predict.(*seldonpb.SeldonMessage), Reward: 1}
	fbBytes := mustMarshal(t, fb)
	recs := []testkit.Record{
		{Key: []byte("k"), Value: mustMarshal(t, predict), Headers: map[string]string{"proto-name": predictName, "Seldon-Puid": "p-1"}},
		{Key: []byte("k"), Value: fbBytes, Headers: map[string]string{"proto-name": "seldon.protos.Feedback", "Seldon-Puid": "f-1"}},
		{Key: []byte("k"), Value: mustMarshal(t, predict), Headers: map[string]string{"proto-name": predictName, "Seldon-Puid": "p-2"}},
	}
	testkit.Produce(t, h.bootstrap, h.in, recs)
	for _, a := range testkit.Consume(t, h.bootstrap, h.out, len(recs), 60*time.Second) {
		if a.Headers["Seldon-Error-Reason"] != "" {
			t.Fatalf("key %s: error record %v", a.Key, a.Headers)
		}
	}
	waitFor(t, "the last prediction's answer logged", 30*time.Second, func() bool {
		for _, ev := range sink.received() {
			if id, _ := ev.Extensions()["requestid"].(string); id == "p-2" && ev.Type() == "io.seldon.serving.inference.response" {
				return true
			}
		}
		return false
	})
	types := map[string][]string{}
	for _, ev := range sink.received() {
		id, _ := ev.Extensions()["requestid"].(string)
		types[id] = append(types[id], ev.Type())
		if ev.Type() == "io.seldon.serving.feedback" && !bytes.Equal(ev.Data(), fbBytes) {
			t.Errorf("the feedback event's data is not the Feedback record's value")
		}
	}
	slices.Sort(types["p-1"])
	if want := []string{"io.seldon.serving.inference.request", "io.seldon.serving.inference.response"}; !slices.Equal(types["p-1"], want) {
		t.Errorf("the prediction was logged as %v, want %v", types["p-1"], want)
	}
	if want := []string{"io.seldon.serving.feedback"}; !slices.Equal(types["f-1"], want) {
		t.Errorf("the feedback was logged as %v, want %v", types["f-1"], want)
	}
}
