// Package batch gathers the records that reach the model at the same time into one model call along
// the batch dimension, and cuts the answer back into one answer per record (MODEL_BATCH_SIZE,
// MODEL_BATCH_WAIT). It sits between the data path and the graph walk: a Batcher has the Walker's
// methods, and the data path's workers call Predict for one record each, as they would the Walker.
//
// A batch is made of records whose requests can be merged — the same protocol shape but for the
// number of rows (see the codecs) — and is sent when it holds Size records or Wait after its first
// record came, whichever is first. A record that cannot be merged is called alone at once. When the
// batch's call fails, or its answer does not hold the rows sent, each of its records is called alone,
// so that one bad record gets its own error and its batch-mates their answers.
package batch

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/seldon-kafka/sidecar/executor/graph"
	"github.com/seldon-kafka/sidecar/protocols"
	"github.com/seldon-kafka/sidecar/protocols/grpc"
)

// Options configure a Batcher.
type Options struct {
	// Size is the most records one model call carries; at least 2.
	Size int
	// Wait is the longest a record waits for batch-mates.
	Wait time.Duration
	// Observer, when set, is told of every batch and of the records called alone.
	Observer Observer
	// Log, when set, gets a warning when a batched answer cannot be cut back (at most every 30 s).
	Log *slog.Logger
}

// Observer is told what the Batcher does (metrics).
type Observer interface {
	// Batched is a batch sent to the model: records is how many it carries (1 when no batch-mate came).
	Batched(records int)
	// Alone is records called alone, and why: one of the Cause constants.
	Alone(cause string, records int)
}

// Why records are called alone.
const (
	// CauseUnmergeable: the request is not of a shape that batches (see the codecs); it never waits.
	CauseUnmergeable = "unmergeable"
	// CauseCallFailed: the batch's call failed; each of its records is called again, alone.
	CauseCallFailed = "call_failed"
	// CauseAnswerMismatch: the batch's answer does not hold the rows sent along its first dimension.
	CauseAnswerMismatch = "answer_mismatch"
)

// Supported says whether a graph's walk can be batched: a graph of one model, whose walk is one call.
func Supported(g *graph.Graph) error {
	r := g.Root
	if len(g.Nodes) != 1 {
		return fmt.Errorf("batching applies to a graph of one model, and this graph has %d nodes", len(g.Nodes))
	}
	if r.In != protocols.Predict || r.Out || r.Aggregate || len(r.Children) != 0 {
		return fmt.Errorf("batching applies to a graph of one model, and its node %s is not called as a model", r.Name)
	}
	if _, ok := codecs[g.Transport][g.Protocol]; !ok {
		return fmt.Errorf("the %s protocol over %s does not batch", g.Protocol, g.Transport)
	}
	return nil
}

// Batcher is a Walker whose Predict batches concurrent calls. It is safe for concurrent use.
type Batcher struct {
	*graph.Walker
	codec  codec
	encode bool // answers go to Kafka as protobuf bytes (gRPC)
	opts   Options

	mu   sync.Mutex
	open map[string]*batch // by key: the batches still taking records

	lastWarn atomic.Int64 // unix nanoseconds of the last mismatch warning
}

// batch is records gathered for one call.
type batch struct {
	members []*member
	timer   *time.Timer
}

// member is one Predict call waiting for its batch.
type member struct {
	ctx  context.Context
	part part
	done chan outcome // buffered: the batch never waits for a member that has left
}

// outcome is what a member's batch brought it: its answer, or word to call the model alone.
type outcome struct {
	resp  *protocols.Response
	alone bool
}

// New wraps a walker whose graph is Supported.
func New(w *graph.Walker, o Options) (*Batcher, error) {
	g := w.Graph()
	if err := Supported(g); err != nil {
		return nil, err
	}
	if o.Size < 2 || o.Wait <= 0 {
		return nil, fmt.Errorf("a batch needs a size of at least 2 and a positive wait (size %d, wait %v)", o.Size, o.Wait)
	}
	return &Batcher{Walker: w, codec: codecs[g.Transport][g.Protocol], encode: g.Transport == "grpc", opts: o,
		open: map[string]*batch{}}, nil
}

