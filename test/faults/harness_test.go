package faults

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// spec is what a scenario runs on.
type spec struct {
	records    int           // requests written to the input topic
	rate       int           // requests per second; 0 writes them all before anything else starts (a backlog)
	partitions int           // of the input, output and error topics
	modelDelay time.Duration // the model's time per call
	env        map[string]string
}

// run is one scenario: its topics, model process, sidecar processes, request feed and monitor.
type run struct {
	t         *testing.T
	name      string
	spec      spec
	bootstrap string
	in, out   string
	errs      string
	group     string
	env       map[string]string // every sidecar's environment; a scenario may add to it before starting one
	model     *testkit.ModelProcess
	modelPort int
	feed      *feed
	mon       *monitor
	rng       *rand.Rand
	started   time.Time

	mu       sync.Mutex
	sidecars []*sidecar
	problems []string // crashes, bad exit codes, harness failures: each fails the scenario
	next     int      // number of the next sidecar
}

// newRun makes the topics, starts the model and the monitor, and writes the backlog when the spec has no
// rate; sidecars and the feed are the scenario's to start.
func newRun(t *testing.T, name string, s spec) *run {
	t.Helper()
	bs := testkit.Bootstrap(t)
	r := &run{t: t, name: name, spec: s, bootstrap: bs, started: time.Now(),
		rng: rand.New(rand.NewPCG(seed, uint64(len(name))))}
	r.in = testkit.Topic(t, bs, s.partitions)
	r.out = testkit.Topic(t, bs, s.partitions)
	r.errs = testkit.Topic(t, bs, s.partitions)
	r.group = "faults-" + r.in
	r.startModel()
	r.env = map[string]string{
		"KAFKA_BROKER": bs, "KAFKA_INPUT_TOPIC": r.in, "KAFKA_OUTPUT_TOPIC": r.out, "KAFKA_ERROR_TOPIC": r.errs,
		"KAFKA_GROUP_ID": r.group, "KAFKA_WORKERS": "8", "ENGINE_PREDICTOR": predictor(r.modelPort),
	}
	for k, v := range s.env {
		r.env[k] = v
	}
	r.feed = newFeed(t, bs, r.in, s.records, s.rate)
	r.mon = newMonitor(r)
	t.Cleanup(func() {
		r.mon.stop()
		r.feed.close()
		for _, sc := range r.all() {
			sc.kill()
		}
	})
	if s.rate == 0 {
		r.feed.start()
		r.feed.wait(t, 5*time.Minute)
	}
	return r
}

// startModel starts the test model, on the port it had before when it is started again.
func (r *run) startModel() {
	r.t.Helper()
	args := []string{"--host=127.0.0.1", "--grpc_port=-1", "--model_name=classifier", "--delay=" + r.spec.modelDelay.String()}
	if r.modelPort != 0 {
		args = append(args, "--http_port="+strconv.Itoa(r.modelPort))
	}
	r.model = testkit.StartModelProcess(r.t, args...)
	r.modelPort = r.model.HTTPPort
}

// predictor is an ENGINE_PREDICTOR value for a one-model graph at 127.0.0.1:port.
func predictor(port int) string {
	b, _ := json.Marshal(map[string]any{"name": "default", "graph": map[string]any{"name": "classifier", "type": "MODEL",
		"endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": port}}})
	return base64.StdEncoding.EncodeToString(b)
}

// problem records what fails the scenario without stopping it: the scenario goes on, so that the line
// and the accounting still show what happened.
func (r *run) problem(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	r.mu.Lock()
	r.problems = append(r.problems, msg)
	r.mu.Unlock()
	r.t.Log("PROBLEM: " + msg)
}

func (r *run) all() []*sidecar {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sidecars)
}

// ---- sidecars ----

// graceful is the sidecars' --graceful_timeout.
const graceful = 20 * time.Second

// sidecar is one executor process.
type sidecar struct {
	r       *run
	id      string // its consumer's client.id, which names it among the group's members
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	// signalled is set before the battery signals the process: its exit is then expected.
	signalled atomic.Bool
	exited    time.Time
}

