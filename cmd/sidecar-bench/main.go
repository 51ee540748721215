// Command sidecar-bench measures the sidecar end to end against a real broker and prints the figures:
// throughput draining a backlog, latency at a steady request rate, peak memory and CPU per record. It
// runs the executor binary as a child process, next to an in-process test model, on topics of its own.
// With -exactly-once it measures both delivery modes in the same run, alternated over -rounds rounds.
//
//	make broker && make build && go run ./cmd/sidecar-bench
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/internal/testmodel"
)

type options struct {
	bootstrap  string
	binary     string
	records    int
	workers    int
	partitions int
	delay      time.Duration
	rate       int
	seconds    int
	// exactlyOnce measures exactly-once (KAFKA_EXACTLY_ONCE=true) beside at-least-once, rounds times
	// each, alternated; env are further variables for the executor.
	exactlyOnce bool
	rounds      int
	env         envList
}

// envList is a repeated -env NAME=VALUE flag.
type envList []string

func (l *envList) String() string { return strings.Join(*l, " ") }

func (l *envList) Set(v string) error {
	if name, _, ok := strings.Cut(v, "="); !ok || name == "" {
		return fmt.Errorf("%q: want NAME=VALUE", v)
	}
	*l = append(*l, v)
	return nil
}

// mode is one configuration of the executor to measure.
type mode struct {
	name string
	env  []string
}

func main() {
	o, code := parseArgs(os.Args[1:], os.Stdout, os.Stderr)
	if code >= 0 {
		os.Exit(code)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "sidecar-bench:", err)
		os.Exit(1)
	}
}

// parseArgs reads the command line. It returns code -1 to go on, else the exit code: 0 for --help
// (the usage on stdout), 2 for a bad command line (one line on stderr naming what is wrong).
func parseArgs(args []string, stdout, stderr io.Writer) (o options, code int) {
	fs := flag.NewFlagSet("sidecar-bench", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.bootstrap, "bootstrap", "", "Kafka bootstrap servers (default: the test broker's, from .kafka/bootstrap)")
	fs.StringVar(&o.binary, "executor", "bin/executor", "the executor binary")
	fs.IntVar(&o.records, "records", 20000, "backlog size for the throughput run")
	fs.IntVar(&o.workers, "workers", 32, "KAFKA_WORKERS")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the input and output topics")
	fs.DurationVar(&o.delay, "model-delay", 0, "time the model takes per call")
	fs.IntVar(&o.rate, "rate", 500, "requests per second in the latency run")
	fs.IntVar(&o.seconds, "seconds", 10, "length of the latency run")
	fs.BoolVar(&o.exactlyOnce, "exactly-once", false, "measure exactly-once (KAFKA_EXACTLY_ONCE=true) beside at-least-once, in the same run")
	fs.IntVar(&o.rounds, "rounds", 1, "with -exactly-once, how many times each mode is measured, alternated")
	fs.Var(&o.env, "env", "NAME=VALUE for the executor's environment (repeatable), e.g. -env KAFKA_COMMIT_INTERVAL=200ms")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: sidecar-bench [flags]  (make broker && make build first)")
		fs.PrintDefaults()
	}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.SetOutput(stdout)
		fs.Usage()
		return o, 0
	case err == nil && fs.NArg() > 0:
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case err == nil && (o.records < 2 || o.workers < 1 || o.partitions < 1 || o.rate < 1 || o.seconds < 1 || o.rounds < 1):
		err = errors.New("-records must be at least 2, and -workers, -partitions, -rate, -seconds and -rounds at least 1")
	}
	if err != nil {
		fmt.Fprintf(stderr, "sidecar-bench: %v (sidecar-bench --help lists the flags)\n", err)
		return o, 2
	}
	return o, -1
}

