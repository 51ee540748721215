package executor_test

import (
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/executor"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// ownBroker starts a broker of the test's own (the shared one must not be disturbed) and returns its
// address and process id.
func ownBroker(t *testing.T) (bootstrap string, pid int) {
	t.Helper()
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(root, "test", "kafka", "broker.sh")
	state := t.TempDir()
	run := func(args ...string) {
		cmd := exec.Command("bash", append([]string{script}, args...)...)
		// The test freezes the broker for longer than its controller's lease on it (9 s): a longer lease
		// keeps the broker from fencing itself on thaw, which would test Kafka's recovery, not ours.
		cmd.Env = append(os.Environ(), "KAFKA_STATE_DIR="+state,
			"KAFKA_EXTRA_PROPERTIES=broker.session.timeout.ms=60000\nbroker.heartbeat.interval.ms=2000")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("broker.sh %v: %v\n%s", args, err, out)
		}
	}
	run("start")
	b, err := os.ReadFile(filepath.Join(state, "bootstrap"))
	if err != nil {
		run("stop")
		t.Fatal(err)
	}
	bootstrap = strings.TrimSpace(string(b))
	t.Cleanup(func() {
		testkit.CloseAdmin(bootstrap)
		run("stop")
	})
	p, err := os.ReadFile(filepath.Join(state, "pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(p)))
	if err != nil {
		t.Fatal(err)
	}
	return bootstrap, pid
}

// Exactly once, the transaction open when the broker froze commits or aborts when it is back, and each
// record is answered once.
func TestBrokerLossFailsReadinessAndTheSidecarRecovers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a broker of its own")
	}
	bs, pid := ownBroker(t)
	for _, mode := range []string{"at least once", "exactly once"} {
		t.Run(mode, func(t *testing.T) { brokerLoss(t, bs, pid, mode == "exactly once") })
	}
}

func brokerLoss(t *testing.T, bs string, pid int, exactlyOnce bool) {
	h := newHarnessOn(t, bs, "seldon", 2)
	h.model.SetDelay(20 * time.Millisecond)
	if exactlyOnce {
		h.exactlyOnce("a")
	}
	s := h.start()
	ready := "http://" + s.health + "/ready"
	waitFor(t, "ready", 60*time.Second, func() bool { return getStatus(t, ready) == http.StatusOK })

	const n = 300
	testkit.Produce(t, bs, h.in, records("seldon", n))
	waitFor(t, "some answers", 30*time.Second, func() bool {
		var got int64
		for _, o := range testkit.CommittedOffsets(t, bs, h.group, h.in) {
			got += o
		}
		return got > 0
	})

	// Freeze the broker mid-stream: connections stay open and nothing answers, as when a network
	// partition cuts the sidecar off.
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	thawed := false
	thaw := func() {
		if !thawed {
			thawed = true
			_ = syscall.Kill(pid, syscall.SIGCONT)
		}
	}
	t.Cleanup(thaw)
	waitFor(t, "/ready to fail without the broker", 30*time.Second, func() bool {
		return getStatus(t, ready) == http.StatusServiceUnavailable
	})
	if code := getStatus(t, "http://"+s.health+"/live"); code != http.StatusOK {
		t.Fatalf("/live = %d while the broker is away; the process is fine and must not be restarted", code)
	}
	time.Sleep(3 * time.Second)
	thaw()

	waitFor(t, "/ready again", 90*time.Second, func() bool { return getStatus(t, ready) == http.StatusOK })
	// Everything is committed only once every answer is delivered.
	h.waitAllCommitted(90 * time.Second)
	answers := testkit.ConsumeAll(t, bs, h.out, time.Second)
	keys := map[string]bool{}
	for _, a := range answers {
		if a.Headers["Seldon-Error-Reason"] != "" {
			t.Fatalf("error record: %v", a.Headers)
		}
		keys[string(a.Key)] = true
	}
	if len(keys) != n {
		t.Fatalf("%d of %d records answered after the broker came back", len(keys), n)
	}
	if exactlyOnce && len(answers) != n {
		t.Errorf("%d answers read_committed for %d records: some twice", len(answers), n)
	}
}

// After "all brokers down", the broker counts as back as soon as it takes answers and commits, even when
// the watch's own metadata requests keep timing out (on the producer's connection they wait behind a
// catch-up's produce requests): the commits do not wait for the watch, and /ready follows the answers.
// While nothing proves the broker back, /ready stays 503.
func TestABrokerThatServesTheSidecarCountsAsBackWhileItsMetadataRequestsTimeOut(t *testing.T) {
	h := newHarness(t, "seldon", 2)
	var metadataTimesOut atomic.Bool
	var e *executor.Executor
	h.prepare = func(ex *executor.Executor) {
		e = ex
		executor.SetMetadataHook(ex, func() error {
			if metadataTimesOut.Load() {
				return errors.New("injected: timed out")
			}
			return nil
		})
	}
	s := h.start()
	ready := "http://" + s.health + "/ready"
	waitFor(t, "ready", 60*time.Second, func() bool { return getStatus(t, ready) == http.StatusOK })

	metadataTimesOut.Store(true)
	executor.InjectKafkaError(e, "producer", ckafka.ErrAllBrokersDown)
	if code := getStatus(t, ready); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready = %d right after all brokers down; want 503", code)
	}
	// Nothing proves the broker back: the watch's requests time out and nothing is sent.
	time.Sleep(3 * time.Second)
	if code := getStatus(t, ready); code != http.StatusServiceUnavailable {
		t.Fatalf("/ready = %d with every metadata request timing out and nothing sent; want 503", code)
	}

	const n = 200
	testkit.Produce(t, h.bootstrap, h.in, records("seldon", n))
	h.waitAllCommitted(60 * time.Second)
	waitFor(t, "/ready once answers are delivered", 30*time.Second, func() bool {
		return getStatus(t, ready) == http.StatusOK
	})
	if got := len(testkit.ConsumeAll(t, h.bootstrap, h.out, time.Second)); got < n {
		t.Fatalf("%d answers for %d records", got, n)
	}
}
