package executor_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

// harnessFor is a seldon-protocol harness over transport whose topics take records of up to topicMax
// bytes and whose sidecar runs with KAFKA_MESSAGE_MAX_BYTES=limit.
func harnessFor(t *testing.T, transport string, topicMax, limit int) *harness {
	t.Helper()
	h := newHarness(t, "seldon", 1)
	if transport == "grpc" {
		h = newGRPCHarness(t, "seldon", 1)
	}
	cfg := map[string]string{"max.message.bytes": strconv.Itoa(topicMax)}
	h.in = testkit.TopicWithConfig(t, h.bootstrap, 1, cfg)
	h.out = testkit.TopicWithConfig(t, h.bootstrap, 1, cfg)
	h.errs = h.out
	h.env["KAFKA_INPUT_TOPIC"], h.env["KAFKA_OUTPUT_TOPIC"] = h.in, h.out
	h.env["KAFKA_MESSAGE_MAX_BYTES"] = strconv.Itoa(limit)
	return h
}

// echoRequest is a seldon request the test model echoes: strData over REST, binData over gRPC, holding
// payload, with its proto-name header for gRPC.
func echoRequest(t *testing.T, transport string, payload []byte) testkit.Record {
	t.Helper()
	if transport == "rest" {
		return testkit.Record{Value: []byte(`{"strData":"` + string(payload) + `"}`)}
	}
	b, err := proto.Marshal(&seldonpb.SeldonMessage{DataOneof: &seldonpb.SeldonMessage_BinData{BinData: payload}})
	if err != nil {
		t.Fatal(err)
	}
	return testkit.Record{Value: b, Headers: map[string]string{"proto-name": "seldon.protos.SeldonMessage"}}
}

// randomText is n bytes that compress as little as they would in a real image or tensor: random base64
// letters (JSON needs no escaping of them).
func randomText(n int) []byte {
	raw := make([]byte, n*3/4+3)
	_, _ = rand.Read(raw)
	return []byte(base64.RawStdEncoding.EncodeToString(raw)[:n])
}

// TestRecordsOverTheMessageLimitBecomeErrorRecords: with KAFKA_MESSAGE_MAX_BYTES below what the topics
// take, a request over it is refused before any model call, and an answer over it fails the call at
// once (not retried: it would be as large again), over REST and gRPC alike.
func TestRecordsOverTheMessageLimitBecomeErrorRecords(t *testing.T) {
	const limit = 2000
	for _, transport := range []string{"rest", "grpc"} {
		t.Run(transport, func(t *testing.T) {
			h := harnessFor(t, transport, 100000, limit)
			h.start()
			// The echo's answer adds meta to the request: a request just under the limit is answered with
			// one just over it.
			justUnder := echoRequest(t, transport, randomText(limit-20))
			justUnder.Key = []byte("answer-over")
			over := echoRequest(t, transport, randomText(limit+100))
			over.Key = []byte("request-over")
			small := echoRequest(t, transport, randomText(100))
			small.Key = []byte("small")
			if len(justUnder.Value) > limit {
				t.Fatalf("the request is %d bytes, want it within the limit", len(justUnder.Value))
			}
			testkit.Produce(t, h.bootstrap, h.in, []testkit.Record{justUnder, over, small})

			byKey := map[string]testkit.Record{}
			for _, r := range testkit.Consume(t, h.bootstrap, h.out, 3, 60*time.Second) {
				byKey[string(r.Key)] = r
			}
			if r := byKey["small"]; r.Headers["Seldon-Error-Reason"] != "" {
				t.Errorf("small request: error %v", r.Headers)
			}
			if r := byKey["request-over"]; r.Headers["Seldon-Error-Reason"] != "invalid_request" || !strings.Contains(r.Headers["Seldon-Error-Message"], "KAFKA_MESSAGE_MAX_BYTES") {
				t.Errorf("request over the limit: %v", r.Headers)
			}
			if r := byKey["answer-over"]; r.Headers["Seldon-Error-Reason"] != "model_rejected" || !strings.Contains(r.Headers["Seldon-Error-Message"], "KAFKA_MESSAGE_MAX_BYTES") {
				t.Errorf("answer over the limit: %v", r.Headers)
			}
			if calls := h.model.Calls(); calls != 2 {
				t.Errorf("the model was called %d times, want 2: once for the small request, once for the one whose answer is too large", calls)
			}
			h.waitAllCommitted(30 * time.Second)
		})
	}
}