// startSidecar starts one more executor in the scenario's group.
func (r *run) startSidecar() *sidecar {
	r.t.Helper()
	r.mu.Lock()
	r.next++
	id := fmt.Sprintf("%s-%d", r.name, r.next)
	r.mu.Unlock()
	sc := &sidecar{r: r, id: id, logPath: filepath.Join(logDir, r.in+"-"+strconv.Itoa(r.next)+".log"), done: make(chan struct{})}
	logFile, err := os.Create(sc.logPath)
	if err != nil {
		r.t.Fatalf("sidecar log: %v", err)
	}
	args := []string{"--server_type=kafka", "--sdep=faults", "--namespace=faults", "--predictor=default",
		"--protocol=seldon", "--transport=rest", "--http_port=0", "--grpc_port=0", "--graceful_timeout=" + graceful.String()}
	sc.cmd = exec.Command(executorBinary, args...)
	sc.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "KAFKA_CONSUMER_CLIENT_ID=" + id}
	if *debugFlag != "" {
		sc.cmd.Args = append(sc.cmd.Args, "--log_level=DEBUG")
		sc.cmd.Env = append(sc.cmd.Env, "KAFKA_CONSUMER_DEBUG="+*debugFlag, "KAFKA_PRODUCER_DEBUG="+*debugFlag)
	}
	for k, v := range r.env {
		sc.cmd.Env = append(sc.cmd.Env, k+"="+v)
	}
	sc.cmd.Stdout, sc.cmd.Stderr = logFile, logFile
	// A battery that dies (a failed assertion in librdkafka, a timeout) takes its sidecars with it.
	sc.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := sc.cmd.Start(); err != nil {
		logFile.Close()
		r.t.Fatalf("start the executor: %v", err)
	}
	r.mon.setAlive(id, true)
	go func() {
		err := sc.cmd.Wait()
		logFile.Close()
		sc.exited = time.Now()
		r.mon.setAlive(id, false)
		if !sc.signalled.Load() {
			r.problem("sidecar %s exited by itself (%v); log %s:\n%s", id, err, sc.logPath, tail(sc.logPath, 30))
		}
		close(sc.done)
	}()
	r.mu.Lock()
	r.sidecars = append(r.sidecars, sc)
	r.mu.Unlock()
	return sc
}

// kill sends SIGKILL and waits for the process to end.
func (sc *sidecar) kill() {
	sc.signal(syscall.SIGKILL)
	<-sc.done
}

// signal sends sig, which the battery means: the process may exit.
func (sc *sidecar) signal(sig syscall.Signal) {
	sc.signalled.Store(true)
	sc.r.mon.setAlive(sc.id, false) // from now on its partitions are not expected to move
	select {
	case <-sc.done:
	default:
		_ = sc.cmd.Process.Signal(sig)
	}
}

// terminate sends SIGTERM and waits, up to the grace period and a margin, for a clean exit (code 0).
func (sc *sidecar) terminate() {
	sc.signal(syscall.SIGTERM)
	sc.waitExit(0, graceful+15*time.Second)
}

// waitExit waits for the process to exit with code want; otherwise (or after timeout, when it is killed)
// it records a problem.
func (sc *sidecar) waitExit(want int, timeout time.Duration) {
	select {
	case <-sc.done:
	case <-time.After(timeout):
		sc.r.problem("sidecar %s still running %v after SIGTERM; log %s", sc.id, timeout, sc.logPath)
		sc.kill()
		return
	}
	if code := sc.cmd.ProcessState.ExitCode(); code != want {
		sc.r.problem("sidecar %s exited with %v after SIGTERM, want code %d; log %s:\n%s",
			sc.id, sc.cmd.ProcessState, want, sc.logPath, tail(sc.logPath, 30))
	}
}

