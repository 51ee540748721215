package testkit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// maxTopicNameLen is Kafka's limit on topic names.
const maxTopicNameLen = 249

// Topic creates a topic with a unique name derived from t.Name() and the
// given number of partitions (replication factor 1), waits until every
// partition has a leader, and deletes the topic when the test ends. It
// returns the topic name.
//
// The name is "test-" + t.Name() with every character other than
// [A-Za-z0-9_-] replaced by '-', truncated, plus a random suffix, so
// subtests and repeated runs (-count=N) never share a topic.
func Topic(t testing.TB, bootstrap string, partitions int) string {
	t.Helper()
	return TopicWithConfig(t, bootstrap, partitions, nil)
}

// TopicWithConfig is Topic with topic-level configuration, such as
// max.message.bytes.
func TopicWithConfig(t testing.TB, bootstrap string, partitions int, config map[string]string) string {
	t.Helper()
	name := uniqueTopicName(t.Name())
	createTopic(t, bootstrap, name, partitions, config)
	return name
}

// randomSuffix returns 12 random hex digits.
func randomSuffix() string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func uniqueTopicName(testName string) string {
	var b strings.Builder
	b.WriteString("test-")
	for _, r := range testName {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '-':
			b.WriteRune(r)
		default:
			// '.' is legal but collides with '_' in Kafka metric names; avoid it.
			b.WriteByte('-')
		}
	}
	tail := "-" + randomSuffix()
	base := b.String()
	if len(base) > maxTopicNameLen-len(tail) {
		base = base[:maxTopicNameLen-len(tail)]
	}
	return base + tail
}

// CreateTopic creates the topic name with the given number of partitions
// (replication factor 1), waits until every partition has a leader, and
// deletes the topic when the test ends. It fails the test if the topic
// already exists.
func CreateTopic(t testing.TB, bootstrap, name string, partitions int) {
	t.Helper()
	createTopic(t, bootstrap, name, partitions, nil)
}

func createTopic(t testing.TB, bootstrap, name string, partitions int, config map[string]string) {
	t.Helper()
	if partitions < 1 {
		t.Fatalf("testkit: CreateTopic(%q): partitions must be >= 1, got %d", name, partitions)
	}
	a := admin(t, bootstrap)

	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	res, err := a.CreateTopics(ctx, []kafka.TopicSpecification{{
		Topic:             name,
		NumPartitions:     partitions,
		ReplicationFactor: 1,
		Config:            config,
	}}, kafka.SetAdminOperationTimeout(adminTimeout))
	if err != nil {
		t.Fatalf("testkit: creating topic %q: %v", name, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			t.Fatalf("testkit: creating topic %q: %v", r.Topic, r.Error)
		}
	}
	t.Cleanup(func() { deleteTopic(t, bootstrap, name) })

	if err := waitTopicReady(a, name, partitions, readyTimeout); err != nil {
		t.Fatalf("testkit: topic %q: %v", name, err)
	}
}

// waitTopicReady polls metadata until the topic has the expected number of
// partitions and each has a leader.
func waitTopicReady(a *kafka.AdminClient, topic string, partitions int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for {
		last = topicReady(a, topic, partitions)
		if last == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %w", timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func topicReady(a *kafka.AdminClient, topic string, partitions int) error {
	md, err := a.GetMetadata(&topic, false, int(adminTimeout.Milliseconds()))
	if err != nil {
		return fmt.Errorf("metadata: %w", err)
	}
	tm, ok := md.Topics[topic]
	if !ok {
		return fmt.Errorf("not in metadata")
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return fmt.Errorf("metadata: %w", tm.Error)
	}
	if len(tm.Partitions) != partitions {
		return fmt.Errorf("metadata shows %d partitions, want %d", len(tm.Partitions), partitions)
	}
	for _, p := range tm.Partitions {
		if p.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("partition %d: %w", p.ID, p.Error)
		}
		if p.Leader < 0 {
			return fmt.Errorf("partition %d has no leader", p.ID)
		}
	}
	return nil
}

// partitionsOf returns the partition ids of an existing topic, failing the
// test if the topic does not exist.
func partitionsOf(t testing.TB, md *kafka.Metadata, topic string) []int32 {
	t.Helper()
	tm, ok := md.Topics[topic]
	if !ok {
		t.Fatalf("testkit: topic %q not in metadata", topic)
	}
	if tm.Error.Code() != kafka.ErrNoError {
		t.Fatalf("testkit: topic %q: %v", topic, tm.Error)
	}
	if len(tm.Partitions) == 0 {
		t.Fatalf("testkit: topic %q has no partitions", topic)
	}
	ids := make([]int32, 0, len(tm.Partitions))
	for _, p := range tm.Partitions {
		ids = append(ids, p.ID)
	}
	return ids
}

// deleteTopic is the cleanup of CreateTopic. A topic that is already gone
// is fine; other failures are reported with t.Errorf.
func deleteTopic(t testing.TB, bootstrap, name string) {
	t.Helper()
	a, err := sharedAdmin(bootstrap)
	if err != nil {
		t.Errorf("testkit: cleanup: admin client: %v", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	res, err := a.DeleteTopics(ctx, []string{name}, kafka.SetAdminOperationTimeout(adminTimeout))
	if err != nil {
		t.Errorf("testkit: cleanup: deleting topic %q: %v", name, err)
		return
	}
	for _, r := range res {
		if c := r.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrUnknownTopicOrPart {
			t.Errorf("testkit: cleanup: deleting topic %q: %v", r.Topic, r.Error)
		}
	}
}

// DeleteAtEnd deletes, when the test ends, topics that the code under test made; one already gone is
// fine.
func DeleteAtEnd(t testing.TB, bootstrap string, names ...string) {
	t.Helper()
	t.Cleanup(func() {
		for _, n := range names {
			deleteTopic(t, bootstrap, n)
		}
	})
}
