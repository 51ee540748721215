// Command profile measures and profiles the sidecar's CPU per record: it runs the executor binary and the
// test model binary as processes of their own against a broker, drains a backlog of realistic requests
// (seldon ndarray bodies of about -body-bytes, six-digit integers) and prints the executor's CPU time
// (utime + stime from /proc) per record. With -pprof and -perf it also takes a Go CPU profile (the
// executor's SIDECAR_PPROF endpoint) and a perf profile (the cgo side and the kernel) while the backlog
// drains. test/profile.sh is the usual way in; README's "Performance" section shows the commands.
//
//	go run ./test/profile -records 20000 -transport rest [-pprof cpu.pprof] [-perf perf.data]
package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/seldon-kafka/sidecar/protocols/seldon/seldonpb"
)

type options struct {
	bootstrap    string
	executor     string
	testmodel    string
	records      int
	workers      int
	partitions   int
	bodyBytes    int
	transport    string
	keyed        bool
	pprofFile    string
	allocsFile   string
	perfFile     string
	profileAfter int
	profileSecs  float64
	rate         int
	idle         time.Duration
	jsonOut      bool
	env          stringList
}

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	var o options
	fs := flag.NewFlagSet("profile", flag.ContinueOnError)
	fs.StringVar(&o.bootstrap, "bootstrap", "", "Kafka bootstrap servers (default: the test broker's, from .kafka/bootstrap)")
	fs.StringVar(&o.executor, "executor", "bin/executor", "the executor binary")
	fs.StringVar(&o.testmodel, "testmodel", "bin/testmodel", "the test model binary")
	fs.IntVar(&o.records, "records", 20000, "backlog size")
	fs.IntVar(&o.workers, "workers", 32, "KAFKA_WORKERS")
	fs.IntVar(&o.partitions, "partitions", 4, "partitions of the input and output topics")
	fs.IntVar(&o.bodyBytes, "body-bytes", 1024, "approximate size of each request's JSON body")
	fs.StringVar(&o.transport, "transport", "rest", "rest or grpc (seldon protocol)")
	fs.BoolVar(&o.keyed, "keyed", true, "give each record a key of its own (k<n>)")
	fs.StringVar(&o.pprofFile, "pprof", "", "write a Go CPU profile of the executor, taken while the backlog drains, to this file")
	fs.StringVar(&o.allocsFile, "allocs", "", "write the executor's Go allocation profile (since its start) after the last answer to this file")
	fs.StringVar(&o.perfFile, "perf", "", "run perf record -g on the executor while the backlog drains, writing this file")
	fs.IntVar(&o.profileAfter, "profile-after", 1000, "start the profiles after this many answers (past the start-up)")
	fs.Float64Var(&o.profileSecs, "profile-seconds", 3, "length of the profiles")
	fs.IntVar(&o.rate, "rate", 0, "paced mode: send the records at this many per second once the executor is ready, and report the latency from send to answer (0: drain a backlog written before the executor starts)")
	fs.DurationVar(&o.idle, "idle", 0, "after the last answer, measure the executor's CPU while nothing comes for this long")
	fs.BoolVar(&o.jsonOut, "json", false, "print the figures as one JSON object too")
	fs.Var(&o.env, "env", "NAME=VALUE for the executor's environment (repeatable)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if o.transport != "rest" && o.transport != "grpc" {
		fmt.Fprintln(os.Stderr, "profile: -transport must be rest or grpc")
		os.Exit(2)
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		os.Exit(1)
	}
}

