package faults

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

var (
	batteryFlag  = flag.String("faults", "", "run the fault battery: short (the test command's, a few minutes) or long (the README's figures)")
	soakFlag     = flag.Duration("soak", 0, "run the soak for this long (make soak: 30m)")
	soakRateFlag = flag.Int("soak.rate", 0, "requests per second in the soak (default: half the maximum, measured first)")
	stallFlag    = flag.Duration("stall", 5*time.Second, "longest the group may go without a commit while a partition has lag and nothing is wrong")
	starveFlag   = flag.Duration("starve", 60*time.Second, "longest an assigned partition with lag may go without a commit while nothing is wrong")
	seedFlag     = flag.Uint64("seed", 0, "seed of the random fault points (default: the clock; printed, to repeat a run)")
	executorFlag = flag.String("executor", "", "the executor binary (default: go build ./cmd/executor)")
	debugFlag    = flag.String("kafka-debug", "", "librdkafka debug contexts for the sidecars' clients (consumer,fetch,cgrp,metadata,broker,…), logged at DEBUG")
)

var (
	executorBinary string
	logDir         string // the sidecars' logs
	seed           uint64
	stallBound     time.Duration
	starveBound    time.Duration
)

func TestMain(m *testing.M) {
	flag.Parse()
	if *batteryFlag == "" && *soakFlag == 0 {
		os.Exit(m.Run()) // the tests skip, saying how to run them
	}
	os.Exit(setUp(m))
}

// setUp builds the executor (unless given one), makes the log directory, and runs the tests. The logs are
// kept when a test fails.
func setUp(m *testing.M) int {
	stallBound, starveBound = *stallFlag, *starveFlag
	seed = *seedFlag
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	var err error
	if logDir, err = os.MkdirTemp("", "faults-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	executorBinary = *executorFlag
	if executorBinary == "" {
		root, err := testkit.RepoRoot()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		executorBinary = filepath.Join(logDir, "executor")
		build := exec.Command("go", "build", "-o", executorBinary, "./cmd/executor")
		build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "go build ./cmd/executor:", err)
			return 1
		}
	}
	code := m.Run()
	if code == 0 {
		os.RemoveAll(logDir)
	} else {
		fmt.Fprintln(os.Stderr, "sidecar logs kept in", logDir)
	}
	return code
}

// scale sizes the battery's scenarios.
type scale struct {
	killRecords, kills, killRate int
	rate                         int           // requests per second of the time-bound scenarios
	brokerDown                   time.Duration // between the broker's stop and its start
	modelDown, hang              time.Duration
	backlog                      int // of the SIGTERM scenario
	refusal                      time.Duration
}

var scales = map[string]scale{
	"short": {killRecords: 3000, kills: 3, killRate: 300, rate: 100, brokerDown: 5 * time.Second,
		modelDown: 10 * time.Second, hang: 10 * time.Second, backlog: 3000, refusal: 5 * time.Second},
	"long": {killRecords: 50000, kills: 20, killRate: 500, rate: 300, brokerDown: 15 * time.Second,
		modelDown: 30 * time.Second, hang: 30 * time.Second, backlog: 20000, refusal: 20 * time.Second},
}

// TestFaults is the fault battery: one subtest, and one printed line, per scenario.
func TestFaults(t *testing.T) {
	if *batteryFlag == "" {
		t.Skip("the fault battery runs with -faults=short or -faults=long (make faults; the test command runs the short one)")
	}
	sc, ok := scales[*batteryFlag]
	if !ok {
		t.Fatalf("-faults=%q: want short or long", *batteryFlag)
	}
	fmt.Printf("fault battery (%s), seed %d, stall bounds %v (group) and %v (partition), executor %s\n",
		*batteryFlag, seed, stallBound, starveBound, executorBinary)
	t.Run("sigkill", func(t *testing.T) { sigkills(t, "sigkill", sc, nil) })
	t.Run("sigkill-eos", func(t *testing.T) { sigkillsExactlyOnce(t, sc) })
	t.Run("broker-restart", func(t *testing.T) { brokerRestarts(t, sc) })
	t.Run("model-stopped", func(t *testing.T) { modelStopped(t, sc) })
	t.Run("model-hangs", func(t *testing.T) { modelHangs(t, sc) })
	t.Run("rebalance", func(t *testing.T) { rebalances(t, sc) })
	t.Run("sigterm-twice", func(t *testing.T) { sigtermTwice(t, sc) })
	t.Run("produce-refused", func(t *testing.T) { produceRefused(t, sc) })
	results.Lock()
	defer results.Unlock()
	fmt.Printf("\n%s", table(results.list))
}

