package executor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/google/uuid"

	"github.com/seldon-kafka/sidecar/executor/graph"
	"github.com/seldon-kafka/sidecar/executor/registry"
	"github.com/seldon-kafka/sidecar/kafka"
	"github.com/seldon-kafka/sidecar/protocols"
)

// Headers the sidecar reads and writes.
const (
	HeaderPuid         = "Seldon-Puid"
	HeaderContentType  = "Content-Type"
	HeaderProtoName    = "proto-name"
	HeaderErrorReason  = "Seldon-Error-Reason"  // a protocols.Reason* value
	HeaderErrorStage   = "Seldon-Error-Stage"   // decode | call | produce
	HeaderErrorMessage = "Seldon-Error-Message" // for people
	HeaderErrorStatus  = "Seldon-Error-Status"  // the model's HTTP status, when it answered
	HeaderErrorCode    = "Seldon-Error-Code"    // the model's gRPC code, when it answered
	HeaderErrorNode    = "Seldon-Error-Node"    // the graph node that failed, when one did
	HeaderErrorMethod  = "Seldon-Error-Method"  // what was asked of it: predict, transform-input, route, ...
	HeaderSourceTopic  = "Seldon-Source-Topic"
	HeaderSourcePart   = "Seldon-Source-Partition"
	HeaderSourceOffset = "Seldon-Source-Offset"
	// HeaderValueOmitted marks an error record whose original value was too large to write back.
	HeaderValueOmitted = "Seldon-Error-Value-Omitted"
)

type recordKind int

const (
	kindAnswer recordKind = iota
	kindError
)

// job is one input record on its way through the data path.
type job struct {
	in      *ckafka.Message
	part    int32
	offset  int64
	epoch   uint64 // the partition assignment it was consumed under
	tracked bool   // counts toward commits
	keyed   bool
	laneKey string
	puid    string

	kind     recordKind
	out      *ckafka.Message // what is being produced for it
	failures int             // failed deliveries of the error record
	edge     recordEdge      // its CloudEvent mode and trace spans (edges.go)
	txn      uint64          // exactly-once: the transaction it was produced in
	size     int64           // the request's bytes, counted in heldBytes until released
	answered bool            // its answer or error record is made: no longer counted in unanswered
}

