package kafkascaler

import (
	"errors"
	"testing"
)

func ptr(n int32) *int32 { return &n }

func mustParse(t *testing.T, md map[string]string) Metadata {
	t.Helper()
	m, err := Parse(TypeKafka, md)
	if err != nil {
		t.Fatalf("Parse(%v): %v", md, err)
	}
	return m
}

func TestLagOfAPartitionFollowsOffsetResetPolicy(t *testing.T) {
	committed := Partition{ID: 0, Committed: 40, Start: 10, End: 100}
	none := Partition{ID: 1, Committed: NoOffset, Start: 10, End: 100}
	retentionAhead := Partition{ID: 2, Committed: NoOffset, Start: 120, End: 100} // start sampled after end
	cases := []struct {
		name string
		md   map[string]string
		p    Partition
		want int64
	}{
		{"committed partition: end minus committed", nil, committed, 60},
		{"committed partition ignores the policy", map[string]string{"offsetResetPolicy": "earliest"}, committed, 60},
		{"no commit under latest counts 1", nil, none, 1},
		{"no commit under latest with scaleToZeroOnInvalidOffset counts 0", map[string]string{"scaleToZeroOnInvalidOffset": "true"}, none, 0},
		{"no commit under earliest counts the retained records", map[string]string{"offsetResetPolicy": "earliest"}, none, 90},
		{"no commit under earliest with scaleToZeroOnInvalidOffset counts 0", map[string]string{"offsetResetPolicy": "earliest", "scaleToZeroOnInvalidOffset": "true"}, none, 0},
		{"retention past the end counts 0, not less", map[string]string{"offsetResetPolicy": "earliest"}, retentionAhead, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := mustParse(t, tc.md).Lag(tc.p); got != tc.want {
				t.Errorf("Lag = %d, want %d", got, tc.want)
			}
		})
	}
}

// Four partitions: 6 records behind on 0, caught up on 1, never committed on 2 (5 records retained) and 3
// (empty). Under latest: 6 + 0 + 1 + 1 = 8. Under earliest: 6 + 0 + 5 + 0 = 11.
var fourPartitions = []Partition{
	{ID: 0, Committed: 4, Start: 0, End: 10},
	{ID: 1, Committed: 20, Start: 0, End: 20},
	{ID: 2, Committed: NoOffset, Start: 0, End: 5},
	{ID: 3, Committed: NoOffset, Start: 0, End: 0},
}

// A committed offset past the end on partition 0 (the topic was deleted and made again): its lag is
// 2 - 30 = -28, and the sum with partition 1's 5 is -23.
var committedPastTheEnd = []Partition{
	{ID: 0, Committed: 30, Start: 0, End: 2},
	{ID: 1, Committed: 0, Start: 0, End: 5},
}

