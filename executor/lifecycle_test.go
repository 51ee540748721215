package executor_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/executor"
	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// inFlight reads /ready's count of records consumed and not finished.
func inFlight(t *testing.T, s *sidecar) int {
	t.Helper()
	resp, err := http.Get("http://" + s.health + "/ready")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	var body struct {
		InFlight int `json:"in_flight"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("/ready: %v", err)
	}
	return body.InFlight
}

// Shutting down while the broker refuses every answer (re-sent as error records) and the error records
// cannot leave the producer's queue (their topic does not exist, and the queue holds two): the workers
// and the resender wait for room that never comes. SIGTERM must still end Run within the grace period,
// without a panic, and commit nothing: no record was delivered, so every one is read again.
func TestShutdownWhileRefusedRecordsWaitForAFullProducerQueue(t *testing.T) {
	h := newHarness(t, "seldon", 1)
	h.out = testkit.TopicWithConfig(t, h.bootstrap, 1, map[string]string{"max.message.bytes": "10"})
	h.errs = "missing-errors-" + h.in // never created: records for it wait in the producer's queue
	h.env["KAFKA_OUTPUT_TOPIC"] = h.out
	h.env["KAFKA_ERROR_TOPIC"] = h.errs
	h.env["KAFKA_PRODUCER_QUEUE_BUFFERING_MAX_MESSAGES"] = "2"
	h.grace = "3s"
	s := h.start()

	const n = 20
	testkit.Produce(t, h.bootstrap, h.in, records("seldon", n))
	// Every record is consumed and none can finish.
	waitFor(t, "records held", 60*time.Second, func() bool { return inFlight(t, s) >= 4 })
	if got := metric(t, s, `seldon_kafka_records_produced_total{kind="answer"}`); got != 0 {
		t.Fatalf("%v answers delivered to a topic that takes 10 bytes", got)
	}

	stopped := time.Now()
	s.stop(t) // fails the test if Run errs or does not return
	if took := time.Since(stopped); took > 30*time.Second {
		t.Errorf("Run took %v to return after cancel, grace 3s", took)
	}
	if c := testkit.CommittedOffsets(t, h.bootstrap, h.group, h.in); len(c) != 0 {
		t.Errorf("committed %v with no record delivered; want nothing committed", c)
	}
}

// A partition that librdkafka holds and never fetches — here paused behind the pipeline's back once it
// is serving, the shape of the stalls librdkafka has had around pause, resume and assignment — is found
// by the stall watch (assigned, records waiting, not read while fetching is on) and restarted: every
// record is answered, and the stall is counted.
func TestAStalledPartitionIsFoundAndRestarted(t *testing.T) {
	h := newHarness(t, "seldon", 4)
	consumers := make(chan *ckafka.Consumer, 1)
	h.prepare = func(e *executor.Executor) {
		executor.SetAssignHook(e, func(c *ckafka.Consumer, _ []ckafka.TopicPartition) {
			select {
			case consumers <- c:
			default:
			}
		})
	}
	s := h.start()
	const n = 200
	recs := records("seldon", n)
	to := func(part int32, rs []testkit.Record) []testkit.Record {
		for i := range rs {
			rs[i].ToPartition = &part
		}
		return rs
	}
	// Serving: a first record answered on partition 0.
	testkit.Produce(t, h.bootstrap, h.in, to(0, recs[:1]))
	testkit.Consume(t, h.bootstrap, h.out, 1, 60*time.Second)
	c := <-consumers
	held := int32(2)
	if err := c.Pause([]ckafka.TopicPartition{{Topic: &h.in, Partition: held}}); err != nil {
		t.Fatalf("pausing partition %d: %v", held, err)
	}
	testkit.Produce(t, h.bootstrap, h.in, to(held, recs[1:n/2]))
	testkit.Produce(t, h.bootstrap, h.in, to(3, recs[n/2:]))

	answers := testkit.Consume(t, h.bootstrap, h.out, n, 90*time.Second)
	seen := map[string]bool{}
	for _, a := range answers {
		seen[string(a.Key)] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct records answered, want %d", len(seen), n)
	}
	if got := metric(t, s, "seldon_kafka_partition_stalls_total"); got < 1 {
		t.Errorf("partition_stalls_total = %v, want at least 1 (partition %d was held)", got, held)
	}
	want := testkit.EndOffsets(t, h.bootstrap, h.in)
	delete(want, 1) // no record: nothing to commit
	testkit.WaitCommitted(t, h.bootstrap, h.group, h.in, want, 30*time.Second)
	// Every answer delivered is timed end to end, and the sidecar's own view of the lag is nothing left.
	if got := metric(t, s, "seldon_kafka_record_latency_seconds_count"); got != n {
		t.Errorf("record_latency_seconds_count = %v, want %d", got, n)
	}
	// The lag gauge is sampled once a second: a partition read and answered within the second since its
	// restart may not have it yet.
	for _, part := range []int{0, int(held), 3} {
		name := fmt.Sprintf(`seldon_kafka_consumer_lag{partition="%d"}`, part)
		waitFor(t, name+" = 0", 10*time.Second, func() bool {
			v, err := readMetric(s, name)
			return err == nil && v == 0
		})
	}
}

// Starting is where a partition was once seen assigned and never read. Many short starts of a sidecar
// on a four-partition backlog: each partition is read within the stall bound of its assignment — the
// stall watch found nothing to restart — and every record is answered.
func TestManyShortStartsReadEveryPartition(t *testing.T) {
	runs := 50
	if testing.Short() {
		runs = 10
	}
	const parallel = 5
	sem := make(chan struct{}, parallel)
	var wg sync.WaitGroup
	for i := range runs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			t.Run(fmt.Sprintf("start-%02d", i), func(t *testing.T) {
				h := newHarness(t, "v2", 4)
				const n = 40
				testkit.Produce(t, h.bootstrap, h.in, records("v2", n))
				s := h.start()
				answers := testkit.Consume(t, h.bootstrap, h.out, n, 60*time.Second)
				if len(answers) != n {
					t.Fatalf("%d answers, want %d", len(answers), n)
				}
				if got := metric(t, s, "seldon_kafka_partition_stalls_total"); got != 0 {
					t.Errorf("partition_stalls_total = %v: a partition was assigned and not read", got)
				}
				s.stop(t)
			})
		}()
	}
	wg.Wait()
}

// Hurry (a second SIGTERM) cuts short a shutdown that waits for records stuck at a hung model: Run
// returns long before the grace period is over, commits nothing past the records not finished, and a
// restart answers every record, each once.
func TestHurryCutsAShutdownShort(t *testing.T) {
	h := newHarness(t, "seldon", 1)
	h.grace = "300s"
	var e *executor.Executor
	h.prepare = func(x *executor.Executor) { e = x }
	h.model.SetHanging(true)
	s := h.start()
	const n = 10
	testkit.Produce(t, h.bootstrap, h.in, records("seldon", n))
	waitFor(t, "records at the model", 60*time.Second, func() bool { return inFlight(t, s) >= 1 })

	s.cancel() // the first SIGTERM: the drain waits for the hung calls, up to 300 s
	s.cancel = nil
	e.Hurry()
	select {
	case err := <-s.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(100 * time.Second):
		t.Fatal("Run still waits for the records in flight 100 s after Hurry")
	}
	if c := testkit.CommittedOffsets(t, h.bootstrap, h.group, h.in); len(c) != 0 {
		t.Errorf("committed %v with no record answered; want nothing committed", c)
	}

	h.model.SetHanging(false)
	h.start()
	h.waitAllCommitted(60 * time.Second)
	if answers := testkit.ConsumeAll(t, h.bootstrap, h.out, time.Second); len(answers) != n {
		t.Errorf("%d answers after the restart, want %d: each record once", len(answers), n)
	}
}

// A commit that waits for the group coordinator — as one sent just before a broker restart waits until
// the consumer has served its rebalance and joined the group again, which only the poll loop can make it
// do — holds neither the poll loop nor the records behind it. Here the first commit waits until the test
// lets it go: records produced meanwhile are still consumed and answered, and /live stays good; once it
// is let go, everything is committed.
func TestACommitWaitingForTheCoordinatorDoesNotHoldThePollLoop(t *testing.T) {
	h := newHarness(t, "seldon", 1)
	held, release := make(chan struct{}), make(chan struct{})
	var first sync.Once
	h.prepare = func(e *executor.Executor) {
		executor.SetCommitHook(e, func() {
			first.Do(func() {
				close(held)
				<-release
			})
		})
	}
	released := false
	letGo := func() {
		if !released {
			released = true
			close(release)
		}
	}
	defer letGo()
	s := h.start()

	recs := records("seldon", 40)
	testkit.Produce(t, h.bootstrap, h.in, recs[:10])
	select {
	case <-held:
	case <-time.After(60 * time.Second):
		t.Fatal("no commit within 60 s of 10 answered records")
	}
	// Produced after the commit went out: only a poll loop that is not waiting for it reads these.
	testkit.Produce(t, h.bootstrap, h.in, recs[10:])
	waitFor(t, "every record answered while the first commit waits", 60*time.Second, func() bool {
		return metric(t, s, `seldon_kafka_records_produced_total{kind="answer"}`) >= float64(len(recs))
	})
	if code := getStatus(t, "http://"+s.health+"/live"); code != http.StatusOK {
		t.Fatalf("/live = %d while a commit waits; the poll loop must be turning", code)
	}
	letGo()
	h.waitAllCommitted(60 * time.Second)
}

// A commit still on its way when the shutdown's grace is over gets a few seconds more to land before the
// consumer closes: closing it under librdkafka's commit call would free what that call uses. Here the
// shutdown's own commit is held (a coordinator slow to answer) past the grace of 1 s, for 2.5 s: it
// lands, and the records answered are committed.
func TestACommitOnItsWayAtTheEndOfTheGraceLandsBeforeTheConsumerCloses(t *testing.T) {
	h := newHarness(t, "seldon", 1)
	h.env["KAFKA_COMMIT_INTERVAL"] = "1h" // the shutdown's commit is the only one
	h.extraArgs = []string{"--graceful_timeout=1s"}
	var hold atomic.Bool
	held := make(chan struct{}, 1)
	h.prepare = func(e *executor.Executor) {
		executor.SetCommitHook(e, func() {
			if hold.Load() {
				held <- struct{}{}
				time.Sleep(2500 * time.Millisecond)
			}
		})
	}
	s := h.start()
	recs := records("seldon", 20)
	testkit.Produce(t, h.bootstrap, h.in, recs)
	waitFor(t, "every record answered", 60*time.Second, func() bool {
		return metric(t, s, `seldon_kafka_records_produced_total{kind="answer"}`) >= float64(len(recs))
	})
	if got := testkit.CommittedOffsets(t, h.bootstrap, h.group, h.in); len(got) != 0 {
		t.Fatalf("committed %v before the shutdown; the test needs the shutdown's commit to be the first", got)
	}
	hold.Store(true)
	s.stop(t)
	select {
	case <-held:
	default:
		t.Fatal("the shutdown made no commit")
	}
	want := testkit.EndOffsets(t, h.bootstrap, h.in)
	if got := testkit.CommittedOffsets(t, h.bootstrap, h.group, h.in); !maps.Equal(got, want) {
		t.Fatalf("committed %v after the shutdown, want %v: the consumer closed under the commit", got, want)
	}
}