// sigkills kills the one sidecar with SIGKILL at random points of a stream and starts another each time,
// as Kubernetes restarts a container: at least once, nothing is lost; records answered but not committed
// at a kill are answered again (duplicates, counted).
func sigkills(t *testing.T, name string, sc scale, env map[string]string) result {
	r := newRun(t, name, spec{records: sc.killRecords, rate: sc.killRate, partitions: 4, modelDelay: 2 * time.Millisecond, env: env})
	side := r.startSidecar()
	r.feed.start()
	for _, at := range r.points(sc.kills, 0.05, 0.95) {
		r.waitAnswered(at, 3*time.Minute)
		r.pause(0, 300*time.Millisecond)
		r.fault()
		side.kill()
		side = r.startSidecar()
		r.faultOver("a SIGKILL", commits)
		r.waitRecovered(3 * time.Minute)
	}
	return r.finish(expect{noDuplicates: env["KAFKA_EXACTLY_ONCE"] == "true"}, fmt.Sprintf("%d SIGKILLs", sc.kills))
}

// sigkillsExactlyOnce is the kill scenario with KAFKA_EXACTLY_ONCE=true: read_committed, every request
// has exactly one record out. It is skipped while the executor does not know the variable.
func sigkillsExactlyOnce(t *testing.T, sc scale) {
	if !knowsVariable(t, "KAFKA_EXACTLY_ONCE") {
		t.Skip("the executor does not check KAFKA_EXACTLY_ONCE (a bad value is not refused): exactly-once is not built in; skipped")
	}
	sigkills(t, "sigkill-eos", sc, map[string]string{"KAFKA_EXACTLY_ONCE": "true"})
}

// knowsVariable says whether the executor refuses a bad value of the variable at start (exit 2 naming
// it), which is how a setting it reads behaves; one it does not read is ignored.
func knowsVariable(t *testing.T, name string) bool {
	t.Helper()
	cmd := exec.Command(executorBinary, "--http_port=0", "--grpc_port=0")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KAFKA_BROKER=127.0.0.1:1", "KAFKA_INPUT_TOPIC=in",
		"KAFKA_OUTPUT_TOPIC=out", "ENGINE_PREDICTOR=" + predictor(1), name + "=not-a-value"}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode() == 2 && strings.Contains(stderr.String(), name)
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return false
	}
}

// brokerRestarts stops the broker process (SIGTERM: a controlled shutdown) and starts it again on the
// same data, twice, while requests stream in: answers wait in the producer, nothing is committed past
// them, and the sidecar carries on when the broker is back.
func brokerRestarts(t *testing.T, sc scale) {
	if !ourBroker(t) {
		t.Skip("the broker is not the one test/kafka/broker.sh runs here ($KAFKA_TEST_BOOTSTRAP): it cannot be restarted; skipped")
	}
	r := newRun(t, "broker-restart", spec{records: 1 << 30, rate: sc.rate, partitions: 4, modelDelay: 2 * time.Millisecond})
	r.startSidecar()
	r.feed.start()
	for range 2 {
		r.pause(3*time.Second, 8*time.Second)
		restartBroker(r, sc.brokerDown)
		r.waitRecovered(3 * time.Minute)
	}
	r.pause(2*time.Second, 4*time.Second)
	r.feed.stop()
	r.finish(expect{}, fmt.Sprintf("2 restarts, down %v + start", sc.brokerDown))
}

