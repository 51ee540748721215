package testkit

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Record is one Kafka record, as given to Produce and as returned by Consume.
type Record struct {
	Key   []byte
	Value []byte

	// Headers are the record's headers by key. When a key occurs more than
	// once, the last value wins; a null header value reads as "".
	// Produce sends RawHeaders first, then Headers in key order.
	Headers map[string]string
	// RawHeaders are all headers in order, duplicates included. Consume
	// fills it; Produce sends it (before Headers).
	RawHeaders []kafka.Header

	// ToPartition selects the partition Produce writes the record to; nil
	// means any partition, chosen by the producer's partitioner (murmur2 of
	// the key, as Java clients do; random for a nil key). For example
	// ToPartition: new(int32(2)). Consume leaves it nil.
	ToPartition *int32

	// Partition, Offset and Timestamp say where the record is in the topic.
	// Consume fills all three, the result of Produce Partition and Offset.
	// Produce ignores Partition and Offset (see ToPartition) and uses
	// Timestamp when it is non-zero (otherwise the producer sets the current
	// time).
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// Produce writes recs to topic with an idempotent producer (acks=all), in
// order, waits for every delivery report, and fails the test if the topic
// does not exist or any record was not delivered. It returns copies of recs,
// in the same order, with Partition and Offset set from the delivery reports
// (callers that only write may ignore it). Timestamp is left as given:
// confluent-kafka-go's delivery reports do not carry the timestamp.
func Produce(t testing.TB, bootstrap, topic string, recs []Record) []Record {
	t.Helper()
	p, err := kafka.NewProducer(config(bootstrap, kafka.ConfigMap{
		"enable.idempotence": true,
		"acks":               "all",
		"linger.ms":          5,
		"partitioner":        "murmur2_random",
		"message.timeout.ms": int(deliveryTimeout.Milliseconds()) / 2,
		// librdkafka's most, not its 1 MB: tests write requests of tens of megabytes; what a topic takes
		// is the broker's to say.
		"message.max.bytes": 1000000000,
		// Only the key is copied back (for error messages); Opaque carries
		// the record's index.
		"go.delivery.report.fields": "key",
	}))
	if err != nil {
		t.Fatalf("testkit: creating producer: %v", err)
	}
	defer p.Close()

	// Fail fast and clearly on a missing topic: otherwise librdkafka waits for
	// it to appear until the message times out.
	md, err := p.GetMetadata(&topic, false, int(adminTimeout.Milliseconds()))
	if err != nil {
		t.Fatalf("testkit: Produce: metadata for %q: %v", topic, err)
	}
	partitionsOf(t, md, topic)

	reports := make(chan kafka.Event, len(recs))
	for i, r := range recs {
		msg := &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            r.Key,
			Value:          r.Value,
			Headers:        toKafkaHeaders(r),
			Timestamp:      r.Timestamp,
			Opaque:         i,
		}
		if r.ToPartition != nil {
			msg.TopicPartition.Partition = *r.ToPartition
		}
		if err := p.Produce(msg, reports); err != nil {
			t.Fatalf("testkit: producing record %d to %q: %v", i, topic, err)
		}
	}

	out := make([]Record, len(recs))
	copy(out, recs)
	timeout := time.After(deliveryTimeout)
	for done := 0; done < len(recs); {
		select {
		case ev := <-reports:
			m, ok := ev.(*kafka.Message)
			if !ok {
				t.Fatalf("testkit: Produce: unexpected event %T: %v", ev, ev)
			}
			i := m.Opaque.(int)
			if m.TopicPartition.Error != nil {
				t.Fatalf("testkit: delivering record %d (key %q) to %q: %v", i, m.Key, topic, m.TopicPartition.Error)
			}
			out[i].Partition = m.TopicPartition.Partition
			out[i].Offset = int64(m.TopicPartition.Offset)
			done++
		case <-timeout:
			t.Fatalf("testkit: Produce: only %d of %d delivery reports for %q after %v", done, len(recs), topic, deliveryTimeout)
		}
	}
	return out
}

func toKafkaHeaders(r Record) []kafka.Header {
	if len(r.RawHeaders) == 0 && len(r.Headers) == 0 {
		return nil
	}
	hs := make([]kafka.Header, 0, len(r.RawHeaders)+len(r.Headers))
	hs = append(hs, r.RawHeaders...)
	keys := make([]string, 0, len(r.Headers))
	for k := range r.Headers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		hs = append(hs, kafka.Header{Key: k, Value: []byte(r.Headers[k])})
	}
	return hs
}

func fromMessage(m *kafka.Message) Record {
	r := Record{
		Key:       m.Key,
		Value:     m.Value,
		Partition: m.TopicPartition.Partition,
		Offset:    int64(m.TopicPartition.Offset),
		Timestamp: m.Timestamp,
	}
	if len(m.Headers) > 0 {
		r.RawHeaders = slices.Clone(m.Headers)
		r.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			r.Headers[h.Key] = string(h.Value)
		}
	}
	return r
}

// sortRecords orders records by partition, then offset.
func sortRecords(recs []Record) {
	slices.SortFunc(recs, func(a, b Record) int {
		return cmp.Or(cmp.Compare(a.Partition, b.Partition), cmp.Compare(a.Offset, b.Offset))
	})
}

