package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/internal/testmodel"
)

// binary is the executor built once for the tests that run it as a process.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "executor-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "executor")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the executor:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// predictor is an ENGINE_PREDICTOR value for a one-node graph at 127.0.0.1:port.
func predictor(port int) string {
	b, _ := json.Marshal(map[string]any{
		"name": "default",
		"graph": map[string]any{"name": "classifier", "type": "MODEL",
			"endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": port}},
	})
	return base64.StdEncoding.EncodeToString(b)
}

var operatorArgs = []string{"--server_type=kafka", "--sdep=iris", "--namespace=test", "--predictor=default",
	"--protocol=seldon", "--transport=rest", "--http_port=0", "--grpc_port=0", "--log_level=INFO", "--full_health_checks=false"}

// proc is the executor running as a child process, its log captured.
type proc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	logs bytes.Buffer
	done chan struct{}
}

func startProc(t *testing.T, env map[string]string, args ...string) *proc {
	t.Helper()
	// SIDECAR_TEST_KAFKA_DEBUG=consumer,fetch,… turns on librdkafka's debug contexts in the executor's
	// consumer, and its debug log, for chasing a rare failure; the log is shown when a test fails.
	if dbg := os.Getenv("SIDECAR_TEST_KAFKA_DEBUG"); dbg != "" {
		env = maps.Clone(env)
		env["KAFKA_CONSUMER_DEBUG"] = dbg
		args = append(slices.Clone(args), "--log_level=DEBUG")
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.logs.Write(sc.Bytes())
			p.logs.WriteByte('\n')
			p.mu.Unlock()
		}
		_ = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
		if t.Failed() {
			t.Logf("executor log:\n%s", p.log())
		}
	})
	return p
}

func (p *proc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.logs.String()
}

// wait returns the exit code, failing the test if the process does not end in time.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("executor still running after %v", timeout)
		return -1
	}
}

func TestBadConfigurationExitsWith2AndNamesTheVariable(t *testing.T) {
	good := map[string]string{
		"KAFKA_BROKER": "127.0.0.1:1", "KAFKA_INPUT_TOPIC": "in", "KAFKA_OUTPUT_TOPIC": "out",
		"ENGINE_PREDICTOR": predictor(9000),
	}
	cases := []struct {
		name  string
		unset string
		set   map[string]string
		args  []string
		want  string
	}{
		{name: "no broker", unset: "KAFKA_BROKER", want: "KAFKA_BROKER"},
		{name: "no input topic", unset: "KAFKA_INPUT_TOPIC", want: "KAFKA_INPUT_TOPIC"},
		{name: "no output topic", unset: "KAFKA_OUTPUT_TOPIC", want: "KAFKA_OUTPUT_TOPIC"},
		{name: "empty broker", set: map[string]string{"KAFKA_BROKER": " "}, want: "KAFKA_BROKER"},
		{name: "no workers", set: map[string]string{"KAFKA_WORKERS": "0"}, want: "KAFKA_WORKERS"},
		{name: "workers not a number", set: map[string]string{"KAFKA_WORKERS": "many"}, want: "KAFKA_WORKERS"},
		{name: "bad timeout", set: map[string]string{"MODEL_TIMEOUT": "soon"}, want: "MODEL_TIMEOUT"},
		{name: "unknown protocol", args: []string{"--protocol=graphql"}, want: "--protocol"},
		{name: "unknown transport", args: []string{"--transport=carrier-pigeon"}, want: "--transport"},
		{name: "not a kafka server", args: []string{"--server_type=rpc"}, want: "--server_type"},
		{name: "no predictor", unset: "ENGINE_PREDICTOR", want: "ENGINE_PREDICTOR"},
		{name: "predictor not base64", set: map[string]string{"ENGINE_PREDICTOR": "{not base64"}, want: "ENGINE_PREDICTOR"},
		{name: "same input and output", set: map[string]string{"KAFKA_OUTPUT_TOPIC": "in"}, want: "KAFKA_OUTPUT_TOPIC"},
		// A typo in a flag is not a legacy flag to ignore: the executor would run with the default.
		{name: "typo in a flag", args: []string{"--protcol=v2"},
			want: "executor: configuration: arguments: unknown flag --protcol (did you mean --protocol?)"},
		{name: "typo in a flag, separate value", args: []string{"--grpc_prot", "5001"}, want: "unknown flag --grpc_prot"},
		{name: "flag of no executor", args: []string{"--enable_tracing"}, want: "unknown flag --enable_tracing"},
		{name: "legacy topic flag", args: []string{"--kafka_input_topic=other"}, want: "--kafka_input_topic: this executor reads KAFKA_INPUT_TOPIC from the environment"},
		{name: "graceful_timeout not a duration", args: []string{"--graceful_timeout=soon"}, want: "graceful_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range good {
				if k != tc.unset {
					env[k] = v
				}
			}
			for k, v := range tc.set {
				env[k] = v
			}
			args := append(append([]string(nil), operatorArgs...), tc.args...)
			p := startProc(t, env, args...)
			if code := p.wait(t, 20*time.Second); code != 2 {
				t.Fatalf("exit code %d, want 2; log:\n%s", code, p.log())
			}
			lines := strings.Split(strings.TrimSpace(p.log()), "\n")
			if len(lines) != 1 {
				t.Fatalf("want one line on stderr, got %d:\n%s", len(lines), p.log())
			}
			if !strings.Contains(lines[0], tc.want) {
				t.Fatalf("the message does not name %s: %s", tc.want, lines[0])
			}
		})
	}
}

