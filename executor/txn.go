package executor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Exactly-once (KAFKA_EXACTLY_ONCE=true).
//
// At least once, an answer is produced when it is ready and the input offset committed by the consumer
// once the answer is delivered: a crash between the two answers the record again. Exactly once, the
// answers and error records of a commit interval and the input offsets they answer are written in one
// Kafka transaction: a read_committed reader of the output sees all of them or none, and the group's
// offsets move with them. Only produce and commit change, not the walk — so the model may be called
// more than once for a record (after a crash or an abort), while its answer is seen once.
//
// The rule that makes it hold with records served in parallel: per partition, a transaction carries the
// outputs of a contiguous run of records from where the last one ended, so that the offset committed
// with it is exactly where its outputs end. Records finish out of order (KAFKA_WORKERS at once, a slow
// call among fast ones), so an output is produced only once the outputs of every record before it in
// its partition are: until then it waits, held, in its partition's queue (partOrder). A commit stops
// producing, sends with the transaction the offset after each partition's last output, and commits it:
// librdkafka delivers every output first, and fails the commit if one is refused.
//
// When it fails:
//   - abortable (a record the broker refuses, a lost coordinator, offsets the group refuses because this
//     replica's partitions moved on): the transaction is aborted, each partition sought back to where it
//     began, and the records in flight dropped when they come back: they are read and served again. A
//     record the broker refused is remembered, so that when it is served again its refusal is handled as
//     at least once handles it (the answer becomes an error record; an error record goes again without
//     its value, or after a backoff) instead of aborting for ever;
//   - fatal (fenced by a newer producer with the same transactional.id, not authorised): the sidecar
//     stops with the error and exits non-zero; the broker aborts its open transaction, and whoever owns
//     its partitions next serves their records from the committed offsets;
//   - a revoke commits the open transaction first, the leaving partitions with it; when that fails, or
//     the partitions were lost (another member may own them already), it is aborted instead.
type transactions struct {
	p *pipeline

	// mu orders outputs. A Produce is made under it, so that a partition's outputs enter librdkafka in
	// their records' order and none after a commit or abort has begun (closing).
	mu      sync.Mutex
	parts   map[int32]*partOrder
	closing bool
	gen     atomic.Uint64 // the open transaction's number; written under mu, read by the delivery goroutine

	produced atomic.Int64 // outputs produced into the open transaction
	off      atomic.Bool  // no transaction is open, and none will be: not started, or a fatal error

	// refMu guards what the delivery goroutine writes: why the open transaction must be aborted, and the
	// records the broker refused. (It never takes mu: a Produce waiting under mu for room in the
	// producer's queue waits for the delivery goroutine.)
	refMu   sync.Mutex
	doomed  atomic.Bool
	doom    error
	refused map[recordRef]*refusedOutput

	// Owned by the poll goroutine.
	begun       time.Time
	offsetsSent bool // the open transaction's offsets are sent: a commit tried again does not send them again
}

// recordRef names an input record.
type recordRef struct {
	part   int32
	offset int64
}

// refusedOutput is what the broker refused for a record: its answer, its error record (after failures tries).
type refusedOutput struct {
	answer, errRecord error
	failures          int
	epoch             uint64 // the assignment the error record's refusal was last applied in
}

// initWait bounds one InitTransactions call, so that a shutdown is seen between tries while the
// coordinator cannot be reached.
const initWait = 10 * time.Second

func newTransactions(p *pipeline) *transactions {
	t := &transactions{p: p, parts: map[int32]*partOrder{}, refused: map[recordRef]*refusedOutput{}}
	t.off.Store(true)
	return t
}

