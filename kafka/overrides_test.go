package kafka_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/seldon-kafka/sidecar/kafka"
)

func TestOverridesFromEnvMapNamesToProperties(t *testing.T) {
	environ := []string{
		"KAFKA_BROKER=b:9092",
		"KAFKA_PRODUCER_LINGER_MS=20",
		"KAFKA_CONSUMER_FETCH_MAX_BYTES=1048576",
		"KAFKA_CONSUMER_SOCKET_KEEPALIVE_ENABLE=true",
		"KAFKA_CONSUMERS=3",
		"KAFKA_CONSUMER_GROUP_ID_PREFIX=tenant",
		"HOME=/root",
	}
	got := kafka.OverridesFromEnv(environ, map[string]bool{"KAFKA_CONSUMER_GROUP_ID_PREFIX": true})
	want := []kafka.Override{
		{Key: "fetch.max.bytes", Value: "1048576", Client: kafka.ConsumerOnly, From: "KAFKA_CONSUMER_FETCH_MAX_BYTES"},
		{Key: "socket.keepalive.enable", Value: "true", Client: kafka.ConsumerOnly, From: "KAFKA_CONSUMER_SOCKET_KEEPALIVE_ENABLE"},
		{Key: "linger.ms", Value: "20", Client: kafka.ProducerOnly, From: "KAFKA_PRODUCER_LINGER_MS"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestReadPropertiesScopesByPrefixAndNamesTheLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "client.properties")
	content := "# tuning\n\nstatistics.interval.ms = 0\n! also a comment\nconsumer.fetch.wait.max.ms=100\nproducer.compression.type=zstd\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := kafka.ReadProperties("KAFKA_PROPERTIES_FILE", path)
	if err != nil {
		t.Fatal(err)
	}
	want := []kafka.Override{
		{Key: "statistics.interval.ms", Value: "0", Client: kafka.AllClients, From: "KAFKA_PROPERTIES_FILE (" + path + " line 3)"},
		{Key: "fetch.wait.max.ms", Value: "100", Client: kafka.ConsumerOnly, From: "KAFKA_PROPERTIES_FILE (" + path + " line 5)"},
		{Key: "compression.type", Value: "zstd", Client: kafka.ProducerOnly, From: "KAFKA_PROPERTIES_FILE (" + path + " line 6)"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}

	if err := os.WriteFile(path, []byte("ok=1\nsasl.password hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = kafka.ReadProperties("KAFKA_PROPERTIES_FILE", path)
	if err == nil || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("malformed line: error %v, want one naming line 2 without its content", err)
	}
}

func TestSettingsReachEachClientAndPinnedPropertiesCannotBeOverridden(t *testing.T) {
	s := kafka.Settings{Brokers: "b:1", ClientID: "c", GroupID: "g",
		Security: map[string]string{"security.protocol": "sasl_ssl", "sasl.password": "pw"}}
	s.Apply([]kafka.Override{
		{Key: "statistics.interval.ms", Value: "0"},
		{Key: "fetch.wait.max.ms", Value: "100", Client: kafka.ConsumerOnly},
		{Key: "compression.type", Value: "zstd", Client: kafka.ProducerOnly},
	})
	cc, err := kafka.ConsumerConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := kafka.ProducerConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	ac, err := kafka.AdminConfig(s)
	if err != nil {
		t.Fatal(err)
	}
	for name, cm := range map[string]ckafka.ConfigMap{"consumer": *cc, "producer": *pc, "admin": *ac} {
		if cm["security.protocol"] != "sasl_ssl" || cm["sasl.password"] != "pw" || cm["statistics.interval.ms"] != "0" {
			t.Errorf("%s lacks the security or common properties: %v", name, keys(cm))
		}
	}
	if (*cc)["fetch.wait.max.ms"] != "100" || (*pc)["fetch.wait.max.ms"] != nil {
		t.Error("a consumer-only property is not on the consumer alone")
	}
	if (*pc)["compression.type"] != "zstd" || (*cc)["compression.type"] != nil {
		t.Error("a producer-only property is not on the producer alone")
	}

	for _, tc := range []struct {
		name string
		s    kafka.Settings
	}{
		{"pinned in every client's extras", kafka.Settings{Extra: map[string]string{"enable.auto.commit": "true"}}},
		{"pinned in the consumer's extras", kafka.Settings{ConsumerExtra: map[string]string{"enable.auto.offset.store": "true"}}},
		{"pinned in the producer's extras", kafka.Settings{ProducerExtra: map[string]string{"acks": "1"}}},
		{"an extra replacing a security property", kafka.Settings{Security: map[string]string{"sasl.username": "a"}, ConsumerExtra: map[string]string{"sasl.username": "b"}, ProducerExtra: map[string]string{"sasl.username": "b"}}},
	} {
		_, cerr := kafka.ConsumerConfig(tc.s)
		_, perr := kafka.ProducerConfig(tc.s)
		if cerr == nil && perr == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func keys(m ckafka.ConfigMap) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
