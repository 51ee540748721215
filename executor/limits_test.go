package executor

import (
	"strings"
	"testing"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/kafka"
)

// overridesOf renders the overrides as client:key=value (from), in order.
func overridesOf(os []kafka.Override) string {
	var b []string
	for _, o := range os {
		client := map[kafka.Client]string{kafka.AllClients: "all", kafka.ConsumerOnly: "consumer", kafka.ProducerOnly: "producer"}[o.Client]
		b = append(b, client+":"+o.Key+"="+o.Value+" ("+o.From+")")
	}
	return strings.Join(b, "\n")
}

// TestOneMessageLimitSetsEveryLimit: KAFKA_MESSAGE_MAX_BYTES, KAFKA_PRODUCER_COMPRESSION and
// KAFKA_MAX_INFLIGHT_BYTES become the producer's and the consumer's librdkafka limits, codec and prefetch, before the user's overrides, which replace
// any of them under any of its names; the graph's node clients get the same limit.
func TestOneMessageLimitSetsEveryLimit(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"the defaults: 64 MiB, lz4", nil, `producer:message.max.bytes=67108864 (KAFKA_MESSAGE_MAX_BYTES)
consumer:max.partition.fetch.bytes=1048576 (KAFKA_MESSAGE_MAX_BYTES)
consumer:fetch.max.bytes=52428800 (KAFKA_MESSAGE_MAX_BYTES)
consumer:receive.message.max.bytes=100000000 (KAFKA_MESSAGE_MAX_BYTES)
producer:compression.codec=lz4 (KAFKA_PRODUCER_COMPRESSION)
consumer:queued.max.messages.kbytes=16384 (KAFKA_MAX_INFLIGHT_BYTES)`},
		{"Core 2's 1 GB, zstd", map[string]string{"KAFKA_MESSAGE_MAX_BYTES": "1000000000", "KAFKA_PRODUCER_COMPRESSION": "ZSTD"}, `producer:message.max.bytes=1000000000 (KAFKA_MESSAGE_MAX_BYTES)
consumer:max.partition.fetch.bytes=1048576 (KAFKA_MESSAGE_MAX_BYTES)
consumer:fetch.max.bytes=52428800 (KAFKA_MESSAGE_MAX_BYTES)
consumer:receive.message.max.bytes=1001048576 (KAFKA_MESSAGE_MAX_BYTES)
producer:compression.codec=zstd (KAFKA_PRODUCER_COMPRESSION)
consumer:queued.max.messages.kbytes=16384 (KAFKA_MAX_INFLIGHT_BYTES)`},
		{"a small limit: fetches of at least what librdkafka takes", map[string]string{"KAFKA_MESSAGE_MAX_BYTES": "300000", "KAFKA_PRODUCER_COMPRESSION": "none"}, `producer:message.max.bytes=300000 (KAFKA_MESSAGE_MAX_BYTES)
consumer:max.partition.fetch.bytes=300000 (KAFKA_MESSAGE_MAX_BYTES)
consumer:fetch.max.bytes=1000000 (KAFKA_MESSAGE_MAX_BYTES)
consumer:receive.message.max.bytes=100000000 (KAFKA_MESSAGE_MAX_BYTES)
producer:compression.codec=none (KAFKA_PRODUCER_COMPRESSION)
consumer:queued.max.messages.kbytes=16384 (KAFKA_MAX_INFLIGHT_BYTES)`},
		{"a small in-flight bound: a quarter of it prefetched", map[string]string{"KAFKA_MAX_INFLIGHT_BYTES": "8388608"}, `producer:message.max.bytes=67108864 (KAFKA_MESSAGE_MAX_BYTES)
consumer:max.partition.fetch.bytes=1048576 (KAFKA_MESSAGE_MAX_BYTES)
consumer:fetch.max.bytes=52428800 (KAFKA_MESSAGE_MAX_BYTES)
consumer:receive.message.max.bytes=100000000 (KAFKA_MESSAGE_MAX_BYTES)
producer:compression.codec=lz4 (KAFKA_PRODUCER_COMPRESSION)
consumer:queued.max.messages.kbytes=2048 (KAFKA_MAX_INFLIGHT_BYTES)`},
		{"the user's overrides win, under their aliases too", map[string]string{
			"KAFKA_CONSUMER_FETCH_MESSAGE_MAX_BYTES": "2000000", "KAFKA_PRODUCER_COMPRESSION_TYPE": "gzip", "KAFKA_PRODUCER_MESSAGE_MAX_BYTES": "5000000",
		}, `consumer:fetch.max.bytes=52428800 (KAFKA_MESSAGE_MAX_BYTES)
consumer:receive.message.max.bytes=100000000 (KAFKA_MESSAGE_MAX_BYTES)
consumer:queued.max.messages.kbytes=16384 (KAFKA_MAX_INFLIGHT_BYTES)
consumer:fetch.message.max.bytes=2000000 (KAFKA_CONSUMER_FETCH_MESSAGE_MAX_BYTES)
producer:compression.type=gzip (KAFKA_PRODUCER_COMPRESSION_TYPE)
producer:message.max.bytes=5000000 (KAFKA_PRODUCER_MESSAGE_MAX_BYTES)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := load(t, tc.env)
			if err != nil {
				t.Fatal(err)
			}
			if got := overridesOf(c.Overrides); got != tc.want {
				t.Errorf("overrides\n%s\nwant\n%s", got, tc.want)
			}
			if c.Graph.MaxMessageBytes != c.MessageMaxBytes {
				t.Errorf("the graph's limit %d, want KAFKA_MESSAGE_MAX_BYTES %d", c.Graph.MaxMessageBytes, c.MessageMaxBytes)
			}
			// librdkafka takes them: it checks a configuration when a client is made.
			s := kafka.Settings{Brokers: "127.0.0.1:1", GroupID: "g", Extra: map[string]string{"log_level": "0"}}
			s.Apply(c.Overrides)
			ccfg, err := kafka.ConsumerConfig(s)
			if err == nil {
				var cons *ckafka.Consumer
				if cons, err = ckafka.NewConsumer(ccfg); err == nil {
					_ = cons.Close()
				}
			}
			if err != nil {
				t.Errorf("consumer: %v", err)
			}
			pcfg, err := kafka.ProducerConfig(s)
			if err == nil {
				var prod *ckafka.Producer
				if prod, err = ckafka.NewProducer(pcfg); err == nil {
					prod.Close()
				}
			}
			if err != nil {
				t.Errorf("producer: %v", err)
			}
		})
	}
}

func TestMessageLimitAndCompressionAreChecked(t *testing.T) {
	for _, tc := range []struct{ name, value string }{
		{"KAFKA_MESSAGE_MAX_BYTES", "999"}, {"KAFKA_MESSAGE_MAX_BYTES", "1000000001"}, {"KAFKA_MESSAGE_MAX_BYTES", "64MB"},
		{"KAFKA_PRODUCER_COMPRESSION", "brotli"}, {"KAFKA_PRODUCER_COMPRESSION", ""},
	} {
		_, err := load(t, map[string]string{tc.name: tc.value})
		ce, ok := err.(*ConfigError)
		if !ok || ce.Name != tc.name {
			t.Errorf("%s=%q: LoadConfig = %v, want a ConfigError naming %s", tc.name, tc.value, err, tc.name)
		}
	}
}
