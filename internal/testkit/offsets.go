package testkit

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// CommittedOffsets returns the offsets that consumer group group has
// committed for topic, by partition. A committed offset is the offset of the
// next record the group will read. Partitions without a committed offset are
// absent from the map (never -1001), so an unknown group or a group that
// committed nothing for topic gives an empty, non-nil map.
func CommittedOffsets(t testing.TB, bootstrap, group, topic string) map[int32]int64 {
	t.Helper()
	a := admin(t, bootstrap)
	got, err := committedOffsets(a, group, topic)
	if err != nil {
		t.Fatalf("testkit: committed offsets of group %q on %q: %v", group, topic, err)
	}
	return got
}

func committedOffsets(a *kafka.AdminClient, group, topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	// nil Partitions asks for every partition the group has an offset for.
	// Offsets of a transaction that is still open are not shown (the broker
	// returns the last stable ones; require_stable is off).
	res, err := a.ListConsumerGroupOffsets(ctx,
		[]kafka.ConsumerGroupTopicPartitions{{Group: group}})
	if err != nil {
		return nil, err
	}
	out := make(map[int32]int64)
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Topic == nil || *tp.Topic != topic {
				continue
			}
			if tp.Error != nil {
				return nil, tp.Error
			}
			if tp.Offset < 0 { // kafka.OffsetInvalid (-1001): nothing committed
				continue
			}
			out[tp.Partition] = int64(tp.Offset)
		}
	}
	return out, nil
}

// EndOffsets returns the end offset (high watermark) of every partition of
// topic: the offset the next record written to it will get. For a topic
// whose records were never deleted this is the number of offsets used, which
// includes the control records that end transactions, so with transactional
// producers it exceeds the number of records Consume and ConsumeAll return.
func EndOffsets(t testing.TB, bootstrap, topic string) map[int32]int64 {
	t.Helper()
	a := admin(t, bootstrap)
	md, err := a.GetMetadata(&topic, false, int(adminTimeout.Milliseconds()))
	if err != nil {
		t.Fatalf("testkit: EndOffsets: metadata for %q: %v", topic, err)
	}
	ids := partitionsOf(t, md, topic)
	req := make(map[kafka.TopicPartition]kafka.OffsetSpec, len(ids))
	for _, id := range ids {
		req[kafka.TopicPartition{Topic: &topic, Partition: id}] = kafka.LatestOffsetSpec
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	res, err := a.ListOffsets(ctx, req, kafka.SetAdminIsolationLevel(kafka.IsolationLevelReadUncommitted))
	if err != nil {
		t.Fatalf("testkit: EndOffsets(%q): %v", topic, err)
	}
	out := make(map[int32]int64, len(ids))
	for tp, info := range res.ResultInfos {
		if info.Error.Code() != kafka.ErrNoError {
			t.Fatalf("testkit: EndOffsets(%q): partition %d: %v", topic, tp.Partition, info.Error)
		}
		out[tp.Partition] = int64(info.Offset)
	}
	if len(out) != len(ids) {
		t.Fatalf("testkit: EndOffsets(%q): got offsets for %d of %d partitions: %v", topic, len(out), len(ids), out)
	}
	return out
}

// WaitCommitted polls the committed offsets of group on topic (as
// CommittedOffsets reports them) until they equal want, and fails the test
// with both maps if they do not within timeout. Partitions absent from want
// must have no committed offset.
func WaitCommitted(t testing.TB, bootstrap, group, topic string, want map[int32]int64, timeout time.Duration) {
	t.Helper()
	a := admin(t, bootstrap)
	deadline := time.Now().Add(timeout)
	var got map[int32]int64
	var err error
	for {
		got, err = committedOffsets(a, group, topic)
		if err == nil && maps.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("testkit: WaitCommitted(group %q, topic %q): after %v: want %v, last error: %v (last offsets %v)",
			group, topic, timeout, want, err, got)
	}
	t.Fatalf("testkit: WaitCommitted(group %q, topic %q): after %v: committed %v, want %v",
		group, topic, timeout, got, want)
}

// Commit commits offsets for group the way a consumer that has read that far does, without joining the
// group (assign-only consumers commit with generation -1), and waits until the broker reports them.
func Commit(t testing.TB, bootstrap, group, topic string, offsets map[int32]int64) {
	t.Helper()
	c, err := kafka.NewConsumer(config(bootstrap, kafka.ConfigMap{
		"group.id":           group,
		"enable.auto.commit": false,
	}))
	if err != nil {
		t.Fatalf("testkit: creating consumer: %v", err)
	}
	defer c.Close()
	var tps []kafka.TopicPartition
	for p, o := range offsets {
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(o)})
	}
	// On a fresh broker the group coordinator may still be loading or moving: those answers are retried.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := commitOnce(c, tps)
		if err == nil {
			break
		}
		var ke kafka.Error
		retriable := errors.As(err, &ke) && (ke.Code() == kafka.ErrNotCoordinator ||
			ke.Code() == kafka.ErrCoordinatorLoadInProgress || ke.Code() == kafka.ErrCoordinatorNotAvailable)
		if !retriable || time.Now().After(deadline) {
			t.Fatalf("testkit: committing %v for %s: %v", offsets, group, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	WaitCommitted(t, bootstrap, group, topic, offsets, 30*time.Second)
}

// commitOnce commits tps and returns the first error, of the request or of a partition.
func commitOnce(c *kafka.Consumer, tps []kafka.TopicPartition) error {
	res, err := c.CommitOffsets(tps)
	if err != nil {
		return err
	}
	for _, tp := range res {
		if tp.Error != nil {
			return tp.Error
		}
	}
	return nil
}