// Predict answers one request, in a batch with the requests of other calls made meanwhile when they
// merge. A failure is what the Walker's Predict returns for the request alone.
func (b *Batcher) Predict(ctx context.Context, req *protocols.Request) (*protocols.Response, error) {
	p, ok := b.codec.read(req)
	if !ok {
		b.alone(CauseUnmergeable, 1)
		return b.Walker.Predict(ctx, req)
	}
	m := &member{ctx: ctx, part: p, done: make(chan outcome, 1)}
	b.join(m)
	select {
	case o := <-m.done:
		if o.alone {
			return b.Walker.Predict(ctx, req)
		}
		return o.resp, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// join adds m to the open batch of its key, or opens one; a batch that is full is sent now, any
// other when its wait is over.
func (b *Batcher) join(m *member) {
	key := m.part.key
	b.mu.Lock()
	bt := b.open[key]
	if bt == nil {
		bt = &batch{}
		b.open[key] = bt
		bt.timer = time.AfterFunc(b.opts.Wait, func() { b.due(key, bt) })
	}
	bt.members = append(bt.members, m)
	full := len(bt.members) >= b.opts.Size
	if full {
		delete(b.open, key)
		bt.timer.Stop()
	}
	b.mu.Unlock()
	if full {
		go b.send(bt)
	}
}

// due sends a batch whose wait is over, unless it filled up meanwhile and was sent.
func (b *Batcher) due(key string, bt *batch) {
	b.mu.Lock()
	open := b.open[key] == bt
	if open {
		delete(b.open, key)
	}
	b.mu.Unlock()
	if open {
		b.send(bt)
	}
}

// send makes a batch's call and hands each member its answer, or word to call alone.
func (b *Batcher) send(bt *batch) {
	ms := bt.members
	if b.opts.Observer != nil {
		b.opts.Observer.Batched(len(ms))
	}
	if len(ms) == 1 {
		// No batch-mate came: the record's own call, unchanged, on its own goroutine.
		ms[0].done <- outcome{alone: true}
		return
	}
	resps, err := b.call(ms)
	if err != nil && everyoneLeft(ms) {
		return // shutting down: nobody waits for an answer
	}
	if err != nil {
		cause := CauseCallFailed
		if errors.Is(err, errMismatch) {
			cause = CauseAnswerMismatch
			b.warn(err, len(ms))
		}
		b.alone(cause, len(ms))
		for _, m := range ms {
			m.done <- outcome{alone: true}
		}
		return
	}
	for i, m := range ms {
		m.done <- outcome{resp: resps[i]}
	}
}

// call merges the members' requests, walks the graph once and cuts the answer back.
func (b *Batcher) call(ms []*member) ([]*protocols.Response, error) {
	parts := make([]part, len(ms))
	for i, m := range ms {
		parts[i] = m.part
	}
	req := b.codec.merge(parts)
	req.Headers, req.Puid = shared(parts)
	ctx, done := together(ms)
	defer done()
	// Left decoded over gRPC: the batch's answer is cut, and only the records' answers encoded.
	resp, err := b.Walker.Walk(ctx, req)
	if err != nil {
		return nil, err
	}
	outs, err := b.codec.split(resp, parts)
	if err != nil {
		return nil, err
	}
	if b.encode {
		for _, o := range outs {
			if err := grpc.Encode(o); err != nil {
				return nil, mismatch("%v", err)
			}
		}
	}
	return outs, nil
}

func everyoneLeft(ms []*member) bool {
	for _, m := range ms {
		if m.ctx.Err() == nil {
			return false
		}
	}
	return true
}

// together is the context of a batch's call: it ends when every member has left (their contexts
// ended), not before, so that one caller giving up does not fail the others. done releases it.
func together(ms []*member) (context.Context, func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ms[0].ctx))
	var live atomic.Int64
	live.Store(int64(len(ms)))
	stops := make([]func() bool, len(ms))
	for i, m := range ms {
		stops[i] = context.AfterFunc(m.ctx, func() {
			if live.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// shared are the headers every record of a batch has, with the same value, and their request id if
// they all have the same: what the batch's call can carry for all of them.
func shared(parts []part) ([]protocols.Header, string) {
	first := parts[0].req
	var hs []protocols.Header
	for _, h := range first.Headers {
		all := true
		for _, p := range parts[1:] {
			if !hasHeader(p.req.Headers, h) {
				all = false
				break
			}
		}
		if all {
			hs = append(hs, h)
		}
	}
	puid := first.Puid
	for _, p := range parts[1:] {
		if p.req.Puid != puid {
			puid = ""
			break
		}
	}
	return hs, puid
}

func hasHeader(hs []protocols.Header, h protocols.Header) bool {
	for _, x := range hs {
		if x == h {
			return true
		}
	}
	return false
}

func (b *Batcher) alone(cause string, n int) {
	if b.opts.Observer != nil {
		b.opts.Observer.Alone(cause, n)
	}
}

// warn says, at most every 30 s, that a batch's answer could not be cut back: the model does not
// answer along the batch dimension, and batching only costs it calls.
func (b *Batcher) warn(err error, records int) {
	if b.opts.Log == nil {
		return
	}
	now := time.Now().UnixNano()
	last := b.lastWarn.Load()
	if now-last < int64(30*time.Second) || !b.lastWarn.CompareAndSwap(last, now) {
		return
	}
	b.opts.Log.Warn("a batched answer could not be cut back into one per record; its records were called alone",
		"records", records, "error", err.Error())
}
