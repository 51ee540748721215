package executor_test

import (
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// Scaling in and out (KEDA adding or removing a replica) moves partitions between sidecars of one group.
// A sidecar that leaves hands its partitions over cleanly: what it answered is committed, what it had in
// flight is finished first, so the one that takes over answers each remaining record once.
// Exactly once, the same hand-over goes through transactions: the revoke commits the open one.
func TestReplicasShareTheGroupAndOneLeavingAnswersEachRecordOnce(t *testing.T) {
	for _, mode := range []string{"at least once", "exactly once"} {
		t.Run(mode, func(t *testing.T) { replicasHandOver(t, mode == "exactly once") })
	}
}

func replicasHandOver(t *testing.T, exactlyOnce bool) {
	const n = 3000
	h := newHarness(t, "seldon", 4)
	h.env["KAFKA_WORKERS"] = "8"
	h.model.SetDelay(2 * time.Millisecond)
	if exactlyOnce {
		h.exactlyOnce("a")
	}
	a := h.start()
	if exactlyOnce {
		h.exactlyOnce("b")
	}
	b := h.start()
	waitFor(t, "both replicas to be given partitions", 60*time.Second, func() bool {
		return metric(t, a, "seldon_kafka_partitions_assigned") > 0 && metric(t, b, "seldon_kafka_partitions_assigned") > 0
	})
	testkit.Produce(t, h.bootstrap, h.in, records("seldon", n))

	waitFor(t, "both replicas to work", 60*time.Second, func() bool {
		var got int64
		for _, o := range testkit.CommittedOffsets(t, h.bootstrap, h.group, h.in) {
			got += o
		}
		return got >= n/4
	})
	for name, s := range map[string]*sidecar{"a": a, "b": b} {
		if c := metric(t, s, "seldon_kafka_records_consumed_total"); c == 0 {
			t.Fatalf("replica %s consumed nothing: the group did not share the partitions", name)
		}
	}
	b.stop(t) // scale in: b drains, commits and leaves; a is given b's partitions
	h.waitAllCommitted(90 * time.Second)

	answers := testkit.ConsumeAll(t, h.bootstrap, h.out, time.Second)
	count := map[string]int{}
	for _, r := range answers {
		if r.Headers["Seldon-Error-Reason"] != "" {
			t.Fatalf("error record: %v", r.Headers)
		}
		count[string(r.Key)]++
	}
	if len(count) != n {
		t.Fatalf("%d of %d records answered", len(count), n)
	}
	for k, c := range count {
		if c != 1 {
			t.Errorf("%s answered %d times; a clean hand-over answers each record once", k, c)
		}
	}
}

// metric reads one series from a sidecar's /metrics, written as Prometheus writes it: name{labels}.
func metric(t *testing.T, s *sidecar, name string) float64 {
	t.Helper()
	v, err := readMetric(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// readMetric is metric for goroutines other than the test's, which must not call t.Fatal.
func readMetric(s *sidecar, name string) (float64, error) {
	resp, err := http.Get("http://" + s.health + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}