// TestA64MBRequestAndAnswerRoundTrip: a 64 MB request is consumed, sent to the model, and its 64 MB
// answer produced, over REST and gRPC, against the broker, with KAFKA_MESSAGE_MAX_BYTES raised and topics
// that take it. The payload is random, so compression does not shrink what the broker judges. The model
// is a process of its own (cmd/testmodel), so the race detector slows only the sidecar's share.
func TestA64MBRequestAndAnswerRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 256 MB through the broker")
	}
	const size = 64_000_000
	for _, transport := range []string{"rest", "grpc"} {
		t.Run(transport, func(t *testing.T) {
			h := harnessFor(t, transport, 66_000_000, 65_000_000)
			model := testkit.StartModelProcess(t, "--host=127.0.0.1", "--model_name=classifier")
			h.env["ENGINE_PREDICTOR"] = predictorAt(model.HTTPPort, model.GRPCPort, transport)
			h.env["MODEL_TIMEOUT"] = "5m"
			h.env["KAFKA_WORKERS"] = "1"
			h.start()
			payload := randomText(size)
			req := echoRequest(t, transport, payload)
			req.Key = []byte("big")
			testkit.Produce(t, h.bootstrap, h.in, []testkit.Record{req})
			got := testkit.Consume(t, h.bootstrap, h.out, 1, 5*time.Minute)[0]
			if r := got.Headers["Seldon-Error-Reason"]; r != "" {
				t.Fatalf("error record: %s: %s", r, got.Headers["Seldon-Error-Message"])
			}
			switch transport {
			case "rest":
				// The model echoes strData and adds meta: {"strData":"…","meta":{…}}.
				want := append([]byte(`{"strData":"`), payload...)
				if !bytes.HasPrefix(got.Value, append(want, '"')) || !bytes.Contains(got.Value[len(want):], []byte(`"requestPath":{"classifier"`)) {
					t.Errorf("the answer (%d bytes) is not the echo of the %d-byte request", len(got.Value), len(req.Value))
				}
			case "grpc":
				var m seldonpb.SeldonMessage
				if err := proto.Unmarshal(got.Value, &m); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(m.GetBinData(), payload) || m.GetMeta().GetRequestPath()["classifier"] == "" {
					t.Errorf("binData of %d bytes is not the %d bytes sent (meta %v)", len(m.GetBinData()), len(payload), m.GetMeta())
				}
			}
			h.waitAllCommitted(60 * time.Second)
			t.Logf("%s: %d-byte request, %d-byte answer", transport, len(req.Value), len(got.Value))
		})
	}
}

// TestRecordsLargerThanAPartitionsShareOfAFetchComeWhole: the consumer asks at most 1 MiB of each
// partition a fetch (max.partition.fetch.bytes, so that one partition's backlog cannot take a whole
// fetch); records of 3 MB on each of four partitions still arrive whole and are answered — the first
// batch of a fetch comes whatever its size, and librdkafka asks more of a partition whose next record
// did not fit.
func TestRecordsLargerThanAPartitionsShareOfAFetchComeWhole(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 100 MB through the broker")
	}
	const size, partitions, each = 3_000_000, 4, 4
	h := harnessFor(t, "rest", 4_000_000, 4_000_000)
	h.in = testkit.TopicWithConfig(t, h.bootstrap, partitions, map[string]string{"max.message.bytes": "4000000"})
	h.env["KAFKA_INPUT_TOPIC"] = h.in
	model := testkit.StartModelProcess(t, "--host=127.0.0.1", "--model_name=classifier")
	h.env["ENGINE_PREDICTOR"] = predictorAt(model.HTTPPort, model.GRPCPort, "rest")
	var reqs []testkit.Record
	for i := range partitions * each {
		req := echoRequest(t, "rest", randomText(size))
		req.Key = []byte(fmt.Sprintf("key-%d", i))
		reqs = append(reqs, req)
	}
	testkit.Produce(t, h.bootstrap, h.in, reqs)
	for p, end := range testkit.EndOffsets(t, h.bootstrap, h.in) {
		if end == 0 {
			t.Fatalf("partition %d holds no record: the test needs big records on every partition", p)
		}
	}
	h.start()
	got := testkit.Consume(t, h.bootstrap, h.out, len(reqs), 3*time.Minute)
	keys := map[string]bool{}
	for _, r := range got {
		if reason := r.Headers["Seldon-Error-Reason"]; reason != "" {
			t.Fatalf("error record for %s: %s: %s", r.Key, reason, r.Headers["Seldon-Error-Message"])
		}
		if len(r.Value) < size {
			t.Errorf("the answer for %s is %d bytes, less than its %d-byte request", r.Key, len(r.Value), size)
		}
		keys[string(r.Key)] = true
	}
	if len(keys) != len(reqs) {
		t.Errorf("%d distinct requests answered, want %d", len(keys), len(reqs))
	}
	h.waitAllCommitted(60 * time.Second)
}

// predictorAt is the ENGINE_PREDICTOR of a one-model graph at a model process's ports.
func predictorAt(httpPort, grpcPort int, transport string) string {
	typ := map[string]string{"rest": "REST", "grpc": "GRPC"}[transport]
	spec := fmt.Sprintf(`{"name":"default","graph":{"name":"classifier","type":"MODEL","endpoint":{"service_host":"127.0.0.1","httpPort":%d,"grpcPort":%d,"type":%q}},
		"componentSpecs":[{"spec":{"containers":[{"name":"classifier"}]}}]}`, httpPort, grpcPort, typ)
	return base64.StdEncoding.EncodeToString([]byte(spec))
}