// pipeline is the data path: consume → check → call → produce → commit. Its lifecycle — the goroutines
// it runs, start, drain, close and the swap of clients — is in lifecycle.go; this file reads one record
// from top to bottom.
type pipeline struct {
	// Set by newPipeline, read-only after.
	cfg           Config
	log           *slog.Logger
	graph         graphWalker
	m             *metrics
	gate          *gate
	maxUnanswered int64         // records consumed and not yet answered at most: 2 × KAFKA_WORKERS
	maxHeld       int64         // records in flight at most: consumed and not finished
	maxBytes      int64         // bytes of requests in flight at most (KAFKA_MAX_INFLIGHT_BYTES)
	drainBudget   time.Duration // how long a revoke waits for the records in flight on the partitions
	offsets       *offsetTracker
	lanes         *lanes
	fatal         chan error    // a fatal librdkafka error, for the poll loop to stop on
	resend        *resender     // records the broker refused, handed from the delivery goroutine to the resender
	txn           *transactions // exactly-once (txn.go); nil at least once
	edges         *edges        // CloudEvents and trace context on what comes in and goes out (edges.go)

	// schemas is the Schema Registry wire format at the edges of serve (schemas.go); nil when off.
	schemas *registry.Codec

	// The clients. Only the poll goroutine uses consumer; the lifecycle replaces it between poll loops.
	// The workers and the resender produce under prodMu (read), which the lifecycle takes (write) to
	// close or replace the producer; closing is closed just before the producer closes, to end a wait
	// for room in its queue.
	consumer   *ckafka.Consumer
	prodMu     sync.RWMutex
	producer   *ckafka.Producer
	prodClosed bool
	closing    chan struct{}

	// Shared by the goroutines.
	held       atomic.Int64 // records consumed and not finished
	unanswered atomic.Int64 // of those, the ones whose answer or error record is not made yet
	heldBytes  atomic.Int64 // the bytes of their requests (values)
	progress   signal       // notified when a record is released or a delivery report is read
	brokerUp   atomic.Bool  // written by watchBroker and kafkaError
	brokerBack signal       // notified when watchBroker sees the broker usable again
	// brokerSeen is set when the broker took an answer or a commit: proof it serves the sidecar, which
	// watchBroker takes on its next check (its own metadata request can time out behind a catch-up's
	// produce requests on the producer's connection).
	brokerSeen atomic.Bool
	draining   atomic.Bool  // written by the lifecycle: stop taking records
	lastPoll   atomic.Int64 // unix nanoseconds of the poll loop's last turn, for /live
	// hurried ends when the shutdown is to stop waiting for the records in flight (Executor.Hurry: a
	// second SIGTERM); hurry ends it.
	hurried context.Context
	hurry   context.CancelFunc
	// kafkaErrors logs librdkafka's error events without flooding the log; both clients' goroutines use it.
	kafkaErrors errorLog
	nodes       atomic.Pointer[[]nodeState] // each graph node's last readiness; written by watchGraph

	// Owned by the poll goroutine (the rebalance callback runs on it too).
	assigned   map[int32]bool
	pauseFlag  map[int32]bool // partitions librdkafka holds paused: ours now, or left so from before a revoke
	paused     bool
	toCommit   map[int32]int64
	lastCommit time.Time
	// The commit on its way, at most one (commitDue): its goroutine sends the answer on commitAnswers,
	// which the poll goroutine reads (commitLanded); closeClients waits for the goroutine.
	commitOut     bool
	commitAnswers chan commitAnswer // 1 slot
	committing    sync.WaitGroup
	leaving       bool                                            // the consumer is closing: a revoke has no records to wait for
	stall         stallWatch                                      // partitions with records waiting that nothing is read from
	assignHook    func(*ckafka.Consumer, []ckafka.TopicPartition) // tests only: after each assignment
	commitHook    func()                                          // tests only: on the commit's goroutine, before it commits
	metadataHook  func() error                                    // tests only: an error fails watchBroker's request unanswered
}

func newPipeline(cfg Config, log *slog.Logger, c *ckafka.Consumer, prod *ckafka.Producer, g graphWalker, gt *gate, m *metrics) *pipeline {
	maxUnanswered := int64(max(2*cfg.Workers, 2))
	drain := cfg.ShutdownGrace
	if drain > 10*time.Second {
		drain = 10 * time.Second
	}
	hurried, hurry := context.WithCancel(context.Background())
	p := &pipeline{
		cfg: cfg, log: log, consumer: c, producer: prod, graph: g, m: m,
		hurried: hurried, hurry: hurry,
		offsets:       newOffsetTracker(),
		lanes:         newLanes(),
		gate:          gt,
		maxUnanswered: maxUnanswered,
		maxHeld:       maxUnanswered + awaitingDelivery,
		maxBytes:      cfg.MaxInflightBytes,
		fatal:         make(chan error, 1),
		resend:        newResender(),
		closing:       make(chan struct{}),
		assigned:      map[int32]bool{},
		pauseFlag:     map[int32]bool{},
		toCommit:      map[int32]int64{},
		commitAnswers: make(chan commitAnswer, 1),
		drainBudget:   drain,
		stall:         newStallWatch(),
	}
	if cfg.ExactlyOnce {
		p.txn = newTransactions(p)
	}
	return p
}

// ---- consume ----

// turn is one turn of the poll loop, the only code that reads the consumer: wait briefly for room when
// the records in flight are at their bound, pause or resume fetching, take one event, commit what is
// due, and look for partitions that stopped being read. The lifecycle turns it while serving and while
// draining.
func (p *pipeline) turn(ctx context.Context) {
	now := time.Now()
	p.lastPoll.Store(now.UnixNano())
	if !p.paused && p.full() {
		p.awaitCapacity(ctx, capacityWait)
	}
	p.setPaused(p.wantPause())
	ev := p.consumer.Poll(100)
	if ev == nil {
		p.stall.idle(now)
	}
	p.handle(ev)
	p.commitDue(false)
	p.checkStalls(now)
}