func TestReplicasFollowKEDAAndTheHPA(t *testing.T) {
	cases := []struct {
		name       string
		md         map[string]string
		parts      []Partition // nil: fourPartitions
		b          Bounds
		current    int32
		wantLag    int64
		wantMetric int64
		wantActive bool
		want       int32
	}{
		{name: "latest: 8 at threshold 5 is ceil(1.6) = 2",
			md: map[string]string{"lagThreshold": "5"}, wantLag: 8, wantMetric: 8, wantActive: true, want: 2},
		{name: "earliest: 11 at threshold 2 is capped at 4 partitions x 2 = 8, so 4 replicas",
			md: map[string]string{"lagThreshold": "2", "offsetResetPolicy": "earliest"}, wantLag: 11, wantMetric: 8, wantActive: true, want: 4},
		{name: "allowIdleConsumers lifts the cap: ceil(11 / 2) = 6",
			md: map[string]string{"lagThreshold": "2", "offsetResetPolicy": "earliest", "allowIdleConsumers": "true"}, wantLag: 11, wantMetric: 11, wantActive: true, want: 6},
		{name: "limitToPartitionsWithLag caps at the 2 partitions with lag",
			md: map[string]string{"lagThreshold": "2", "offsetResetPolicy": "earliest", "limitToPartitionsWithLag": "true", "topic": "t"}, wantLag: 11, wantMetric: 4, wantActive: true, want: 2},
		{name: "ensureEvenDistributionOfPartitions rounds 11 at threshold 3 up to 4 x 3",
			md: map[string]string{"lagThreshold": "3", "offsetResetPolicy": "earliest", "ensureEvenDistributionOfPartitions": "true", "topic": "t"}, wantLag: 11, wantMetric: 12, wantActive: true, want: 4},
		{name: "ensureEvenDistributionOfPartitions rounds 11 at threshold 6 up to 2 x 6",
			md: map[string]string{"lagThreshold": "6", "offsetResetPolicy": "earliest", "ensureEvenDistributionOfPartitions": "true", "topic": "t"}, wantLag: 11, wantMetric: 12, wantActive: true, want: 2},
		{name: "partitionLimitation counts partitions 0 and 1 only: 6, capped at 2 x 2",
			md: map[string]string{"lagThreshold": "2", "offsetResetPolicy": "earliest", "partitionLimitation": "0-1", "topic": "t"}, wantLag: 6, wantMetric: 4, wantActive: true, want: 2},
		{name: "the cap compares whole multiples: 11 / 3 = 3 is not above 4 partitions, so ceil(11 / 3) = 4",
			md: map[string]string{"lagThreshold": "3", "offsetResetPolicy": "earliest"}, wantLag: 11, wantMetric: 11, wantActive: true, want: 4},
		{name: "partitionLimitation 0,2 counts 6 + 5 = 11 over 2 partitions, capped at 2 x 2",
			md: map[string]string{"lagThreshold": "2", "offsetResetPolicy": "earliest", "partitionLimitation": "0,2", "topic": "t"}, wantLag: 11, wantMetric: 4, wantActive: true, want: 2},
		{name: "maxReplicaCount holds it",
			md: map[string]string{"lagThreshold": "1", "offsetResetPolicy": "earliest"}, b: Bounds{Max: ptr(3)}, wantLag: 11, wantMetric: 4, wantActive: true, want: 3},
		{name: "scaleToZeroOnInvalidOffset leaves 6 at threshold 5: 2",
			md: map[string]string{"lagThreshold": "5", "scaleToZeroOnInvalidOffset": "true"}, wantLag: 6, wantMetric: 6, wantActive: true, want: 2},
		{name: "not above activationLagThreshold with minReplicaCount 0: 0",
			md: map[string]string{"activationLagThreshold": "8"}, b: Bounds{Min: ptr(0)}, wantLag: 8, wantMetric: 8, wantActive: false, want: 0},
		{name: "not active with minReplicaCount 2: the HPA keeps 2",
			md: map[string]string{"activationLagThreshold": "8"}, b: Bounds{Min: ptr(2)}, wantLag: 8, wantMetric: 8, wantActive: false, want: 2},
		{name: "not active with idleReplicaCount 0 and minReplicaCount 2: 0",
			md: map[string]string{"activationLagThreshold": "8"}, b: Bounds{Min: ptr(2), Idle: ptr(0)}, wantLag: 8, wantMetric: 8, wantActive: false, want: 0},
		{name: "active but small lag: the HPA's minimum of 1",
			md: map[string]string{"lagThreshold": "100"}, wantLag: 8, wantMetric: 8, wantActive: true, want: 1},
		{name: "within 10% of 2 replicas x 4 stays at 2",
			md: map[string]string{"lagThreshold": "4"}, current: 2, wantLag: 8, wantMetric: 8, wantActive: true, want: 2},
		{name: "outside the tolerance from 3 replicas: ceil(8 / 4) = 2",
			md: map[string]string{"lagThreshold": "4"}, current: 3, wantLag: 8, wantMetric: 8, wantActive: true, want: 2},
		{name: "a negative total lag gives the HPA 0, as KEDA does, and is not active",
			md: map[string]string{"lagThreshold": "4"}, parts: committedPastTheEnd, b: Bounds{Min: ptr(0)}, wantLag: -23, wantMetric: 0, wantActive: false, want: 0},
		{name: "a negative total lag with minReplicaCount 2: metric 0, the HPA keeps 2",
			md: map[string]string{"lagThreshold": "4"}, parts: committedPastTheEnd, b: Bounds{Min: ptr(2)}, wantLag: -23, wantMetric: 0, wantActive: false, want: 2},
		{name: "a negative total lag with allowIdleConsumers, uncapped: metric 0 still",
			md: map[string]string{"lagThreshold": "4", "allowIdleConsumers": "true"}, parts: committedPastTheEnd, b: Bounds{Min: ptr(1)}, wantLag: -23, wantMetric: 0, wantActive: false, want: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := mustParse(t, tc.md)
			parts := tc.parts
			if parts == nil {
				parts = fourPartitions
			}
			d := Replicas(m, parts, tc.b, tc.current)
			if d.Total.Lag != tc.wantLag || d.Total.Metric != tc.wantMetric || d.Active != tc.wantActive || d.Replicas != tc.want {
				t.Errorf("lag %d metric %d active %v replicas %d (%s); want lag %d metric %d active %v replicas %d",
					d.Total.Lag, d.Total.Metric, d.Active, d.Replicas, d.Reason, tc.wantLag, tc.wantMetric, tc.wantActive, tc.want)
			}
			if d.Reason == "" {
				t.Errorf("no reason given")
			}
		})
	}
}

