package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/kafka"
)

// The passthrough baseline: what the sidecar's Kafka clients cost with no model. It consumes and
// produces with the sidecar's own librdkafka configuration (kafka.ConsumerConfig and ProducerConfig),
// polls as the sidecar does, writes each record's value and headers back under its key, and commits
// the highest delivered offset of each partition every second. The bench runs it as a child process
// (sidecar-bench passthrough ...), so that its CPU and memory are read as the sidecar's are.

const passthroughCommand = "passthrough"

// runPassthrough is `sidecar-bench passthrough`: it runs until SIGTERM or SIGINT.
func runPassthrough(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("sidecar-bench passthrough", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bootstrap := fs.String("bootstrap", "", "Kafka bootstrap servers")
	in := fs.String("in", "", "topic to consume")
	out := fs.String("out", "", "topic to produce to")
	group := fs.String("group", "", "consumer group")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *bootstrap == "" || *in == "" || *out == "" || *group == "" {
		fmt.Fprintln(stderr, "sidecar-bench passthrough: -bootstrap, -in, -out and -group are required")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := passthrough(ctx, kafka.Settings{Brokers: *bootstrap, ClientID: "sidecar-bench-passthrough", GroupID: *group}, *in, *out, stderr); err != nil {
		fmt.Fprintln(stderr, "sidecar-bench passthrough:", err)
		return 1
	}
	return 0
}

func passthrough(ctx context.Context, s kafka.Settings, in, out string, logs io.Writer) error {
	ccfg, err := kafka.ConsumerConfig(s)
	if err != nil {
		return err
	}
	pcfg, err := kafka.ProducerConfig(s)
	if err != nil {
		return err
	}
	c, err := ckafka.NewConsumer(ccfg)
	if err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	defer c.Close()
	p, err := ckafka.NewProducer(pcfg)
	if err != nil {
		return fmt.Errorf("producer: %w", err)
	}
	defer p.Close()
	// The sidecar's configuration sends librdkafka's logs to channels, which must be read.
	for _, ch := range []chan ckafka.LogEvent{c.Logs(), p.Logs()} {
		go func() {
			for ev := range ch {
				if ev.Level <= 3 {
					fmt.Fprintln(logs, "librdkafka:", ev.Message)
				}
			}
		}()
	}

	var (
		mu        sync.Mutex
		delivered = map[int32]ckafka.Offset{} // highest delivered input offset, per input partition
	)
	go func() {
		for ev := range p.Events() {
			m, ok := ev.(*ckafka.Message)
			if !ok {
				continue
			}
			if m.TopicPartition.Error != nil {
				fmt.Fprintln(logs, "delivery failed:", m.TopicPartition.Error)
				continue
			}
			src := m.Opaque.(ckafka.TopicPartition)
			mu.Lock()
			if src.Offset >= delivered[src.Partition] {
				delivered[src.Partition] = src.Offset + 1
			}
			mu.Unlock()
		}
	}()

	if err := c.SubscribeTopics([]string{in}, nil); err != nil {
		return err
	}
	lastCommit := time.Now()
	for ctx.Err() == nil {
		switch e := c.Poll(100).(type) {
		case *ckafka.Message:
			if e.TopicPartition.Error != nil {
				continue
			}
			m := &ckafka.Message{
				TopicPartition: ckafka.TopicPartition{Topic: &out, Partition: ckafka.PartitionAny},
				Key:            e.Key, Value: e.Value, Headers: e.Headers,
				Opaque: e.TopicPartition,
			}
			for {
				err := p.Produce(m, nil)
				if err == nil {
					break
				}
				if ke, ok := err.(ckafka.Error); !ok || ke.Code() != ckafka.ErrQueueFull {
					return fmt.Errorf("produce: %w", err)
				}
				// librdkafka's queue is full: wait for deliveries, as the sidecar waits for room.
				time.Sleep(time.Millisecond)
			}
		case ckafka.Error:
			if e.IsFatal() {
				return e
			}
		}
		if time.Since(lastCommit) >= time.Second {
			lastCommit = time.Now()
			mu.Lock()
			tps := make([]ckafka.TopicPartition, 0, len(delivered))
			for n, off := range delivered {
				tps = append(tps, ckafka.TopicPartition{Topic: &in, Partition: n, Offset: off})
			}
			mu.Unlock()
			if len(tps) > 0 {
				if _, err := c.CommitOffsets(tps); err != nil && !errors.Is(err, context.Canceled) {
					fmt.Fprintln(logs, "commit:", err)
				}
			}
		}
	}
	p.Flush(5000)
	return nil
}