// reader reads a whole topic from the beginning without a consumer group:
// all partitions are assigned explicitly and nothing is committed.
type reader struct {
	t          testing.TB
	c          *kafka.Consumer
	topic      string
	partitions []int32
	lastErr    error
}

func newReader(t testing.TB, bootstrap, topic string) *reader {
	t.Helper()
	c, err := kafka.NewConsumer(config(bootstrap, kafka.ConfigMap{
		// librdkafka needs a group.id, but with Assign and no commits the
		// group never exists on the broker.
		"group.id":                 "testkit-reader-" + randomSuffix(),
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"enable.partition.eof":     true,
		"auto.offset.reset":        "earliest",
		// librdkafka's default, stated: records of aborted transactions are
		// never returned, nor are records of open ones.
		"isolation.level": "read_committed",
	}))
	if err != nil {
		t.Fatalf("testkit: creating consumer: %v", err)
	}
	md, err := c.GetMetadata(&topic, false, int(adminTimeout.Milliseconds()))
	if err != nil {
		_ = c.Close()
		t.Fatalf("testkit: metadata for %q: %v", topic, err)
	}
	ids := partitionsOf(t, md, topic)
	tps := make([]kafka.TopicPartition, len(ids))
	for i, id := range ids {
		tps[i] = kafka.TopicPartition{Topic: &topic, Partition: id, Offset: kafka.OffsetBeginning}
	}
	if err := c.Assign(tps); err != nil {
		_ = c.Close()
		t.Fatalf("testkit: assigning %q: %v", topic, err)
	}
	return &reader{t: t, c: c, topic: topic, partitions: ids}
}

func (r *reader) close() { _ = r.c.Close() }

// poll waits up to d for one event and returns the record or the partition
// that reached its end (eof >= 0); fatal consumer errors fail the test.
func (r *reader) poll(d time.Duration) (rec *Record, eof int32) {
	r.t.Helper()
	ms := max(int(d.Milliseconds()), 1)
	switch ev := r.c.Poll(ms).(type) {
	case *kafka.Message:
		if ev.TopicPartition.Error != nil {
			r.lastErr = ev.TopicPartition.Error
			return nil, -1
		}
		rec := fromMessage(ev)
		return &rec, -1
	case kafka.PartitionEOF:
		return nil, ev.Partition
	case kafka.Error:
		if ev.IsFatal() {
			r.t.Fatalf("testkit: consuming %q: fatal error: %v", r.topic, ev)
		}
		r.lastErr = ev
	}
	return nil, -1
}

// Consume reads topic from the beginning of every partition until n records
// have been read, and returns them ordered by partition, then offset. It
// fails the test, saying how many records it read, if fewer than n arrive
// within timeout. It returns exactly n records even if the topic has more
// (use ConsumeAll to see everything). It uses no consumer group and commits
// nothing; it reads with isolation.level=read_committed.
func Consume(t testing.TB, bootstrap, topic string, n int, timeout time.Duration) []Record {
	t.Helper()
	r := newReader(t, bootstrap, topic)
	defer r.close()
	out := make([]Record, 0, n)
	deadline := time.Now().Add(timeout)
	for len(out) < n {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("testkit: Consume(%q): read %d of %d records in %v (last consumer error: %v)",
				topic, len(out), n, timeout, r.lastErr)
		}
		if rec, _ := r.poll(min(left, 100*time.Millisecond)); rec != nil {
			out = append(out, *rec)
		}
	}
	sortRecords(out)
	return out
}

// ConsumeAll reads topic from the beginning of every partition until it has
// reached the end of every partition and then no new record has arrived for
// quiet (measured from the later of the call and the last record), and
// returns everything read, ordered by partition, then offset. Reaching the
// end of all partitions must happen within a minute. It uses no consumer
// group, commits nothing, and reads with isolation.level=read_committed.
func ConsumeAll(t testing.TB, bootstrap, topic string, quiet time.Duration) []Record {
	t.Helper()
	r := newReader(t, bootstrap, topic)
	defer r.close()
	var out []Record
	start := time.Now()
	last := start
	atEnd := make(map[int32]bool, len(r.partitions))
	for {
		now := time.Now()
		caughtUp := len(atEnd) == len(r.partitions)
		if caughtUp && now.Sub(last) >= quiet {
			break
		}
		if !caughtUp && now.Sub(start) > catchUpTimeout {
			t.Fatalf("testkit: ConsumeAll(%q): did not reach the end of all %d partitions within %v (at end: %v; read %d records; last consumer error: %v)",
				topic, len(r.partitions), catchUpTimeout, atEnd, len(out), r.lastErr)
		}
		wait := 100 * time.Millisecond
		if caughtUp {
			wait = min(wait, max(quiet-now.Sub(last), time.Millisecond))
		}
		rec, eof := r.poll(wait)
		switch {
		case rec != nil:
			out = append(out, *rec)
			last = time.Now()
		case eof >= 0:
			atEnd[eof] = true
		}
	}
	sortRecords(out)
	return out
}