// lines calls each with every line of the sidecar's log, until it returns false.
func (sc *sidecar) lines(each func(line []byte) bool) {
	f, err := os.Open(sc.logPath)
	if err != nil {
		return
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() && each(s.Bytes()) {
	}
}

// logged says whether the sidecar's log has a line holding text.
func (sc *sidecar) logged(text string) bool {
	found := false
	sc.lines(func(line []byte) bool {
		found = strings.Contains(string(line), text)
		return !found
	})
	return found
}

// metricsAddr is the address of the sidecar's /metrics, from its start-up log line ("" until logged).
func (sc *sidecar) metricsAddr() string {
	addr := ""
	sc.lines(func(b []byte) bool {
		var line struct {
			Msg    string `json:"msg"`
			Health string `json:"health"`
		}
		if json.Unmarshal(b, &line) != nil || line.Msg != "starting" || line.Health == "" {
			return true
		}
		if _, port, err := net.SplitHostPort(line.Health); err == nil {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return false
	})
	return addr
}

// stallReport is what the sidecar logs when it finds a partition assigned, with records waiting, that is
// not read (executor/stall.go): it restarts the partition's fetch, but the partition has stalled.
const stallReport = "partition assigned with records waiting but not read; restarting its fetch"

// reportedStalls are the stalls the sidecar found itself, from its log.
func (sc *sidecar) reportedStalls() []string {
	var out []string
	sc.lines(func(b []byte) bool {
		var line struct {
			Time      time.Time `json:"time"`
			Msg       string    `json:"msg"`
			Partition int32     `json:"partition"`
			Lag       int64     `json:"lag"`
		}
		if json.Unmarshal(b, &line) == nil && line.Msg == stallReport {
			out = append(out, fmt.Sprintf("at %s, partition %d (owner %s): the sidecar found it not read with %d records waiting",
				line.Time.Format("15:04:05.0"), line.Partition, sc.id, line.Lag))
		}
		return true
	})
	return out
}

// tail is the last n lines of a file, for a problem's report.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// ---- faults and waits ----

// fault marks the start of a fault: until its end the monitor expects no progress.
func (r *run) fault() { r.mon.faults.Add(1) }

// faultOver marks the end of a fault (the part that failed is back): recovery is timed from here, by
// waitRecovered, until what kind says shows it.
func (r *run) faultOver(what string, kind recoveryKind) {
	r.mon.faults.Add(-1)
	r.mon.recovering(what, kind)
}

// waitRecovered waits until every fault is recovered from.
func (r *run) waitRecovered(timeout time.Duration) {
	r.t.Helper()
	r.waitFor("recovery", timeout, r.mon.recovered)
}

// waitAnswered waits until at least n records are on the output and error topics.
func (r *run) waitAnswered(n int64, timeout time.Duration) {
	r.t.Helper()
	r.waitFor(fmt.Sprintf("%d records answered", n), timeout, func() bool { return r.mon.answered() >= n })
}

// waitFor polls cond; on timeout it fails the scenario with what the monitor saw last.
func (r *run) waitFor(what string, timeout time.Duration, cond func() bool) {
	r.t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			state := r.mon.state()
			r.dumpStacks()
			r.t.Fatalf("%s: waited %v for %s; problems %q; monitor: %s; sidecar logs (with their goroutines) in %s",
				r.name, timeout, what, r.problems, state, logDir)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// dumpStacks makes every running sidecar write its goroutines' stacks to its log and exit (SIGQUIT), to
// show where one that does not progress waits.
func (r *run) dumpStacks() {
	for _, sc := range r.all() {
		select {
		case <-sc.done:
			continue
		default:
		}
		sc.signal(syscall.SIGQUIT)
		select {
		case <-sc.done:
		case <-time.After(10 * time.Second):
		}
	}
}

// pause sleeps a random time in [lo, hi): faults land at random points.
func (r *run) pause(lo, hi time.Duration) {
	time.Sleep(lo + time.Duration(r.rng.Int64N(int64(hi-lo))))
}

// points are n thresholds of answered records, sorted, spread at random over [lo, hi) of the records.
func (r *run) points(n int, lo, hi float64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = int64((lo + (hi-lo)*r.rng.Float64()) * float64(r.spec.records))
	}
	slices.Sort(out)
	return out
}

// ---- the feed of requests ----

// feed writes the requests — key and Seldon-Puid "r<number>", a seldon body — at a steady rate or at once,
// until it has written its number or is told to stop.
type feed struct {
	t     *testing.T
	p     *kafka.Producer
	topic string
	n     int
	rate  int

	halt      chan struct{} // closed by stop
	haltOnce  sync.Once
	stopped   chan struct{} // closed when write returns
	written   atomic.Int64
	delivered atomic.Int64
	mu        sync.Mutex
	failure   error
}

func newFeed(t *testing.T, bootstrap, topic string, n, rate int) *feed {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "broker.address.family": "v4", "client.id": "faults-feed",
		"enable.idempotence": true, "acks": "all", "linger.ms": 5,
		// The feed outlives broker restarts: a request is retried until the broker takes it.
		"message.timeout.ms":        0,
		"go.delivery.report.fields": "key",
		// Connection errors while the broker is away are expected; the battery reports what matters.
		"log_level": 0,
	})
	if err != nil {
		t.Fatalf("feed producer: %v", err)
	}
	f := &feed{t: t, p: p, topic: topic, n: n, rate: rate, halt: make(chan struct{}), stopped: make(chan struct{})}
	go f.reports()
	return f
}

