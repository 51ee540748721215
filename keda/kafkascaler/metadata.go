// Package kafkascaler is the rule KEDA v2.21's kafka and apache-kafka scalers follow, written without KEDA:
// the trigger metadata they read and validate, the lag they count per partition, the total they report to
// the HPA, and the replica count that total leads to. It imports nothing from KEDA so the sidecar's tools
// can use it and its tests can pin the numbers.
//
// Sources followed (kedacore/keda v2.21.0):
//   - pkg/scalers/kafka_scaler.go: kafkaMetadata, (*kafkaMetadata).Validate, parsePartitionLimitation,
//     (*kafkaScaler).getLagForPartition, (*kafkaScaler).getTotalLag,
//     getNextFactorThatBalancesConsumersToTopicPartitions, FindFactors.
//   - pkg/scalers/apache_kafka_scaler.go: apacheKafkaMetadata, (*apacheKafkaMetadata).Validate,
//     (*apacheKafkaScaler).getLagForPartition, (*apacheKafkaScaler).getTotalLag.
//   - pkg/scalers/scaler.go: GetMetricTarget (AverageValue of lagThreshold), GenerateMetricInMili.
//   - pkg/scaling/executor/scale_scaledobjects.go: RequestScale, scaleToZeroOrIdle, scaleFromZeroOrIdle,
//     getIdleOrMinimumReplicaCount.
//   - apis/keda/v1alpha1/scaledobject_types.go: GetHPAMinReplicas, GetHPAMaxReplicas (1 and 100).
package kafkascaler

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Trigger types.
const (
	TypeKafka       = "kafka"        // pkg/scalers/kafka_scaler.go (sarama)
	TypeApacheKafka = "apache-kafka" // pkg/scalers/apache_kafka_scaler.go (kafka-go)
)

// KEDA's defaults for the kafka scalers.
const (
	DefaultLagThreshold           = 10
	DefaultActivationLagThreshold = 0
	DefaultOffsetResetPolicy      = "latest"
)

// Metadata is a kafka trigger's metadata as the scaler reads it. Fields the rule does not use (TLS and
// SASL parameters, version, fullMetadata) are read only to be checked.
type Metadata struct {
	Type                string
	BootstrapServers    []string
	ConsumerGroup       string
	Topic               string // apache-kafka accepts a list; the sidecar consumes one topic
	PartitionLimitation []int32

	LagThreshold           int64
	ActivationLagThreshold int64
	OffsetResetPolicy      string // latest or earliest

	AllowIdleConsumers                 bool
	ExcludePersistentLag               bool
	ScaleToZeroOnInvalidOffset         bool
	LimitToPartitionsWithLag           bool
	EnsureEvenDistributionOfPartitions bool

	TLS  string // enable or disable
	SASL string // "" when not set
}

// FieldError is a trigger metadata value KEDA would refuse, naming the field.
type FieldError struct {
	Field string
	Msg   string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Msg }

