package main

import (
	"testing"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/internal/testkit"
)

// commitOffsets commits offsets for group as a consumer that has read that far.
func commitOffsets(t *testing.T, bootstrap, group, topic string, offsets map[int32]int64) {
	t.Helper()
	c, err := ckafka.NewConsumer(&ckafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": false,
		"broker.address.family": "v4", "log_level": 3,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var tps []ckafka.TopicPartition
	for p, off := range offsets {
		tps = append(tps, ckafka.TopicPartition{Topic: &topic, Partition: p, Offset: ckafka.Offset(off)})
	}
	if _, err := c.CommitOffsets(tps); err != nil {
		t.Fatal(err)
	}
	testkit.WaitCommitted(t, bootstrap, group, topic, offsets, 30*time.Second)
}