// start readies the current producer: InitTransactions fences an earlier producer with this
// transactional.id (this replica before a restart) and aborts what it left open; then the first
// transaction begins. It returns nil without starting when ctx ends first.
func (t *transactions) start(ctx context.Context) error {
	p := t.p
	for {
		ictx, cancel := context.WithTimeout(ctx, initWait)
		err := p.producer.InitTransactions(ictx)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil
		}
		var ke ckafka.Error
		if errors.As(err, &ke) && ke.IsRetriable() {
			p.log.Warn("waiting for the transaction coordinator", "transactional_id", p.cfg.TransactionalID, "error", err)
			continue
		}
		return fmt.Errorf("exactly-once: initialising transactions of transactional.id %s: %w", p.cfg.TransactionalID, err)
	}
	// New clients: nothing assigned, nothing in flight.
	t.mu.Lock()
	clear(t.parts)
	t.mu.Unlock()
	t.refMu.Lock()
	clear(t.refused)
	t.refMu.Unlock()
	t.off.Store(false)
	p.log.Info("exactly-once: transactions ready", "transactional_id", p.cfg.TransactionalID)
	t.begin()
	if t.off.Load() {
		return errors.New("exactly-once: the first transaction could not begin")
	}
	return nil
}

// consumed notes a record read, in its partition's order (poll goroutine).
func (t *transactions) consumed(j *job) {
	if !j.tracked {
		return
	}
	t.mu.Lock()
	o := t.parts[j.part]
	if o == nil || o.epoch != j.epoch {
		t.dropLocked(j.part)
		o = newPartOrder(j.epoch, j.offset)
		t.parts[j.part] = o
	}
	o.consumed(j.offset)
	t.mu.Unlock()
}

// produce takes a record's output (its answer or error record): it is produced into the open transaction
// once every record before it in its partition is, or dropped when its transaction was aborted or its
// partition revoked — it is read and served again, here or by the partition's next owner.
func (t *transactions) produce(j *job) {
	t.mu.Lock()
	defer t.mu.Unlock()
	o := t.parts[j.part]
	if !j.tracked || o == nil || o.epoch != j.epoch || t.off.Load() || t.doomed.Load() {
		t.p.abandon(j)
		return
	}
	if t.redo(j) {
		return
	}
	o.put(j)
	if !t.closing {
		t.sendDue(o)
	}
}

// sendDue produces the partition's outputs that are due, in order (mu held).
func (t *transactions) sendDue(o *partOrder) {
	for j := o.pop(); j != nil; j = o.pop() {
		if t.doomed.Load() {
			t.p.abandon(j)
			continue
		}
		j.txn = t.gen.Load()
		err := t.p.send(j)
		switch {
		case err == nil:
			o.inTxn, o.done = true, j.offset+1
			t.produced.Add(1)
		case errors.Is(err, errStopped):
			// Shutting down: not produced, so neither finished nor committed.
		default:
			t.refuse(j, err)
		}
	}
}

// delivered handles a delivery report (delivery goroutine). An output delivered into a transaction that
// was then aborted finishes nothing: the abort gave its partition a new assignment epoch.
func (t *transactions) delivered(j *job, err error) {
	if err != nil {
		t.refuse(j, err)
		return
	}
	t.p.finish(j)
}

// refuse handles an output that librdkafka or the broker would not take. The open transaction cannot
// commit without it: it is aborted at the next turn of the poll loop. A refusal of the record itself is
// remembered for when the record is served again (redo).
func (t *transactions) refuse(j *job, err error) {
	t.refMu.Lock()
	if j.txn == t.gen.Load() && t.doom == nil && !purged(err) {
		t.doom = err
		t.doomed.Store(true)
	}
	if j.tracked && recordRefusal(err) {
		ref := recordRef{j.part, j.offset}
		r := t.refused[ref]
		if r == nil {
			r = &refusedOutput{}
			t.refused[ref] = r
		}
		if j.kind == kindAnswer {
			r.answer = err
		} else {
			r.errRecord, r.failures, r.epoch = err, j.failures, j.epoch
		}
	}
	t.refMu.Unlock()
	t.p.abandon(j)
}

// redo hands a record served again to the resender when the broker refused its output before: its
// refusal is handled first, as at least once does. It reports whether it did.
func (t *transactions) redo(j *job) bool {
	t.refMu.Lock()
	r := t.refused[recordRef{j.part, j.offset}]
	var err error
	switch {
	case r == nil:
	case j.kind == kindAnswer && r.answer != nil:
		err = r.answer
	case j.kind == kindError && r.errRecord != nil && r.epoch != j.epoch:
		r.epoch = j.epoch
		j.failures = r.failures
		err = r.errRecord
	}
	t.refMu.Unlock()
	if err == nil {
		return false
	}
	t.p.resend.add(j, err)
	return true
}