// ourBroker says whether the tests use the broker test/kafka/broker.sh runs for this checkout.
func ourBroker(t *testing.T) bool {
	t.Helper()
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	stateDir := os.Getenv(testkit.StateDirEnv)
	if stateDir == "" {
		stateDir = filepath.Join(root, ".kafka")
	}
	b, err := os.ReadFile(filepath.Join(stateDir, "bootstrap"))
	return err == nil && strings.TrimSpace(string(b)) == testkit.Bootstrap(t)
}

// broker runs test/kafka/broker.sh stop or start with KAFKA_KEEP_DATA=1: the same data, the same address.
func broker(t *testing.T, verb string) {
	t.Helper()
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bash", filepath.Join(root, "test/kafka/broker.sh"), verb)
	// This machine's broker can take a minute to start when the cores are busy.
	cmd.Env = append(os.Environ(), "KAFKA_KEEP_DATA=1", "KAFKA_START_TIMEOUT=300")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("broker.sh %s: %v\n%s", verb, err, out)
	}
}

// modelStopped kills the model process, and starts it again on the same port after a while: the
// partitions are paused while it is not ready, and no request becomes an error record.
func modelStopped(t *testing.T, sc scale) {
	r := newRun(t, "model-stopped", spec{records: 1 << 30, rate: sc.rate, partitions: 4, modelDelay: 2 * time.Millisecond})
	r.startSidecar()
	r.feed.start()
	r.pause(3*time.Second, 6*time.Second)
	r.fault()
	r.model.Kill()
	time.Sleep(sc.modelDown)
	r.startModel()
	r.faultOver("the model back", commits)
	r.waitRecovered(3 * time.Minute)
	r.pause(2*time.Second, 4*time.Second)
	r.feed.stop()
	r.finish(expect{}, fmt.Sprintf("model killed, back after %v", sc.modelDown))
}