func run(o options) error {
	if o.bootstrap == "" {
		b, err := os.ReadFile(filepath.Join(".kafka", "bootstrap"))
		if err != nil {
			return fmt.Errorf("no -bootstrap and no test broker (run make broker): %w", err)
		}
		o.bootstrap = strings.TrimSpace(string(b))
	}
	if _, err := os.Stat(o.binary); err != nil {
		return fmt.Errorf("%s: %w (run make build)", o.binary, err)
	}
	model := testmodel.New(testmodel.Options{ModelName: "classifier", Delay: o.delay})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() { _ = model.Serve(ln) }()
	defer model.Close()

	modes := []mode{{name: "at-least-once"}}
	if o.exactlyOnce {
		modes = append(modes, mode{name: "exactly-once", env: []string{"KAFKA_EXACTLY_ONCE=true"}})
	} else {
		o.rounds = 1
	}
	for round := range o.rounds {
		for _, m := range modes {
			if o.exactlyOnce {
				fmt.Printf("\n== %s, round %d of %d\n", m.name, round+1, o.rounds)
			}
			if err := measure(o, ln.Addr().(*net.TCPAddr).Port, m); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
	}
	return nil
}

// measure runs the executor in mode m on topics of its own: the backlog's throughput and CPU, then the
// latency at a steady rate and the memory.
func measure(o options, modelPort int, m mode) error {
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	in, out := "bench-in-"+suffix, "bench-out-"+suffix
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": o.bootstrap})
	if err != nil {
		return err
	}
	defer admin.Close()
	ctx := context.Background()
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{
		{Topic: in, NumPartitions: o.partitions, ReplicationFactor: 1},
		{Topic: out, NumPartitions: o.partitions, ReplicationFactor: 1},
	})
	if err != nil {
		return err
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("creating %s: %v", r.Topic, r.Error)
		}
	}
	defer admin.DeleteTopics(ctx, []string{in, out})
	time.Sleep(time.Second)

	prod, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": o.bootstrap, "linger.ms": 5,
		"go.delivery.report.fields": "none"})
	if err != nil {
		return err
	}
	defer prod.Close()
	reader, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": o.bootstrap, "group.id": "bench-reader-" + suffix,
		"auto.offset.reset": "earliest", "enable.auto.commit": false})
	if err != nil {
		return err
	}
	defer reader.Close()
	if err := reader.Subscribe(out, nil); err != nil {
		return err
	}

	value := []byte(`{"data":{"names":["a","b","c","d"],"ndarray":[[5.1,3.5,1.4,0.2]]}}`)
	fmt.Printf("sidecar-bench: %d records backlog, then %d req/s for %ds; KAFKA_WORKERS=%d, %d partitions, model delay %v\n",
		o.records, o.rate, o.seconds, o.workers, o.partitions, o.delay)

	// Throughput: the backlog is written before the sidecar starts, so the figure is the sidecar's rate,
	// not the producer's.
	for i := range o.records {
		if err := produce(prod, in, fmt.Sprintf("k%d", i), "backlog", value); err != nil {
			return err
		}
	}
	prod.Flush(30000)

	group := "bench-" + suffix
	cmd := exec.Command(o.binary, "--sdep=bench", "--namespace=bench", "--predictor=default",
		"--protocol=seldon", "--http_port=0", "--grpc_port=0", "--log_level=WARN")
	cmd.Env = append(os.Environ(), "KAFKA_BROKER="+o.bootstrap, "KAFKA_INPUT_TOPIC="+in, "KAFKA_OUTPUT_TOPIC="+out,
		"KAFKA_GROUP_ID="+group, "KAFKA_WORKERS="+strconv.Itoa(o.workers),
		"ENGINE_PREDICTOR="+predictor(modelPort))
	cmd.Env = append(append(cmd.Env, m.env...), o.env...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid

	var first, last time.Time
	for n := 0; n < o.records; {
		m, err := reader.ReadMessage(30 * time.Second)
		if err != nil {
			return fmt.Errorf("after %d answers: %w", n, err)
		}
		if n == 0 {
			first = m.Timestamp
		}
		last = m.Timestamp
		n++
	}
	cpuBacklog := cpuSeconds(pid)
	span := last.Sub(first)
	fmt.Printf("\n%-34s %12.0f records/s  (%d records in %v, first to last answer)\n", "throughput (backlog):",
		float64(o.records-1)/span.Seconds(), o.records, span.Round(time.Millisecond))
	fmt.Printf("%-34s %12.1f ms per 1000 records\n", "executor CPU (backlog):", cpuBacklog*1000/float64(o.records)*1000)

	// Latency: requests at a steady rate; the Seldon-Puid carries the send time and comes back on the
	// answer.
	total := o.rate * o.seconds
	done := make(chan error, 1)
	go func() {
		tick := time.NewTicker(time.Second / time.Duration(o.rate))
		defer tick.Stop()
		for i := range total {
			<-tick.C
			if err := produce(prod, in, fmt.Sprintf("l%d", i), strconv.FormatInt(time.Now().UnixNano(), 10), value); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	lat := make([]time.Duration, 0, total)
	for len(lat) < total {
		m, err := reader.ReadMessage(30 * time.Second)
		if err != nil {
			return fmt.Errorf("latency run, after %d answers: %w", len(lat), err)
		}
		for _, h := range m.Headers {
			if h.Key == "Seldon-Puid" {
				if sent, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil {
					lat = append(lat, time.Since(time.Unix(0, sent)))
				}
			}
		}
	}
	if err := <-done; err != nil {
		return err
	}
	slices.Sort(lat)
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))].Round(10 * time.Microsecond) }
	fmt.Printf("%-34s p50 %v  p90 %v  p99 %v  max %v\n", fmt.Sprintf("latency at %d req/s (produce→answer):", o.rate),
		pct(.5), pct(.9), pct(.99), lat[len(lat)-1].Round(10*time.Microsecond))
	hwm, rss := memory(pid)
	fmt.Printf("%-34s %12.1f MiB (now %.1f MiB)\n", "executor peak RSS:", hwm, rss)
	return nil
}

func produce(p *kafka.Producer, topic, key, puid string, value []byte) error {
	for {
		err := p.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            []byte(key), Value: value,
			Headers: []kafka.Header{{Key: "Seldon-Puid", Value: []byte(puid)}},
		}, nil)
		if err == nil {
			return nil
		}
		if ke, ok := err.(kafka.Error); ok && ke.Code() == kafka.ErrQueueFull {
			p.Flush(100)
			continue
		}
		return err
	}
}

func predictor(port int) string {
	b, _ := json.Marshal(map[string]any{"name": "default", "graph": map[string]any{"name": "classifier", "type": "MODEL",
		"endpoint": map[string]any{"service_host": "127.0.0.1", "httpPort": port}}})
	return base64.StdEncoding.EncodeToString(b)
}

// memory reads the process's peak and current resident set from /proc, in MiB.
func memory(pid int) (peak, now float64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmHWM:":
			peak = kb / 1024
		case "VmRSS:":
			now = kb / 1024
		}
	}
	return peak, now
}

// cpuSeconds reads the process's user+system CPU time from /proc.
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // clock ticks; 100 Hz on Linux
}
