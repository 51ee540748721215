package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/internal/cifar10"
	"github.com/seldon-kafka/sidecar/internal/testmodel"
)

// compareCompression runs the executor once per codec on a backlog of CIFAR10-sized TF Serving REST
// requests (one 32×32×3 image each) whose answers are as large (the test model doubles every value),
// and prints, per codec, the bytes an answer takes on the broker, the executor's throughput and its CPU.
func compareCompression(o options) error {
	modelPort, stopModel, err := startModel(o.delay)
	if err != nil {
		return err
	}
	defer stopModel()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": o.bootstrap})
	if err != nil {
		return err
	}
	defer admin.Close()

	value := cifar10.TensorflowJSON(cifar10.Image(0))
	answer, err := testmodel.TensorflowPredict(value)
	if err != nil {
		return err
	}
	fmt.Printf("sidecar-bench: KAFKA_PRODUCER_COMPRESSION on %d CIFAR10-sized records: request %d bytes of JSON, answer %d bytes; KAFKA_WORKERS=%d, %d partitions\n\n",
		o.records, len(value), len(answer), o.workers, o.partitions)
	fmt.Printf("%-8s %16s %10s %16s %18s\n", "codec", "bytes per answer", "ratio", "records/s", "CPU per 1000")
	for _, codec := range strings.Split(o.compression, ",") {
		codec = strings.TrimSpace(codec)
		r, err := runCodec(o, admin, modelPort, codec, value)
		if err != nil {
			return fmt.Errorf("%s: %w", codec, err)
		}
		fmt.Printf("%-8s %16.0f %9.2fx %16.0f %15.1f ms\n", codec, r.wirePerAnswer, float64(len(answer))/r.wirePerAnswer, r.rate, r.cpuPer1000)
	}
	return nil
}

type codecRun struct {
	wirePerAnswer float64 // bytes the output topic's fetches took from the broker, per answer
	rate          float64 // answers per second, first to last
	cpuPer1000    float64 // executor CPU milliseconds per 1000 records
}

func runCodec(o options, admin *kafka.AdminClient, modelPort int, codec string, value []byte) (codecRun, error) {
	var r codecRun
	suffix, in, out, err := benchTopics(admin, o.partitions)
	if err != nil {
		return r, err
	}
	defer admin.DeleteTopics(context.Background(), []string{in, out})

	prod, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": o.bootstrap, "linger.ms": 5, "go.delivery.report.fields": "none"})
	if err != nil {
		return r, err
	}
	for i := range o.records {
		if err := produce(prod, in, fmt.Sprintf("k%d", i), "backlog", value); err != nil {
			prod.Close()
			return r, err
		}
	}
	prod.Flush(60000)
	prod.Close()

	cmd := exec.Command(o.binary, "--sdep=bench", "--namespace=bench", "--predictor=default",
		"--protocol=tensorflow", "--http_port=0", "--grpc_port=0", "--log_level=WARN")
	cmd.Env = append(os.Environ(), "KAFKA_BROKER="+o.bootstrap, "KAFKA_INPUT_TOPIC="+in, "KAFKA_OUTPUT_TOPIC="+out,
		"KAFKA_GROUP_ID=bench-"+suffix, "KAFKA_WORKERS="+strconv.Itoa(o.workers), "KAFKA_PRODUCER_COMPRESSION="+codec,
		"ENGINE_PREDICTOR="+predictor(modelPort))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return r, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	// Read the answers with statistics on: the brokers' rxbytes is what the fetches took off the wire,
	// compressed as the broker stores it.
	reader, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": o.bootstrap, "group.id": "bench-reader-" + suffix,
		"auto.offset.reset": "earliest", "enable.auto.commit": false, "statistics.interval.ms": 200})
	if err != nil {
		return r, err
	}
	defer reader.Close()
	if err := reader.Subscribe(out, nil); err != nil {
		return r, err
	}
	var first, last time.Time
	n := 0
	var rx int64
	deadline := time.Now().Add(5 * time.Minute)
	for n < o.records || rx == 0 {
		if time.Now().After(deadline) {
			return r, fmt.Errorf("after %d answers: no more within 5 minutes", n)
		}
		switch e := reader.Poll(500).(type) {
		case *kafka.Message:
			if n == 0 {
				first = e.Timestamp
			}
			last = e.Timestamp
			n++
		case *kafka.Stats:
			if n == o.records {
				rx = brokerRxBytes(e.String())
			}
		case kafka.Error:
			if e.IsFatal() {
				return r, e
			}
		}
	}
	r.wirePerAnswer = float64(rx) / float64(n)
	r.rate = float64(n-1) / last.Sub(first).Seconds()
	r.cpuPer1000 = cpuSeconds(cmd.Process.Pid) * 1000 / float64(n) * 1000
	return r, nil
}

// brokerRxBytes sums the bytes a client received from the brokers (librdkafka's statistics).
func brokerRxBytes(stats string) int64 {
	var s struct {
		Brokers map[string]struct {
			Nodeid  int   `json:"nodeid"`
			Rxbytes int64 `json:"rxbytes"`
		} `json:"brokers"`
	}
	if json.Unmarshal([]byte(stats), &s) != nil {
		return 0
	}
	var total int64
	for _, b := range s.Brokers {
		total += b.Rxbytes
	}
	return total
}