// capacityWait is how long the poll loop waits for a record to finish, without fetching, before it pauses
// the partitions. A short wait is back-pressure at no cost; a pause makes librdkafka drop what it
// prefetched and fetch it again on resume, hundreds of milliseconds later, so it is kept for a model that
// stays slow.
const capacityWait = time.Second

// awaitingDelivery is how many records whose answer is made may wait for its delivery report, beyond the
// 2 × KAFKA_WORKERS not yet answered. An answer waits in the producer for up to linger.ms (20 ms) for
// others to share its request, then for the broker's acknowledgement, so at a few thousand records a
// second some hundreds wait at once. Counted against 2 × KAFKA_WORKERS, they stopped fetching while
// the model had nothing to do: 64 records held over a ~25 ms produce round trip capped a backlog at
// ~2 500 records/s, batched or not. Bounded all the same, so that a broker that stops acknowledging
// stops fetching too (the bytes are bounded by KAFKA_MAX_INFLIGHT_BYTES either way).
const awaitingDelivery = 1024

// full says whether the records held are at their bound: records not yet answered, records not
// finished, or bytes. The byte bound is checked before a record is taken, not after: one record is
// always taken, however large, and the bytes held can pass the bound by at most the last record's.
func (p *pipeline) full() bool {
	return p.unanswered.Load() >= p.maxUnanswered || p.held.Load() >= p.maxHeld || p.heldBytes.Load() >= p.maxBytes
}