func requestKey(i int) string { return fmt.Sprintf("r%07d", i) }

func (f *feed) start() { go f.write() }

// stop ends the writing; what is written is still delivered.
func (f *feed) stop() { f.haltOnce.Do(func() { close(f.halt) }) }

func (f *feed) write() {
	defer close(f.stopped)
	begin := time.Now()
	for i := range f.n {
		if f.rate > 0 {
			if d := time.Until(begin.Add(time.Duration(i) * time.Second / time.Duration(f.rate))); d > 0 {
				select {
				case <-time.After(d):
				case <-f.halt:
					return
				}
			}
		}
		select {
		case <-f.halt:
			return
		default:
		}
		key := requestKey(i)
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &f.topic, Partition: kafka.PartitionAny},
			Key:            []byte(key),
			Value:          fmt.Appendf(nil, `{"data":{"ndarray":[[%d]]}}`, i),
			Headers:        []kafka.Header{{Key: "Seldon-Puid", Value: []byte(key)}},
		}
		for {
			err := f.p.Produce(msg, nil)
			if err == nil {
				break
			}
			if ke, ok := err.(kafka.Error); ok && ke.Code() == kafka.ErrQueueFull {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			f.fail(fmt.Errorf("producing %s: %w", key, err))
			return
		}
		f.written.Add(1)
	}
}

func (f *feed) reports() {
	for ev := range f.p.Events() {
		switch e := ev.(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				f.fail(fmt.Errorf("delivering %s: %w", e.Key, e.TopicPartition.Error))
				continue
			}
			f.delivered.Add(1)
		case kafka.Error:
			if e.IsFatal() {
				f.fail(fmt.Errorf("feed producer: %w", e))
			}
		}
	}
}

func (f *feed) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failure == nil {
		f.failure = err
	}
}

// wait waits until the writing has ended and every request written is delivered to the input topic, and
// returns how many were.
func (f *feed) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	deadline := time.After(timeout)
	select {
	case <-f.stopped:
	case <-deadline:
		t.Fatalf("feed: %d of %d requests written in %v", f.written.Load(), f.n, timeout)
	}
	for f.delivered.Load() < f.written.Load() {
		f.mu.Lock()
		failure := f.failure
		f.mu.Unlock()
		if failure != nil {
			t.Fatalf("feed: %v", failure)
		}
		select {
		case <-deadline:
			t.Fatalf("feed: %d of %d requests delivered in %v", f.delivered.Load(), f.written.Load(), timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failure != nil {
		t.Fatalf("feed: %v", f.failure)
	}
	return int(f.written.Load())
}

func (f *feed) close() {
	f.stop()
	<-f.stopped
	f.p.Close()
}
