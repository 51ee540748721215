package executor

import (
	"context"
	"fmt"
	"sync"
	"time"

	ckafka "github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// The data path's lifecycle, in one place. run is its only owner: it starts every goroutine that
// carries a record, turns the poll loop, swaps in new clients when rotation offers them, and on
// shutdown drains, closes and waits for all it started, in this order:
//
//	run ─┬─ workers (KAFKA_WORKERS)      serve records from the lanes until the lanes close
//	     ├─ resender                      re-sends what the broker refused, until stopped
//	     ├─ clientRun, per consumer and producer:
//	     │    deliveries                  reads delivery reports until the producer closes
//	     │    log forwarders ×2           until the clients close
//	     │    broker watch, lag queries   until stopped, before the clients close
//	     │    commit                      one at a time, started by the poll loop; waited for after the consumer closes
//	     └─ poll loop (run's goroutine)   turn() until shutdown, a fatal error or new clients
//
// Exactly once, join starts the transactions of each new producer, and the poll goroutine commits and
// aborts them (txn.go).
//
// Shutdown: drain (stop fetching; wait, still polling, for the records in flight, at most the grace
// period, or until Executor.Hurry) → end the model calls and the workers → flush, commit, close the consumer (leaving the
// group) and the producer → wait for the client goroutines → stop the resender. Every wait is on a
// signal — a delivery report, a released record, a closed channel — or a deadline, never a sleep.

// clients are a consumer and producer made together, from one set of security material.
type clients struct {
	consumer *ckafka.Consumer
	producer *ckafka.Producer
}

func (c clients) close() {
	c.producer.Close()
	_ = c.consumer.Close()
}

// run serves records until ctx ends or a fatal error, then shuts down within the grace period. swaps
// offers new clients (security rotation); nil when there is nothing to rotate.
func (p *pipeline) run(ctx context.Context, swaps <-chan clients) error {
	// hard ends the model calls when the grace period is over.
	hard, stopHard := context.WithCancel(context.Background())
	defer stopHard()
	var workers sync.WaitGroup
	for range p.cfg.Workers {
		workers.Go(func() { p.work(hard) })
	}
	stopResend := make(chan struct{})
	var resender sync.WaitGroup
	resender.Go(func() { p.resendLoop(stopResend) })

	cr := p.startClients()
	runErr := p.join(ctx)
	for runErr == nil {
		next, err := p.pollUntil(ctx, swaps)
		if err != nil {
			runErr = err
			break
		}
		if next == nil {
			break // ctx ended
		}
		if cr = p.swap(ctx, cr, *next); ctx.Err() != nil {
			break
		}
		runErr = p.join(ctx)
	}

	if runErr != nil {
		p.log.Error("stopping", "error", runErr)
	} else {
		p.log.Info("shutting down", "in_flight", p.held.Load(), "grace", p.cfg.ShutdownGrace)
	}
	deadline := time.Now().Add(p.cfg.ShutdownGrace)
	p.drain(p.hurried, deadline)
	if p.hurried.Err() != nil {
		// Cut short: what is delivered is still flushed (a second at most) and committed, once.
		deadline = time.Now()
	}
	if n := p.held.Load(); n > 0 {
		p.log.Warn("grace period over with records in flight; they will be read again", "count", n)
	}
	stopHard()
	p.stopSending() // a worker or the resender waiting for room in the producer's queue gives up
	p.lanes.close()
	workers.Wait()
	p.closeClients(cr, deadline)
	close(stopResend)
	resender.Wait()
	return runErr
}

// join starts serving on the current clients: exactly once, the producer's transactions first (which
// fences an earlier producer of this replica and aborts what it left open); then the subscription.
func (p *pipeline) join(ctx context.Context) error {
	if p.txn != nil {
		if err := p.txn.start(ctx); err != nil {
			return err
		}
	}
	return p.subscribe()
}

func (p *pipeline) subscribe() error {
	if err := p.consumer.SubscribeTopics([]string{p.cfg.InputTopic}, p.rebalance); err != nil {
		return fmt.Errorf("subscribing to %s: %w", p.cfg.InputTopic, err)
	}
	return nil
}

// pollUntil turns the poll loop until ctx ends (nil, nil), a fatal error, or new clients are offered.
func (p *pipeline) pollUntil(ctx context.Context, swaps <-chan clients) (*clients, error) {
	for ctx.Err() == nil {
		select {
		case err := <-p.fatal:
			return nil, err
		case next := <-swaps:
			return &next, nil
		default:
		}
		p.turn(ctx)
	}
	return nil, nil
}

// drain stops fetching and turns the poll loop until the records in flight are delivered — or the
// deadline passes (zero: no deadline), or ctx ends — committing as they finish. Records fetched
// meanwhile are handed back: they are not tracked, so no commit passes them. /ready says shutting_down.
func (p *pipeline) drain(ctx context.Context, deadline time.Time) {
	p.draining.Store(true)
	started, lastNote := time.Now(), time.Now()
	for p.held.Load() > 0 && ctx.Err() == nil && (deadline.IsZero() || time.Now().Before(deadline)) {
		p.turn(ctx)
		if time.Since(lastNote) > 10*time.Second {
			lastNote = time.Now()
			p.log.Info("waiting for the records in flight", "in_flight", p.held.Load(),
				"waiting", time.Since(started).Round(time.Second).String())
		}
	}
}

// swap replaces the clients with next (see rotation.go for why): drain with no deadline, close the old
// clients, start the new. Nothing is in flight when the clients change, so nothing is lost or answered
// twice: the new consumer rejoins the group at the committed offsets. If ctx ends during the drain the
// new clients are closed and the old kept, for the ordinary shutdown.
func (p *pipeline) swap(ctx context.Context, cr *clientRun, next clients) *clientRun {
	started := time.Now()
	p.drain(ctx, time.Time{})
	if ctx.Err() != nil {
		next.close()
		return cr
	}
	p.closeClients(cr, time.Now().Add(5*time.Second))
	p.prodMu.Lock()
	p.producer, p.prodClosed, p.closing = next.producer, false, make(chan struct{})
	p.prodMu.Unlock()
	p.consumer = next.consumer
	// A new librdkafka instance: nothing is assigned, paused or waiting to be committed.
	p.paused = false
	p.m.paused.Set(0)
	clear(p.assigned)
	clear(p.pauseFlag)
	clear(p.toCommit)
	p.stall.reset()
	p.m.lag.Reset()
	cr = p.startClients()
	p.draining.Store(false)
	p.log.Info("reconnected with the new security material", "took", time.Since(started).Round(time.Millisecond).String())
	return cr
}

// clientRun is the goroutines that live as long as one consumer and producer.
type clientRun struct {
	deliveries sync.WaitGroup // ends when the producer closes
	logs       sync.WaitGroup // end when the clients close
	watches    sync.WaitGroup // end at stop, before the clients close
	stop       context.CancelFunc
}

// startClients starts the goroutines that serve the pipeline's current consumer and producer.
func (p *pipeline) startClients() *clientRun {
	cr := &clientRun{}
	ctx, cancel := context.WithCancel(context.Background())
	cr.stop = cancel
	consumer, producer := p.consumer, p.producer
	consumerLogs, producerLogs, events := consumer.Logs(), producer.Logs(), producer.Events()
	cr.logs.Go(func() { forwardLogs(p.log, "consumer", consumerLogs) })
	cr.logs.Go(func() { forwardLogs(p.log, "producer", producerLogs) })
	cr.deliveries.Go(func() { p.deliveries(events) })
	cr.watches.Go(func() { p.watchBroker(ctx, producer) })
	cr.watches.Go(func() { p.stall.answer(ctx, consumer, p.cfg) })
	return cr
}

// closeClients flushes the producer, commits what is finished (retrying a failed commit until the
// deadline, since an uncommitted answer is answered again), leaves the group, closes both clients and
// waits for the goroutines that served them.
func (p *pipeline) closeClients(cr *clientRun, deadline time.Time) {
	flushMs := max(int(time.Until(deadline).Milliseconds()), 1000)
	if n := p.producer.Flush(flushMs); n > 0 {
		p.log.Warn("records not delivered before the clients closed; they will be read again", "count", n)
	}
	p.commitBefore(deadline)
	// A commit still on its way is inside librdkafka's commit call, which uses the consumer's handle and
	// a queue of its own; closing the consumer frees both, and librdkafka asks that no call be under way
	// when it does. So the commit gets commitCloseGrace more to end — when the coordinator answers, or
	// fails it — before the consumer closes regardless (a commit that never ends must not hold the exit).
	if !p.commitLanded(time.Now().Add(commitCloseGrace)) {
		p.log.Warn("closing the consumer while a commit is still on its way", "waited", commitCloseGrace)
	}
	cr.stop()
	cr.watches.Wait()
	p.leaving = true // closing leaves the group: the revoke has no records to wait for
	if err := p.consumer.Close(); err != nil {
		p.log.Warn("closing consumer", "error", err)
	}
	p.leaving = false
	// A commit still on its way ends with the consumer: it failed, or landed; either way it is over.
	p.committing.Wait()
	p.commitLanded(time.Time{})
	p.stopSending()
	p.producer.Close()
	cr.deliveries.Wait()
	cr.logs.Wait()
}

// stopSending ends producing: send returns at once from now on, and a send waiting for room in the
// producer's queue stops waiting. What it did not send is not finished, so not committed: it is read
// and served again after the restart.
func (p *pipeline) stopSending() {
	p.prodMu.Lock()
	defer p.prodMu.Unlock()
	if !p.prodClosed {
		p.prodClosed = true
		close(p.closing)
	}
}

// commitCloseGrace is how much longer than the shutdown's deadline a commit on its way may take before
// the consumer closes under it.
const commitCloseGrace = 5 * time.Second

// commitRetry is the wait between attempts of the last commit before the clients close.
const commitRetry = 250 * time.Millisecond

// commitBefore commits what is finished, trying again after a failure — when the broker is back, or
// after commitRetry — until the deadline.
func (p *pipeline) commitBefore(deadline time.Time) {
	for {
		back := p.brokerBack.wait()
		if p.commitNow(deadline) {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			return
		}
		t := time.NewTimer(min(commitRetry, left))
		select {
		case <-t.C:
		case <-back:
		}
		t.Stop()
	}
}

// signal is a broadcast without a value: wait returns a channel that the next notify closes.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) notify() {
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
}

