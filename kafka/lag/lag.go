// Package lag reads what KEDA's kafka scaler reads about a consumer group on one topic: for each partition
// the group's committed offset and the log's start and end offsets, plus the group's state. It connects
// with the sidecar's own client settings (kafka.Settings), so TLS and SASL set there apply here too.
package lag

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/keda/kafkascaler"
)

// Snapshot is one reading of a group's position on a topic.
type Snapshot struct {
	Group      string
	Topic      string
	GroupState string // Stable, Empty, Dead (no such group), ...
	Members    int
	Partitions []kafkascaler.Partition // by partition id; Committed is kafkascaler.NoOffset when none
}

// Read takes a snapshot of group s.GroupID on topic. The end offsets are high watermarks
// (read_uncommitted), as KEDA's scalers list them.
func Read(ctx context.Context, s kafka.Settings, topic string) (Snapshot, error) {
	if s.GroupID == "" {
		return Snapshot{}, errors.New("lag: no consumer group given")
	}
	if topic == "" {
		return Snapshot{}, errors.New("lag: no topic given")
	}
	cm, err := kafka.AdminConfig(s)
	if err != nil {
		return Snapshot{}, err
	}
	a, err := ckafka.NewAdminClient(cm)
	if err != nil {
		return Snapshot{}, fmt.Errorf("lag: admin client for %s: %w", s.Brokers, err)
	}
	defer a.Close()
	return read(ctx, a, s.GroupID, topic)
}

func timeoutMs(ctx context.Context) int {
	if dl, ok := ctx.Deadline(); ok {
		return max(int(time.Until(dl).Milliseconds()), 1)
	}
	return 30_000
}

func read(ctx context.Context, a *ckafka.AdminClient, group, topic string) (Snapshot, error) {
	snap := Snapshot{Group: group, Topic: topic}
	md, err := a.GetMetadata(&topic, false, timeoutMs(ctx))
	if err != nil {
		return snap, fmt.Errorf("lag: metadata of topic %q: %w", topic, err)
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() == ckafka.ErrUnknownTopicOrPart || (tm.Error.Code() == ckafka.ErrNoError && len(tm.Partitions) == 0) {
		return snap, fmt.Errorf("lag: topic %q does not exist", topic)
	}
	if tm.Error.Code() != ckafka.ErrNoError {
		return snap, fmt.Errorf("lag: topic %q: %w", topic, tm.Error)
	}
	ids := make([]int32, 0, len(tm.Partitions))
	for _, p := range tm.Partitions {
		ids = append(ids, p.ID)
	}
	slices.Sort(ids)
	byID := make(map[int32]*kafkascaler.Partition, len(ids))
	snap.Partitions = make([]kafkascaler.Partition, len(ids))
	tps := make([]ckafka.TopicPartition, len(ids))
	for i, id := range ids {
		snap.Partitions[i] = kafkascaler.Partition{ID: id, Committed: kafkascaler.NoOffset}
		byID[id] = &snap.Partitions[i]
		tps[i] = ckafka.TopicPartition{Topic: &topic, Partition: id}
	}

	committed, err := a.ListConsumerGroupOffsets(ctx, []ckafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: tps}})
	if err != nil {
		return snap, fmt.Errorf("lag: committed offsets of group %q: %w", group, err)
	}
	for _, g := range committed.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Error != nil {
				return snap, fmt.Errorf("lag: committed offset of group %q on %s[%d]: %w", group, topic, tp.Partition, tp.Error)
			}
			if p := byID[tp.Partition]; p != nil && tp.Offset >= 0 {
				p.Committed = int64(tp.Offset)
			}
		}
	}

	for _, spec := range []struct {
		spec ckafka.OffsetSpec
		set  func(p *kafkascaler.Partition, off int64)
	}{
		{ckafka.EarliestOffsetSpec, func(p *kafkascaler.Partition, off int64) { p.Start = off }},
		{ckafka.LatestOffsetSpec, func(p *kafkascaler.Partition, off int64) { p.End = off }},
	} {
		req := make(map[ckafka.TopicPartition]ckafka.OffsetSpec, len(ids))
		for _, tp := range tps {
			req[tp] = spec.spec
		}
		res, err := a.ListOffsets(ctx, req, ckafka.SetAdminIsolationLevel(ckafka.IsolationLevelReadUncommitted))
		if err != nil {
			return snap, fmt.Errorf("lag: offsets of topic %q: %w", topic, err)
		}
		for tp, info := range res.ResultInfos {
			if info.Error.Code() != ckafka.ErrNoError {
				return snap, fmt.Errorf("lag: offsets of %s[%d]: %w", topic, tp.Partition, info.Error)
			}
			if p := byID[tp.Partition]; p != nil {
				spec.set(p, int64(info.Offset))
			}
		}
	}

	desc, err := a.DescribeConsumerGroups(ctx, []string{group})
	if err != nil {
		return snap, fmt.Errorf("lag: describing group %q: %w", group, err)
	}
	for _, g := range desc.ConsumerGroupDescriptions {
		if g.Error.Code() == ckafka.ErrNoError {
			snap.GroupState = g.State.String()
			snap.Members = len(g.Members)
		}
	}
	return snap, nil
}