func TestParseAppliesKEDADefaults(t *testing.T) {
	m := mustParse(t, map[string]string{"bootstrapServers": " a:1, b:2 ", "consumerGroup": "g", "topic": "t"})
	if m.LagThreshold != 10 || m.ActivationLagThreshold != 0 || m.OffsetResetPolicy != "latest" || m.TLS != "disable" || m.SASL != "" {
		t.Errorf("defaults: %+v", m)
	}
	if len(m.BootstrapServers) != 2 || m.BootstrapServers[0] != "a:1" || m.BootstrapServers[1] != "b:2" {
		t.Errorf("bootstrapServers %q", m.BootstrapServers)
	}
}

func TestParseRefusesWhatKEDARefuses(t *testing.T) {
	cases := []struct {
		name, typ string
		md        map[string]string
		field     string
	}{
		{"zero lagThreshold", TypeKafka, map[string]string{"lagThreshold": "0"}, "lagThreshold"},
		{"fractional lagThreshold", TypeKafka, map[string]string{"lagThreshold": "2.5"}, "lagThreshold"},
		{"negative activationLagThreshold", TypeKafka, map[string]string{"activationLagThreshold": "-1"}, "activationLagThreshold"},
		{"unknown offsetResetPolicy", TypeKafka, map[string]string{"offsetResetPolicy": "newest"}, "offsetResetPolicy"},
		{"not a boolean", TypeKafka, map[string]string{"allowIdleConsumers": "yes"}, "allowIdleConsumers"},
		{"idle consumers with limit to lag", TypeKafka, map[string]string{"topic": "t", "allowIdleConsumers": "true", "limitToPartitionsWithLag": "true"}, "limitToPartitionsWithLag"},
		{"limit to lag without a topic", TypeApacheKafka, map[string]string{"limitToPartitionsWithLag": "true"}, "limitToPartitionsWithLag"},
		{"even distribution with limit to lag", TypeKafka, map[string]string{"topic": "t", "ensureEvenDistributionOfPartitions": "true", "limitToPartitionsWithLag": "true"}, "ensureEvenDistributionOfPartitions"},
		{"tls neither enable nor disable", TypeKafka, map[string]string{"tls": "true"}, "tls"},
		{"oauthbearer is not an apache-kafka mechanism", TypeApacheKafka, map[string]string{"sasl": "oauthbearer"}, "sasl"},
		{"two topics for one sidecar", TypeApacheKafka, map[string]string{"topic": "a,b"}, "topic"},
		{"bad partition range", TypeKafka, map[string]string{"topic": "t", "partitionLimitation": "0-x"}, "partitionLimitation"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.typ, tc.md)
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != tc.field {
				t.Errorf("Parse error %v, want a FieldError on %s", err, tc.field)
			}
		})
	}
}
