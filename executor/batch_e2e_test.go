package executor_test

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
	"github.com/seldon-kafka/sidecar/protocols/tensorflow/tfpb"
	"github.com/seldon-kafka/sidecar/protocols/v2/v2pb"
)

// Micro-batching against the real broker: records that reach the model together go in one call and
// each gets the answer it would have got alone; a record the model refuses gets its own error record.

// batching turns batching on: up to size records a call, waiting up to 20 ms for batch-mates, with a
// model slow enough that records pile up behind it.
func (h *harness) batching(size int) {
	h.env["MODEL_BATCH_SIZE"] = fmt.Sprint(size)
	h.env["MODEL_BATCH_WAIT"] = "20ms"
	h.model.SetDelay(5 * time.Millisecond)
}

// poisonREST is request(protocol, i) with a number whose double (or row product) overflows: the same
// shape, refused by the test model with 400.
func poisonREST(protocol string, i int) []byte {
	switch protocol {
	case "seldon":
		return fmt.Appendf(nil, `{"data":{"names":["a","b"],"ndarray":[[1e308,2],[3,%d]]}}`, i+1)
	case "tensorflow":
		return fmt.Appendf(nil, `{"instances":[[1e308,1.5],[2,%d]]}`, i)
	case "v2":
		return fmt.Appendf(nil, `{"id":"r%d","inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1e308,%d]}]}`, i, i+1)
	}
	panic(protocol)
}

// poisonGRPC is grpcRequest(protocol, i) with an infinite or overflowing first number: the same shape,
// refused by the test model with InvalidArgument.
func poisonGRPC(protocol string, i int) (proto.Message, string) {
	m, name := grpcRequest(protocol, i)
	switch r := m.(type) {
	case *seldonpb.SeldonMessage:
		r.GetData().GetNdarray().GetValues()[0].GetListValue().GetValues()[0] = structpb.NewNumberValue(1e308)
	case *tfpb.PredictRequest:
		r.Inputs["x"].FloatVal[0] = float32(math.Inf(1))
	case *v2pb.ModelInferRequest:
		r.Inputs[0].Contents.Fp32Contents[0] = float32(math.Inf(1))
	}
	return m, name
}

func TestBatchedRecordsGetTheirOwnAnswersAndAPoisonRecordItsOwnError(t *testing.T) {
	for _, transport := range []string{"rest", "grpc"} {
		for _, protocol := range []string{"seldon", "tensorflow", "v2"} {
			t.Run(protocol+" over "+transport, func(t *testing.T) {
				const n = 200
				isPoison := func(i int) bool { return i%25 == 3 }
				var h *harness
				if transport == "grpc" {
					h = newGRPCHarness(t, protocol, 2)
				} else {
					h = newHarness(t, protocol, 2)
				}
				h.withErrorTopic()
				h.batching(8)
				s := h.start()

				recs := make([]testkit.Record, n)
				check := make([]func(testkit.Record), n)
				poisons := 0
				for i := range recs {
					key := fmt.Sprintf("key-%d", i)
					recs[i] = testkit.Record{Key: []byte(key), Headers: map[string]string{"Seldon-Puid": "puid-" + key}}
					switch {
					case isPoison(i):
						poisons++
						if transport == "grpc" {
							m, name := poisonGRPC(protocol, i)
							recs[i].Value, recs[i].Headers["proto-name"] = mustMarshal(t, m), name
						} else {
							recs[i].Value = poisonREST(protocol, i)
						}
					case transport == "grpc":
						m, name := grpcRequest(protocol, i)
						recs[i].Value, recs[i].Headers["proto-name"] = mustMarshal(t, m), name
						check[i] = func(a testkit.Record) {
							if got, want := decodeAnswer(t, a), grpcExpected(t, protocol, m); !proto.Equal(got, want) {
								t.Errorf("key %s: answer\n got %v\nwant %v", a.Key, got, want)
							}
						}
					default:
						recs[i].Value = request(protocol, i)
						check[i] = func(a testkit.Record) {
							if got, want := string(a.Value), expected(t, protocol, recs[i].Value); got != want {
								t.Errorf("key %s: answer\n got %s\nwant %s", a.Key, got, want)
							}
						}
					}
				}
				testkit.Produce(t, h.bootstrap, h.in, recs)

				answers := testkit.Consume(t, h.bootstrap, h.out, n-poisons, 90*time.Second)
				errs := testkit.Consume(t, h.bootstrap, h.errs, poisons, 30*time.Second)
				byKey := map[string]testkit.Record{}
				for _, a := range append(answers, errs...) {
					if _, dup := byKey[string(a.Key)]; dup {
						t.Fatalf("two records out for key %s", a.Key)
					}
					byKey[string(a.Key)] = a
				}
				for i, r := range recs {
					a, ok := byKey[string(r.Key)]
					if !ok {
						t.Fatalf("nothing out for key %s", r.Key)
					}
					if got, want := a.Headers["Seldon-Puid"], "puid-"+string(r.Key); got != want {
						t.Errorf("key %s: Seldon-Puid %q, want %q", r.Key, got, want)
					}
					if isPoison(i) {
						if a.Headers["Seldon-Error-Reason"] != "model_rejected" || string(a.Value) != string(r.Value) {
							t.Errorf("poison key %s: %v, want a model_rejected error record with its value", r.Key, a.Headers)
						}
						continue
					}
					if reason := a.Headers["Seldon-Error-Reason"]; reason != "" {
						t.Fatalf("key %s, a batch-mate of poison records: error record %v", r.Key, a.Headers)
					}
					check[i](a)
				}
				// Every record went through the batcher, in fewer calls than records; the poison
				// records' batches were called again record by record.
				sum, calls := metric(t, s, "seldon_kafka_model_batch_size_sum"), metric(t, s, "seldon_kafka_model_batch_size_count")
				if sum != n {
					t.Errorf("the batches carried %v records, want %d", sum, n)
				}
				if calls >= n {
					t.Errorf("%v batched calls for %d records: nothing was batched", calls, n)
				}
				t.Logf("%v records in %v batched calls", sum, calls)
				if alone := metric(t, s, `seldon_kafka_model_batch_alone_total{cause="call_failed"}`); alone < 2 {
					t.Errorf("%v records called alone after their batch failed; want the poison records' batches", alone)
				}
				h.waitAllCommitted(30 * time.Second)
			})
		}
	}
}

func TestSameKeyAnswersArriveInOrderAcrossBatches(t *testing.T) {
	const keys, perKey = 20, 30
	h := newHarness(t, "seldon", 2)
	h.batching(8)
	s := h.start()
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
	if calls := metric(t, s, "seldon_kafka_model_batch_size_count"); calls >= keys*perKey {
		t.Errorf("%v batched calls for %d records: nothing was batched", calls, keys*perKey)
	}
	h.waitAllCommitted(30 * time.Second)
}