// modelHangs makes the model hang — it takes requests and never answers, its readiness still good — for
// a while. Each call ends at MODEL_TIMEOUT and is retried, and a request out of retries becomes a
// retries_exhausted error record (README, "The data path"): here MODEL_TIMEOUT=1s, MODEL_MAX_ATTEMPTS=3.
func modelHangs(t *testing.T, sc scale) {
	r := newRun(t, "model-hangs", spec{records: 1 << 30, rate: sc.rate, partitions: 4, modelDelay: 2 * time.Millisecond,
		env: map[string]string{"MODEL_TIMEOUT": "1s", "MODEL_MAX_ATTEMPTS": "3"}})
	r.startSidecar()
	r.feed.start()
	r.pause(3*time.Second, 6*time.Second)
	r.fault()
	if err := r.model.Hang(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(sc.hang)
	if err := r.model.Release(); err != nil {
		t.Fatal(err)
	}
	r.faultOver("the model answering again", commits)
	r.waitRecovered(3 * time.Minute)
	r.pause(2*time.Second, 4*time.Second)
	r.feed.stop()
	r.finish(expect{reasons: []string{"retries_exhausted"}, minErrors: 1}, fmt.Sprintf("model hung for %v", sc.hang))
}

// rebalances runs three replicas in one group, adds a fourth and removes two (SIGTERM, as a scale-down
// does) while requests stream in: cooperative rebalances move only the partitions that change owner.
func rebalances(t *testing.T, sc scale) {
	r := newRun(t, "rebalance", spec{records: 1 << 30, rate: sc.rate, partitions: 6, modelDelay: 2 * time.Millisecond})
	replicas := []*sidecar{r.startSidecar(), r.startSidecar(), r.startSidecar()}
	r.feed.start()
	r.pause(4*time.Second, 8*time.Second)
	r.startSidecar()
	r.mon.recovering("a replica added", commits)
	r.waitRecovered(3 * time.Minute)
	for _, gone := range replicas[:2] {
		r.pause(2*time.Second, 5*time.Second)
		gone.terminate()
		r.mon.recovering("a replica removed", commits)
		r.waitRecovered(3 * time.Minute)
	}
	r.pause(2*time.Second, 4*time.Second)
	r.feed.stop()
	r.finish(expect{}, "3 replicas, +1, -2")
}

// sigtermTwice stops a sidecar with SIGTERM during a backlog — a clean shutdown: exit 0, and exactly what
// was answered is committed, so nothing is answered twice — then another with two SIGTERMs, the second
// while it waits for requests stuck at a hung model: it must exit promptly, and lose nothing. Requests
// answered behind a stuck one on its partition cannot be committed, and are answered again (duplicates).
func sigtermTwice(t *testing.T, sc scale) {
	const prompt = 5 * time.Second
	r := newRun(t, "sigterm-twice", spec{records: sc.backlog, partitions: 4, modelDelay: 2 * time.Millisecond})
	first := r.startSidecar()
	r.waitAnswered(int64(sc.backlog/5), 3*time.Minute)
	first.terminate()
	if committed, out := r.mon.committedAndOut(time.Now()); committed != out {
		r.problem("after a clean shutdown %d requests are committed and %d records out: a restart answers %d again",
			committed, out, out-committed)
	}

	second := r.startSidecar()
	r.waitAnswered(int64(sc.backlog/2), 3*time.Minute)
	if err := r.model.Hang(); err != nil {
		t.Fatal(err)
	}
	r.fault()
	time.Sleep(time.Second) // requests reach the model, and stay there
	second.signal(syscall.SIGTERM)
	r.waitFor("the shutdown to start", time.Minute, func() bool { return second.logged(`"msg":"shutting down"`) })
	time.Sleep(time.Second) // the drain waits for them: up to the grace period, 20 s
	second.signal(syscall.SIGTERM)
	sent := time.Now()
	second.waitExit(0, graceful+15*time.Second)
	exitIn := second.exited.Sub(sent)
	if exitIn > prompt {
		r.problem("sidecar %s exited %v after the second SIGTERM, want within %v", second.id, exitIn.Round(100*time.Millisecond), prompt)
	}
	if err := r.model.Release(); err != nil {
		t.Fatal(err)
	}
	r.startSidecar()
	r.faultOver("a sidecar restarted after two SIGTERMs", commits)
	r.finish(expect{}, fmt.Sprintf("backlog %d; exit %.1fs after the 2nd SIGTERM", sc.backlog, exitIn.Seconds()))
}

// produceRefused makes the output topic refuse every answer for a while — its max.message.bytes lowered
// under any record through the admin API, then restored — as a full disk or a quota would. README
// ("Error records"): an answer the broker refuses becomes a produce_failed error record, on the error
// topic; the answers come back once the topic takes them.
func produceRefused(t *testing.T, sc scale) {
	r := newRun(t, "produce-refused", spec{records: 1 << 30, rate: sc.rate, partitions: 4, modelDelay: 2 * time.Millisecond})
	r.startSidecar()
	r.feed.start()
	r.pause(3*time.Second, 6*time.Second)
	r.fault()
	topicConfig(t, r.bootstrap, r.out, "max.message.bytes", "64")
	time.Sleep(sc.refusal)
	topicConfig(t, r.bootstrap, r.out, "max.message.bytes", "")
	r.faultOver("the output topic taking answers again", answers)
	r.waitRecovered(3 * time.Minute)
	r.pause(2*time.Second, 4*time.Second)
	r.feed.stop()
	r.finish(expect{reasons: []string{"produce_failed"}, minErrors: 1}, fmt.Sprintf("output refused for %v", sc.refusal))
}

// topicConfig sets a topic's configuration entry, or with value "" deletes it (back to the default).
func topicConfig(t *testing.T, bootstrap, topic, name, value string) {
	t.Helper()
	a, err := newAdmin(bootstrap)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	op := kafka.AlterConfigOpTypeSet
	if value == "" {
		op = kafka.AlterConfigOpTypeDelete
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := a.IncrementalAlterConfigs(ctx, []kafka.ConfigResource{{Type: kafka.ResourceTopic, Name: topic,
		Config: []kafka.ConfigEntry{{Name: name, Value: value, IncrementalOperation: op}}}})
	if err == nil && len(res) == 1 && res[0].Error.Code() != kafka.ErrNoError {
		err = res[0].Error
	}
	if err != nil {
		t.Fatalf("set %s=%q on %s: %v", name, value, topic, err)
	}
}