// commitDue commits the open transaction when the commit interval has passed since it began or it holds
// TransactionRecords outputs, or now when forced; leaving are partitions being revoked, whose outputs
// not produced yet are dropped first (poll goroutine).
func (t *transactions) commitDue(force bool, leaving []int32) {
	p := t.p
	if t.off.Load() {
		return
	}
	if t.doomed.Load() {
		t.abort(t.doomReason(), nil)
		return
	}
	if !t.closing {
		n := t.produced.Load()
		if n == 0 {
			return // nothing in the transaction
		}
		if !force {
			if time.Since(t.begun) < p.cfg.CommitInterval && (p.cfg.TransactionRecords == 0 || n < int64(p.cfg.TransactionRecords)) {
				return
			}
			// A commit waits for the coordinator: while the broker is away it would hold the poll loop.
			if !p.brokerUp.Load() {
				return
			}
		}
	}
	t.commit(leaving)
}

func (t *transactions) commit(leaving []int32) {
	p := t.p
	started := time.Now()
	t.mu.Lock()
	if !t.closing {
		// Per partition the outputs produced are the run of records from the last commit: the offset after
		// the last is where the transaction's outputs end.
		t.closing = true
		for n, o := range t.parts {
			if o.inTxn {
				p.toCommit[n] = o.done
			}
		}
	}
	for _, n := range leaving {
		t.dropLocked(n)
	}
	t.mu.Unlock()
	if !t.offsetsSent && len(p.toCommit) > 0 {
		if !t.call("sending the input offsets to the transaction", t.sendOffsets) {
			return
		}
		t.offsetsSent = true
	}
	if !t.call("committing the transaction", func() error { return p.producer.CommitTransaction(context.Background()) }) {
		return
	}
	p.m.commits.Inc()
	p.m.transactions.WithLabelValues("committed").Inc()
	p.log.Debug("transaction committed", "records", t.produced.Load(), "offsets", p.toCommit,
		"took", time.Since(started).String())
	t.committed(p.toCommit)
	clear(p.toCommit)
	t.begin()
}

func (t *transactions) sendOffsets() error {
	p := t.p
	md, err := p.consumer.GetConsumerGroupMetadata()
	if err != nil {
		return err
	}
	tps := make([]ckafka.TopicPartition, 0, len(p.toCommit))
	for n, off := range p.toCommit {
		tps = append(tps, ckafka.TopicPartition{Topic: &p.cfg.InputTopic, Partition: n, Offset: ckafka.Offset(off)})
	}
	// The group's metadata carries its generation: offsets of a replica whose partitions moved on (a
	// zombie) are refused, and its transaction with them (exactly-once v2, KIP-447).
	return p.producer.SendOffsetsToTransaction(context.Background(), tps, md)
}

// committed moves each partition's start to the offsets committed, and forgets the refusals before them.
func (t *transactions) committed(offsets map[int32]int64) {
	t.p.offsets.committable() // the tracker's finished runs are of no use exactly once: dropped
	t.mu.Lock()
	for n, off := range offsets {
		if o := t.parts[n]; o != nil {
			o.base = off
		}
	}
	t.mu.Unlock()
	t.refMu.Lock()
	for ref := range t.refused {
		if off, ok := offsets[ref.part]; ok && ref.offset < off {
			delete(t.refused, ref)
		}
	}
	t.refMu.Unlock()
}

// call makes a transaction call and says whether it succeeded. A failure it handles: tried again at the
// next turn (retriable), the transaction aborted (abortable), or the sidecar stopped (anything else:
// librdkafka's advice for errors neither retriable nor abortable).
func (t *transactions) call(what string, fn func() error) bool {
	err := fn()
	if err == nil {
		return true
	}
	var ke ckafka.Error
	errors.As(err, &ke)
	switch {
	case ke.TxnRequiresAbort():
		t.abort(fmt.Errorf("%s: %w", what, err), nil)
	case ke.IsRetriable():
		t.p.m.commitErr.Inc()
		t.p.log.Warn("transaction call failed; will retry", "call", what, "error", err)
	default:
		t.stop(what, err)
	}
	return false
}

