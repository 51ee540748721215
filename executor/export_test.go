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
