package kafka

import "testing"

// With a transactional id the producer is transactional, its answers wait for the broker no longer than
// a transaction lives, and the consumer reads only committed records; without one, neither.
func TestATransactionalIDMakesTheProducerTransactionalAndTheConsumerReadCommitted(t *testing.T) {
	for _, id := range []string{"", "group-pod-0"} {
		s := Settings{Brokers: "b:9092", GroupID: "group", TransactionalID: id}
		p, err := ProducerConfig(s)
		if err != nil {
			t.Fatal(err)
		}
		c, err := ConsumerConfig(s)
		if err != nil {
			t.Fatal(err)
		}
		txnID, transactional := (*p)["transactional.id"]
		_, timeout := (*p)["message.timeout.ms"]
		level := (*c)["isolation.level"]
		if id == "" && (transactional || !timeout || level != nil) {
			t.Errorf("no id: transactional.id %v, message.timeout.ms set %v, isolation.level %v; want none, 0, librdkafka's", txnID, timeout, level)
		}
		if id != "" && (txnID != id || timeout || level != "read_committed") {
			t.Errorf("id %q: transactional.id %v, message.timeout.ms set %v, isolation.level %v", id, txnID, timeout, level)
		}
	}
}
