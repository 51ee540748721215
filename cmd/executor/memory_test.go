package main

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// Sixteen 64 MB requests (a backlog of a gigabyte) with 16 workers, which alone would let all sixteen in
// at once, at a model that takes 2 s a call: KAFKA_MAX_INFLIGHT_BYTES=64 MiB holds the sidecar to the
// bound plus one record, so its peak RSS, read from the kernel (VmHWM), stays within 1 GiB, where the
// same backlog without the bound takes over 2 GiB.
// Each request held is in memory four to five times while it is answered (the consumed value, the body
// sent, the model's answer, librdkafka's copy and its compressed batch, and the garbage collector's
// slack): the README's "Big payloads" has the figures.
func TestPeakRSSWithSixteen64MBRecordsStaysWithinTheByteBound(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 2 GB through the broker")
	}
	const records, size, bound = 16, 64_000_000, 64 << 20
	// Measured: 593–654 MiB with the bound; 2385 MiB without it (all sixteen at the model at once).
	// Before large answers kept fasthttp's buffer instead of a copy, two runs of six here reached 834 and 1 082 MiB, and one in CI 1 198 MiB.
	const ceiling = 1 << 30
	bs := testkit.Bootstrap(t)
	cfg := map[string]string{"max.message.bytes": "66000000"}
	in, out, errs := testkit.TopicWithConfig(t, bs, 4, cfg), testkit.TopicWithConfig(t, bs, 4, cfg), testkit.Topic(t, bs, 1)
	// A model that takes 2 s a call: without a bound every request fetched would wait at it at once.
	model := testkit.StartModelProcess(t, "--host=127.0.0.1", "--model_name=classifier", "--delay=2s")
	recs := make([]testkit.Record, records)
	for i := range recs {
		raw := make([]byte, size*3/4)
		_, _ = rand.Read(raw)
		recs[i] = testkit.Record{Key: []byte(strconv.Itoa(i)),
			Value: []byte(`{"strData":"` + base64.RawStdEncoding.EncodeToString(raw)[:size-14] + `"}`)}
	}
	testkit.Produce(t, bs, in, recs)
	recs = nil

	p := startProc(t, map[string]string{
		"KAFKA_BROKER": bs, "KAFKA_INPUT_TOPIC": in, "KAFKA_OUTPUT_TOPIC": out, "KAFKA_ERROR_TOPIC": errs,
		"KAFKA_GROUP_ID": "g-" + in, "KAFKA_WORKERS": "16", "KAFKA_MESSAGE_MAX_BYTES": "65000000",
		"KAFKA_MAX_INFLIGHT_BYTES": strconv.Itoa(bound), "MODEL_TIMEOUT": "5m",
		"ENGINE_PREDICTOR": predictor(model.HTTPPort),
	}, operatorArgs...)
	waitUntil(t, "every request answered", 5*time.Minute, func() bool {
		var n int64
		for _, o := range testkit.EndOffsets(t, bs, out) {
			n += o
		}
		return n >= records
	})
	peak := peakRSS(t, p.cmd.Process.Pid)
	for _, o := range testkit.EndOffsets(t, bs, errs) {
		if o != 0 {
			t.Fatalf("error records written: %v", testkit.EndOffsets(t, bs, errs))
		}
	}
	t.Logf("peak RSS %d MiB for %d requests of %d MB, KAFKA_MAX_INFLIGHT_BYTES %d MiB (ceiling %d MiB)",
		peak>>20, records, size/1_000_000, bound>>20, ceiling>>20)
	if peak > ceiling {
		t.Errorf("peak RSS %d MiB, want at most %d MiB: the byte bound does not hold memory", peak>>20, ceiling>>20)
	}
	testkit.WaitCommitted(t, bs, "g-"+in, in, testkit.EndOffsets(t, bs, in), time.Minute)
}

// peakRSS is a process's peak resident set (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no VmHWM in /proc/%d/status", pid)
	return 0
}
