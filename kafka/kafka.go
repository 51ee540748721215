// Package kafka is the confluent-kafka-go (librdkafka) wiring: the client settings the sidecar depends on,
// the headers it reads and writes, and the errors it tells apart. The delivery settings here are the
// sidecar's at-least-once contract; nothing a user passes in can override them.
package kafka

import (
	"fmt"
	"log/slog"
	"strings"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Settings is what the clients are built from.
type Settings struct {
	Brokers  string // bootstrap.servers
	ClientID string
	GroupID  string
	// AutoOffsetReset is where a group with no committed offset starts: earliest or latest.
	AutoOffsetReset string
	// TransactionalID, when set, is exactly-once: the producer is transactional with this id and the
	// consumer reads only committed records (isolation.level=read_committed).
	TransactionalID string
	// Security are the security.protocol, ssl.* and sasl.* properties (tls.Material.Properties), the
	// same for every client. They hold secrets: they go to librdkafka and are never logged.
	Security map[string]string
	// Extra are further librdkafka properties for every client, ConsumerExtra and ProducerExtra for one
	// kind (see Override); a key of Pinned is refused.
	Extra         map[string]string
	ConsumerExtra map[string]string
	ProducerExtra map[string]string
}

// Pinned are the properties the sidecar's delivery guarantees rest on. Extra settings may not change
// them: auto-commit would commit records before they are answered, and a non-idempotent producer could
// reorder or duplicate answers on retry.
var Pinned = map[string]bool{
	"enable.auto.commit":       true,
	"enable.auto.offset.store": true,
	"enable.idempotence":       true,
	"acks":                     true,
	"request.required.acks":    true,
	"group.id":                 true,
	"bootstrap.servers":        true,
	"go.events.channel.enable": true,
	"go.logs.channel.enable":   true,
	"go.delivery.reports":      true,
	// Set from KAFKA_TRANSACTIONAL_ID with KAFKA_EXACTLY_ONCE: a transactional producer needs the
	// transaction calls the sidecar makes only then.
	"transactional.id": true,
}

// ConsumerConfig is the consumer's librdkafka configuration.
func ConsumerConfig(s Settings) (*ckafka.ConfigMap, error) {
	reset := s.AutoOffsetReset
	if reset == "" {
		reset = "earliest"
	}
	cm := ckafka.ConfigMap{
		"bootstrap.servers": s.Brokers,
		"client.id":         s.ClientID,
		"group.id":          s.GroupID,
		// Offsets are committed by the sidecar, and only once every record at or below them is answered.
		"enable.auto.commit":       false,
		"enable.auto.offset.store": false,
		"auto.offset.reset":        reset,
		// Cooperative rebalancing moves only the partitions that change owner, so scaling out with KEDA
		// does not stop every replica's work.
		"partition.assignment.strategy": "cooperative-sticky",
		// A replica that dies without leaving the group (SIGKILL, OOM, a lost node) holds its partitions
		// until the session times out; librdkafka's 45 s default stalls them that long.
		"session.timeout.ms": 10000,
		// Throughput at bounded latency (README, "Performance"). Each setting trades something:
		//
		// The broker answers a fetch once it has fetch.min.bytes for it, or after fetch.wait.max.ms. With
		// librdkafka's defaults (1 byte, 500 ms) every record that arrives alone is a fetch of its own, and
		// a wake-up of librdkafka's thread and of the poll loop: at 400 records/s that was about a fifth
		// of the sidecar's CPU. Waiting up to 25 ms for 64 KiB gathers them (10 records a fetch at 400/s).
		// Cost: a record arriving on a quiet topic waits up to 25 ms more, and an idle consumer asks the
		// broker 40 times a second instead of twice (a few ms of CPU a second, and 40 requests a second
		// per replica for the broker). A backlog fills 64 KiB at once and never waits.
		"fetch.min.bytes":   65536,
		"fetch.wait.max.ms": 25,
		// Bounds the bytes prefetched for the whole consumer, so memory does not grow with the backlog:
		// 16 MiB is some 16 000 records of 1 KiB, far more than the records in flight, and 250 of
		// 60 KiB. Cost: with records larger than 16 MiB / fetch, fetching is record by record.
		"queued.max.messages.kbytes": 16384,
		"go.logs.channel.enable":     true,
	}
	if s.TransactionalID != "" {
		// librdkafka's default too; said here because exactly-once rests on it: an input record written in a
		// transaction that is later aborted is never served.
		cm["isolation.level"] = "read_committed"
	}
	return withExtra(cm, s.Security, s.Extra, s.ConsumerExtra)
}

// ProducerConfig is the producer's librdkafka configuration.
func ProducerConfig(s Settings) (*ckafka.ConfigMap, error) {
	cm := ckafka.ConfigMap{
		"bootstrap.servers": s.Brokers,
		"client.id":         s.ClientID,
		// Idempotence keeps each partition's answers in the order they were produced, across retries,
		// and writes each once.
		"enable.idempotence": true,
		"acks":               "all",
		// An answer waits up to linger.ms for others to share its produce request. The idempotent producer
		// keeps at most one request with 5 or more records in flight per partition, and while one is in
		// flight, librdkafka's thread polls its socket without sleeping for as long as the next batch is
		// due (linger expired) and cannot be sent: with the 5 ms this setting had and a broker that takes
		// longer than that to acknowledge (acks=all with replication takes 2–10 ms, a busy broker more),
		// that thread alone burned up to half a core — the largest single cost in the sidecar's profile.
		// 20 ms covers most brokers' acknowledgements, so the thread sleeps. Cost: at low rates an answer
		// waits up to 20 ms more; under load the wait for the previous acknowledgement comes first anyway.
		// Set KAFKA_PRODUCER_LINGER_MS lower for latency, higher for a slow broker.
		"linger.ms": 20,
		// batch.size (1 MB) and batch.num.messages (10 000) stay librdkafka's: a request carries whatever
		// gathered in linger.ms; the bound that matters is the broker's max.message.bytes (README, "Error
		// records"). The codec comes from KAFKA_PRODUCER_COMPRESSION (executor/config.go, lz4 by default,
		// 4× fewer bytes on a CIFAR10 answer): lz4 cost about 10% more CPU per 1 KiB JSON answer in the
		// sidecar than none, which KAFKA_PRODUCER_COMPRESSION=none buys back. The producer's queue needs
		// no bound of its own: it never holds more than the records in flight (2 × KAFKA_WORKERS not yet
		// answered and 1 024 awaiting delivery, executor/pipeline.go).
		// 0 is no local timeout: an answer is retried until the broker takes it. While the broker is away
		// records stay in flight, consumption pauses, and nothing is committed past them.
		"message.timeout.ms": 0,
		// A connection to every broker, kept: librdkafka otherwise connects only when it has a request
		// for a broker (sparse connections). The soak caught a producer, after a broker restart, that
		// made no connection attempt at all for five minutes — until its periodic metadata refresh
		// (topic.metadata.refresh.interval.ms) — while its answers waited in its queue (with
		// message.timeout.ms 0 they wait for ever) and its partitions' consumer was back at work. Kept
		// connections are retried with reconnect.backoff.ms, so the producer is back with the broker.
		// Cost: an idle connection to each broker that leads none of the output partitions.
		"enable.sparse.connections": false,
		// librdkafka refreshes the metadata of the topics it produces to every 5 minutes by default, and
		// twice a soak saw a producer make no progress after a broker restart until that refresh — the
		// second time with its connections kept (above), for 4.5 minutes. 30 s bounds such a wait. Cost: a
		// metadata request every 30 s, which a broker answers from memory.
		"topic.metadata.refresh.interval.ms": 30000,
		"go.delivery.reports":                true,
		"go.delivery.report.fields":          "none",
		"go.logs.channel.enable":             true,
	}
	if s.TransactionalID != "" {
		cm["transactional.id"] = s.TransactionalID
		// An answer waits for the broker as long as its transaction may live (transaction.timeout.ms), not
		// forever: past that the transaction is aborted and its records served again.
		delete(cm, "message.timeout.ms")
	}
	return withExtra(cm, s.Security, s.Extra, s.ProducerExtra)
}

// AdminConfig is an admin client's configuration.
func AdminConfig(s Settings) (*ckafka.ConfigMap, error) {
	cm := ckafka.ConfigMap{"bootstrap.servers": s.Brokers, "client.id": s.ClientID}
	return withExtra(cm, s.Security, s.Extra)
}

// withExtra adds the security properties, then the extra ones of each set in turn. A key of Pinned is
// refused, and so is an extra property that would replace a security one.
func withExtra(cm ckafka.ConfigMap, security map[string]string, extras ...map[string]string) (*ckafka.ConfigMap, error) {
	for k, v := range security {
		if Pinned[k] {
			return nil, fmt.Errorf("librdkafka property %q is set by the sidecar and cannot be overridden", k)
		}
		cm[k] = v
	}
	for _, extra := range extras {
		for k, v := range extra {
			if Pinned[k] {
				return nil, fmt.Errorf("librdkafka property %q is set by the sidecar and cannot be overridden", k)
			}
			if _, ok := security[k]; ok {
				return nil, fmt.Errorf("librdkafka property %q comes from the security settings and cannot be overridden", k)
			}
			cm[k] = v
		}
	}
	return &cm, nil
}

// LogLevel maps a librdkafka syslog level to slog.
func LogLevel(syslog int) slog.Level {
	switch {
	case syslog <= 3:
		return slog.LevelError
	case syslog == 4:
		return slog.LevelWarn
	case syslog <= 6:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

// Header returns the value of the last header named key, compared without regard to case: producers
// write Content-Type, content-type and CONTENT-TYPE alike.
func Header(hs []ckafka.Header, key string) (string, bool) {
	for i := len(hs) - 1; i >= 0; i-- {
		if strings.EqualFold(hs[i].Key, key) {
			return string(hs[i].Value), true
		}
	}
	return "", false
}

// SetHeader replaces every header named key (any case) with one key: value.
func SetHeader(hs []ckafka.Header, key, value string) []ckafka.Header {
	return append(WithoutHeader(hs, key), ckafka.Header{Key: key, Value: []byte(value)})
}

// WithoutHeader is hs without the headers named key (any case), in a new slice.
func WithoutHeader(hs []ckafka.Header, key string) []ckafka.Header {
	out := hs[:0:0]
	for _, h := range hs {
		if !strings.EqualFold(h.Key, key) {
			out = append(out, h)
		}
	}
	return out
}
