package executor_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// An answer the broker refuses (here: larger than the output topic takes) is not lost: it becomes an
// error record, and the offset is committed only once that is delivered. An error record the broker
// refuses for its size is sent again without the original value, saying so.
func TestRecordsTheBrokerRefusesBecomeErrorRecords(t *testing.T) {
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
	h.start()

	rows := make([]string, 40)
	for i := range rows {
		rows[i] = fmt.Sprintf("[%d,%d]", i, i+1)
	}
	bigAnswer := `{"data":{"ndarray":[` + strings.Join(rows, ",") + `]}}` // 40 rows: the answer is well over 300 bytes
	hugePoison := strings.Repeat("x", 5000)                               // not JSON, and too big for the error topic
	testkit.Produce(t, h.bootstrap, h.in, []testkit.Record{
		{Key: []byte("small"), Value: []byte(`{"data":{"ndarray":[[1,2]]}}`)},
		{Key: []byte("big-answer"), Value: []byte(bigAnswer)},
		{Key: []byte("huge-poison"), Value: []byte(hugePoison)},
	})

	answers := testkit.Consume(t, h.bootstrap, h.out, 1, 60*time.Second)
	if string(answers[0].Key) != "small" {
		t.Fatalf("answer for %s, want only the small one", answers[0].Key)
	}
	errs := testkit.Consume(t, h.bootstrap, h.errs, 2, 60*time.Second)
	byKey := map[string]testkit.Record{}
	for _, e := range errs {
		byKey[string(e.Key)] = e
	}
	big := byKey["big-answer"]
	if got := big.Headers["Seldon-Error-Reason"]; got != "produce_failed" {
		t.Errorf("big answer: reason %q, want produce_failed (%s)", got, big.Headers["Seldon-Error-Message"])
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
	h.waitAllCommitted(30 * time.Second)
}
