package lag

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/seldon-kafka/sidecar/internal/testkit"
	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/keda/kafkascaler"
)

// produceTo writes n records to each partition, as counts[partition] says.
func produceTo(t *testing.T, bootstrap, topic string, counts map[int32]int) {
	t.Helper()
	var recs []testkit.Record
	for p, n := range counts {
		for i := range n {
			part := p
			recs = append(recs, testkit.Record{Key: fmt.Appendf(nil, "k%d-%d", p, i), Value: []byte("v"), ToPartition: &part})
		}
	}
	testkit.Produce(t, bootstrap, topic, recs)
}

func settings(bootstrap, group string) kafka.Settings {
	return kafka.Settings{Brokers: bootstrap, ClientID: "lag-test", GroupID: group,
		Extra: map[string]string{"broker.address.family": "v4"}}
}

// TestSnapshotEqualsTheBrokersOffsets reads three groups on a 4-partition topic holding 10, 20, 5 and 0
// records: one that consumed part of it (4 of 10 on partition 0, all 20 on partition 1, nothing committed
// on 2 and 3), one that never committed, and an idle one that consumed everything. The snapshot must
// show what the broker shows, and the replica count must be KEDA's for each trigger setting.
func TestSnapshotEqualsTheBrokersOffsets(t *testing.T) {
	bootstrap := testkit.Bootstrap(t)
	topic := testkit.Topic(t, bootstrap, 4)
	produceTo(t, bootstrap, topic, map[int32]int{0: 10, 1: 20, 2: 5})

	partial := "lag-test-partial-" + topic
	testkit.Commit(t, bootstrap, partial, topic, map[int32]int64{0: 4, 1: 20})
	idle := "lag-test-idle-" + topic
	testkit.Commit(t, bootstrap, idle, topic, map[int32]int64{0: 10, 1: 20, 2: 5, 3: 0})
	none := "lag-test-none-" + topic

	end := testkit.EndOffsets(t, bootstrap, topic)
	if !maps.Equal(end, map[int32]int64{0: 10, 1: 20, 2: 5, 3: 0}) {
		t.Fatalf("setup: end offsets %v", end)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	snaps := map[string]Snapshot{}
	for _, g := range []string{partial, none, idle} {
		snap, err := Read(ctx, settings(bootstrap, g), topic)
		if err != nil {
			t.Fatalf("Read(%s): %v", g, err)
		}
		if len(snap.Partitions) != 4 {
			t.Fatalf("%s: %d partitions, want 4", g, len(snap.Partitions))
		}
		committed := testkit.CommittedOffsets(t, bootstrap, g, topic)
		for _, p := range snap.Partitions {
			if p.End != end[p.ID] || p.Start != 0 {
				t.Errorf("%s partition %d: start %d end %d, broker says start 0 end %d", g, p.ID, p.Start, p.End, end[p.ID])
			}
			want, has := committed[p.ID]
			if !has {
				want = kafkascaler.NoOffset
			}
			if p.Committed != want {
				t.Errorf("%s partition %d: committed %d, broker says %d (present %v)", g, p.ID, p.Committed, want, has)
			}
		}
		if g != none && (snap.GroupState != "Empty" || snap.Members != 0) {
			t.Errorf("%s: state %q with %d members, want Empty with 0", g, snap.GroupState, snap.Members)
		}
		snaps[g] = snap
	}

	one := func(n int32) *int32 { return &n }
	cases := []struct {
		name   string
		group  string
		md     map[string]string
		bounds kafkascaler.Bounds
		want   int32
	}{
		// partial, latest: 6 + 0 + 1 + 1 = 8; threshold 5: ceil(1.6) = 2.
		{"partial group, latest", partial, map[string]string{"lagThreshold": "5"}, kafkascaler.Bounds{}, 2},
		// partial, earliest: 6 + 0 + 5 + 0 = 11; threshold 2: 5 > 4 partitions, capped at 8: 4.
		{"partial group, earliest, capped at the partitions", partial, map[string]string{"lagThreshold": "2", "offsetResetPolicy": "earliest"}, kafkascaler.Bounds{}, 4},
		// allowIdleConsumers: ceil(11 / 2) = 6.
		{"partial group, allowIdleConsumers", partial, map[string]string{"lagThreshold": "2", "offsetResetPolicy": "earliest", "allowIdleConsumers": "true"}, kafkascaler.Bounds{}, 6},
		// limitToPartitionsWithLag: partitions 0 and 2 have lag: capped at 2 x 2: 2.
		{"partial group, limitToPartitionsWithLag", partial, map[string]string{"lagThreshold": "2", "offsetResetPolicy": "earliest", "limitToPartitionsWithLag": "true"}, kafkascaler.Bounds{}, 2},
		// scaleToZeroOnInvalidOffset: 6 + 0 + 0 + 0; threshold 5: 2.
		{"partial group, scaleToZeroOnInvalidOffset", partial, map[string]string{"lagThreshold": "5", "scaleToZeroOnInvalidOffset": "true"}, kafkascaler.Bounds{}, 2},
		// maxReplicaCount 3 holds the 4.
		{"partial group, maxReplicaCount", partial, map[string]string{"lagThreshold": "1", "offsetResetPolicy": "earliest"}, kafkascaler.Bounds{Max: one(3)}, 3},
		// no commits, earliest: 10 + 20 + 5 + 0 = 35; threshold 10: ceil(3.5) = 4.
		{"group with no commits, earliest", none, map[string]string{"lagThreshold": "10", "offsetResetPolicy": "earliest"}, kafkascaler.Bounds{}, 4},
		// no commits, latest: 4 x 1; threshold 10: 1.
		{"group with no commits, latest", none, map[string]string{"lagThreshold": "10"}, kafkascaler.Bounds{}, 1},
		// no commits, latest, activationLagThreshold 4: 4 is not above it: 0.
		{"group with no commits, below activation", none, map[string]string{"activationLagThreshold": "4"}, kafkascaler.Bounds{}, 0},
		// no commits, scaleToZeroOnInvalidOffset: 0, inactive: 0.
		{"group with no commits, scaleToZeroOnInvalidOffset", none, map[string]string{"offsetResetPolicy": "earliest", "scaleToZeroOnInvalidOffset": "true"}, kafkascaler.Bounds{}, 0},
		// idle: no lag: minReplicaCount 0 gives 0, 2 keeps 2, idleReplicaCount 0 below min 1 gives 0.
		{"idle group, minReplicaCount 0", idle, nil, kafkascaler.Bounds{Min: one(0)}, 0},
		{"idle group, minReplicaCount 2", idle, nil, kafkascaler.Bounds{Min: one(2)}, 2},
		{"idle group, idleReplicaCount 0", idle, nil, kafkascaler.Bounds{Min: one(1), Idle: one(0)}, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			md := maps.Clone(tc.md)
			if md == nil {
				md = map[string]string{}
			}
			md["topic"] = topic
			m, err := kafkascaler.Parse(kafkascaler.TypeKafka, md)
			if err != nil {
				t.Fatal(err)
			}
			d := kafkascaler.Replicas(m, snaps[tc.group].Partitions, tc.bounds, 0)
			if d.Replicas != tc.want {
				t.Errorf("replicas %d (%s), want %d", d.Replicas, d.Reason, tc.want)
			}
		})
	}
}

func TestReadSaysWhenTheTopicDoesNotExist(t *testing.T) {
	bootstrap := testkit.Bootstrap(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := Read(ctx, settings(bootstrap, "g"), "no-such-topic-lag-test")
	if err == nil || !strings.Contains(err.Error(), `topic "no-such-topic-lag-test" does not exist`) {
		t.Fatalf("Read of a missing topic: %v, want an error saying it does not exist", err)
	}
}