// resender takes the records the broker refused from the goroutines that saw the refusal (the delivery
// reports, or a worker's Produce) and handles them on a goroutine of its own, resendLoop, so that
// neither waits: a re-send may wait for room in the producer's queue or for a backoff.
type resender struct {
	mu      sync.Mutex
	pending []refusal
	wake    chan struct{} // 1 slot: something is pending
}

type refusal struct {
	j   *job
	err error
}

func newResender() *resender { return &resender{wake: make(chan struct{}, 1)} }

func (r *resender) add(j *job, err error) {
	r.mu.Lock()
	r.pending = append(r.pending, refusal{j, err})
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *resender) take() []refusal {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.pending
	r.pending = nil
	return out
}

// resendLoop handles refusals until stop is closed. Error records waiting for their backoff when it
// is are left unfinished: not committed, so read and served again after the restart.
func (p *pipeline) resendLoop(stop <-chan struct{}) {
	type retry struct {
		at time.Time
		j  *job
	}
	var due []retry
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		now := time.Now()
		for _, r := range p.resend.take() {
			if d := p.undelivered(r.j, r.err); d > 0 {
				due = append(due, retry{now.Add(d), r.j})
			}
		}
		next := time.Time{}
		waiting := due[:0]
		for _, r := range due {
			if !r.at.After(now) {
				p.produce(r.j)
				continue
			}
			waiting = append(waiting, r)
			if next.IsZero() || r.at.Before(next) {
				next = r.at
			}
		}
		due = waiting
		t.Stop() // since Go 1.23 a stopped timer delivers nothing stale: no drain needed
		if !next.IsZero() {
			t.Reset(time.Until(next))
		}
		select {
		case <-stop:
			return
		case <-p.resend.wake:
		case <-t.C:
		}
	}
}