// runBinary runs bin with args and env to the end and returns its exit code and output.
func runBinary(t *testing.T, bin string, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var o, e bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = strings.NewReader(""), &o, &e
	cmd.WaitDelay = 5 * time.Second
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("%s %q still running after 60s; stderr:\n%s", filepath.Base(bin), args, e.String())
	}
	return cmd.ProcessState.ExitCode(), o.String(), e.String()
}

func TestHelpPrintsUsageAndExits0(t *testing.T) {
	// No environment at all: help needs none.
	for _, args := range [][]string{{"-h"}, {"-help"}, {"--help"}, {"--sdep=x", "--help"}} {
		code, stdout, stderr := runBinary(t, binary, nil, args...)
		if code != 0 {
			t.Errorf("executor %q: exit %d, want 0; stderr:\n%s", args, code, stderr)
		}
		for _, want := range []string{"usage: executor", "-protocol", "-version", "--full_health_checks"} {
			if !strings.Contains(stdout, want) {
				t.Errorf("executor %q: the usage does not mention %s:\n%s", args, want, stdout)
			}
		}
		if stderr != "" {
			t.Errorf("executor %q wrote to stderr: %s", args, stderr)
		}
	}
}

func TestVersionPrintsTheBuildsVersionAndExits0(t *testing.T) {
	// As go build stamps it (the module's pseudo-version or the VCS revision, or "(devel)" out of a VCS).
	code, stdout, stderr := runBinary(t, binary, nil, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "executor ") || strings.Count(stdout, "\n") != 1 || stderr != "" {
		t.Errorf("executor --version: exit %d, stdout %q, stderr %q; want 0 and one line \"executor <version>\"", code, stdout, stderr)
	}
	// As the image build sets it.
	bin := filepath.Join(t.TempDir(), "executor")
	build := exec.Command("go", "build", "-ldflags=-X main.version=v1.2.3-test", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	code, stdout, _ = runBinary(t, bin, nil, "--version")
	if code != 0 || !strings.HasPrefix(stdout, "executor v1.2.3-test") {
		t.Errorf("executor --version built with -X main.version=v1.2.3-test: exit %d, %q", code, stdout)
	}
}

// TestEveryCommandHasHelpAndRefusesABadFlag runs each command of the project (but cmd/seldon-keda,
// which has tests of its own) with --help and with a flag it does not have.
func TestEveryCommandHasHelpAndRefusesABadFlag(t *testing.T) {
	for _, c := range []struct {
		pkg, name   string
		helpOnError bool // the usage goes to stderr: stdout carries only testmodel's listening line
	}{
		{"../protofile", "protofile", false},
		{"../seldon-kafka", "seldon-kafka", false},
		{"../sidecar-bench", "sidecar-bench", false},
		{"../testmodel", "testmodel", true},
		{"../../examples/kafkaclient", "kafkaclient", false},
		{"../../examples/demo/iris", "iris", true},
		{"../../examples/cifar10", "cifar10", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			bin := filepath.Join(t.TempDir(), c.name)
			if out, err := exec.Command("go", "build", "-o", bin, c.pkg).CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", c.pkg, err, out)
			}
			for _, arg := range []string{"-h", "-help", "--help"} {
				code, stdout, stderr := runBinary(t, bin, nil, arg)
				usage := stdout
				if c.helpOnError {
					usage = stderr
				}
				if code != 0 || !strings.Contains(strings.ToLower(usage), "usage: "+c.name) {
					t.Errorf("%s %s: exit %d, stdout %q, stderr %q; want 0 and the usage", c.name, arg, code, stdout, stderr)
				}
			}
			code, stdout, stderr := runBinary(t, bin, nil, "--no_such_flag=1")
			lines := strings.Split(strings.TrimSuffix(stderr, "\n"), "\n")
			if code != 2 || len(lines) != 1 || !strings.Contains(lines[0], "no_such_flag") || stdout != "" {
				t.Errorf("%s --no_such_flag=1: exit %d, stdout %q, stderr %q; want 2 and one line naming the flag", c.name, code, stdout, stderr)
			}
		})
	}
}