// awaitCapacity waits until the records held are under their bounds, for at most d.
func (p *pipeline) awaitCapacity(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		finished := p.progress.wait() // before the check: a release in between still wakes us
		if !p.full() {
			return
		}
		select {
		case <-finished:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

func (p *pipeline) handle(ev ckafka.Event) {
	switch e := ev.(type) {
	case *ckafka.Message:
		if e.TopicPartition.Error != nil {
			p.log.Warn("consume error", "partition", e.TopicPartition.Partition, "error", e.TopicPartition.Error)
			return
		}
		if p.draining.Load() {
			// Shutting down: the record is handed back. It is not tracked, so no commit passes it.
			return
		}
		p.accept(e)
	case ckafka.Error:
		p.kafkaError("consumer", e)
	}
}

func (p *pipeline) accept(msg *ckafka.Message) {
	j := &job{in: msg, part: msg.TopicPartition.Partition, offset: int64(msg.TopicPartition.Offset)}
	j.epoch, j.tracked = p.offsets.add(j.part, j.offset)
	if len(msg.Key) > 0 {
		j.keyed, j.laneKey = true, string(msg.Key)
	}
	if v, ok := kafka.Header(msg.Headers, HeaderPuid); ok && v != "" {
		j.puid = v
	} else {
		j.puid = uuid.NewString()
	}
	j.size = int64(len(msg.Value))
	p.held.Add(1)
	p.unanswered.Add(1)
	p.heldBytes.Add(j.size)
	p.m.inFlight.Inc()
	p.m.unanswered.Inc()
	p.m.inFlightBytes.Add(float64(j.size))
	p.m.consumed.Inc()
	p.stall.read(j.part, j.offset, time.Now())
	if p.txn != nil {
		p.txn.consumed(j) // its output is produced in its partition's order
	}
	p.lanes.submit(j)
}

// wantPause says whether fetching should stop: the model is not ready, the records in flight are at
// their bound, or the sidecar is shutting down. Pausing keeps the poll loop turning (the group
// membership alive) while no new records come in; resuming refetches from the last record read.
func (p *pipeline) wantPause() bool {
	if p.draining.Load() || !p.gate.isOpen() {
		return true
	}
	if p.paused {
		// Hysteresis: a resume refetches, so do not flap at the bound.
		return p.unanswered.Load() > p.maxUnanswered/2 || p.held.Load() > p.maxHeld/2 || p.heldBytes.Load() > p.maxBytes/2
	}
	return p.full() // still full after awaitCapacity
}

func (p *pipeline) setPaused(want bool) {
	if want == p.paused {
		return
	}
	parts := p.assignedList()
	var err error
	if want {
		err = p.consumer.Pause(parts)
	} else {
		err = p.consumer.Resume(parts)
	}
	if err != nil {
		p.log.Warn("pause/resume failed", "pause", want, "error", err)
		return
	}
	p.paused = want
	for _, tp := range parts {
		if want {
			p.pauseFlag[tp.Partition] = true
		} else {
			delete(p.pauseFlag, tp.Partition)
		}
	}
	if want {
		p.m.paused.Set(1)
	} else {
		p.m.paused.Set(0)
		p.stall.resumed(time.Now())
	}
	p.log.Debug("fetching", "paused", want, "held", p.held.Load(), "model_ready", p.gate.isOpen())
}

func (p *pipeline) assignedList() []ckafka.TopicPartition {
	out := make([]ckafka.TopicPartition, 0, len(p.assigned))
	for n := range p.assigned {
		out = append(out, ckafka.TopicPartition{Topic: &p.cfg.InputTopic, Partition: n})
	}
	return out
}

// rebalance runs on the poll goroutine. Before partitions go, what is in flight on them is given a
// bounded time to finish and what finished is committed, so the next owner repeats as little as possible.
func (p *pipeline) rebalance(c *ckafka.Consumer, ev ckafka.Event) error {
	cooperative := c.GetRebalanceProtocol() == "COOPERATIVE"
	// A rebalance drops what librdkafka prefetched for the partitions that move and restarts its
	// fetches, so the queue may run dry just after it while the partitions that stay still wait their
	// turn: their quiet starts again, as after a resume (the soak's calibration saw the stall watch
	// restart a partition that had waited behind others' backlog across two rebalances).
	p.stall.resumed(time.Now())
	switch e := ev.(type) {
	case ckafka.AssignedPartitions:
		nums := partitionNumbers(e.Partitions)
		p.offsets.assign(nums)
		var err error
		if cooperative {
			err = c.IncrementalAssign(e.Partitions)
		} else {
			clear(p.assigned)
			err = c.Assign(e.Partitions)
		}
		if err != nil {
			return fmt.Errorf("assigning %v: %w", nums, err)
		}
		for _, n := range nums {
			p.assigned[n] = true
			p.stall.assigned(n, time.Now())
		}
		p.m.assigned.Set(float64(len(p.assigned)))
		// librdkafka keeps a partition's pause flag across revoke and assign: a partition paused before it
		// was revoked comes back paused. Only those are resumed; other new partitions are left as
		// librdkafka starts them (a resume at every assignment was followed, once in CI, by a partition
		// that never fetched).
		var stale []ckafka.TopicPartition
		for _, tp := range e.Partitions {
			if p.pauseFlag[tp.Partition] {
				stale = append(stale, tp)
			}
		}
		switch {
		case p.paused && len(e.Partitions) > 0:
			err = c.Pause(e.Partitions)
			for _, n := range nums {
				p.pauseFlag[n] = true
			}
		case !p.paused && len(stale) > 0:
			err = c.Resume(stale)
			for _, tp := range stale {
				delete(p.pauseFlag, tp.Partition)
			}
		}
		if err != nil {
			p.log.Warn("setting the pause state of new partitions", "paused", p.paused, "error", err)
		}
		p.log.Info("partitions assigned", "topic", p.cfg.InputTopic, "partitions", nums)
		if p.assignHook != nil {
			p.assignHook(c, e.Partitions)
		}
	case ckafka.RevokedPartitions:
		nums := partitionNumbers(e.Partitions)
		lost := c.AssignmentLost()
		if !lost && !p.leaving {
			p.awaitPartitions(nums, p.drainBudget)
			if !p.commitNow(time.Now().Add(p.drainBudget), nums...) {
				p.log.Warn("revoked partitions' offsets not committed; their next owner reads the records since the last commit again",
					"partitions", nums)
			}
		}
		if p.txn != nil {
			p.txn.revoked(nums, lost)
		}
		p.offsets.revoke(nums)
		for _, n := range nums {
			delete(p.assigned, n)
			delete(p.toCommit, n)
			p.stall.forget(n)
			p.m.lag.DeleteLabelValues(strconv.Itoa(int(n)))
		}
		p.m.assigned.Set(float64(len(p.assigned)))
		var err error
		if cooperative {
			err = c.IncrementalUnassign(e.Partitions)
		} else {
			err = c.Unassign()
		}
		if err != nil {
			p.log.Warn("unassigning", "error", err)
		}
		p.log.Info("partitions revoked", "topic", p.cfg.InputTopic, "partitions", nums, "lost", lost)
	}
	return nil
}

// awaitPartitions waits, for at most d, until no record of the partitions is in flight.
func (p *pipeline) awaitPartitions(nums []int32, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		finished := p.progress.wait()
		if p.offsets.held(nums) == 0 {
			return
		}
		select {
		case <-finished:
		case <-t.C:
			return
		}
	}
}

func partitionNumbers(tps []ckafka.TopicPartition) []int32 {
	out := make([]int32, len(tps))
	for i, tp := range tps {
		out[i] = tp.Partition
	}
	return out
}

// ---- decode, call ----

// work serves records until the lanes close. ctx ends only when the shutdown grace is over.
func (p *pipeline) work(ctx context.Context) {
	for j := p.lanes.next(); j != nil; j = p.lanes.next() {
		p.serve(ctx, j)
		p.lanes.done(j)
	}
}

func (p *pipeline) serve(ctx context.Context, j *job) {
	ct, _ := kafka.Header(j.in.Headers, HeaderContentType)
	pn, _ := kafka.Header(j.in.Headers, HeaderProtoName)
	req := &protocols.Request{Body: j.in.Value, ContentType: ct, ProtoName: pn, Puid: j.puid, Headers: forwarded(j.in.Headers)}
	ctx, err := p.edges.consume(ctx, j, req)
	if err != nil {
		p.fail(j, err, "decode")
		return
	}
	framed, ok := p.unframe(ctx, j, req)
	if !ok {
		return
	}
	if err := p.graph.Check(req); err != nil {
		p.fail(j, err, "decode")
		return
	}
	// The graph walk calls each node with the model timeout, retrying transient failures, and waits
	// while the graph is not ready (see graph.Walker).
	resp, err := p.graph.Predict(ctx, req)
	if err != nil {
		if ctx.Err() != nil {
			p.abandon(j)
			return
		}
		p.fail(j, err, "call")
		return
	}
	if framed && !p.frame(ctx, j, resp) {
		return
	}
	p.answer(j, resp)
}

// forwarded are the record's headers as the nodes get them: every one, as the legacy executor sends
// them (the clients leave out those their transport reserves).
func forwarded(hs []ckafka.Header) []protocols.Header {
	if len(hs) == 0 {
		return nil
	}
	out := make([]protocols.Header, len(hs))
	for i, h := range hs {
		out[i] = protocols.Header{Key: h.Key, Value: string(h.Value)}
	}
	return out
}

// ---- encode, produce ----

func (p *pipeline) answer(j *job, resp *protocols.Response) {
	hs := []ckafka.Header{
		{Key: HeaderPuid, Value: []byte(j.puid)},
		{Key: HeaderContentType, Value: []byte(resp.ContentType)},
	}
	if resp.ProtoName != "" {
		hs = append(hs, ckafka.Header{Key: HeaderProtoName, Value: []byte(resp.ProtoName)})
	}
	value, hs, err := p.edges.answered(j, resp, resp.Body, hs, p.cfg.OutputTopic)
	if err != nil {
		p.fail(j, err, "produce")
		return
	}
	j.kind = kindAnswer
	j.out = &ckafka.Message{
		TopicPartition: ckafka.TopicPartition{Topic: &p.cfg.OutputTopic, Partition: ckafka.PartitionAny},
		Key:            j.in.Key,
		Value:          value,
		Headers:        hs,
		Opaque:         j,
	}
	p.produce(j)
}

// fail replaces a record's answer with an error record: its original key, value and headers, and
// headers that say what went wrong and, in a graph, at which node.
func (p *pipeline) fail(j *job, err error, stage string) {
	ce := protocols.AsCallError(err)
	var ne *graph.NodeError
	errors.As(err, &ne)
	p.m.errors.WithLabelValues(ce.Reason).Inc()
	if ne != nil {
		p.m.nodeErrors.WithLabelValues(ne.Node, ce.Reason).Inc()
	}
	p.log.Warn("record not served", "reason", ce.Reason, "stage", stage, "partition", j.part, "offset", j.offset,
		"puid", j.puid, "error", err.Error())
	msg := protocols.Truncate(err.Error(), 1024) // with the node, in a graph: "node c (aggregate): …"
	// What went wrong and where the request was: headers of the sidecar's own, after the request's.
	about := []ckafka.Header{
		{Key: HeaderErrorReason, Value: []byte(ce.Reason)},
		{Key: HeaderErrorStage, Value: []byte(stage)},
		{Key: HeaderErrorMessage, Value: []byte(msg)},
		{Key: HeaderSourceTopic, Value: []byte(p.cfg.InputTopic)},
		{Key: HeaderSourcePart, Value: []byte(strconv.Itoa(int(j.part)))},
		{Key: HeaderSourceOffset, Value: []byte(strconv.FormatInt(j.offset, 10))},
	}
	if ce.Status != 0 {
		about = append(about, ckafka.Header{Key: HeaderErrorStatus, Value: []byte(strconv.Itoa(ce.Status))})
	}
	if ce.Code != "" {
		about = append(about, ckafka.Header{Key: HeaderErrorCode, Value: []byte(ce.Code)})
	}
	if ne != nil {
		about = append(about,
			ckafka.Header{Key: HeaderErrorNode, Value: []byte(ne.Node)},
			ckafka.Header{Key: HeaderErrorMethod, Value: []byte(ne.Method)})
	}
	hs := append([]ckafka.Header(nil), j.in.Headers...)
	hs = kafka.SetHeader(hs, HeaderPuid, j.puid)
	hs = append(hs, about...)
	value, hs := p.edges.failed(j, err, j.in.Value, hs, about, p.cfg.ErrorTopic)
	j.kind = kindError
	j.out = &ckafka.Message{
		TopicPartition: ckafka.TopicPartition{Topic: &p.cfg.ErrorTopic, Partition: ckafka.PartitionAny},
		Key:            j.in.Key,
		Value:          value,
		Headers:        hs,
		Opaque:         j,
	}
	p.produce(j)
}

// produce sends j.out; a refusal goes to the resender, as a failed delivery does. Exactly once, the
// transaction takes it, to produce it in its partition's order.
func (p *pipeline) produce(j *job) {
	if p.answered(j) {
		p.progress.notify() // it no longer waits for the model, only for its delivery report: room for another record
	}
	if p.txn != nil {
		p.txn.produce(j)
		return
	}
	if err := p.send(j); err != nil && !errors.Is(err, errStopped) {
		p.resend.add(j, err)
	}
}

// errStopped is send's answer once the producer is closing.
var errStopped = errors.New("the producer is closing")

// send hands j.out to the producer. The producer's queue is large, so a full one only means waiting for
// a delivery report to make room; any other refusal is returned. Once the producer is closing, nothing is
// sent and errStopped returned: the record is not finished, so not committed, and is read again after
// restart.
func (p *pipeline) send(j *job) error {
	var room <-chan struct{}
	for {
		p.prodMu.RLock()
		if p.prodClosed {
			p.prodMu.RUnlock()
			return errStopped
		}
		closing := p.closing
		err := p.producer.Produce(j.out, nil)
		p.prodMu.RUnlock()
		var ke ckafka.Error
		if err == nil || !errors.As(err, &ke) || ke.Code() != ckafka.ErrQueueFull {
			return err
		}
		if room == nil {
			// Registered before one more try, so a report that makes room in between still wakes the wait.
			room = p.progress.wait()
			continue
		}
		select {
		case <-room:
		case <-closing:
		}
		room = nil
	}
}

// deliveries reads the producer's delivery reports until the producer closes. It only reads: a refused
// record goes to the resender, so no wait for the producer's queue ever holds up the reports that
// finish records and free it.
func (p *pipeline) deliveries(events <-chan ckafka.Event) {
	for ev := range events {
		switch e := ev.(type) {
		case *ckafka.Message:
			j, ok := e.Opaque.(*job)
			if !ok {
				continue
			}
			err := e.TopicPartition.Error
			if err == nil && !p.brokerSeen.Load() {
				p.brokerSeen.Store(true)
			}
			switch {
			case p.txn != nil:
				p.txn.delivered(j, err)
			case err != nil:
				p.resend.add(j, err)
			default:
				p.finish(j)
			}
			p.progress.notify()
		case ckafka.Error:
			p.kafkaError("producer", e)
		}
	}
}

// undelivered handles, on the resender's goroutine, an answer or error record the broker would not take.
// An answer becomes an error record at once; an error record is sent again — at once without its value
// (in structured CloudEvents mode, as the event without its data) when the value is what is too large,
// otherwise after a backoff, returned as retryIn. The record stays
// unfinished, so nothing is committed past it, until something is delivered.
func (p *pipeline) undelivered(j *job, err error) (retryIn time.Duration) {
	p.edges.undelivered(j, err)
	if j.kind == kindAnswer {
		// The answer's size says at once whether the topic's max.message.bytes is what refused it.
		p.fail(j, &protocols.CallError{Reason: protocols.ReasonProduceFailed,
			Msg: fmt.Sprintf("the answer (%d bytes) could not be written to %s", len(j.out.Value), p.cfg.OutputTopic), Err: err}, "produce")
		return 0
	}
	j.failures++
	var ke ckafka.Error
	if _, omitted := kafka.Header(j.out.Headers, HeaderValueOmitted); errors.As(err, &ke) && ke.Code() == ckafka.ErrMsgSizeTooLarge && !omitted {
		j.out.Value = p.edges.withoutValue(j)
		j.out.Headers = append(j.out.Headers, ckafka.Header{Key: HeaderValueOmitted, Value: []byte("too large: " + ke.Error())})
		p.produce(j)
		return 0
	}
	delay := p.backoff(j.failures)
	p.log.Error("error record not delivered, retrying", "topic", p.cfg.ErrorTopic, "partition", j.part,
		"offset", j.offset, "attempt", j.failures, "retry_in", delay, "error", err)
	return delay
}

// backoff is the wait before the attempt-th re-send of an error record the broker refused.
func (p *pipeline) backoff(attempt int) time.Duration {
	return protocols.Backoff{Min: p.cfg.BackoffMin, Max: p.cfg.BackoffMax}.Delay(attempt)
}

// finish marks a record done: its answer or error record is delivered.
func (p *pipeline) finish(j *job) {
	p.edges.delivered(j)
	if j.kind == kindAnswer {
		p.m.produced.WithLabelValues("answer").Inc()
	} else {
		p.m.produced.WithLabelValues("error").Inc()
	}
	if j.tracked {
		p.offsets.finish(j.part, j.epoch, j.offset)
	}
	if ts := j.in.Timestamp; !ts.IsZero() {
		p.m.e2e.Observe(time.Since(ts).Seconds())
	}
	p.release(j)
}

// abandon drops a record at the end of the shutdown grace: it is not finished and is read again.
func (p *pipeline) abandon(j *job) {
	p.edges.abandoned(j)
	p.release(j)
}

// answered takes a record out of the unanswered count, once: when its answer or error record is first
// produced, or when it is released without one. It says whether this call did.
func (p *pipeline) answered(j *job) bool {
	if j.answered {
		return false
	}
	j.answered = true
	p.unanswered.Add(-1)
	p.m.unanswered.Dec()
	return true
}

func (p *pipeline) release(j *job) {
	p.answered(j)
	p.held.Add(-1)
	p.heldBytes.Add(-j.size)
	p.m.inFlight.Dec()
	p.m.inFlightBytes.Sub(float64(j.size))
	p.progress.notify()
}

// ---- commit ----

// A commit waits for the group coordinator, for as long as it takes: while the broker is away, and —
// after a restart that timed the group session out — until the consumer has served its rebalance and
// joined again, which only the poll loop can do. So the poll loop never waits for one: commitDue starts
// it on a goroutine of its own and commitLanded takes its answer on a later turn. Only a revoke and the
// last commit before the clients close wait for theirs (commitNow), each until its deadline.

type commitAnswer struct {
	offsets []ckafka.TopicPartition
	err     error
}

// commitDue commits the finished offsets when the commit interval has passed, or now when forced; with
// partitions named, only theirs. It does not wait for the commit (see above); while one is on its way it
// starts none, and what finishes meanwhile goes in the next.
func (p *pipeline) commitDue(force bool, only ...int32) {
	if p.txn != nil {
		p.txn.commitDue(force, only) // with the outputs, in a transaction
		return
	}
	p.commitLanded(time.Time{})
	for n, off := range p.offsets.committable(only...) {
		p.toCommit[n] = off
	}
	if p.commitOut || len(p.toCommit) == 0 || (!force && time.Since(p.lastCommit) < p.cfg.CommitInterval) {
		return
	}
	// The offsets keep until the broker is back (watchBroker; an answer delivered is proof enough). A
	// commit made while the group coordinator is gone waits for it inside librdkafka, and the consumer
	// does not rejoin its group while a commit is outstanding: in the fault battery such a commit, made
	// during a broker restart, kept the group empty for minutes.
	if !force && !p.brokerUp.Load() {
		return
	}
	var tps []ckafka.TopicPartition
	for n, off := range p.toCommit {
		if len(only) > 0 && !slices.Contains(only, n) {
			continue
		}
		tps = append(tps, ckafka.TopicPartition{Topic: &p.cfg.InputTopic, Partition: n, Offset: ckafka.Offset(off)})
	}
	if len(tps) == 0 {
		return
	}
	p.lastCommit = time.Now()
	p.commitOut = true
	consumer := p.consumer
	hook := p.commitHook
	p.committing.Go(func() {
		if hook != nil {
			hook()
		}
		res, err := consumer.CommitOffsets(tps)
		p.commitAnswers <- commitAnswer{res, err}
	})
}

// commitLanded takes the answer of the commit on its way, waiting for it until the deadline (the zero
// time: not at all), and says whether no commit is on its way any more.
func (p *pipeline) commitLanded(deadline time.Time) bool {
	if !p.commitOut {
		return true
	}
	var a commitAnswer
	select {
	case a = <-p.commitAnswers:
	default:
		if deadline.IsZero() {
			return false
		}
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		select {
		case a = <-p.commitAnswers:
		case <-t.C:
			return false
		}
	}
	p.commitOut = false
	// While the broker counts as down, that was logged once; a failed commit then is no news.
	level := slog.LevelWarn
	if !p.brokerUp.Load() {
		level = slog.LevelDebug
	}
	if a.err != nil {
		p.m.commitErr.Inc()
		p.log.Log(context.Background(), level, "commit failed; will retry", "error", a.err)
		return true
	}
	p.brokerSeen.Store(true)
	for _, tp := range a.offsets {
		if tp.Error != nil {
			p.m.commitErr.Inc()
			p.log.Log(context.Background(), level, "commit failed; will retry", "partition", tp.Partition, "error", tp.Error)
			continue
		}
		if p.toCommit[tp.Partition] == int64(tp.Offset) {
			delete(p.toCommit, tp.Partition)
		}
	}
	p.m.commits.Inc()
	return true
}

// commitNow commits the finished offsets of the partitions named (all when none are) and waits for the
// commit, and one on its way before it, until the deadline. It says whether they are committed.
func (p *pipeline) commitNow(deadline time.Time, only ...int32) bool {
	if p.txn != nil {
		p.txn.commitDue(true, only) // waits itself, with the transaction's own timeouts
		return p.uncommitted(only) == 0
	}
	if !p.commitLanded(deadline) {
		return false
	}
	p.commitDue(true, only...)
	return p.commitLanded(deadline) && p.uncommitted(only) == 0
}

// uncommitted is how many of the partitions named (all when none are) have finished offsets not yet
// committed.
func (p *pipeline) uncommitted(only []int32) int {
	if len(only) == 0 {
		return len(p.toCommit)
	}
	n := 0
	for _, part := range only {
		if _, ok := p.toCommit[part]; ok {
			n++
		}
	}
	return n
}