// abort aborts the open transaction and seeks each partition whose records it held (but leaving, the
// partitions being revoked) back to where it began: the records are read and served again, and those
// in flight dropped when they come back (poll goroutine).
func (t *transactions) abort(why error, leaving []int32) {
	p := t.p
	t.mu.Lock()
	t.closing = true
	t.mu.Unlock()
	if err := p.producer.AbortTransaction(context.Background()); err != nil {
		var ke ckafka.Error
		if errors.As(err, &ke) && ke.IsRetriable() {
			p.log.Warn("aborting the transaction failed; will retry", "error", err)
			t.setDoom(why) // the next turn aborts again
			return
		}
		t.stop("aborting the transaction", err)
		return
	}
	var seek []ckafka.TopicPartition
	var nums []int32
	t.mu.Lock()
	t.gen.Add(1) // a refusal reported for the aborted transaction dooms no other
	for n, o := range t.parts {
		if o.next > o.base && !slices.Contains(leaving, n) {
			seek = append(seek, ckafka.TopicPartition{Topic: &p.cfg.InputTopic, Partition: n, Offset: ckafka.Offset(o.base)})
			nums = append(nums, n)
		}
		t.dropLocked(n)
	}
	t.mu.Unlock()
	if len(seek) > 0 {
		res, err := p.consumer.SeekPartitions(seek)
		if err == nil {
			for _, tp := range res {
				if tp.Error != nil {
					err = fmt.Errorf("partition %d: %w", tp.Partition, tp.Error)
				}
			}
		}
		if err != nil {
			// Not reading them again would skip them: stop, and let the restart read from the committed offsets.
			t.stop("seeking back to the last committed offsets", err)
			return
		}
	}
	// The records read again are tracked afresh; those still in flight belong to the old assignment.
	p.offsets.assign(nums)
	now := time.Now()
	for _, n := range nums {
		p.stall.assigned(n, now)
	}
	clear(p.toCommit)
	t.refMu.Lock()
	t.doom = nil
	t.doomed.Store(false)
	t.refMu.Unlock()
	p.m.transactions.WithLabelValues("aborted").Inc()
	p.log.Warn("transaction aborted; its records are served again", "reason", why.Error(), "partitions", nums)
	t.begin()
}

// begin begins the next transaction and produces the outputs that waited for it.
func (t *transactions) begin() {
	p := t.p
	if err := p.producer.BeginTransaction(); err != nil {
		t.stop("beginning a transaction", err)
		return
	}
	t.begun = time.Now()
	t.offsetsSent = false
	t.produced.Store(0)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.gen.Add(1)
	t.closing = false
	for _, o := range t.parts {
		o.inTxn = false
		t.sendDue(o)
	}
}

// revoked lets partitions go (poll goroutine, in the revoke). Their outputs must not outlive them in the
// open transaction: unless the revoke committed it (commitDue with the partitions leaving), it is
// aborted — the partitions lost, the commit failed, or the consumer closing after the last commit.
func (t *transactions) revoked(nums []int32, lost bool) {
	if !t.off.Load() {
		t.mu.Lock()
		held := t.closing
		for _, n := range nums {
			if o := t.parts[n]; o != nil && o.inTxn {
				held = true
			}
		}
		t.mu.Unlock()
		if held {
			t.abort(fmt.Errorf("partitions %v revoked (lost: %v) with records in the open transaction", nums, lost), nums)
		}
	}
	t.mu.Lock()
	for _, n := range nums {
		t.dropLocked(n)
	}
	t.mu.Unlock()
	t.refMu.Lock()
	for ref := range t.refused {
		if slices.Contains(nums, ref.part) {
			delete(t.refused, ref)
		}
	}
	t.refMu.Unlock()
}