// stream is a topic pair with a model and a record set, for the process tests.
type stream struct {
	bootstrap string
	in, out   string
	group     string
	model     *testmodel.Server
	env       map[string]string
	sent      []testkit.Record // with partitions and offsets
}

func newStream(t *testing.T, n int, delay time.Duration) *stream {
	t.Helper()
	model := testmodel.New(testmodel.Options{ModelName: "classifier", Delay: delay})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = model.Serve(ln) }()
	t.Cleanup(func() { _ = model.Close() })
	s := newStreamTo(t, n, predictor(ln.Addr().(*net.TCPAddr).Port))
	s.model = model
	return s
}

// newStreamTo is a stream whose records go to the graph of the ENGINE_PREDICTOR value given.
func newStreamTo(t *testing.T, n int, enginePredictor string) *stream {
	t.Helper()
	bs := testkit.Bootstrap(t)
	s := &stream{bootstrap: bs, in: testkit.Topic(t, bs, 3), out: testkit.Topic(t, bs, 3)}
	s.group = "g-" + s.in
	s.env = map[string]string{
		"KAFKA_BROKER": bs, "KAFKA_INPUT_TOPIC": s.in, "KAFKA_OUTPUT_TOPIC": s.out, "KAFKA_GROUP_ID": s.group,
		"KAFKA_WORKERS": "8", "ENGINE_PREDICTOR": enginePredictor,
	}
	recs := make([]testkit.Record, n)
	for i := range recs {
		recs[i] = testkit.Record{Key: []byte(fmt.Sprintf("key-%05d", i)),
			Value: []byte(fmt.Sprintf(`{"data":{"ndarray":[[%d]]}}`, i))}
	}
	s.sent = testkit.Produce(t, bs, s.in, recs)
	return s
}

func (s *stream) answered(t *testing.T) int64 {
	var n int64
	for _, o := range testkit.EndOffsets(t, s.bootstrap, s.out) {
		n += o
	}
	return n
}

func waitUntil(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSIGKILLMidStreamAndRestartLosesNothing(t *testing.T) {
	const n = 3000
	sigkillLosesNothing(t, newStream(t, n, 10*time.Millisecond), n) // 8 workers: 800 records/s at most, ~4 s of stream
}

func TestSIGKILLMidStreamWithAGraphLosesNothing(t *testing.T) {
	// output transformer → transformer → model, each a test model process of its own.
	const n = 2000
	node := func(name, typ string, children ...any) map[string]any {
		p := testkit.StartModelProcess(t, "--model_name="+name, "--delay=4ms") // 12 ms a record: ~4 s of stream
		return map[string]any{"name": name, "type": typ, "children": children,
			"endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": p.HTTPPort}}
	}
	graph := node("o", "OUTPUT_TRANSFORMER", node("t", "TRANSFORMER", node("m", "MODEL")))
	b, _ := json.Marshal(map[string]any{"name": "default", "graph": graph})
	sigkillLosesNothing(t, newStreamTo(t, n, base64.StdEncoding.EncodeToString(b)), n)
}

func TestSIGKILLMidBatchAndRestartLosesNothing(t *testing.T) {
	const n = 3000
	s := newStream(t, n, 20*time.Millisecond) // slow enough that the kill comes mid-stream: batched, the sidecar drains 3000 in under a second at 2 ms
	s.env["MODEL_BATCH_SIZE"] = "8"
	s.env["MODEL_BATCH_WAIT"] = "20ms"
	sigkillLosesNothing(t, s, n)
	// Batches were in flight at the kill: fewer model calls than records, restart included.
	if calls := s.model.Calls(); calls >= n {
		t.Errorf("%d model calls for %d records: nothing was batched", calls, n)
	}
	t.Logf("%d model calls for %d records", s.model.Calls(), n)
}

