package testkit

import (
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func TestUniqueTopicName(t *testing.T) {
	a := uniqueTopicName("TestX/sub case.1")
	b := uniqueTopicName("TestX/sub case.1")
	if a == b {
		t.Fatalf("two names for the same test are equal: %q", a)
	}
	if !strings.HasPrefix(a, "test-TestX-sub-case-1-") {
		t.Fatalf("name %q does not start with the sanitized test name", a)
	}
	long := uniqueTopicName(strings.Repeat("x", 500))
	if len(long) != maxTopicNameLen {
		t.Fatalf("long name has %d chars, want %d", len(long), maxTopicNameLen)
	}
}

// TestRoundTrip proves the helpers against the real broker: produce to a
// 3-partition topic, read it back, check end and committed offsets.
func TestRoundTrip(t *testing.T) {
	started := time.Now().Truncate(time.Millisecond)
	bootstrap := Bootstrap(t)
	topic := Topic(t, bootstrap, 3)

	const n = 30
	recs := make([]Record, n)
	for i := range recs {
		recs[i] = Record{
			Key:     fmt.Appendf(nil, "key-%02d", i),
			Value:   fmt.Appendf(nil, "value-%02d", i),
			Headers: map[string]string{"index": fmt.Sprint(i), "source": "testkit"},
		}
	}
	// One record with a duplicated header key: the map keeps the last value.
	recs[0].RawHeaders = []kafka.Header{{Key: "dup", Value: []byte("first")}, {Key: "dup", Value: []byte("second")}}
	delivered := Produce(t, bootstrap, topic, recs)

	perPartition := map[int32]int64{}
	for i, d := range delivered {
		if string(d.Key) != string(recs[i].Key) {
			t.Fatalf("delivered[%d] key %q, want %q", i, d.Key, recs[i].Key)
		}
		if d.Partition < 0 || d.Partition > 2 || d.Offset < 0 {
			t.Fatalf("delivered[%d] has no position: partition %d offset %d", i, d.Partition, d.Offset)
		}
		perPartition[d.Partition]++
	}
	if len(perPartition) < 2 {
		t.Errorf("30 keyed records all went to %d partition(s): %v", len(perPartition), perPartition)
	}

	got := Consume(t, bootstrap, topic, n, 30*time.Second)
	if len(got) != n {
		t.Fatalf("Consume returned %d records, want %d", len(got), n)
	}
	byKey := map[string]Record{}
	for i, r := range got {
		if i > 0 {
			prev := got[i-1]
			if r.Partition < prev.Partition || (r.Partition == prev.Partition && r.Offset <= prev.Offset) {
				t.Errorf("records not ordered by partition, offset: %d/%d after %d/%d", r.Partition, r.Offset, prev.Partition, prev.Offset)
			}
		}
		byKey[string(r.Key)] = r
	}
	for i, want := range recs {
		r, ok := byKey[string(want.Key)]
		if !ok {
			t.Errorf("record with key %q not consumed", want.Key)
			continue
		}
		if string(r.Value) != string(want.Value) {
			t.Errorf("key %q: value %q, want %q", want.Key, r.Value, want.Value)
		}
		if r.Headers["index"] != fmt.Sprint(i) || r.Headers["source"] != "testkit" {
			t.Errorf("key %q: headers %v", want.Key, r.Headers)
		}
		if r.Partition != delivered[i].Partition || r.Offset != delivered[i].Offset {
			t.Errorf("key %q: consumed at %d/%d, delivered at %d/%d", want.Key, r.Partition, r.Offset, delivered[i].Partition, delivered[i].Offset)
		}
		if r.Timestamp.Before(started) || r.Timestamp.After(time.Now()) {
			t.Errorf("key %q: timestamp %v not between the test's start %v and now", want.Key, r.Timestamp, started)
		}
	}
	first := byKey["key-00"]
	if first.Headers["dup"] != "second" {
		t.Errorf("duplicate header: map has %q, want the last value %q", first.Headers["dup"], "second")
	}
	if len(first.RawHeaders) != 4 || string(first.RawHeaders[0].Value) != "first" || string(first.RawHeaders[1].Value) != "second" {
		t.Errorf("RawHeaders = %v, want dup=first, dup=second, index, source", first.RawHeaders)
	}

	end := EndOffsets(t, bootstrap, topic)
	var sum int64
	for _, o := range end {
		sum += o
	}
	if len(end) != 3 || sum != n {
		t.Errorf("EndOffsets = %v (sum %d), want 3 partitions summing to %d", end, sum, n)
	}
	if !maps.Equal(end, perPartition) {
		t.Errorf("EndOffsets = %v, delivery reports per partition %v", end, perPartition)
	}

	all := ConsumeAll(t, bootstrap, topic, 500*time.Millisecond)
	if len(all) != n {
		t.Errorf("ConsumeAll returned %d records, want %d", len(all), n)
	}

	// A group commits offsets for two of the three partitions.
	group := "testkit-group-" + randomSuffix()
	if got := CommittedOffsets(t, bootstrap, group, topic); len(got) != 0 {
		t.Fatalf("CommittedOffsets of a new group = %v, want empty", got)
	}
	commit := map[int32]int64{0: min(end[0], 2), 2: end[2]}
	Commit(t, bootstrap, group, topic, commit)
	if got := CommittedOffsets(t, bootstrap, group, topic); !maps.Equal(got, commit) {
		t.Errorf("CommittedOffsets = %v, want %v", got, commit)
	}
	WaitCommitted(t, bootstrap, group, topic, commit, 10*time.Second)
}

// TestProduceToPartitionAndConsumeAll checks ToPartition and that ConsumeAll
// returns on an empty topic.
func TestProduceToPartitionAndConsumeAll(t *testing.T) {
	bootstrap := Bootstrap(t)
	topic := Topic(t, bootstrap, 2)
	if got := ConsumeAll(t, bootstrap, topic, 200*time.Millisecond); len(got) != 0 {
		t.Fatalf("ConsumeAll on an empty topic returned %d records", len(got))
	}
	ts := time.UnixMilli(1_700_000_000_000)
	Produce(t, bootstrap, topic, []Record{
		{Value: []byte("a"), ToPartition: new(int32(1)), Timestamp: ts},
		{Value: []byte("b"), ToPartition: new(int32(1))},
	})
	got := ConsumeAll(t, bootstrap, topic, 200*time.Millisecond)
	if len(got) != 2 {
		t.Fatalf("ConsumeAll returned %d records, want 2", len(got))
	}
	for i, want := range []string{"a", "b"} {
		if got[i].Partition != 1 || got[i].Offset != int64(i) || string(got[i].Value) != want {
			t.Errorf("record %d: %q at %d/%d, want %q at 1/%d", i, got[i].Value, got[i].Partition, got[i].Offset, want, i)
		}
	}
	if !got[0].Timestamp.Equal(ts) {
		t.Errorf("timestamp %v, want %v", got[0].Timestamp, ts)
	}
	if got[0].Key != nil || got[0].Headers != nil {
		t.Errorf("record without key and headers read back as key %q headers %v", got[0].Key, got[0].Headers)
	}
	if end := EndOffsets(t, bootstrap, topic); !maps.Equal(end, map[int32]int64{0: 0, 1: 2}) {
		t.Errorf("EndOffsets = %v", end)
	}
}

func TestCreateTopicExplicitName(t *testing.T) {
	bootstrap := Bootstrap(t)
	name := "testkit-explicit-" + randomSuffix()
	t.Run("create", func(t *testing.T) {
		CreateTopic(t, bootstrap, name, 1)
		Produce(t, bootstrap, name, []Record{{Key: []byte("k"), Value: []byte("v")}})
		if got := Consume(t, bootstrap, name, 1, 20*time.Second); string(got[0].Value) != "v" {
			t.Fatalf("read %q, want %q", got[0].Value, "v")
		}
	})
	// The subtest's cleanup deleted the topic.
	a := admin(t, bootstrap)
	deadline := time.Now().Add(20 * time.Second)
	for {
		md, err := a.GetMetadata(&name, false, 10_000)
		if err != nil {
			t.Fatal(err)
		}
		if md.Topics[name].Error.Code() == kafka.ErrUnknownTopicOrPart {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("topic %q still exists after its test ended: %v", name, md.Topics[name])
		}
		time.Sleep(100 * time.Millisecond)
	}
}
