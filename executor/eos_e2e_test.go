package executor_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// exactlyOnce turns on exactly-once for the harness's sidecars, each with a transactional id of its own
// (two replicas on one machine would otherwise share <group>-<hostname>).
func (h *harness) exactlyOnce(id string) {
	h.env["KAFKA_EXACTLY_ONCE"] = "true"
	h.env["KAFKA_TRANSACTIONAL_ID"] = h.group + "-" + id
}

// onceEach checks that a read_committed reader of topic sees exactly one record per key of want.
func onceEach(t *testing.T, got []testkit.Record, want []testkit.Record) {
	t.Helper()
	count := map[string]int{}
	for _, r := range got {
		count[string(r.Key)]++
	}
	for _, r := range want {
		if c := count[string(r.Key)]; c != 1 {
			t.Errorf("%s: %d records read_committed, want exactly 1", r.Key, c)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d records read_committed for %d inputs", len(got), len(want))
	}
}

func TestExactlyOnceSmoke(t *testing.T) {
	const n = 2000
	h := newHarness(t, "seldon", 4)
	if os.Getenv("EOS_OFF") == "" {
		h.exactlyOnce("a")
	}
	h.start()
	recs := records("seldon", n)
	for i := 0; i < n; i += 100 {
		recs[i].Value = []byte(fmt.Sprintf("not json %d", i))
	}
	testkit.Produce(t, h.bootstrap, h.in, recs)
	h.waitAllCommitted(90 * time.Second)
	onceEach(t, testkit.ConsumeAll(t, h.bootstrap, h.out, time.Second), recs)
}
