package kafkascaler

import (
	"fmt"
	"math"
	"slices"
)

// NoOffset is the committed offset of a partition the group has never committed: KEDA's invalidOffset.
const NoOffset = -1

// Partition is what the scaler reads for one partition of the topic.
type Partition struct {
	ID        int32
	Committed int64 // the group's committed offset: the next record it will read; NoOffset if none
	Start     int64 // log start offset (earliest)
	End       int64 // log end offset (high watermark, latest)
}

// Lag is the partition's lag as KEDA's getLagForPartition counts it, with excludePersistentLag off (that
// setting compares with the previous poll, which a single reading cannot).
//
// A partition without a committed offset counts 1 under offsetResetPolicy latest (0 with
// scaleToZeroOnInvalidOffset): the group would start at the end, yet someone must join to commit. Under
// earliest it counts every retained record, end minus start (0 with scaleToZeroOnInvalidOffset).
func (m Metadata) Lag(p Partition) int64 {
	if p.Committed < 0 {
		if m.ScaleToZeroOnInvalidOffset {
			return 0
		}
		if m.OffsetResetPolicy == "earliest" {
			return max(0, p.End-p.Start)
		}
		return 1
	}
	return p.End - p.Committed
}

// Total is what the scaler reports for the topic.
type Total struct {
	Partitions        int   // partitions counted (all, or those of partitionLimitation)
	PartitionsWithLag int   // of those, with a lag above 0
	Lag               int64 // the sum of the partitions' lags, negative ones too: what activation compares
	Metric            int64 // the value given to the HPA: Lag, evened out and capped as the settings say, 0 at least
	Cap               int64 // the replicas the metric is capped at (0: not capped)
}

// Sum adds up the lags of parts as KEDA's getTotalLag does. Partitions outside partitionLimitation are
// left out, as KEDA never asks for their offsets.
func (m Metadata) Sum(parts []Partition) Total {
	var t Total
	for _, p := range parts {
		if m.PartitionLimitation != nil && !slices.Contains(m.PartitionLimitation, p.ID) {
			continue
		}
		lag := m.Lag(p)
		t.Lag += lag
		if lag > 0 {
			t.PartitionsWithLag++
		}
		t.Partitions++
	}
	t.Metric = t.Lag
	if !m.AllowIdleConsumers || m.LimitToPartitionsWithLag || m.EnsureEvenDistributionOfPartitions {
		upper := int64(t.Partitions)
		if m.EnsureEvenDistributionOfPartitions {
			t.Metric = nextBalancingFactor(t.Metric, upper, m.LagThreshold) * m.LagThreshold
		}
		if m.LimitToPartitionsWithLag {
			upper = int64(t.PartitionsWithLag)
		}
		t.Cap = upper
		if t.Metric/m.LagThreshold > upper {
			t.Metric = upper * m.LagThreshold
		}
	}
	// A committed offset past the end (a topic deleted and made again, records removed) makes a partition's
	// lag negative, and the sum with it; KEDA gives the HPA 0 for a negative value (scaler.go,
	// GenerateMetricInMili), while activation still compares the sum itself.
	t.Metric = max(t.Metric, 0)
	return t
}

// nextBalancingFactor is KEDA's getNextFactorThatBalancesConsumersToTopicPartitions: the smallest divisor
// of the partition count whose replicas cover the lag at lagThreshold each.
func nextBalancingFactor(totalLag, partitions, lagThreshold int64) int64 {
	for _, f := range factors(partitions) {
		if f*lagThreshold >= totalLag {
			return f
		}
	}
	return partitions
}

func factors(n int64) []int64 {
	if n < 1 {
		return nil
	}
	var out []int64
	for i := int64(1); i*i <= n; i++ {
		if n%i == 0 {
			out = append(out, i)
			if i != n/i {
				out = append(out, n/i)
			}
		}
	}
	slices.Sort(out)
	return out
}

// Bounds are the ScaledObject's replica settings; nil is unset.
type Bounds struct {
	Min  *int32 // minReplicaCount, KEDA's default 0
	Max  *int32 // maxReplicaCount, KEDA's default 100
	Idle *int32 // idleReplicaCount
}

// HPA bounds KEDA gives the HPA it makes: GetHPAMinReplicas and GetHPAMaxReplicas.
func (b Bounds) hpaMin() int32 {
	if b.Min != nil && *b.Min > 0 {
		return *b.Min
	}
	return 1
}

func (b Bounds) hpaMax() int32 {
	if b.Max != nil {
		return *b.Max
	}
	return 100
}

// Tolerance is the HPA's default: no change while the metric is within 10% of the target.
const Tolerance = 0.1

// Decision is the replica count KEDA and its HPA settle on for one reading of the offsets.
type Decision struct {
	Total    Total
	Active   bool  // total lag above activationLagThreshold
	Replicas int32 // what the Deployment is scaled to once the cooldown (when scaling in to idle) has passed
	Reason   string
}

// Replicas applies the scaler's total to the ScaledObject's bounds: KEDA's scale loop decides between zero
// (or idleReplicaCount) and the HPA, and the HPA asks for ceil(metric / lagThreshold) replicas (an
// AverageValue target), kept within [max(minReplicaCount,1), maxReplicaCount].
//
// current is the Deployment's replica count now, used only for the HPA's 10% tolerance; 0 leaves the
// tolerance out. The HPA's rate limits and stabilization windows, which delay but do not change the
// target, are not modelled.
func Replicas(m Metadata, parts []Partition, b Bounds, current int32) Decision {
	t := m.Sum(parts)
	d := Decision{Total: t, Active: t.Lag > m.ActivationLagThreshold}
	minReplicas := int32(0)
	if b.Min != nil {
		minReplicas = *b.Min
	}
	if !d.Active && (minReplicas == 0 || b.Idle != nil) {
		// RequestScale: not active, and idle mode on or minReplicaCount 0 -> scaleToZeroOrIdle.
		d.Replicas = minReplicas
		what := "minReplicaCount"
		if b.Idle != nil {
			d.Replicas, what = *b.Idle, "idleReplicaCount"
		}
		d.Reason = fmt.Sprintf("lag %d is not above activationLagThreshold %d: scaled to %s %d after the cooldown",
			t.Lag, m.ActivationLagThreshold, what, d.Replicas)
		return d
	}
	desired := int64(math.Ceil(float64(t.Metric) / float64(m.LagThreshold)))
	reason := fmt.Sprintf("HPA: ceil(metric %d / lagThreshold %d) = %d", t.Metric, m.LagThreshold, desired)
	if current > 0 {
		ratio := float64(t.Metric) / (float64(m.LagThreshold) * float64(current))
		if math.Abs(ratio-1) <= Tolerance {
			desired = int64(current)
			reason = fmt.Sprintf("HPA: metric %d is within 10%% of %d replicas x lagThreshold %d: stays at %d",
				t.Metric, current, m.LagThreshold, current)
		}
	}
	lo, hi := b.hpaMin(), b.hpaMax()
	switch {
	case desired < int64(lo):
		desired = int64(lo)
		reason += fmt.Sprintf(", raised to the HPA's minimum %d", lo)
	case desired > int64(hi):
		desired = int64(hi)
		reason += fmt.Sprintf(", held to maxReplicaCount %d", hi)
	}
	d.Replicas = int32(desired)
	d.Reason = reason
	return d
}
