package executor

import ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"

// SetAssignHook has f called on the poll goroutine after each assignment, with the consumer: tests use
// it to do to librdkafka what the pipeline never would (pause a partition behind its back).
func SetAssignHook(e *Executor, f func(*ckafka.Consumer, []ckafka.TopicPartition)) {
	e.p.assignHook = f
}

// SetCommitHook has f called on each commit's goroutine before it commits: tests use it to hold a commit
// as a group coordinator that does not answer would.
func SetCommitHook(e *Executor, f func()) {
	e.p.commitHook = f
}

// AwaitingDelivery is how many answered records may wait for their delivery report beyond the
// unanswered bound.
const AwaitingDelivery = awaitingDelivery

// SetMetadataHook has f called before each of the broker watch's metadata requests: an error it returns
// fails the request as one the broker did not answer in time.
func SetMetadataHook(e *Executor, f func() error) {
	e.p.metadataHook = f
}

// InjectKafkaError hands the pipeline an error event as if client's librdkafka had raised it.
func InjectKafkaError(e *Executor, client string, code ckafka.ErrorCode) {
	e.p.kafkaError(client, ckafka.NewError(code, "injected by the test", false))
}