// body is a seldon request of about n bytes: an ndarray of rows of six-digit integers.
func body(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"data":{"names":["f0","f1","f2","f3","f4","f5","f6","f7"],"ndarray":[`)
	for row := 0; b.Len() < n-60; row++ {
		if row > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for col := range 8 {
			if col > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.Itoa(100000 + (row*8+col)*7919%900000))
		}
		b.WriteByte(']')
	}
	b.WriteString(`]}}`)
	return []byte(b.String())
}

func run(o options) error {
	if o.bootstrap == "" {
		b, err := os.ReadFile(filepath.Join(".kafka", "bootstrap"))
		if err != nil {
			return fmt.Errorf("no -bootstrap and no test broker (bash test/kafka/broker.sh start): %w", err)
		}
		o.bootstrap = strings.TrimSpace(string(b))
	}
	for _, bin := range []string{o.executor, o.testmodel} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s: %w (run make build)", bin, err)
		}
	}

	// The model is a process of its own, so that its CPU is not counted as the sidecar's.
	model := exec.Command(o.testmodel, "--host=127.0.0.1", "--http_port=0", "--grpc_port=0", "--model_name=classifier")
	model.Stderr = io.Discard
	mout, err := model.StdoutPipe()
	if err != nil {
		return err
	}
	if err := model.Start(); err != nil {
		return err
	}
	defer func() { _ = model.Process.Kill(); _ = model.Wait() }()
	line, err := bufio.NewReader(mout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("test model: %w", err)
	}
	var httpAddr, grpcAddr string
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "listening http=%s grpc=%s", &httpAddr, &grpcAddr); err != nil {
		return fmt.Errorf("test model said %q: %w", line, err)
	}

	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	in, out := "profile-in-"+suffix, "profile-out-"+suffix
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

	value := body(o.bodyBytes)
	var headers []kafka.Header
	if o.transport == "grpc" {
		var sm seldonpb.SeldonMessage
		if err := protojson.Unmarshal(value, &sm); err != nil {
			return err
		}
		if value, err = proto.Marshal(&sm); err != nil {
			return err
		}
		headers = []kafka.Header{{Key: "proto-name", Value: []byte("seldon.protos.SeldonMessage")}}
	}
	if o.rate == 0 {
		if err := backlog(o, in, value, headers); err != nil {
			return err
		}
	}

	port := httpAddr[strings.LastIndexByte(httpAddr, ':')+1:]
	if o.transport == "grpc" {
		port = grpcAddr[strings.LastIndexByte(grpcAddr, ':')+1:]
	}
	healthPort, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.Command(o.executor, "--sdep=profile", "--namespace=profile", "--predictor=default",
		"--protocol=seldon", "--transport="+o.transport, "--http_port="+strconv.Itoa(healthPort), "--grpc_port=0",
		"--log_level=WARN")
	cmd.Env = append(os.Environ(), "KAFKA_BROKER="+o.bootstrap, "KAFKA_INPUT_TOPIC="+in, "KAFKA_OUTPUT_TOPIC="+out,
		"KAFKA_GROUP_ID=profile-"+suffix, "KAFKA_WORKERS="+strconv.Itoa(o.workers),
		"ENGINE_PREDICTOR="+predictor(o.transport, port))
	if o.pprofFile != "" || o.allocsFile != "" {
		cmd.Env = append(cmd.Env, "SIDECAR_PPROF=true")
	}
	cmd.Env = append(cmd.Env, o.env...)
	cmd.Stderr = os.Stderr
	reader, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": o.bootstrap, "group.id": "profile-reader-" + suffix,
		"auto.offset.reset": "earliest", "enable.auto.commit": false})
	if err != nil {
		return err
	}
	defer reader.Close()
	if err := reader.Subscribe(out, nil); err != nil {
		return err
	}

	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid

	var (
		firstAt, lastAt time.Time
		cpuFirst        float64
		errs            int
		profiles        = make(chan error, 2)
		started         int
		latencies       []time.Duration
		paced           = make(chan error, 1)
	)
	if o.rate > 0 {
		// The executor's start-up is not counted: the figures start when it is ready.
		if err := awaitReady(healthPort, 60*time.Second); err != nil {
			return err
		}
		firstAt, cpuFirst = time.Now(), cpuSeconds(pid)
		go func() { paced <- send(o, in, value, headers) }()
	}
	for n := 0; n < o.records; {
		m, err := reader.ReadMessage(60 * time.Second)
		if err != nil {
			return fmt.Errorf("after %d answers: %w", n, err)
		}
		for _, h := range m.Headers {
			switch h.Key {
			case "Seldon-Error-Reason":
				errs++
			case "Seldon-Puid":
				if sent, err := strconv.ParseInt(string(h.Value), 10, 64); err == nil && o.rate > 0 {
					latencies = append(latencies, time.Since(time.Unix(0, sent)))
				}
			}
		}
		n++
		if n == 1 && o.rate == 0 {
			firstAt, cpuFirst = time.Now(), cpuSeconds(pid)
		}
		if n == o.profileAfter {
			if o.pprofFile != "" {
				started++
				go func() { profiles <- goProfile(healthPort, o.profileSecs, o.pprofFile) }()
			}
			if o.perfFile != "" {
				started++
				go func() { profiles <- perfRecord(pid, o.profileSecs, o.perfFile) }()
			}
		}
	}
	lastAt = time.Now()
	cpuTotal := cpuSeconds(pid)
	if o.allocsFile != "" {
		if err := fetchProfile(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/allocs", healthPort), o.allocsFile); err != nil {
			return err
		}
	}
	modelCPU := cpuSeconds(model.Process.Pid)
	var idleCPU float64
	if o.idle > 0 {
		time.Sleep(o.idle)
		idleCPU = (cpuSeconds(pid) - cpuTotal) / o.idle.Seconds()
	}
	peak := peakRSS(pid)
	for range started {
		if err := <-profiles; err != nil {
			return err
		}
	}
	if o.rate > 0 {
		if err := <-paced; err != nil {
			return err
		}
	}
	if errs > 0 {
		return fmt.Errorf("%d of %d answers were error records", errs, o.records)
	}
	drain := lastAt.Sub(firstAt)
	fig := map[string]any{
		"transport":               o.transport,
		"records":                 o.records,
		"body_bytes":              len(value),
		"workers":                 o.workers,
		"records_per_s":           float64(o.records-1) / drain.Seconds(),
		"cpu_us_per_record":       cpuTotal * 1e6 / float64(o.records),
		"cpu_us_per_record_warm":  (cpuTotal - cpuFirst) * 1e6 / float64(o.records-1),
		"cpu_s_total":             cpuTotal,
		"model_cpu_us_per_record": modelCPU * 1e6 / float64(o.records),
		"wall_s_start_to_last":    lastAt.Sub(start).Seconds(),
		"peak_rss_mib":            peak,
		"profiled":                o.pprofFile != "" || o.perfFile != "",
		"rate":                    o.rate,
	}
	if o.idle > 0 {
		fig["idle_cpu_ms_per_s"] = idleCPU * 1000
	}
	if o.rate > 0 {
		slices.Sort(latencies)
		pct := func(p float64) float64 {
			return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
		}
		fig["latency_ms_p50"], fig["latency_ms_p99"], fig["latency_ms_max"] = pct(.5), pct(.99), pct(1)
	}
	mode := "backlog"
	if o.rate > 0 {
		mode = fmt.Sprintf("%d records/s", o.rate)
	}
	fmt.Printf("profile: %s, %s, %d records of %d bytes, KAFKA_WORKERS=%d, %d partitions\n",
		o.transport, mode, o.records, len(value), o.workers, o.partitions)
	fmt.Printf("  %-40s %10.0f\n", "records/s (first to last answer):", fig["records_per_s"])
	fmt.Printf("  %-40s %10.1f\n", "executor CPU µs per record (whole run):", fig["cpu_us_per_record"])
	fmt.Printf("  %-40s %10.1f\n", "executor CPU µs per record (draining):", fig["cpu_us_per_record_warm"])
	fmt.Printf("  %-40s %10.1f\n", "executor peak RSS MiB:", peak)
	fmt.Printf("  %-40s %10.1f\n", "model CPU µs per record (whole run):", fig["model_cpu_us_per_record"])
	if o.idle > 0 {
		fmt.Printf("  %-40s %10.1f\n", "executor CPU ms per second, idle:", idleCPU*1000)
	}
	if o.rate > 0 {
		fmt.Printf("  %-40s p50 %.1f  p99 %.1f  max %.1f\n", "latency ms, send to answer:",
			fig["latency_ms_p50"], fig["latency_ms_p99"], fig["latency_ms_max"])
	}
	if o.jsonOut {
		b, _ := json.Marshal(fig)
		fmt.Println(string(b))
	}
	return nil
}

// backlog writes the records before the executor starts, so that the figures are the sidecar's, not the
// producer's.
func backlog(o options, topic string, value []byte, headers []kafka.Header) error {
	prod, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": o.bootstrap, "linger.ms": 20,
		"go.delivery.report.fields": "none"})
	if err != nil {
		return err
	}
	defer prod.Close()
	go func() {
		for range prod.Events() {
		}
	}()
	for i := range o.records {
		msg := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Value: value, Headers: headers}
		if o.keyed {
			msg.Key = []byte("k" + strconv.Itoa(i))
		}
		for {
			err := prod.Produce(msg, nil)
			if err == nil {
				break
			}
			if ke, ok := err.(kafka.Error); ok && ke.Code() == kafka.ErrQueueFull {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return err
		}
	}
	if left := prod.Flush(60000); left > 0 {
		return fmt.Errorf("%d backlog records not delivered", left)
	}
	return nil
}

// send writes the records at o.rate per second, each with its send time as its Seldon-Puid (the answer
// carries it back). The producer does not linger, so that the latency is the sidecar's and the broker's.
func send(o options, topic string, value []byte, headers []kafka.Header) error {
	prod, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": o.bootstrap, "linger.ms": 0,
		"go.delivery.report.fields": "none"})
	if err != nil {
		return err
	}
	defer prod.Close()
	go func() {
		for range prod.Events() {
		}
	}()
	tick := time.NewTicker(time.Second / time.Duration(o.rate))
	defer tick.Stop()
	for i := range o.records {
		<-tick.C
		hs := append(slices.Clip(headers), kafka.Header{Key: "Seldon-Puid", Value: []byte(strconv.FormatInt(time.Now().UnixNano(), 10))})
		msg := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Value: value, Headers: hs}
		if o.keyed {
			msg.Key = []byte("k" + strconv.Itoa(i))
		}
		if err := prod.Produce(msg, nil); err != nil {
			return err
		}
	}
	prod.Flush(30000)
	return nil
}

// awaitReady waits until the executor's /ready answers 200.
func awaitReady(port int, limit time.Duration) error {
	url := fmt.Sprintf("http://127.0.0.1:%d/ready", port)
	for end := time.Now().Add(limit); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
	}
	return fmt.Errorf("the executor was not ready within %v", limit)
}

func goProfile(port int, secs float64, file string) error {
	return fetchProfile(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/profile?seconds=%d", port, max(1, int(secs+0.5))), file)
}

// fetchProfile writes the profile the executor's pprof endpoint answers at url to file.
func fetchProfile(url, file string) error {
	resp, err := http.Get(url)
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("pprof: HTTP %d: %s", resp.StatusCode, b)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func perfRecord(pid int, secs float64, file string) error {
	c := exec.Command("perf", "record", "-F", "999", "-g", "-p", strconv.Itoa(pid), "-o", file, "--",
		"sleep", strconv.FormatFloat(secs, 'f', 1, 64))
	if b, err := c.CombinedOutput(); err != nil {
		return fmt.Errorf("perf record: %w: %s", err, b)
	}
	return nil
}

// freePort is a loopback port free now, for the executor's health endpoint (which the profile is read
// from).
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func predictor(transport, port string) string {
	ep := map[string]any{"service_host": "127.0.0.1", "type": strings.ToUpper(transport)}
	if transport == "grpc" {
		ep["grpcPort"], _ = strconv.Atoi(port)
	} else {
		ep["httpPort"], _ = strconv.Atoi(port)
	}
	b, _ := json.Marshal(map[string]any{"name": "default", "graph": map[string]any{"name": "classifier", "type": "MODEL",
		"endpoint": ep}})
	return base64.StdEncoding.EncodeToString(b)
}

// peakRSS reads the process's peak resident set from /proc, in MiB.
func peakRSS(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
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