func fieldErr(field, format string, args ...any) error {
	return &FieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Parse reads and validates a kafka or apache-kafka trigger's metadata as KEDA v2.21 does, applying its
// defaults. bootstrapServers and consumerGroup may be absent: the generator fills them in.
func Parse(triggerType string, md map[string]string) (Metadata, error) {
	if triggerType != TypeKafka && triggerType != TypeApacheKafka {
		return Metadata{}, fieldErr("type", "%q is not a kafka trigger", triggerType)
	}
	m := Metadata{Type: triggerType}
	get := func(k string) string { return strings.TrimSpace(md[k]) } // KEDA trims; "" is absent

	if v := get("bootstrapServers"); v != "" {
		for s := range strings.SplitSeq(v, ",") {
			if s = strings.TrimSpace(s); s != "" {
				m.BootstrapServers = append(m.BootstrapServers, s)
			}
		}
	}
	m.ConsumerGroup = get("consumerGroup")
	m.Topic = get("topic")
	if triggerType == TypeApacheKafka && strings.Contains(m.Topic, ",") {
		var ts []string
		for s := range strings.SplitSeq(m.Topic, ",") {
			if s = strings.TrimSpace(s); s != "" {
				ts = append(ts, s)
			}
		}
		if len(ts) != 1 {
			return m, fieldErr("topic", "%q names %d topics; the sidecar consumes one", m.Topic, len(ts))
		}
		m.Topic = ts[0]
	}

	var err error
	if m.LagThreshold, err = int64Field(get, "lagThreshold", DefaultLagThreshold); err != nil {
		return m, err
	}
	if m.ActivationLagThreshold, err = int64Field(get, "activationLagThreshold", DefaultActivationLagThreshold); err != nil {
		return m, err
	}
	if m.OffsetResetPolicy, err = enumField(get, "offsetResetPolicy", DefaultOffsetResetPolicy, "latest", "earliest"); err != nil {
		return m, err
	}
	for _, b := range []struct {
		name string
		dst  *bool
	}{
		{"allowIdleConsumers", &m.AllowIdleConsumers},
		{"excludePersistentLag", &m.ExcludePersistentLag},
		{"scaleToZeroOnInvalidOffset", &m.ScaleToZeroOnInvalidOffset},
		{"limitToPartitionsWithLag", &m.LimitToPartitionsWithLag},
		{"ensureEvenDistributionOfPartitions", &m.EnsureEvenDistributionOfPartitions},
	} {
		if *b.dst, err = boolField(get, b.name); err != nil {
			return m, err
		}
	}
	if _, err = boolField(get, "fullMetadata"); err != nil {
		return m, err
	}
	if m.TLS, err = enumField(get, "tls", "disable", "enable", "disable"); err != nil {
		return m, err
	}
	saslValues := []string{"none", "plaintext", "scram_sha256", "scram_sha512", "oauthbearer", "gssapi"}
	if triggerType == TypeApacheKafka {
		saslValues = []string{"none", "plaintext", "scram_sha256", "scram_sha512", "gssapi", "aws_msk_iam"}
	}
	if m.SASL, err = enumField(get, "sasl", "", saslValues...); err != nil {
		return m, err
	}
	if v := get("partitionLimitation"); v != "" {
		if m.PartitionLimitation, err = parsePartitionLimitation(v); err != nil {
			return m, err
		}
	}
	return m, m.Validate()
}

// Validate applies the checks of KEDA's (*kafkaMetadata).Validate and (*apacheKafkaMetadata).Validate
// that do not depend on credentials.
func (m *Metadata) Validate() error {
	if m.LagThreshold <= 0 {
		return fieldErr("lagThreshold", "%d: must be a positive number", m.LagThreshold)
	}
	if m.ActivationLagThreshold < 0 {
		return fieldErr("activationLagThreshold", "%d: must not be negative", m.ActivationLagThreshold)
	}
	if m.Topic == "" {
		m.PartitionLimitation = nil // KEDA ignores it without a topic
	}
	if m.AllowIdleConsumers && m.LimitToPartitionsWithLag {
		return fieldErr("limitToPartitionsWithLag", "cannot be set together with allowIdleConsumers")
	}
	if m.Topic == "" && m.LimitToPartitionsWithLag {
		return fieldErr("limitToPartitionsWithLag", "needs a topic")
	}
	if m.Type == TypeKafka {
		if m.LimitToPartitionsWithLag && m.EnsureEvenDistributionOfPartitions {
			return fieldErr("ensureEvenDistributionOfPartitions", "cannot be set together with limitToPartitionsWithLag")
		}
		if m.Topic == "" && m.EnsureEvenDistributionOfPartitions {
			return fieldErr("ensureEvenDistributionOfPartitions", "needs a topic")
		}
	}
	return nil
}

func int64Field(get func(string) string, name string, def int64) (int64, error) {
	v := get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fieldErr(name, "%q is not a whole number", v)
	}
	return n, nil
}

func boolField(get func(string) string, name string) (bool, error) {
	v := get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fieldErr(name, "%q is not true or false", v)
	}
	return b, nil
}

func enumField(get func(string) string, name, def string, allowed ...string) (string, error) {
	v := get(name)
	if v == "" {
		return def, nil
	}
	if !slices.Contains(allowed, v) {
		return "", fieldErr(name, "%q: want one of %s", v, strings.Join(allowed, ", "))
	}
	return v, nil
}

// parsePartitionLimitation reads "0,1,3-5" as KEDA's parsePartitionLimitation does.
func parsePartitionLimitation(s string) ([]int32, error) {
	var out []int32
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		start, err := strconv.ParseInt(strings.TrimSpace(lo), 10, 32)
		if err != nil {
			return nil, fieldErr("partitionLimitation", "%q is not a partition or a range like 0-3", part)
		}
		end := start
		if isRange {
			if end, err = strconv.ParseInt(strings.TrimSpace(hi), 10, 32); err != nil {
				return nil, fieldErr("partitionLimitation", "%q is not a partition or a range like 0-3", part)
			}
		}
		for i := start; i <= end; i++ {
			out = append(out, int32(i))
		}
	}
	return out, nil
}
