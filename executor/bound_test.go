package executor_test

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/executor"
	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// Memory is bounded whatever the backlog: a slow model behind a large backlog never has more than
// 2 × KAFKA_WORKERS records not yet answered in the sidecar, nor more than KAFKA_WORKERS calls at once.
func TestRecordsHeldStayWithinTheBoundBehindASlowModel(t *testing.T) {
	const workers, n = 3, 400
	h := newHarness(t, "seldon", 4)
	h.env["KAFKA_WORKERS"] = "3"
	h.model.SetDelay(25 * time.Millisecond)
	testkit.Produce(t, h.bootstrap, h.in, records("seldon", n))
	s := h.start()

	maxUnanswered, maxHeld := recordPeaks(h, s, n, 10*time.Millisecond)

	if got := maxUnanswered; got > 2*workers || got == 0 {
		t.Errorf("at most %d records not yet answered at once; want between 1 and 2 × KAFKA_WORKERS = %d", got, 2*workers)
	}
	// The others held wait for their delivery report; the model is slow, so few do.
	if maxHeld < maxUnanswered || maxHeld > 2*workers+executor.AwaitingDelivery {
		t.Errorf("at most %d records held; want between %d and %d", maxHeld, maxUnanswered, 2*workers+executor.AwaitingDelivery)
	}
	if mc := h.model.MaxConcurrent(); mc > workers || mc < 2 {
		t.Errorf("%d model calls at once; want 2..%d", mc, workers)
	}
	t.Logf("at most %d records not yet answered, %d held, %d calls at once", maxUnanswered, maxHeld, h.model.MaxConcurrent())
	h.waitAllCommitted(30 * time.Second)
}

// Records whose answers wait in the producer for their delivery report do not count against
// 2 × KAFKA_WORKERS: with the producer holding every answer for 300 ms (linger.ms) and 2 workers, the
// sidecar keeps fetching and answering while earlier answers wait, so more than 4 records are held at
// once while never more than 4 are unanswered — counted together, fetching would stop at 4 records per
// produce round trip.
func TestAnswersAwaitingDeliveryDoNotHoldBackFetching(t *testing.T) {
	const workers, n = 2, 200
	h := newHarness(t, "seldon", 2)
	h.env["KAFKA_WORKERS"] = strconv.Itoa(workers)
	h.env["KAFKA_PRODUCER_LINGER_MS"] = "300"
	testkit.Produce(t, h.bootstrap, h.in, records("seldon", n))
	s := h.start()

	maxUnanswered, maxHeld := recordPeaks(h, s, n, 5*time.Millisecond)

	if maxUnanswered > 2*workers || maxUnanswered == 0 {
		t.Errorf("at most %d records not yet answered at once; want between 1 and 2 × KAFKA_WORKERS = %d", maxUnanswered, 2*workers)
	}
	if maxHeld <= 2*workers {
		t.Errorf("at most %d records held at once: the answers waiting for their delivery report held back fetching (want more than %d)", maxHeld, 2*workers)
	}
	t.Logf("at most %d records not yet answered, %d held", maxUnanswered, maxHeld)
	h.waitAllCommitted(30 * time.Second)
}

// The bound in bytes (KAFKA_MAX_INFLIGHT_BYTES) holds whatever the bound in records allows: with 8
// workers (16 records) and room for 6 requests of 10 000 bytes, the sidecar holds at most 7 of them — the
// bound, passed by at most the last record taken — and so never has more than 7 at the model.
func TestRequestBytesHeldStayWithinKAFKA_MAX_INFLIGHT_BYTES(t *testing.T) {
	const size, n, bound = 10000, 120, 6 * 10000
	h := newHarness(t, "seldon", 4)
	h.env["KAFKA_WORKERS"] = "8"
	h.env["KAFKA_MAX_INFLIGHT_BYTES"] = strconv.Itoa(bound)
	h.model.SetDelay(25 * time.Millisecond)
	recs := make([]testkit.Record, n)
	for i := range recs {
		body := fmt.Sprintf(`{"strData":"%d-`, i)
		recs[i] = testkit.Record{Key: []byte(fmt.Sprint(i)),
			Value: []byte(body + strings.Repeat("x", size-len(body)-2) + `"}`)}
	}
	testkit.Produce(t, h.bootstrap, h.in, recs)
	s := h.start()

	peak := samplePeak(s, "seldon_kafka_records_in_flight_bytes", 5*time.Millisecond)
	testkit.Consume(t, h.bootstrap, h.out, n, 120*time.Second)
	maxBytes := peak()

	if got := maxBytes; got > bound+size || got == 0 {
		t.Errorf("at most %d bytes of requests held at once; want between 1 and the bound plus one record, %d", got, bound+size)
	}
	if mc := h.model.MaxConcurrent(); mc > bound/size+1 || mc < 2 {
		t.Errorf("%d model calls at once with 8 workers; want 2..%d, what the byte bound lets in", mc, bound/size+1)
	}
	// The answers are on the topic before their delivery reports reach the sidecar: the gauge goes back
	// to 0 once the last report is read.
	waitFor(t, "seldon_kafka_records_in_flight_bytes back to 0", 30*time.Second, func() bool {
		return metric(t, s, "seldon_kafka_records_in_flight_bytes") == 0
	})
	t.Logf("held at most %d bytes, %d calls at once", maxBytes, h.model.MaxConcurrent())
	h.waitAllCommitted(30 * time.Second)
}

// recordPeaks reads the records not yet answered and the records held, every interval, until n answers
// are on the output topic, and returns the highest of each.
func recordPeaks(h *harness, s *sidecar, n int, every time.Duration) (unanswered, held int64) {
	h.t.Helper()
	stopUnanswered := samplePeak(s, "seldon_kafka_records_unanswered", every)
	stopHeld := samplePeak(s, "seldon_kafka_records_in_flight", every)
	testkit.Consume(h.t, h.bootstrap, h.out, n, 120*time.Second)
	return stopUnanswered(), stopHeld()
}

// samplePeak reads a gauge of the sidecar every interval until the returned function is called, which
// returns the highest value seen.
func samplePeak(s *sidecar, name string, every time.Duration) (stop func() int64) {
	var peak atomic.Int64
	quit := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		for {
			select {
			case <-quit:
				return
			case <-time.After(every):
			}
			if v, err := readMetric(s, name); err == nil && int64(v) > peak.Load() {
				peak.Store(int64(v))
			}
		}
	})
	return func() int64 {
		close(quit)
		sampler.Wait()
		return peak.Load()
	}
}
