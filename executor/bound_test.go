package executor_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// Memory is bounded whatever the backlog: a slow model behind a large backlog never has more than
// 2 × KAFKA_WORKERS records held by the sidecar, nor more than KAFKA_WORKERS calls at once.
func TestRecordsHeldStayWithinTheBoundBehindASlowModel(t *testing.T) {
	const workers, n = 3, 400
	h := newHarness(t, "seldon", 4)
	h.env["KAFKA_WORKERS"] = "3"
	h.model.SetDelay(25 * time.Millisecond)
	testkit.Produce(t, h.bootstrap, h.in, records("seldon", n))
	s := h.start()

	var maxHeld atomic.Int64
	stop := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Add(1)
	go func() {
		defer sampler.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			if v, err := readMetric(s, "seldon_kafka_records_in_flight"); err == nil && int64(v) > maxHeld.Load() {
				maxHeld.Store(int64(v))
			}
		}
	}()
	testkit.Consume(t, h.bootstrap, h.out, n, 120*time.Second)
	close(stop)
	sampler.Wait()

	if got := maxHeld.Load(); got > 2*workers || got == 0 {
		t.Errorf("at most %d records held at once; want between 1 and 2 × KAFKA_WORKERS = %d", got, 2*workers)
	}
	if mc := h.model.MaxConcurrent(); mc > workers || mc < 2 {
		t.Errorf("%d model calls at once; want 2..%d", mc, workers)
	}
	t.Logf("held at most %d records, %d calls at once", maxHeld.Load(), h.model.MaxConcurrent())
	h.waitAllCommitted(30 * time.Second)
}