// sigkillLosesNothing kills the executor with SIGKILL once a tenth of the stream is committed,
// restarts it, and checks that every record is answered and that only those answered but not
// committed at the kill are answered twice. The kill must come mid-stream: the stream's model is slow
// enough to last seconds, and offsets are committed every 100 ms, not every second, so that the first
// commit does not come after the last answer (it did, once the sidecar got faster).
func sigkillLosesNothing(t *testing.T, s *stream, records int) {
	n := int64(records)
	t.Helper()
	s.env["KAFKA_COMMIT_INTERVAL"] = "100ms"
	first := startProc(t, s.env, operatorArgs...)
	var committedBefore int64
	waitUntil(t, "some commits", 60*time.Second, func() bool {
		committedBefore = 0
		for _, o := range testkit.CommittedOffsets(t, s.bootstrap, s.group, s.in) {
			committedBefore += o
		}
		return committedBefore >= n/10
	})
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	first.wait(t, 10*time.Second)
	// Produce requests already on the wire when the process died may still land: count once it is quiet.
	killedAt := s.answered(t)
	for settled := time.Now(); time.Since(settled) < time.Second; time.Sleep(100 * time.Millisecond) {
		if now := s.answered(t); now != killedAt {
			killedAt, settled = now, time.Now()
		}
	}
	if killedAt >= n {
		t.Fatalf("all %d answered before the kill; the test proves nothing", n)
	}

	startProc(t, s.env, operatorArgs...)
	testkit.WaitCommitted(t, s.bootstrap, s.group, s.in, testkit.EndOffsets(t, s.bootstrap, s.in), 120*time.Second)

	answers := testkit.ConsumeAll(t, s.bootstrap, s.out, time.Second)
	got := map[string]int{}
	for _, a := range answers {
		if a.Headers["Seldon-Error-Reason"] != "" {
			t.Fatalf("error record: %v", a.Headers)
		}
		got[string(a.Key)]++
	}
	for _, r := range s.sent {
		if got[string(r.Key)] == 0 {
			t.Fatalf("key %s (partition %d offset %d) was never answered", r.Key, r.Partition, r.Offset)
		}
	}
	// Only records answered but not yet committed at the kill may be answered again.
	if repeated := int64(len(answers)) - n; repeated > killedAt-committedBefore {
		t.Errorf("%d answers repeated, but only %d were answered and uncommitted at the kill", repeated, killedAt-committedBefore)
	}
	t.Logf("killed after %d answers with %d committed; %d answers in all for %d records",
		killedAt, committedBefore, len(answers), n)
}

func TestSIGTERMMidStreamExitsZeroAndCommitsExactlyWhatWasAnswered(t *testing.T) {
	const n = 2000
	s := newStream(t, n, 5*time.Millisecond)
	p := startProc(t, s.env, append(operatorArgs, "--graceful_timeout=20s")...)
	waitUntil(t, "some answers", 60*time.Second, func() bool { return s.answered(t) >= n/10 })
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM, want 0", code)
	}
	committed := testkit.CommittedOffsets(t, s.bootstrap, s.group, s.in)
	answers := testkit.ConsumeAll(t, s.bootstrap, s.out, time.Second)
	if len(answers) >= n {
		t.Fatalf("all %d answered before SIGTERM took effect; the test proves nothing", n)
	}
	answeredKeys := map[string]int{}
	for _, a := range answers {
		answeredKeys[string(a.Key)]++
	}
	// Every record below a committed offset is answered, and nothing at or above it: in-flight records
	// were finished, later ones handed back.
	var total int64
	for _, r := range s.sent {
		below := r.Offset < committed[r.Partition]
		if got := answeredKeys[string(r.Key)]; below && got != 1 || !below && got != 0 {
			t.Fatalf("partition %d offset %d (committed %d): answered %d times", r.Partition, r.Offset, committed[r.Partition], got)
		}
	}
	for _, o := range committed {
		total += o
	}
	if total != int64(len(answers)) {
		t.Fatalf("committed %d records, answered %d", total, len(answers))
	}

	// A restart answers the rest, and a clean shutdown means no record is answered twice.
	startProc(t, s.env, operatorArgs...)
	testkit.WaitCommitted(t, s.bootstrap, s.group, s.in, testkit.EndOffsets(t, s.bootstrap, s.in), 120*time.Second)
	all := testkit.ConsumeAll(t, s.bootstrap, s.out, time.Second)
	if len(all) != n {
		t.Fatalf("%d answers after the restart, want exactly %d", len(all), n)
	}
	if !strings.Contains(p.log(), `"msg":"stopped","clean":true`) {
		t.Errorf("no clean stop in the log")
	}
}

// A second SIGTERM ends a shutdown that waits for records stuck at a hung model at once, rather than at
// the end of the grace period, and the process still exits 0; nothing is committed past them.
func TestSecondSIGTERMEndsTheShutdownAtOnce(t *testing.T) {
	const n = 50
	s := newStream(t, n, 0)
	s.model.SetHanging(true)
	p := startProc(t, s.env, append(operatorArgs, "--graceful_timeout=300s")...)
	waitUntil(t, "records at the model", 60*time.Second, func() bool { return s.model.Calls() > 0 })
	// The second once the first is taken: two signals of a kind sent together may arrive as one.
	for _, taken := range []string{`"msg":"shutting down"`, "second signal"} {
		if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, taken, 100*time.Second, func() bool { return strings.Contains(p.log(), taken) })
	}
	if code := p.wait(t, 100*time.Second); code != 0 {
		t.Fatalf("exit code %d after two SIGTERMs, want 0", code)
	}
	if c := testkit.CommittedOffsets(t, s.bootstrap, s.group, s.in); len(c) != 0 {
		t.Errorf("committed %v with no record answered", c)
	}
}

var _ = io.Discard
