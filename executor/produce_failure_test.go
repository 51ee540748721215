package executor_test

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/cloudevents"
	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// An answer the broker refuses (here: larger than the output topic takes) is not lost: it becomes an
// error record, and the offset is committed only once that is delivered. An error record the broker
// refuses for its size is sent again without the original value, saying so (a structured CloudEvent
// without its data). Exactly once, each refusal
// aborts the transaction it was in; the records are served again, the refusal handled as at least once
// handles it, and a read_committed reader sees each outcome once.
func TestRecordsTheBrokerRefusesBecomeErrorRecords(t *testing.T) {
	for _, mode := range []string{"at least once", "exactly once"} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, "seldon", 1)
			// The output topic takes nothing over 300 bytes; the error topic nothing over 2000.
			h.out = testkit.TopicWithConfig(t, h.bootstrap, 1, map[string]string{"max.message.bytes": "300"})
			h.errs = testkit.TopicWithConfig(t, h.bootstrap, 1, map[string]string{"max.message.bytes": "2000"})
			h.env["KAFKA_OUTPUT_TOPIC"] = h.out
			h.env["KAFKA_ERROR_TOPIC"] = h.errs
			// The broker judges a whole batch: batches must stay under the topics' limit, or a small answer
			// batched with a big one is refused with it.
			h.env["KAFKA_PRODUCER_BATCH_SIZE"] = "250"
			// The broker judges compressed batches: without compression the sizes here are the sizes it judges.
			h.env["KAFKA_PRODUCER_COMPRESSION"] = "none"
			if mode == "exactly once" {
				h.exactlyOnce("a")
			}
			s := h.start()

			rows := make([]string, 40)
			for i := range rows {
				rows[i] = fmt.Sprintf("[%d,%d]", i, i+1)
			}
			bigAnswer := `{"data":{"ndarray":[` + strings.Join(rows, ",") + `]}}` // 40 rows: the answer is well over 300 bytes
			hugePoison := strings.Repeat("x", 5000)                               // not JSON, and too big for the error topic
			// A structured CloudEvent whose data is no seldon request: its error event holds the request
			// event, too big for the error topic.
			hugeEvent := `{"specversion":"1.0","id":"e1","source":"/test","type":"t","datacontenttype":"application/json","data":"` + hugePoison + `"}`
			testkit.Produce(t, h.bootstrap, h.in, []testkit.Record{
				{Key: []byte("small"), Value: []byte(`{"data":{"ndarray":[[1,2]]}}`)},
				{Key: []byte("big-answer"), Value: []byte(bigAnswer)},
				{Key: []byte("huge-poison"), Value: []byte(hugePoison)},
				{Key: []byte("huge-event"), Value: []byte(hugeEvent), Headers: map[string]string{"content-type": "application/cloudevents+json"}},
			})
			h.waitAllCommitted(60 * time.Second)

			answers := testkit.ConsumeAll(t, h.bootstrap, h.out, time.Second)
			if len(answers) != 1 || string(answers[0].Key) != "small" {
				t.Fatalf("%d answers (first %q), want only the small one's", len(answers), answers[0].Key)
			}
			errs := testkit.ConsumeAll(t, h.bootstrap, h.errs, time.Second)
			byKey := map[string]testkit.Record{}
			for _, e := range errs {
				byKey[string(e.Key)] = e
			}
			if len(errs) != 3 || len(byKey) != 3 {
				t.Fatalf("%d error records for %d keys, want one for each of big-answer, huge-poison and huge-event", len(errs), len(byKey))
			}
			big := byKey["big-answer"]
			if got := big.Headers["Seldon-Error-Reason"]; got != "produce_failed" {
				t.Errorf("big answer: reason %q, want produce_failed (%s)", got, big.Headers["Seldon-Error-Message"])
			}
			// The message says how large the answer was and which topic refused it: enough to compare with
			// the topic's max.message.bytes.
			if msg := big.Headers["Seldon-Error-Message"]; !regexp.MustCompile(`^the answer \(\d+ bytes\) could not be written to ` + h.out + `: `).MatchString(msg) {
				t.Errorf("big answer: message %q, want the answer's size and the topic", msg)
			}
			if big.Headers["Seldon-Error-Stage"] != "produce" || string(big.Value) != bigAnswer {
				t.Errorf("big answer: stage %q, value kept %v", big.Headers["Seldon-Error-Stage"], string(big.Value) == bigAnswer)
			}
			huge := byKey["huge-poison"]
			if got := huge.Headers["Seldon-Error-Reason"]; got != "invalid_request" {
				t.Errorf("huge poison: reason %q, want invalid_request", got)
			}
			if len(huge.Value) != 0 || huge.Headers["Seldon-Error-Value-Omitted"] == "" {
				t.Errorf("huge poison: value of %d bytes, omitted header %q; want the value left out and said so",
					len(huge.Value), huge.Headers["Seldon-Error-Value-Omitted"])
			}
			// In structured mode the error record resent without the request is still a CloudEvent.
			ev := byKey["huge-event"]
			if got := ev.Headers["Seldon-Error-Reason"]; got != "invalid_request" || ev.Headers["Seldon-Error-Value-Omitted"] == "" {
				t.Errorf("huge event: reason %q, omitted header %q; want invalid_request, the request left out and said so",
					got, ev.Headers["Seldon-Error-Value-Omitted"])
			}
			if in, err := cloudevents.Read(ev.RawHeaders, ev.Value); err != nil || in.Mode != cloudevents.Structured {
				t.Errorf("huge event: the error record is not a structured CloudEvent (%v): %s", err, ev.Value)
			} else if d, _ := in.Data(); len(d) != 0 || in.Event.Type() == "" {
				t.Errorf("huge event: error event %s still carries %d bytes of data", in.Event, len(d))
			}
			if mode == "exactly once" {
				if aborted := metric(t, s, `seldon_kafka_transactions_total{outcome="aborted"}`); aborted < 1 {
					t.Errorf("%v transactions aborted: the refusals were not in a transaction", aborted)
				}
			}
		})
	}
}
