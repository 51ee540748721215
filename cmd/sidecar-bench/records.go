package main

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// The bench's own Kafka clients: the load (a producer), the reader of the answers, topics. They are not
// what is measured; their settings aim at putting records in quickly and seeing answers at once.

// createTopics creates fresh topics of the given partitions, and returns a func that deletes them.
func createTopics(bootstrap string, partitions int, names ...string) (func(), error) {
	admin, err := ckafka.NewAdminClient(&ckafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return nil, err
	}
	specs := make([]ckafka.TopicSpecification, len(names))
	for i, n := range names {
		specs[i] = ckafka.TopicSpecification{Topic: n, NumPartitions: partitions, ReplicationFactor: 1}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.CreateTopics(ctx, specs, ckafka.SetAdminOperationTimeout(30*time.Second))
	if err == nil {
		for _, r := range res {
			if r.Error.Code() != ckafka.ErrNoError {
				err = fmt.Errorf("creating topic %s: %v", r.Topic, r.Error)
			}
		}
	}
	drop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = admin.DeleteTopics(ctx, names)
		admin.Close()
	}
	if err != nil {
		drop()
		return nil, err
	}
	return drop, nil
}

// load produces the requests. Keys are the record numbers: they are distinct, as request ids are, and
// let the reader find when each record was sent.
type load struct {
	p       *ckafka.Producer
	topic   string
	payload payload
	prefix  string
	// sent holds, per record number, when it was handed to the producer (unix nanoseconds).
	sent []atomic.Int64
}

// newLoad makes a producer for topic. linger is librdkafka's linger.ms: a few milliseconds to fill a
// backlog quickly, 0 for paced records, whose time of sending is what latency is measured from.
func newLoad(bootstrap, topic string, pl payload, prefix string, n int, lingerMs int) (*load, error) {
	p, err := ckafka.NewProducer(&ckafka.ConfigMap{
		"bootstrap.servers":            bootstrap,
		"linger.ms":                    lingerMs,
		"go.delivery.reports":          false,
		"queue.buffering.max.messages": 1000000,
		"queue.buffering.max.kbytes":   1 << 20,
	})
	if err != nil {
		return nil, err
	}
	return &load{p: p, topic: topic, payload: pl, prefix: prefix, sent: make([]atomic.Int64, n)}, nil
}

func (l *load) close() { l.p.Close() }

// send produces record i, waiting while librdkafka's queue is full.
func (l *load) send(i int) error {
	m := &ckafka.Message{
		TopicPartition: ckafka.TopicPartition{Topic: &l.topic, Partition: ckafka.PartitionAny},
		Key:            []byte(l.prefix + strconv.Itoa(i)),
		Value:          l.payload.value(i),
	}
	if l.payload.protoName != "" {
		m.Headers = []ckafka.Header{{Key: "proto-name", Value: []byte(l.payload.protoName)}}
	}
	for {
		if i < len(l.sent) {
			l.sent[i].Store(time.Now().UnixNano())
		}
		err := l.p.Produce(m, nil)
		if err == nil {
			return nil
		}
		if ke, ok := err.(ckafka.Error); !ok || ke.Code() != ckafka.ErrQueueFull {
			return fmt.Errorf("producing request %d: %w", i, err)
		}
		l.p.Flush(10)
	}
}

// backlog produces records 0..n-1 as fast as the broker takes them, and waits until all are written.
func (l *load) backlog(n int) error {
	for i := range n {
		if err := l.send(i); err != nil {
			return err
		}
	}
	for l.p.Flush(1000) > 0 {
	}
	return nil
}

// paced produces records from..from+n-1 at rate a second, each at its time (not in bursts), and
// stops early if ctx ends.
func (l *load) paced(ctx context.Context, from, n int, rate float64) error {
	start := time.Now()
	for k := range n {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if d := time.Until(start.Add(time.Duration(float64(k) / rate * float64(time.Second)))); d > 0 {
			time.Sleep(d)
		}
		if err := l.send(from + k); err != nil {
			return err
		}
	}
	return nil
}

// reader reads the answers from the output topic: every partition from the start, with no group, so it
// sees an answer as soon as the broker has it.
type reader struct {
	c *ckafka.Consumer
}

func newReader(bootstrap, topic string, partitions int) (*reader, error) {
	c, err := ckafka.NewConsumer(&ckafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           "bench-reader",
		"enable.auto.commit": false,
	})
	if err != nil {
		return nil, err
	}
	tps := make([]ckafka.TopicPartition, partitions)
	for i := range tps {
		tps[i] = ckafka.TopicPartition{Topic: &topic, Partition: int32(i), Offset: ckafka.OffsetBeginning}
	}
	if err := c.Assign(tps); err != nil {
		c.Close()
		return nil, err
	}
	return &reader{c: c}, nil
}

func (r *reader) close() { _ = r.c.Close() }

// answer is one record read from the output topic.
type answer struct {
	key string
	// produced is the record's timestamp: when the process under test produced it (librdkafka sets it
	// on produce, in milliseconds). seen is when the reader read it, later by the reader's own lag.
	produced, seen time.Time
	error          string // the Seldon-Error-Reason of an error record; empty for an answer
}

// read calls f for each record until f returns false. It fails when no record comes for idle, or when
// stop is closed (the process under test exited).
func (r *reader) read(idle time.Duration, stop <-chan struct{}, f func(answer) bool) error {
	last := time.Now()
	for {
		select {
		case <-stop:
			return errExited
		default:
		}
		switch e := r.c.Poll(50).(type) {
		case *ckafka.Message:
			if e.TopicPartition.Error != nil {
				return fmt.Errorf("reading answers: %w", e.TopicPartition.Error)
			}
			last = time.Now()
			a := answer{key: string(e.Key), produced: e.Timestamp, seen: last}
			for _, h := range e.Headers {
				if h.Key == "Seldon-Error-Reason" {
					a.error = string(h.Value)
				}
			}
			if !f(a) {
				return nil
			}
		case ckafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("reading answers: %w", e)
			}
		}
		if time.Since(last) > idle {
			return fmt.Errorf("no answer for %v", idle)
		}
	}
}

// index is the record number in a key made by load.
func index(key, prefix string) (int, bool) {
	if len(key) <= len(prefix) || key[:len(prefix)] != prefix {
		return 0, false
	}
	i, err := strconv.Atoi(key[len(prefix):])
	return i, err == nil
}