// dropLocked forgets a partition's order; the outputs waiting in it are dropped (mu held).
func (t *transactions) dropLocked(n int32) {
	if o := t.parts[n]; o != nil {
		for _, j := range o.ready {
			t.p.abandon(j)
		}
		delete(t.parts, n)
	}
}

// stop ends transactions for good and stops the sidecar with the error.
func (t *transactions) stop(what string, err error) {
	p := t.p
	t.off.Store(true)
	if t.fenced(err) {
		err = fmt.Errorf("exactly-once: another producer with transactional.id %s took over (fenced) while %s; "+
			"this one stops, its open transaction is aborted and its records served by the owner of their partitions: %w",
			p.cfg.TransactionalID, what, err)
	} else {
		err = fmt.Errorf("exactly-once: %s: %w", what, err)
	}
	select {
	case p.fatal <- err:
	default:
	}
}

func (t *transactions) setDoom(why error) {
	t.refMu.Lock()
	if t.doom == nil {
		t.doom = why
	}
	t.doomed.Store(true)
	t.refMu.Unlock()
}

func (t *transactions) doomReason() error {
	t.refMu.Lock()
	defer t.refMu.Unlock()
	if t.doom == nil {
		return errors.New("the transaction failed")
	}
	return fmt.Errorf("an output was refused: %w", t.doom)
}

// fenced says whether err means a newer producer with the same transactional.id took over.
func (t *transactions) fenced(err error) bool {
	var ke ckafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	if ke.Code() == ckafka.ErrFatal {
		// A fatal error names itself only as such: librdkafka keeps the error that made it.
		p := t.p
		p.prodMu.RLock()
		err = p.producer.GetFatalError()
		p.prodMu.RUnlock()
		if !errors.As(err, &ke) {
			return false
		}
	}
	switch ke.Code() {
	case ckafka.ErrFenced, ckafka.ErrProducerFenced, ckafka.ErrInvalidProducerEpoch:
		return true
	}
	return false
}

// purged says whether err is a report of an output the producer itself dropped (an abort purges them).
func purged(err error) bool {
	var ke ckafka.Error
	return errors.As(err, &ke) && (ke.Code() == ckafka.ErrPurgeQueue || ke.Code() == ckafka.ErrPurgeInflight)
}

// recordRefusal says whether err refuses the record itself — its size, its topic, its content — so that
// it would be refused again, rather than the transaction or the connection.
func recordRefusal(err error) bool {
	var ke ckafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	switch ke.Code() {
	case ckafka.ErrMsgSizeTooLarge, ckafka.ErrInvalidMsgSize, ckafka.ErrRecordListTooLarge, ckafka.ErrInvalidRecord,
		ckafka.ErrInvalidMsg, ckafka.ErrInvalidTimestamp, ckafka.ErrPolicyViolation,
		ckafka.ErrTopicAuthorizationFailed, ckafka.ErrUnknownTopicOrPart, ckafka.ErrUnknownTopic, ckafka.ErrUnknownPartition:
		return true
	}
	return false
}

// partOrder is one partition's records in the order they were read, from the first whose output is not
// produced yet, with the outputs that are ready and wait for those before them.
type partOrder struct {
	epoch uint64 // the assignment it belongs to (offsetTracker's)
	base  int64  // the first record not in a committed transaction: where an abort reads again from
	next  int64  // one past the last record read
	done  int64  // one past the last record whose output is produced
	inTxn bool   // an output of it is in the open transaction
	order []int64
	ready map[int64]*job
}

func newPartOrder(epoch uint64, first int64) *partOrder {
	return &partOrder{epoch: epoch, base: first, next: first, done: first, ready: map[int64]*job{}}
}

func (o *partOrder) consumed(offset int64) {
	o.order = append(o.order, offset)
	o.next = offset + 1
}

func (o *partOrder) put(j *job) { o.ready[j.offset] = j }

// pop returns the next output due — the ready output of the first record not produced — or nil.
func (o *partOrder) pop() *job {
	if len(o.order) == 0 {
		return nil
	}
	j := o.ready[o.order[0]]
	if j == nil {
		return nil
	}
	delete(o.ready, o.order[0])
	o.order = o.order[1:]
	return j
}
